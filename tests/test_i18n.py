"""Four languages and more: the default set, missing catalogs, names, right-to-left pages,
locale formats, and "a new language is a catalog plus one line of config"."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from markupsafe import Markup

from selfcheck.platform.config import ConfigError, Settings
from selfcheck.platform.i18n import NATIVE_NAMES, format_list, language_name, missing_catalogs
from selfcheck.platform.models import Structure
from tests.i18n_support import ARABIC, write_catalog
from tests.support import Visitor, html_lang, text_of, words

CSS = Path(__file__).resolve().parent.parent / "selfcheck" / "static" / "css" / "selfcheck.css"


def test_four_languages_by_default(tmp_path: Path) -> None:
    assert Settings.from_env(tmp_path).languages == ("fr", "en", "es", "ar")
    assert set(NATIVE_NAMES) >= {"fr", "en", "es", "ar"}


def test_the_switcher_names_each_language_in_itself_with_its_direction(app: Flask) -> None:
    html = text_of(app.test_client().get("/"))
    for code, direction in (("fr", "ltr"), ("en", "ltr"), ("es", "ltr"), ("ar", "rtl")):
        link = f'href="?lang={code}" lang="{code}" dir="{direction}" hreflang="{code}"'
        assert link in html
        assert NATIVE_NAMES[code] in html


@pytest.mark.parametrize(
    ("code", "name"), [("ar", "العربية"), ("de", "Deutsch"), ("pt_BR", "Português (Brasil)")]
)
def test_language_names_come_from_cldr_when_not_listed(code: str, name: str) -> None:
    assert language_name(code) == name


@pytest.mark.parametrize(
    ("code", "three", "two", "open_ended"),
    [
        ("fr", "a, b et c", "a et b", "a, b"),
        ("en", "a, b, and c", "a and b", "a, b"),
        ("es", "a, b y c", "a y b", "a, b"),
        ("ar", "a وb وc", "a وb", "a وb"),  # CLDR's Arabic list: « و », no Latin comma
        ("xx", "a, b et c", "a et b", "a, b"),  # unknown to CLDR: French, the reference
    ],
)
def test_lists_are_joined_as_each_language_joins_them(
    code: str, three: str, two: str, open_ended: str
) -> None:
    assert format_list(["a", "b", "c"], code) == three
    assert format_list(["a", "b"], code) == two
    assert format_list(["a", "b"], code, open_ended=True) == open_ended
    assert format_list(["a"], code) == "a" and format_list([], code) == ""


def test_a_joined_list_escapes_text_and_keeps_markup() -> None:
    joined = format_list(["<b>", Markup("<code>T01</code>")], "fr", open_ended=True)
    assert isinstance(joined, Markup)
    assert joined == "&lt;b&gt;, <code>T01</code>"


def test_an_unknown_code_is_shown_as_is_and_refused_in_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert language_name("xx") == "xx"
    monkeypatch.setenv("SELFCHECK_LANGUAGES", "fr,xx")
    with pytest.raises(ConfigError, match="xx is not a language code"):
        Settings.from_env(tmp_path)


def test_a_language_without_catalog_shows_french_without_error(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    empty = tmp_path / "no-catalogs"
    empty.mkdir()
    assert missing_catalogs(("fr", "es", "ar"), empty) == ["es", "ar"]
    client = make_app(BABEL_TRANSLATION_DIRECTORIES=str(empty)).test_client()
    for code in ("es", "ar"):
        page = client.get(f"/?lang={code}")
        assert page.status_code == 200
        assert html_lang(text_of(page))[0] == code
        assert "Mon parcours numérique" in words(page)  # the French msgid


def test_a_new_language_is_a_catalog_and_one_line_of_config(
    make_app: Callable[..., Flask], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_catalog(tmp_path / "catalogs", "de", {"Mon parcours numérique": "Mein Weg"})
    monkeypatch.setenv("SELFCHECK_LANGUAGES", "fr,de")
    client = make_app(BABEL_TRANSLATION_DIRECTORIES=str(folder)).test_client()
    page = client.get("/?lang=de")
    assert page.status_code == 200
    assert html_lang(text_of(page)) == ("de", "ltr")
    assert "Mein Weg" in words(page)
    assert 'lang="de" dir="ltr" hreflang="de"' in text_of(page) and "Deutsch" in words(page)


def test_arabic_pages_read_right_to_left(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    folder = write_catalog(tmp_path / "catalogs", "ar", ARABIC)
    client = make_app(BABEL_TRANSLATION_DIRECTORIES=str(folder)).test_client()
    page = client.get("/?lang=ar")
    assert html_lang(text_of(page)) == ("ar", "rtl")
    assert ARABIC["Mon parcours numérique"] in words(page)


def _rules(css: str) -> str:
    return re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)


def test_the_stylesheet_uses_logical_properties_only() -> None:
    """Physical sides do not mirror in right-to-left pages: inline-start/end do."""
    css = _rules(CSS.read_text(encoding="utf-8"))
    physical = re.findall(
        r"[\w-]*(?<![\w-])(?:margin|padding|border|inset)-(?:left|right)[\w-]*"
        r"|(?<![\w-])(?:left|right)\s*:"
        r"|(?:float|clear|text-align)\s*:\s*(?:left|right)",
        css,
    )
    assert physical == []


def test_a_code_in_a_heading_moves_whole_to_the_next_line() -> None:
    """At 320 px the Arabic heading "الشخص TQK-ECG-S4T" broke the code after its second
    dash (round 23): a heading's isolated code is an inline block (whole, or wrapped inside
    itself only when wider than the line)."""
    css = _rules(CSS.read_text(encoding="utf-8"))
    assert re.search(r":is\(h1, h2, h3\) bdi \{\s*display: inline-block; \}", css)


def test_codes_and_keys_stay_left_to_right_in_arabic() -> None:
    """In right-to-left text, "056-KMV-SKY" is drawn "KMV-SKY-056" unless isolated: every
    place that shows a code, a recovery code or the key to type is isolated left to right."""
    css = _rules(CSS.read_text(encoding="utf-8"))
    rule = re.search(r"([^{}]*)\{\s*direction: ltr; unicode-bidi: isolate; \}", css)
    assert rule is not None
    isolated = {part.strip() for part in rule.group(1).split(",")}
    for shown in (".code-box__code", ".code-reminder__code", ".input--code", ".code-link"):
        assert f'[dir="rtl"] {shown}' in isolated
    assert '[dir="rtl"] .secret-text' in isolated
    assert '[dir="rtl"] .recovery-codes code' in isolated


def test_the_summary_chart_mirrors_in_arabic(
    make_app: Callable[..., Flask], tmp_path: Path, structure: Structure
) -> None:
    folder = write_catalog(tmp_path / "catalogs", "ar", ARABIC)
    visitor = Visitor(make_app(BABEL_TRANSLATION_DIRECTORIES=str(folder)).test_client())
    visitor.complete(structure.slug)
    page = visitor.get("/summary?lang=ar")
    assert page.status_code == 200
    html = visitor.html
    assert html_lang(html) == ("ar", "rtl")
    bars = re.findall(r'class="chart__now" x="([\d.]+)" y="0" width="([\d.]+)"', html)
    assert bars and any(float(width) for _, width in bars)
    # Bars grow from the right: each one ends at the right edge of its 300-wide box.
    assert all(abs(float(x) + float(width) - 300) < 0.2 for x, width in bars)
    assert ARABIC["Utiliser mon appareil et me connecter"] in html


def test_the_summary_chart_reads_left_to_right_in_french(
    visitor: Visitor, structure: Structure
) -> None:
    visitor.complete(structure.slug)
    visitor.get("/summary")
    bars = re.findall(r'class="chart__now" x="([\d.]+)" y="0" width="([\d.]+)"', visitor.html)
    assert bars and all(x == "0" for x, _ in bars)
    assert "<text" not in visitor.html  # chart text is HTML: it wraps and is never clipped
