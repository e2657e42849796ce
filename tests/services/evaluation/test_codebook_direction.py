"""The codebook in a right-to-left language (Arabic): the page and its tables mirror, each
question reads in its own language's direction, and codes, values and names stay left to right.

Before: the Arabic codebook PDF kept its columns left to right, every paragraph left to right
(an Arabic question's brackets and question mark misplaced), and the missing values drawn
"8-", "*.data" and "a." for "-8", "data.*" and ".a". WeasyPrint applies `direction` (from
`dir`) but not `unicode-bidi`, so the PDF isolates codes in the text itself (U+2066 … U+2069);
a browser isolates the page's `<code>` by the stylesheet.
"""

from __future__ import annotations

import re
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from flask import Flask
from flask_babel import force_locale, gettext

from selfcheck.evaluation import bundle, codebook
from selfcheck.evaluation.export import Shape
from selfcheck.questionnaire.model import Definition

LRI, PDI = "\u2066", "\u2069"
CSS = Path(codebook.__file__).resolve().parent.parent / "static" / "css" / "selfcheck.css"


def _book(definition: Definition) -> codebook.Codebook:
    return codebook.build(definition, Shape.WIDE, False)


def test_missing_values_keep_stata_codes_left_to_right_in_arabic_only(app: Flask) -> None:
    with app.test_request_context("/"), force_locale("ar"):
        plain = codebook.missing_rows()
        shown = codebook.missing_rows("rtl")
    assert [code for code, _ in shown] == [code for code, _ in plain]
    assert not any(LRI in meaning for _, meaning in plain)
    assert f"{LRI}.a{PDI}" in shown[1][1] and f"{LRI}.b{PDI}" in shown[2][1]
    # Nothing else is touched ("«.»" in the first row is not a Stata code with a letter).
    assert [m.replace(LRI, "").replace(PDI, "") for _, m in shown] == [m for _, m in plain]


def test_the_arabic_codebook_is_right_to_left_with_codes_isolated(
    app: Flask, definition: Definition
) -> None:
    with app.test_request_context("/"):
        book = _book(definition)
        with force_locale("ar"):
            arabic = codebook.html(codebook.for_data_file(book, "data.csv", "csv"))
        with force_locale("fr"):
            french = codebook.html(book)
    assert '<html lang="ar" dir="rtl">' in arabic
    assert '<html lang="fr" dir="ltr">' in french
    # Each question in its own language's direction, in both.
    for html in (arabic, french):
        assert '<p lang="ar" dir="rtl">' in html and '<p lang="fr" dir="ltr">' in html
    # Variable names, values and missing codes isolated left to right in Arabic only.
    named = next(entry for entry in book.columns if entry.values)
    assert f"<code>{LRI}{named.name}{PDI}</code>" in arabic
    assert f"<code>{LRI}-8{PDI}</code>" in arabic
    assert f"<dd>{LRI}data.csv{PDI}</dd>" in arabic
    assert LRI not in french and f"<code>{named.name}</code>" in french
    # The page number reads "1 / 48" at the bottom left, not "48 / 1".
    assert '@bottom-left { content: "\\2066" counter(page)' in arabic
    assert "@bottom-left" not in french


def test_the_origin_column_joins_as_the_language_does(app: Flask, definition: Definition) -> None:
    """An item and its option were joined by a Latin comma in Arabic too ("DEVICES, الخيار
    tablette"): now the language's own list joining (CLDR through Babel, `format_list`)."""
    with app.test_request_context("/"):
        book = _book(definition)
        entry = next(e for e in book.columns if e.item and e.option)
        with force_locale("ar"):
            arabic = codebook.html(book)
            option = gettext("option")
        with force_locale("fr"):
            french = codebook.html(book)
    item, value = f"<code>{LRI}{entry.item}{PDI}</code>", f"<code>{LRI}{entry.option}{PDI}</code>"
    assert f"{item} و{option} {value}" in arabic
    assert f"<code>{entry.item}</code>, option <code>{entry.option}</code>" in french  # as before
    # No Latin comma in the Arabic text (the questions in the other languages keep theirs).
    page = re.sub(r"<style.*?</style>", "", arabic, flags=re.S)
    page = re.sub(r'<p lang="(fr|en|es)"[^>]*>.*?</p>', "", page, flags=re.S)
    assert "," not in re.sub(r"<[^>]+>", "", page)


