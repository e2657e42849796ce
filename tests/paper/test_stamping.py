"""Coded batches made by stamping one blank form (paper/stamping.py).

Read back the way tests/services/test_paper.py and test_pdf_accessibility.py read the forms
WeasyPrint makes: the code is text on every page, the QR code decodes, the PDF stays tagged
and passes the same accessibility checks, and each copy is a copy of its own.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pikepdf
import pytest
from flask import Flask

from selfcheck.paper import operations as paper
from selfcheck.paper import stamping
from selfcheck.platform import codes
from selfcheck.questionnaire.model import Definition, FormKind
from tests.pdf_support import fonts, page_count, page_texts, qr_codes, reader, text_runs
from tests.pdf_support import structure as pdf_structure
from tests.services.test_pdf_accessibility import accessibility_problems

# The app's database is incidental: run on the SQLite pass only (tests/database_use.py).
pytestmark = pytest.mark.one_database(
    reason="stamps codes onto a blank form rendered from the item bank: no query"
)

SITE = "https://selfcheck.example/code"
QR_TITLE = "Code personnel : %(code)s"
RAW_CODES = ("K7M2QX9RV", "A2B3C4D5E", "Z9Y8X7W6V")
LARGE_PRINT_MIN = 16.0

_TEMPLATES: dict[tuple[FormKind, str, bool], stamping.Template] = {}
_PDFS: dict[tuple[object, ...], bytes] = {}


def valid(raw: str) -> str:
    """A well-formed code (its check character fixed) from nine characters."""
    body = raw[: codes.CODE_LENGTH - 1]
    for check in codes.ALPHABET:
        try:
            return codes.normalise(body + check)
        except codes.InvalidCode:
            continue
    raise AssertionError(raw)


CODES: tuple[str, ...] = tuple(valid(code) for code in RAW_CODES)


@pytest.fixture
def template(app: Flask) -> Iterator[Any]:
    """template(form, lang, large) -> the parsed blank (rendered once for the module)."""

    def make(form: FormKind = FormKind.BEFORE, lang: str = "fr", large: bool = False) -> Any:
        key = (form, lang, large)
        if key not in _TEMPLATES:
            renderer = paper.renderer(app)
            _TEMPLATES[key] = stamping.render_template(
                renderer, form, lang, large=large, site_url=SITE
            )
        return _TEMPLATES[key]

    with app.app_context():
        yield make


def batch(template: stamping.Template, title: str = "Questionnaire de départ") -> bytes:
    key = (id(template), title)
    if key not in _PDFS:
        _PDFS[key] = stamping.stamp(template, CODES, QR_TITLE, title)
    return _PDFS[key]


def test_each_page_shows_its_copys_code_as_text(template: Any) -> None:
    blank = template()
    pages = len(blank.pages)
    texts = page_texts(batch(blank))
    assert len(texts) == pages * len(CODES)
    for number, code in enumerate(CODES):
        shown = codes.display(code)
        others = [codes.display(c) for c in CODES if c != code]
        for index in range(pages):
            page = texts[number * pages + index]
            assert f"Code : {shown}" in page, (number, index)
            assert not any(other in page for other in others)
        first = texts[number * pages]
        assert f"Votre code personnel {shown}" in first  # the big code, after its label
        assert stamping.MARK not in first


def test_the_qr_code_of_each_copy_decodes_to_its_code(template: Any) -> None:
    blank = template()
    pdf = batch(blank)
    pages = len(blank.pages)
    for number, code in enumerate(CODES):
        assert qr_codes(pdf, number * pages) == [code]
        assert qr_codes(pdf, number * pages + 1) == []  # one QR code per copy


def test_a_stamped_batch_passes_the_accessibility_checks(app: Flask, template: Any) -> None:
    title = "Questionnaire de départ, 3 exemplaires"
    pdf = batch(template(), title)
    assert accessibility_problems(pdf, "fr", title, large=False) == []
    info = pdf_structure(pdf)
    assert info["struct_tree"] and info["marked"] and info["lang"] == "fr"
    assert {"H1", "H2", "Table", "TH", "L", "LI", "Figure"} <= set(info["tags"])
    assert info["figures"] == [QR_TITLE % {"code": codes.spoken(c)} for c in CODES]
    assert [name for name, embedded in fonts(pdf) if not embedded] == []
    assert all("DejaVu" in name for name, _ in fonts(pdf))


def test_large_print_and_another_language_stay_tagged(app: Flask, template: Any) -> None:
    large = template(FormKind.RETRO, "fr", True)
    pdf = stamping.stamp(large, CODES[:1], QR_TITLE, "Questionnaire")
    assert accessibility_problems(pdf, "fr", "Questionnaire", large=False) == []
    item_codes = {item.code for item in app.extensions["selfcheck.definition"].items()}
    small = [r for r in text_runs(pdf) if r.size < LARGE_PRINT_MIN and r.text not in item_codes]
    assert small == []
    english = stamping.stamp(template(FormKind.AFTER, "en"), CODES[:1], QR_TITLE, "After")
    assert accessibility_problems(english, "en", "After", large=False) == []
    assert f"Code: {codes.display(CODES[0])}" in page_texts(english)[0].replace(" :", ":")
    assert qr_codes(english, 0) == [CODES[0]]


def test_the_code_is_tagged_where_the_blank_had_its_place(template: Any) -> None:
    """The big code is in the marked content of the panel's paragraph, the QR code a Figure
    in the same panel, first; the header's code stays what the blank's header is."""
    document = reader(batch(template()))
    root = document.trailer["/Root"]["/StructTreeRoot"]
    parents = root["/ParentTree"]["/Nums"]
    first_page = document.pages[0]
    key = first_page["/StructParents"]
    array = next(parents[i + 1] for i in range(0, len(parents), 2) if parents[i] == key)
    array = array.get_object()
    reference = array.get_object()[len(array) - 1]
    figure = reference.get_object()
    assert figure["/S"] == "/Figure"
    panel = figure["/P"].get_object()
    assert panel["/K"][0].idnum == reference.idnum  # the QR code is read first in the panel
    kids = [kid.get_object() for kid in panel["/K"]]
    labels = [kid for kid in kids if kid.get("/S") == "/P"]
    assert len(labels) == 2  # "Your personal code", then the code


def test_copies_are_independent(template: Any) -> None:
    """Each copy has its own pages, tag elements and parent-tree entries; one PDF per copy
    holds the same as the batch, copy by copy."""
    blank = template()
    pages = len(blank.pages)
    pdf = pikepdf.open(io.BytesIO(batch(blank)))
    document = pdf.Root.StructTreeRoot.K
    copies = list(document.K)
    per_copy = len(copies) // len(CODES)
    assert per_copy * len(CODES) == len(copies)
    page_ids = [page.obj.objgen for page in pdf.pages]
    assert len(set(page_ids)) == len(page_ids)
    seen: set[tuple[int, int]] = set()
    for number in range(len(CODES)):
        mine = set(page_ids[number * pages : (number + 1) * pages])
        elements: set[tuple[int, int]] = set()
        stack = list(copies[number * per_copy : (number + 1) * per_copy])
        while stack:
            element = stack.pop()
            elements.add(element.objgen)
            if "/Pg" in element:
                assert element.Pg.objgen in mine
            kids = element.get("/K")
            items = list(kids) if isinstance(kids, pikepdf.Array) else [kids]
            stack += [k for k in items if isinstance(k, pikepdf.Dictionary) and "/S" in k]
        assert not elements & seen
        seen |= elements
    singles = stamping.stamp_each(blank, CODES, QR_TITLE, "Q")
    batch_texts = page_texts(batch(blank))
    for number, single in enumerate(singles):
        assert page_count(single) == pages
        assert page_texts(single) == batch_texts[number * pages : (number + 1) * pages]
        assert qr_codes(single, 0) == [CODES[number]]
        assert accessibility_problems(single, "fr", "Q", large=False) == []


def test_a_stamped_copy_reads_like_the_copy_weasyprint_makes(
    app: Flask, template: Any, definition: Definition
) -> None:
    """Same pages, same words on each page as the renderer's own coded copy."""
    stamped = page_texts(stamping.stamp(template(), CODES[:1], QR_TITLE, "Q"))
    rendered = page_texts(
        paper.renderer(app).questionnaires(
            [paper.Copy(FormKind.BEFORE, "fr", CODES[0])], site_url=SITE
        )
    )
    assert len(stamped) == len(rendered)
    for ours, theirs in zip(stamped, rendered, strict=True):
        assert Counter(ours.split()) == Counter(theirs.split())


