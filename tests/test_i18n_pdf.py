"""Paper forms and summary PDFs in every configured language, Arabic right-to-left included.

Until the real Arabic catalog arrives, a tiny one (tests/i18n_support.ARABIC) puts Arabic text
in the PDFs: enough to check language, direction, shaping and the embedded font.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from selfcheck.journey import operations as journey
from selfcheck.journey import summary
from selfcheck.paper import operations as paper
from selfcheck.platform.i18n import TRANSLATIONS_DIR
from selfcheck.platform.models import Beneficiary, Structure
from selfcheck.questionnaire.model import Definition, FormKind
from tests.i18n_support import ARABIC, write_catalog
from tests.pdf_support import flat, fonts, text
from tests.pdf_support import structure as pdf_structure
from tests.support import AFTER, BEFORE, fill_and_submit, submitted

pytestmark = pytest.mark.slow  # scripts/test --fast leaves it out (docs/testing.md)

CODE = "K7M2QX9RV"
# Arabic letters, as extracted (base block) or as shaped presentation forms.
ARABIC_TEXT = re.compile(r"[\u0600-\u06ff\ufb50-\ufdff\ufe70-\ufeff]")


@pytest.fixture
def arabic_app(make_app: Callable[..., Flask], tmp_path: Path) -> Flask:
    """The app with a small Arabic catalog first, then the real catalogs."""
    folder = write_catalog(tmp_path / "catalogs", "ar", ARABIC)
    return make_app(BABEL_TRANSLATION_DIRECTORIES=f"{folder};{TRANSLATIONS_DIR}")


@pytest.fixture
def followed(db_session: Session, definition: Definition, structure: Structure) -> Beneficiary:
    before = submitted(db_session, definition, structure, FormKind.BEFORE, BEFORE)
    person = before.beneficiary
    after = journey.start_after(db_session, definition, person, "ar")
    db_session.commit()
    fill_and_submit(db_session, definition, after, AFTER)
    db_session.refresh(person)
    return person


@pytest.mark.parametrize("lang", ["fr", "en", "es", "ar"])
def test_a_paper_form_in_every_language(app: Flask, lang: str) -> None:
    assert lang in app.config["SELFCHECK_LANGUAGES"]
    with app.app_context():
        pdf = paper.renderer(app).questionnaires([paper.Copy(FormKind.BEFORE, lang, CODE)])
    info = pdf_structure(pdf)
    assert info["lang"] == lang and info["struct_tree"]
    assert all(embedded for _, embedded in fonts(pdf))


def test_an_arabic_form_is_arabic_right_to_left_with_an_embedded_font(
    arabic_app: Flask,
) -> None:
    renderer = paper.renderer(arabic_app)
    with arabic_app.app_context():
        pdf = renderer.questionnaires([paper.Copy(FormKind.BEFORE, "ar", CODE)])
        html = renderer.env.get_template("questionnaires.html").render(
            lang="ar", title="", bodies="", shapes=[], large=False, easy=False, duplex=False
        )
    assert '<html lang="ar" dir="rtl">' in html
    content = text(pdf)
    assert ARABIC_TEXT.search(content), content[:200]
    assert "K7M-2QX-9RV" in content  # the code stays left-to-right and readable
    info = pdf_structure(pdf)
    assert info["lang"] == "ar"
    assert ARABIC_TEXT.search(info["title"])
    used = list(fonts(pdf))
    assert used and all(embedded for _, embedded in used)
    assert all("DejaVu" in name for name, _ in used)  # DejaVu Sans covers basic Arabic


def test_an_arabic_summary_is_arabic_right_to_left(
    arabic_app: Flask, definition: Definition, followed: Beneficiary
) -> None:
    result = summary.build_summary(definition, followed)
    assert result is not None
    renderer = paper.renderer(arabic_app)
    with arabic_app.app_context():
        pdf = renderer.summary(result, followed.code, "ar")
    content = text(pdf)
    assert ARABIC_TEXT.search(content)
    info = pdf_structure(pdf)
    assert info["lang"] == "ar" and ARABIC_TEXT.search(info["title"])
    assert all(embedded for _, embedded in fonts(pdf))


def test_the_summary_chart_mirrors_in_right_to_left(
    arabic_app: Flask, definition: Definition, followed: Beneficiary
) -> None:
    """WeasyPrint lays out SVG text without bidi or shaping: the summary's chart is HTML text
    above plain boxes, laid out right to left in Arabic."""
    result = summary.build_summary(definition, followed)
    assert result is not None
    renderer = paper.renderer(arabic_app)
    with arabic_app.app_context():
        from flask_babel import force_locale

        with force_locale("ar"):
            html = renderer.env.get_template("summary.html").render(
                summary=result,
                code=followed.code,
                qr="",
                lang="ar",
                dir="rtl",
                large=False,
                site_url=None,
                today="",
                page_before="",
                page_middle="",
                page_after="",
            )
    assert '<html lang="ar" dir="rtl">' in html
    # Boxes, not an SVG (WeasyPrint would tag it as a figure without text); they start from
    # the page's direction, right in Arabic.
    assert '<ul class="rungs">' in html and "<svg" not in html
    bar = result.bars[0]
    assert f'class="rungs__fill" style="width: {round(100 * bar.share_now, 1)}%"' in html
    assert "@top-right" in html and "margin: 17mm 24mm 17mm 14mm" in html


def test_a_paper_form_in_the_easy_read_wording(app: Flask, definition: Definition) -> None:
    easy = definition.in_wording("easy")
    with app.app_context():
        pdf = paper.renderer(app, easy.wording).questionnaires(
            [paper.Copy(FormKind.BEFORE, "fr", CODE)]
        )
    content = text(pdf)
    assert easy.titles[FormKind.BEFORE] in content
    assert flat(easy.item("ASSIST").label) in content
    assert flat(definition.item("ASSIST").label) not in content
    assert paper.renderer(app) is not paper.renderer(app, easy.wording)


def test_the_site_address_stays_whole_and_left_to_right_on_paper(app: Flask) -> None:
    """In Arabic, an address with digits was drawn scrambled ("http://" at the end of a line,
    "code/127.0.0.1:5000" on the next): on paper it is on one line, isolated left to right,
    on the form and on the summary."""
    renderer = paper.renderer(app)
    with app.app_context():
        macros = renderer.env.get_template("macros.html").module
        shown = str(macros.address("http://127.0.0.1:5000/code"))  # type: ignore[attr-defined]
    assert shown == '<span class="address">\u2066http://127.0.0.1:5000/code\u2069</span>'
    folder = Path(paper.__file__).parent / "templates"
    assert ".address { white-space: nowrap; }" in (folder / "print.css").read_text("utf-8")
    for name in ("form.html", "summary.html"):
        template = (folder / name).read_text("utf-8")
        assert "m.address(site_url)" in template and "site=site_url" not in template


def test_a_code_is_isolated_left_to_right_on_an_arabic_form_only() -> None:
    """The page header's "Code : 056-KMV-SKY" drew the code reversed (KMV-SKY-056) in Arabic:
    a copy's code is isolated left to right in a right-to-left form; French is unchanged."""
    body = f"<p>{paper._CODE}</p>"
    arabic = paper._Shape(FormKind.AFTER, "ar", True, body=body, names=("a", "b"))
    french = paper._Shape(FormKind.AFTER, "fr", True, body=body, names=("a", "b"))
    assert paper._fill(arabic, "056KMVSKY", 0) == "<p>\u2066056-KMV-SKY\u2069</p>"
    assert paper._fill(french, "056KMVSKY", 0) == "<p>056-KMV-SKY</p>"


