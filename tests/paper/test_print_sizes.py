"""Every character of every paper form, read back from the PDF with its size (pdfminer.six):
standard print at least 11 pt (grid headings and page margins included), large print 16 pt,
easy-read print 14 pt, for every form kind, in French and in Arabic (right to left).

pdfminer gives each character's size after the text and page matrices, independently of
pypdf's text extraction (tests/pdf_support.text_runs), so nothing drawn escapes the check.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from pdfminer.high_level import extract_pages
from pdfminer.layout import LTChar, LTContainer, LTItem

from selfcheck.paper import operations as paper
from selfcheck.questionnaire.model import Definition, FormKind, Wording
from tests.pdf_support import text

# PDFs through the real renderer; the app's database is incidental (tests/database_use.py).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.one_database(
        reason="blank forms rendered from the item bank, read back with pdfminer: no query"
    ),
]

CODE = "K7M2QX9RV"


@dataclass(frozen=True)
class Variant:
    name: str
    wording: Wording
    large: bool
    minimum: float


VARIANTS = (
    Variant("standard", Wording.STANDARD, False, 11),
    Variant("large", Wording.STANDARD, True, 16),
    Variant("easy", Wording.EASY, False, 14),
    Variant("easy-large", Wording.EASY, True, 16),
)
_PDFS: dict[tuple[str, FormKind, str, bool], bytes] = {}


def render(app: Flask, variant: Variant, form: FormKind, lang: str, coded: bool = True) -> bytes:
    key = (variant.name, form, lang, coded)
    if key not in _PDFS:
        with app.app_context():
            copy = paper.Copy(form, lang, CODE if coded else None)
            _PDFS[key] = paper.renderer(app, variant.wording).questionnaires(
                [copy], large=variant.large, site_url="https://selfcheck.example/code"
            )
    return _PDFS[key]


def characters(pdf: bytes) -> Iterator[LTChar]:
    def walk(node: LTItem) -> Iterator[LTChar]:
        if isinstance(node, LTChar):
            yield node
        elif isinstance(node, LTContainer):
            for child in node:
                yield from walk(child)

    for page in extract_pages(io.BytesIO(pdf)):
        yield from walk(page)


def sizes(pdf: bytes) -> Counter[tuple[float, str]]:
    """(size in points, font) of every visible character."""
    return Counter(
        (round(char.size, 2), char.fontname.split("+")[-1])
        for char in characters(pdf)
        if char.get_text().strip()
    )


@pytest.mark.parametrize("lang", ["fr", "ar"])
@pytest.mark.parametrize("form", list(FormKind))
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_no_character_is_smaller_than_the_variant_allows(
    app: Flask, variant: Variant, form: FormKind, lang: str
) -> None:
    found = sizes(render(app, variant, form, lang))
    assert sum(found.values()) > 1000  # a whole form was read, not an empty page
    too_small = {key: count for key, count in found.items() if key[0] < variant.minimum - 0.01}
    assert too_small == {}, f"characters under {variant.minimum} pt: {too_small}"


@pytest.mark.parametrize("variant", VARIANTS[:3], ids=lambda v: v.name)
def test_a_blank_form_too(app: Flask, variant: Variant) -> None:
    """The header of a form without a code has boxes to write one, and a label."""
    found = sizes(render(app, variant, FormKind.BEFORE, "fr", coded=False))
    assert min(size for size, _font in found) >= variant.minimum


@pytest.mark.parametrize("form", list(FormKind))
def test_easy_read_print_has_no_italics_and_no_conditional_instruction(
    app: Flask, definition: Definition, form: FormKind
) -> None:
    easy = VARIANTS[2]
    pdf = render(app, easy, form, "fr")
    fonts = {font for _size, font in sizes(pdf)}
    assert not [font for font in fonts if "Oblique" in font or "Italic" in font]
    content = text(pdf)
    assert "Si vous avez coché" not in content and "➔" not in content
    # the conditional questions are asked all the same, unconditionally
    easy_definition = definition.in_wording(Wording.EASY)
    for item in easy_definition.items(form):
        if item.show_if is not None:
            assert item.label.replace("\xa0", " ").split(" ")[0] in content, item.code


def test_standard_print_still_says_when_a_question_applies(app: Flask) -> None:
    assert "Si vous avez coché" in text(render(app, VARIANTS[0], FormKind.AFTER, "fr"))


@pytest.mark.parametrize("variant", VARIANTS[:3], ids=lambda v: v.name)
def test_no_item_code_is_printed_for_the_respondent(
    app: Flask, definition: Definition, variant: Variant
) -> None:
    """The typist finds a question by its number, the one the entry screen shows."""
    words = set(text(render(app, variant, FormKind.RETRO, "fr")).replace(".", " ").split())
    codes = {item.code for item in definition.items()} | {
        variable.code for variable in definition.variables(FormKind.RETRO)
    }
    assert words & codes == set()


def test_grid_headings_are_short_and_fall_back_to_the_full_label(
    app: Flask, definition: Definition
) -> None:
    """A language without a translation of the short heading gets its full label translated."""
    from flask_babel import force_locale, gettext

    task = definition.task_items()[0]
    shortened = [o for o in task.options if o.label_short is not None]
    assert shortened
    renderer = paper.renderer(app)
    with app.app_context():
        with force_locale("fr"):  # the reference language: the short wording itself
            for option in shortened:
                assert option.label_short is not None
                assert renderer.heading(option) == renderer.translator.gettext(option.label_short)
        for lang in ("en", "ar"):
            with force_locale(lang):
                for option in shortened:
                    short = option.label_short
                    assert short is not None
                    translated_short = gettext(short)
                    expected = (
                        translated_short if translated_short != short else gettext(option.label)
                    )
                    assert renderer.heading(option) == expected