def test_a_form_without_placeholders_is_refused(app: Flask, template: Any) -> None:
    plain = paper.renderer(app).questionnaires([paper.Copy(FormKind.BEFORE, "fr", None)])
    with pytest.raises(stamping.StampError):
        stamping.parse_blank(plain, stamping.QrBox(0, 0, 0, 10))
    with pytest.raises(stamping.StampError):
        stamping.stamp(template(), [], QR_TITLE)


def test_a_right_to_left_form_is_stamped_in_place(app: Flask, template: Any) -> None:
    """Arabic: the header's code sits left of its label, the QR code above the code (the
    QR's placeholder box is laid out off-centre there; the QR follows the code instead)."""
    arabic = template(FormKind.BEFORE, "ar")
    pdf = stamping.stamp(arabic, CODES[:1], QR_TITLE, "T")
    assert accessibility_problems(pdf, "ar", "T", large=False) == []
    assert all(codes.display(CODES[0]) in page for page in page_texts(pdf))
    assert qr_codes(pdf, 0) == [CODES[0]]
    code_cut = next(cut for cut in arabic.pages[0].cuts if cut.kind is stamping.Stamp.CODE)
    assert abs(arabic.qr.x + arabic.qr.size / 2 - code_cut.x) < 0.01


def test_the_header_code_is_a_pagination_artifact(template: Any) -> None:
    """Repeated on every page for the typist, the header's code is marked as an artifact;
    the code that is read is the one in the first page's panel, tagged."""
    blank = template()
    pdf = pikepdf.open(io.BytesIO(batch(blank)))
    shown = codes.display(CODES[1]).encode()
    page = pdf.pages[len(blank.pages) + 1]  # second page of the second copy
    inside: list[str] = []
    found = []
    for operands, operator in pikepdf.parse_content_stream(page):
        if str(operator) in ("BDC", "BMC"):
            inside.append(str(operands[0]))
        elif str(operator) == "EMC":
            inside.pop()
        elif str(operator) == "Tj" and bytes(operands[0]) == shown:
            found.append(list(inside))
    assert found == [["/Artifact"]]


def test_structure_ids_are_not_repeated_across_copies(template: Any) -> None:
    """Table headings carry IDs that the cells' /Headers name: unique per copy, and each
    cell still names headings that exist."""
    pdf = pikepdf.open(io.BytesIO(batch(template())))
    ids: list[bytes] = []
    named: set[bytes] = set()
    stack = [pdf.Root.StructTreeRoot.K]
    while stack:
        element = stack.pop()
        if "/ID" in element:
            ids.append(bytes(element.ID))
        attributes = element.get("/A")
        for entry in list(attributes) if isinstance(attributes, pikepdf.Array) else [attributes]:
            if isinstance(entry, pikepdf.Dictionary) and "/Headers" in entry:
                named |= {bytes(header) for header in entry.Headers}
        kids = element.get("/K")
        items = list(kids) if isinstance(kids, pikepdf.Array) else [kids]
        stack += [k for k in items if isinstance(k, pikepdf.Dictionary) and "/S" in k]
    assert ids and len(ids) == len(set(ids))
    assert named and named <= set(ids)