REPORT = {
    "k": 5,
    "people_in_scope": 10,
    "people_exported": 9,
    "people_left_out": 1,
    "people_with_demographic_masked": 2,
    "focus": "DEVICES",
    "columns": [
        {"column": "gender", "constant": False, "masked_share": 0.1, "level": "raw"},
        {"column": "before_version", "constant": True},
    ],
    "shares": {
        "gender": [
            {"category": "feminin", "true_share": 75.2, "released_share": 76.0, "shift": -0.8}
        ]
    },
    "shares_compared": 9,
}


def test_the_anonymisation_report_isolates_names_and_shifts_in_arabic(app: Flask) -> None:
    """On the demo's export page in Arabic, "gender = feminin: 75.2 % ..." drew its percent
    sign before the column's name: a line starting with a left-to-right name took the Arabic
    sentence's figures into its run. Names, categories and signed shifts are isolated (round
    23), in a right-to-left language only."""
    with app.test_request_context("/"):
        with force_locale("ar"):
            arabic = bundle.report_lines(REPORT)
        with force_locale("fr"):
            french = bundle.report_lines(REPORT)
    assert len(arabic) == len(french)
    assert not any(LRI in line or PDI in line for line in french)
    said = "\n".join(arabic)
    for code in ("gender", "before_version", "feminin", "-0.8", "DEVICES"):
        assert f"{LRI}{code}{PDI}" in said, code
    assert "gender = feminin : 75.2 % en vrai, 76.0 % publié (écart -0.8 points)." in french


def test_the_codebook_page_isolates_codes_in_arabic(app: Flask) -> None:
    """On screen the stylesheet isolates the tables' codes (no invisible characters to copy)."""
    css = CSS.read_text(encoding="utf-8")
    rule = re.search(r"([^{}]*)\{\s*direction: ltr; unicode-bidi: isolate; \}", css)
    assert rule is not None
    isolated = {part.strip() for part in rule.group(1).split(",")}
    assert {'[dir="rtl"] .codebook code', '[dir="rtl"] .codebook-missing code'} <= isolated


def _chars(pdf: bytes, page_index: int = 0) -> list[tuple[str, float, float]]:
    """Each character drawn on a page: itself, its left edge and its bottom (PDF points)."""
    document = pdfium.PdfDocument(pdf)
    try:
        text_page = document[page_index].get_textpage()
        found = []
        for index in range(text_page.count_chars()):
            char = text_page.get_text_range(index, 1)
            left, bottom, _right, _top = text_page.get_charbox(index, loose=True)
            found.append((char, left, bottom))
        return found
    finally:
        document.close()


def _pages(pdf: bytes) -> int:
    document = pdfium.PdfDocument(pdf)
    try:
        return len(document)
    finally:
        document.close()


def _arabic(msgid: str) -> str:
    with force_locale("ar"):
        return gettext(msgid)


@pytest.mark.slow  # a WeasyPrint rendering (about 3 s on the shared machine)
def test_the_arabic_codebook_pdf_reads_right_to_left(app: Flask, definition: Definition) -> None:
    with app.test_request_context("/"):
        book = _book(definition)
        # Two columns with values: enough for the tables, a page or two to render; and a
        # multiple choice's option, whose "Origine" names its item and option.
        option = next(entry for entry in book.columns if entry.item and entry.option)
        book.columns = [*[entry for entry in book.columns if entry.values][:2], option]
        with force_locale("ar"):
            pdf = codebook._render_pdf(codebook._plain(book))
        option_word = _arabic("option")
    chars = _chars(pdf)
    # "-8" (no answer) is drawn with its minus sign on the left of the 8, on every line.
    eights = [(x, y) for char, x, y in chars if char == "8"]
    minus = [(x, y) for char, x, y in chars if char == "-"]
    pairs = [
        (mx, ex)
        for ex, ey in eights
        for mx, my in minus
        if abs(my - ey) < 1 and abs(mx - ex) < 12  # the same line, side by side
    ]
    assert pairs and all(mx < ex for mx, ex in pairs), pairs
    # The table's first column (the variable's name) is on the right: the first name drawn
    # starts right of the middle of the landscape page.
    name = book.columns[0].name
    text = "".join(char for char, _, _ in chars)
    at = text.find(name)
    assert at >= 0 and chars[at][0] == name[0]
    width = 841.89
    assert chars[at][1] > width / 2, chars[at]
    # The option's "Origine" joined the Arabic way (« و »), with no Latin comma anywhere.
    every = "".join(char for page in range(_pages(pdf)) for char, _, _ in _chars(pdf, page))
    assert "," not in every
    assert "و" + option_word in every.replace(" ", "")
