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
from flask_babel import force_locale

from selfcheck.evaluation import codebook
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


@pytest.mark.slow  # a WeasyPrint rendering (about 3 s on the shared machine)
def test_the_arabic_codebook_pdf_reads_right_to_left(app: Flask, definition: Definition) -> None:
    with app.test_request_context("/"):
        book = _book(definition)
        # Two columns with values: enough for the tables, a page or two to render.
        book.columns = [entry for entry in book.columns if entry.values][:2]
        with force_locale("ar"):
            pdf = codebook._render_pdf(codebook._plain(book))
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