def test_the_come_back_card_keeps_its_code_and_link_left_to_right(app: Flask) -> None:
    """The card a person keeps for months: in Arabic its code "056-KMV-SKY" was drawn
    "KMV-SKY-056" and its link scrambled over two lines; both are now left-to-right blocks."""
    renderer = paper.renderer(app)
    with app.test_request_context("/"):
        html = renderer.env.get_template("come_back_card.html").render(
            code="056KMVSKY", qr="", come_back="", link="http://127.0.0.1:5000/s/demo",
            structure_name=None, lang="ar", dir="rtl", large=False,
        )  # fmt: skip
        pdf = renderer.come_back_card("056KMVSKY", date(2027, 3, 5), "http://x.test/s/1", "ar")
    assert ".card__code, .card__address { direction: ltr; unicode-bidi: isolate; }" in html
    assert '<p class="card__code">056-KMV-SKY</p>' in html
    assert '<p class="card__address"><span class="card__link">http://127.0.0.1:5000/s/demo<' in html
    assert "056-KMV-SKY" in text(pdf) and pdf_structure(pdf)["lang"] == "ar"
    # The start-link poster in a right-to-left first language: its link reads the same way.
    poster = (Path(paper.__file__).parent / "templates" / "poster.html").read_text("utf-8")
    rule = next(line for line in poster.splitlines() if line.startswith(".poster__link {"))
    assert rule.endswith(" direction: ltr; }")
