"""Blank forms rendered once and served again from the instance folder (paper/blank_cache.py).

The renderer is counted, not run (a render takes half a second): what is tested is when a
form is rendered, what is kept and what is served. tests/views/test_printing.py downloads a
real one twice.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from selfcheck.paper import blank_cache
from selfcheck.paper import operations as paper
from selfcheck.questionnaire.model import FormKind, Wording
from tests.render_counting import count_collections

# The app's database is incidental: run on the SQLite pass only (tests/database_use.py).
pytestmark = pytest.mark.one_database(
    reason="blank forms from the item bank and files of the instance folder: no query"
)

SITE = "https://selfcheck.example/code"


class Counted:
    """Stands for `PaperRenderer.questionnaires`: a distinct small PDF per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        # The full collection after each render, counted too (tests/render_counting.py).
        self.collections: list[None] = []

    def __call__(self, copies: Any, **options: Any) -> bytes:
        self.calls.append((tuple(copies), tuple(sorted(options.items()))))
        return b"%PDF-1.7\n% render " + str(len(self.calls)).encode() + b"\n%%EOF\n"


@pytest.fixture
def renders(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Counted:
    counted = Counted()
    for wording in Wording:
        monkeypatch.setattr(paper.renderer(app, wording), "questionnaires", counted)
    counted.collections = count_collections(monkeypatch)
    return counted


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "blanks"


def blank(app: Flask, cache: Path | None, **choices: Any) -> bytes:
    wording = choices.pop("wording", Wording.STANDARD)
    form = choices.pop("form", FormKind.BEFORE)
    locale = choices.pop("locale", "fr")
    with app.app_context():
        renderer = paper.renderer(app, wording)
        return blank_cache.blank_form(
            renderer, form, locale, cache=cache, **{"site_url": SITE, **choices}
        )


def files(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.pdf"))


def test_rendered_once_then_served(app: Flask, renders: Counted, cache: Path) -> None:
    first = blank(app, cache)
    assert len(renders.calls) == 1
    copies, options = renders.calls[0]
    assert copies == (paper.Copy(FormKind.BEFORE, "fr", None),)
    assert dict(options) == {"large": False, "duplex": False, "site_url": SITE}
    assert [path.read_bytes() for path in files(cache)] == [first]

    assert blank(app, cache) == first
    assert len(renders.calls) == 1  # served from the file


@pytest.mark.parametrize(
    "change",
    [
        {"form": FormKind.AFTER},
        {"locale": "en"},
        {"wording": Wording.EASY},
        {"large": True},
        {"duplex": True},
        {"site_url": "https://other.example/code"},
    ],
    ids=["form", "language", "wording", "large", "duplex", "site"],
)
def test_each_choice_is_a_form_of_its_own(
    app: Flask, renders: Counted, cache: Path, change: dict[str, Any]
) -> None:
    standard = blank(app, cache)
    other = blank(app, cache, **change)
    assert other != standard and len(renders.calls) == 2
    assert len(files(cache)) == 2
    assert blank(app, cache, **change) == other and len(renders.calls) == 2


def test_the_key_follows_the_templates_and_the_definition(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.app_context():
        renderer = paper.renderer(app)
        before = blank_cache.key(
            renderer, FormKind.BEFORE, "fr", large=False, duplex=False, site_url=None
        )
        assert before == blank_cache.key(
            renderer, FormKind.BEFORE, "fr", large=False, duplex=False, site_url=None
        )
        # another templates folder (one file changed): another key
        copy = tmp_path / "printable"
        copy.mkdir()
        for path in renderer.directory.iterdir():
            if path.is_file():
                (copy / path.name).write_bytes(path.read_bytes())
        (copy / "print.css").write_text((copy / "print.css").read_text() + "\n/* changed */\n")
        monkeypatch.setattr(renderer, "directory", copy)
        changed = blank_cache.key(
            renderer, FormKind.BEFORE, "fr", large=False, duplex=False, site_url=None
        )
        assert changed != before
        # another version of the app's code (the package's files): another key
        code = tmp_path / "package"
        code.mkdir()
        (code / "operations.py").write_text("VERSION = 1\n")
        monkeypatch.setattr(blank_cache, "PACKAGE_DIR", code)
        first_code = blank_cache.key(
            renderer, FormKind.BEFORE, "fr", large=False, duplex=False, site_url=None
        )
        blank_cache._files_digest.cache_clear()
        (code / "operations.py").write_text("VERSION = 2\n")
        assert first_code != blank_cache.key(
            renderer, FormKind.BEFORE, "fr", large=False, duplex=False, site_url=None
        )
        # another version of the item bank: another key
        bumped: Any = SimpleNamespace(
            definition=dataclasses.replace(renderer.definition, version="next"), directory=copy
        )
        assert changed != blank_cache.key(
            bumped, FormKind.BEFORE, "fr", large=False, duplex=False, site_url=None
        )


def test_a_damaged_file_is_rendered_again(app: Flask, renders: Counted, cache: Path) -> None:
    first = blank(app, cache)
    (path,) = files(cache)
    path.write_bytes(first[:10])  # cut short (a full disk, say)
    again = blank(app, cache)
    assert len(renders.calls) == 2 and again != first[:10]
    assert path.read_bytes() == again


def path_for(app: Flask, cache: Path, locale: str) -> Path:
    with app.app_context():
        name = blank_cache.key(
            paper.renderer(app), FormKind.BEFORE, locale, large=False, duplex=False, site_url=SITE
        )
    return cache / f"{name}.pdf"


def test_at_most_max_files_the_least_recently_served_go_first(
    app: Flask, renders: Counted, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blank_cache, "MAX_FILES", 3)
    for age, locale in ((300, "fr"), (200, "en"), (100, "es")):
        blank(app, cache, locale=locale)
        path = path_for(app, cache, locale)
        then = path.stat().st_mtime - age
        os.utime(path, (then, then))
    blank(app, cache, locale="fr")  # served: now the most recently served
    assert len(renders.calls) == 3
    blank(app, cache, locale="ar")  # a fourth form: "en" was served least recently
    assert len(renders.calls) == 4
    assert set(files(cache)) == {path_for(app, cache, locale) for locale in ("fr", "es", "ar")}


def test_no_cache_in_debug_mode_or_when_turned_off(app: Flask, renders: Counted) -> None:
    assert blank_cache.folder(app) is not None
    app.debug = True
    assert blank_cache.folder(app) is None
    app.debug = False
    app.config[blank_cache.CONFIG_KEY] = ""
    assert blank_cache.folder(app) is None
    blank(app, None)
    blank(app, None)
    assert len(renders.calls) == 2


def test_prefill_renders_each_blank_form_once(app: Flask, renders: Counted, cache: Path) -> None:
    app.config["SELFCHECK_LANGUAGES"] = ("fr", "ar")
    with app.app_context():
        done = blank_cache.prefill(app, SITE, cache)
    # forms x languages x wordings x print sizes (single-sided)
    expected = len(FormKind) * 2 * len(Wording) * 2
    assert (done.rendered, done.present) == (expected, 0)
    assert len(renders.calls) == expected == len(files(cache))
    assert len(renders.collections) == expected  # each document's layout freed after it
    assert {(copies[0].form, copies[0].locale) for copies, _ in renders.calls} == {
        (form, locale) for form in FormKind for locale in ("fr", "ar")
    }
    assert {dict(options)["duplex"] for _, options in renders.calls} == {False}

    with app.app_context():
        again = blank_cache.prefill(app, SITE, cache)
    assert (again.rendered, again.present) == (0, expected)
    assert len(renders.calls) == expected
    blank(app, cache, form=FormKind.RETRO, locale="ar", wording=Wording.EASY, large=True)
    assert len(renders.calls) == expected  # served from the prefilled file

    with app.app_context():
        sides = blank_cache.prefill(app, SITE, cache, duplex=True)
    assert (sides.rendered, sides.present) == (expected, expected)


def test_prefill_renders_the_most_asked_forms_first(
    app: Flask, renders: Counted, cache: Path
) -> None:
    app.config["SELFCHECK_LANGUAGES"] = ("ar", "fr")  # the default language (fr) listed last
    app.config["BABEL_DEFAULT_LOCALE"] = "fr"
    with app.app_context():
        order = blank_cache.every_blank(app)
        blank_cache.prefill(app, SITE, cache)
    assert order[0] == blank_cache.Blank(Wording.STANDARD, FormKind.BEFORE, "fr", False, False)
    first = order[: len(FormKind)]  # the default language's standard forms, normal print
    assert [b.form for b in first] == list(FormKind)
    assert {(b.locale, b.wording, b.large) for b in first} == {("fr", Wording.STANDARD, False)}
    assert order[len(FormKind)].locale == "ar"  # then the other languages, same wording, size
    assert [b.large for b in order] == sorted(b.large for b in order)  # large print last
    assert len(set(order)) == len(order) == len(FormKind) * 2 * len(Wording) * 2
    # rendered in that order
    assert [(c[0].form, c[0].locale) for c, _ in renders.calls[: len(FormKind)]] == [
        (form, "fr") for form in FormKind
    ]


def held(path: Path) -> Any:
    """The lock of the file `path` as another process rendering it holds it (flock locks
    belong to an open file, so a second open of the same file in this process conflicts)."""
    import fcntl

    handle = blank_cache._lock_path(path).open("a")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def path_of(app: Flask, cache: Path, **choices: Any) -> Path:
    with app.app_context():
        [(_, path)] = [
            (b, p)
            for b, p in blank_cache._missing_files(app, SITE, cache)
            if (b.wording, b.form, b.locale, b.large)
            == (Wording.STANDARD, FormKind.BEFORE, "fr", False)
        ]
    return path


def test_a_request_waits_for_the_process_rendering_the_same_form(
    app: Flask, renders: Counted, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.config["SELFCHECK_LANGUAGES"] = ("fr",)
    cache.mkdir()
    path = path_of(app, cache)
    other = held(path)
    slept: list[float] = []

    def another_process_stores_it(seconds: float) -> None:  # while the request waits
        slept.append(seconds)
        if len(slept) == 3:
            blank_cache.store(cache, path, b"%PDF-1.7\n% by the filler\n%%EOF\n")

    monkeypatch.setattr(blank_cache.time, "sleep", another_process_stores_it)
    assert blank(app, cache) == b"%PDF-1.7\n% by the filler\n%%EOF\n"
    assert renders.calls == [] and len(slept) == 3  # waited, did not render it too
    other.close()


def test_a_request_renders_itself_when_the_other_process_takes_too_long(
    app: Flask, renders: Counted, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.config["SELFCHECK_LANGUAGES"] = ("fr",)
    cache.mkdir()
    other = held(path_of(app, cache))
    monkeypatch.setattr(blank_cache, "WAIT_FOR_OTHER", 0.2)
    monkeypatch.setattr(blank_cache, "POLL_EVERY", 0.01)
    data = blank(app, cache)
    assert len(renders.calls) == 1 and [p.read_bytes() for p in files(cache)] == [data]
    other.close()
    assert blank(app, cache) == data and len(renders.calls) == 1


def test_the_filler_leaves_a_form_being_rendered_to_its_process(
    app: Flask, renders: Counted, cache: Path
) -> None:
    app.config["SELFCHECK_LANGUAGES"] = ("fr",)
    cache.mkdir()
    path = path_of(app, cache)
    other = held(path)
    with app.app_context():
        done = blank_cache.prefill(app, SITE, cache)
    expected = len(FormKind) * len(Wording) * 2
    assert done.rendered == len(renders.calls) == expected - 1 and not path.exists()
    other.close()
    # lock files are removed by whoever rendered: only the one still held was left
    assert [p.name for p in cache.glob(".*" + blank_cache.LOCK_SUFFIX)] == [
        blank_cache._lock_path(path).name
    ]
