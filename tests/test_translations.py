"""Translation catalogs: the POT matches the sources, every catalog is complete and safe, and
the app really serves the translations.

French is the reference language (msgids); translations/README.md explains the workflow.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from markupsafe import escape

from selfcheck import create_app
from selfcheck.platform.db import EXTENSION_KEY
from selfcheck.platform.i18n import TRANSLATIONS_DIR
from selfcheck.platform.models import Base

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "translations"
POT = TRANSLATIONS_DIR / "messages.pot"
PO_FILES = sorted(TRANSLATIONS_DIR.glob("*/LC_MESSAGES/messages.po"))
LOCALES = [path.parent.parent.name for path in PO_FILES]
PLACEHOLDER = re.compile(r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
BRAND = "Mon parcours numérique"

Key = tuple[str | None, str | tuple[str, ...]]


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fileobj:
        return read_po(fileobj, locale=locale)


def key(message: Message) -> Key:
    msgid = message.id if isinstance(message.id, str) else tuple(message.id)
    return message.context, msgid


def messages(catalog: Catalog) -> dict[Key, Message]:
    return {key(message): message for message in catalog if message.id}


def strings(message: Message) -> list[str]:
    value = message.string
    return list(value) if isinstance(value, list | tuple) else [value]


def ids(message: Message) -> list[str]:
    return [message.id] if isinstance(message.id, str) else list(message.id)


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


@pytest.fixture(scope="module")
def pot() -> Catalog:
    return read_catalog(POT)


@pytest.fixture(scope="module", params=LOCALES)
def catalog(request: pytest.FixtureRequest) -> Catalog:
    locale: str = request.param
    return read_catalog(TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po", locale)


def test_there_is_at_least_one_catalog() -> None:
    assert "en" in LOCALES


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_pot_is_up_to_date(pot: Catalog, tmp_path: Path) -> None:
    fresh_path = tmp_path / "fresh.pot"
    subprocess.run(
        ["bash", str(SCRIPT), "extract", "--to", str(fresh_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    fresh = set(messages(read_catalog(fresh_path)))
    current = set(messages(pot))
    added, gone = sorted(fresh - current, key=str), sorted(current - fresh, key=str)
    assert not added, f"run scripts/translations extract: new in the sources: {added}"
    assert not gone, f"run scripts/translations extract: gone from the sources: {gone}"


def test_catalog_has_every_message_translated(pot: Catalog, catalog: Catalog) -> None:
    assert not catalog.fuzzy, "the catalog header is marked fuzzy"
    translated = messages(catalog)
    expected = messages(pot)
    missing = [k for k in expected if k not in translated]
    assert not missing, f"run scripts/translations update, then translate: {missing}"
    stale = [k for k in translated if k not in expected]
    assert not stale, f"run scripts/translations update: not in the POT: {stale}"
    fuzzy = [k for k, message in translated.items() if message.fuzzy]
    assert not fuzzy, f"review these fuzzy translations: {fuzzy}"
    # Blank (spaces only) too (attack11): gettext shows it, and a label, link or button named
    # by it has no accessible name; the route suite runs axe-core on every page in fr and ar
    # only (tests/browser/test_browser_routes.py), relying on this.
    empty = [k for k, message in translated.items() if not all(s.strip() for s in strings(message))]
    assert not empty, f"untranslated: {empty}"
    if any(message.pluralizable for message in translated.values()):
        plural_forms = catalog.num_plurals
        short = [
            k for k, m in translated.items() if m.pluralizable and len(strings(m)) < plural_forms
        ]
        assert not short, f"missing plural forms: {short}"


def test_placeholders_match(catalog: Catalog) -> None:
    problems = []
    for message in catalog:
        if not message.id:
            continue
        sources = ids(message)
        wanted = set().union(*(placeholders(text) for text in sources))
        for text in strings(message):
            got = placeholders(text)
            # A plural form may leave out the count (« Une chose… »), never invent a name.
            ok = got <= wanted if message.pluralizable else got == wanted
            if not ok:
                problems.append((message.id, text))
    assert not problems, f"placeholders differ from the msgid's: {problems}"


def test_translations_format_like_their_msgid(catalog: Catalog) -> None:
    """Jinja's gettext always applies `%` to the text: a stray `%` would break the page."""
    problems = []
    for message in catalog:
        if not message.id:
            continue
        sources = ids(message)
        values = {name: 1 for text in sources for name in placeholders(text)}
        if message.pluralizable:
            values.setdefault("num", 1)
        try:
            for text in sources:
                text % values
        except (ValueError, TypeError, KeyError):
            continue  # the msgid itself is never %-formatted
        for text in strings(message):
            try:
                text % values
            except (ValueError, TypeError, KeyError) as exc:
                problems.append((text, str(exc)))
    assert not problems, f"these translations cannot be %-formatted: {problems}"


def compile_catalogs() -> None:
    """Compile each .po whose .mo is missing or older (a fresh clone has no .mo files)."""
    for po_path in PO_FILES:
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        catalog = read_catalog(po_path, po_path.parent.parent.name)
        # Write beside, then rename: a parallel test run never reads a half-written file.
        fd, tmp_name = tempfile.mkstemp(dir=po_path.parent, prefix=".messages-", suffix=".mo")
        with os.fdopen(fd, "wb") as outfile:
            write_mo(outfile, catalog)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; pybabel's .mo files are not
        os.replace(tmp_name, mo_path)


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[FlaskClient]:
    compile_catalogs()
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'translations.sqlite'}",
            "INSTANCE_PATH": tmp_path,
            "TESTING": True,
        }
    )
    engine = app.extensions[EXTENSION_KEY].engine
    Base.metadata.create_all(engine)
    try:
        yield app.test_client()
    finally:
        engine.dispose()


@pytest.mark.parametrize("locale", [locale for locale in LOCALES if locale != "fr"])
def test_pages_are_served_in_each_language(app_client: FlaskClient, locale: str) -> None:
    catalog = read_catalog(TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po", locale)
    translated = catalog.get(BRAND)
    assert translated is not None and translated.string
    assert translated.string != BRAND

    page = app_client.get(f"/?lang={locale}")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'<html lang="{locale}"' in html
    assert str(escape(translated.string)) in html
    assert str(escape(BRAND)) not in html


def test_french_stays_the_default(app_client: FlaskClient) -> None:
    page = app_client.get("/", headers={"Accept-Language": "fr"})

    html = page.get_data(as_text=True)
    assert '<html lang="fr"' in html
    assert str(escape(BRAND)) in html
