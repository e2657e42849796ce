"""Coded batches: render a blank form once, then stamp each copy's code and QR code.

WeasyPrint costs about 0.5 s per form, whatever the code printed on it. A coded batch is
therefore rendered once per (form, language, wording, print size) as a *blank* with
placeholders (`BLANK_CODE`, `BLANK_MARGIN`, an empty QR box), and each copy is made from that
blank by editing its page contents with pikepdf (qpdf), a few milliseconds per copy.

The blank's contract (see `blank_html`):

- the big code of the first page is a text run made of `MARK` followed by figure spaces: the
  run is cut out of the copy and the code drawn instead, centred on the same spot, inside the
  same marked-content sequence, so the code is real text tagged as the paragraph the blank
  had there (the `P` after "Your personal code");
- the code in the page header (every page) follows a label ("Code :") and a run of figure
  spaces: the code is drawn right after the label, just after the header's marked content,
  as a pagination artifact (`/Artifact <</Type /Pagination /Subtype /Header>>`). It is
  repeated decoration for the typist: the code is read once, as real content, in the first
  page's panel. (WeasyPrint leaves its own margin texts, the label included, as marked
  content outside the tag tree: tests/services/test_pdf_accessibility.py allows that gap.)
  An artifact is still text: it is selectable and extracted with the page;
- the QR code goes into a box whose size and top the renderer gives (`QrBox`, from
  WeasyPrint's layout), centred over the code: it is drawn as vector squares in its own
  marked content, tagged as a `Figure` with an alternative text and a bounding box, first in
  the panel that holds the code in the structure tree.

Not yet wired into the print views (services/paper.py, to become paper/operations.py): the
blank is built from the renderer's private pieces (`blank_html`), and the placeholders are
substituted there rather than in the templates, which this change does not touch.

Each copy gets its own pages and its own structure elements (a copy of the blank's tag tree,
made by qpdf), while the blank's fonts, images and page contents are shared by every copy:
a batch of 200 five-page forms is one tagged PDF of 1,000 pages (`stamp`), or 200 PDFs
(`stamp_each`). The stamped code uses DejaVu Sans (Mono) Bold, embedded as a subset of the
code alphabet, like every other font of the form.
"""

from __future__ import annotations

import enum
import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pikepdf
import segno
from fontTools import subset  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

from selfcheck.platform import codes, printing

MARK = "\u2800"  # braille blank: a glyph that is drawn (unlike spaces) and shows nothing
FIGURE_SPACE = "\u2007"  # as wide as a digit; never collapsed by CSS
BLANK_CODE = MARK + FIGURE_SPACE * 10  # the big code's placeholder (about a code's width)
BLANK_MARGIN = FIGURE_SPACE * 12  # after the header's label, room for the code
MIN_RUN = 8  # a run of this many identical glyphs is a placeholder, not text
LETTER_SPACING_MM = 0.5  # .code-panel__code { letter-spacing } of the print stylesheet
PX_PER_MM = 96 / 25.4  # WeasyPrint draws in CSS pixels
QR_BORDER = 4  # quiet zone, in modules (as paper.qr_svg)
CODE_CHARACTERS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ-"

FONT_FILES = {"mono": "DejaVuSansMono-Bold.ttf", "sans": "DejaVuSans-Bold.ttf"}
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
FONT_RESOURCES = {"mono": pikepdf.Name("/SCStampMono"), "sans": pikepdf.Name("/SCStampSans")}


class StampError(ValueError):
    """The blank does not have the placeholders a coded copy needs."""


@dataclass(frozen=True)
class QrBox:
    """Where the QR code goes: page index, top-left corner and side, in CSS pixels."""

    page: int
    x: float
    y: float
    size: float


class Stamp(enum.Enum):
    """What a cut of the blank's content is replaced by in each copy."""

    QR = enum.auto()  # the QR code, over the code
    CODE = enum.auto()  # the code, large, in the panel
    MARGIN = enum.auto()  # the code after the label of each page's header


@dataclass(frozen=True)
class _Cut:
    """Operators [start, end) of a page's content replaced by a copy's stamp of `kind`."""

    start: int
    end: int
    kind: Stamp
    x: float = 0.0  # where the code starts (left), in the blank's drawing space
    y: float = 0.0  # its baseline
    size: float = 0.0
    centre: bool = False


@dataclass
class _PageTemplate:
    segments: list[bytes]  # the blank's content between the cuts
    cuts: list[_Cut]
    next_mcid: int  # first marked-content id free on this page


@dataclass
class Template:
    """A blank form parsed once: its pages cut around the placeholders."""

    pdf: bytes
    pages: list[_PageTemplate]
    qr: QrBox
    panel_mcid: int  # the marked content that holds the big code (page of the QR box)
    skeleton: bytes = b""  # the tag tree and empty page objects alone (see `_skeleton`)
    kid_count: int = 0  # top-level structure elements of one copy
    id_count: int = 0  # elements with an /ID, then elements with /Headers (renamed per copy)
    headers_count: int = 0


# --- fonts -----------------------------------------------------------------------------------


@functools.cache
def _font_file(kind: str) -> Path:
    name = FONT_FILES[kind]
    for directory in FONT_DIRS:
        if directory.is_dir():
            for found in directory.rglob(name):
                return found
    raise StampError(f"font {name} not found in {', '.join(map(str, FONT_DIRS))}")


@dataclass(frozen=True)
class _Font:
    program: bytes  # TrueType subset: the code alphabet only
    widths: dict[str, float]  # per character, in thousandths of the font size
    base_name: str
    bbox: tuple[int, int, int, int]
    ascent: int
    descent: int
    cap_height: int


@functools.cache
def _font(kind: str) -> _Font:
    """DejaVu (Mono) Bold cut down to the characters of a code, with their widths."""
    path = _font_file(kind)
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.recalc_bounds = True
    options.drop_tables += ["FFTM"]
    font = TTFont(str(path))
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=CODE_CHARACTERS)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    scale = 1000 / font["head"].unitsPerEm
    cmap = font.getBestCmap()
    widths = {ch: font["hmtx"][cmap[ord(ch)]][0] * scale for ch in CODE_CHARACTERS}
    head, os2 = font["head"], font["OS/2"]
    base = font["name"].getDebugName(6) or path.stem
    return _Font(
        program=out.getvalue(),
        widths=widths,
        base_name="SCSTMP+" + base,
        bbox=(
            round(head.xMin * scale),
            round(head.yMin * scale),
            round(head.xMax * scale),
            round(head.yMax * scale),
        ),
        ascent=round(os2.sTypoAscender * scale),
        descent=round(os2.sTypoDescender * scale),
        cap_height=round(getattr(os2, "sCapHeight", 700) * scale) or 700,
    )


def text_width(kind: str, text: str, size: float, spacing: float = 0.0) -> float:
    widths = _font(kind).widths
    return sum(widths[ch] for ch in text) * size / 1000 + spacing * max(len(text) - 1, 0)


def _embed_font(pdf: pikepdf.Pdf, kind: str) -> pikepdf.Object:
    font = _font(kind)
    first, last = ord("-"), ord("Z")
    widths = [font.widths.get(chr(c), 0) for c in range(first, last + 1)]
    descriptor = pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor,
        FontName=pikepdf.Name("/" + font.base_name),
        Flags=32 | (1 if kind == "mono" else 0),  # non-symbolic (and fixed pitch)
        FontBBox=list(font.bbox),
        ItalicAngle=0,
        Ascent=font.ascent,
        Descent=font.descent,
        CapHeight=font.cap_height,
        StemV=120,
        FontFile2=pdf.make_stream(font.program),
    )
    return pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.TrueType,
            BaseFont=pikepdf.Name("/" + font.base_name),
            FirstChar=first,
            LastChar=last,
            Widths=widths,
            Encoding=pikepdf.Name.WinAnsiEncoding,
            FontDescriptor=pdf.make_indirect(descriptor),
        )
    )


# --- reading the blank ---------------------------------------------------------------------


def _glyph_widths(font: pikepdf.Object) -> tuple[dict[int, float], float]:
    """A Type0 (CID) font's glyph widths (/W) and default width (/DW)."""
    descendant = font.DescendantFonts[0]
    widths: dict[int, float] = {}
    spec = list(descendant.get("/W", []))
    index = 0
    while index < len(spec):
        first = int(spec[index])
        following = spec[index + 1]
        if isinstance(following, pikepdf.Array):
            for offset, width in enumerate(following):
                widths[first + offset] = float(width)
            index += 2
        else:
            for cid in range(first, int(following) + 1):
                widths[cid] = float(spec[index + 2])
            index += 3
    return widths, float(descendant.get("/DW", 1000))


@dataclass
class _Run:
    """A TJ/Tj of the blank: its glyphs, where each starts, and where it is in the stream."""

    bt: int  # operator index of its BT
    et: int  # of its ET
    bdc: int  # of the BDC of the marked content around it (-1: none)
    mcid: int | None
    x: float
    y: float
    size: float
    glyphs: list[int]
    offsets: list[float]  # x of each glyph from x
    advance: float  # the run's whole width


def _runs(page: pikepdf.Page, operations: list[Any]) -> list[_Run]:
    fonts = page.obj.Resources.get("/Font", pikepdf.Dictionary())
    metrics: dict[str, tuple[dict[int, float], float]] = {}
    runs: list[_Run] = []
    marked: list[tuple[int, int | None]] = []
    bt = -1
    x = y = size = 0.0
    font_name = ""
    for index, (operands, operator) in enumerate(operations):
        op = str(operator)
        if op in ("BDC", "BMC"):
            mcid = None
            if op == "BDC" and isinstance(operands[1], pikepdf.Dictionary):
                found = operands[1].get("/MCID")
                mcid = int(found) if found is not None else None
            marked.append((index, mcid))
        elif op == "EMC" and marked:
            marked.pop()
        elif op == "BT":
            bt = index
        elif op == "Tm":
            x, y = float(operands[4]), float(operands[5])
        elif op == "Tf":
            font_name, size = str(operands[0]), float(operands[1])
        elif op == "TJ" and font_name in fonts and "/DescendantFonts" in fonts[font_name]:
            if font_name not in metrics:
                metrics[font_name] = _glyph_widths(fonts[font_name])
            widths, default = metrics[font_name]
            glyphs: list[int] = []
            offsets: list[float] = []
            position = 0.0
            for element in operands[0]:
                if isinstance(element, pikepdf.String):
                    raw = bytes(element)
                    for i in range(0, len(raw) - 1, 2):
                        glyph = int.from_bytes(raw[i : i + 2], "big")
                        glyphs.append(glyph)
                        offsets.append(position)
                        position += widths.get(glyph, default) * size / 1000
                else:
                    position -= float(element) * size / 1000
            end = index + 1
            while end < len(operations) and str(operations[end][1]) != "ET":
                end += 1
            bdc, mcid = marked[-1] if marked else (-1, None)
            runs.append(_Run(bt, end, bdc, mcid, x, y, size, glyphs, offsets, position))
    return runs


def _end_of_marked_content(operations: list[Any], run: _Run) -> int:
    """The EMC closing the marked content around `run` (its ET if there is none)."""
    if run.bdc < 0:
        return run.et
    depth = 0
    for index in range(run.bdc, len(operations)):
        operator = str(operations[index][1])
        if operator in ("BDC", "BMC"):
            depth += 1
        elif operator == "EMC":
            depth -= 1
            if depth == 0:
                return index
    raise StampError("unbalanced marked content in the blank")


def _placeholder(run: _Run) -> tuple[int, int] | None:
    """(first glyph, length) of a run of MIN_RUN or more identical glyphs, if any."""
    best: tuple[int, int] | None = None
    start = 0
    for index in range(1, len(run.glyphs) + 1):
        if index == len(run.glyphs) or run.glyphs[index] != run.glyphs[start]:
            if index - start >= MIN_RUN and (best is None or index - start > best[1]):
                best = (start, index - start)
            start = index
    return best


def parse_blank(pdf: bytes, qr: QrBox) -> Template:
    """Find the placeholders of a blank form and cut its pages around them (once per blank)."""
    blank = pikepdf.open(io.BytesIO(pdf))
    pages: list[_PageTemplate] = []
    panel_mcid: int | None = None
    parent_tree = _parent_tree(blank)
    for number, page in enumerate(blank.pages):
        operations = list(pikepdf.parse_content_stream(page))
        cuts: list[_Cut] = []
        for run in _runs(page, operations):
            found = _placeholder(run)
            if found is None:
                continue
            first, length = found
            if first == 1 and length == len(run.glyphs) - 1:  # MARK + figure spaces: the code
                if run.bdc < 0 or run.mcid is None or panel_mcid is not None or number != qr.page:
                    raise StampError("the code's placeholder is not where a code can be tagged")
                panel_mcid = run.mcid
                centre = run.x + run.advance / 2
                # The QR code is centred over the code, as in the panel WeasyPrint lays out
                # (its placeholder box is misplaced sideways in right-to-left pages).
                qr = QrBox(qr.page, centre - qr.size / 2, qr.y, qr.size)
                cuts.append(_Cut(run.bdc, run.bdc, Stamp.QR))
                cuts.append(_Cut(run.bt, run.et + 1, Stamp.CODE, centre, run.y, run.size, True))
            else:  # label + figure spaces: the header's code, after the label
                x = run.x + run.offsets[first]
                after = _end_of_marked_content(operations, run) + 1
                cuts.append(_Cut(after, after, Stamp.MARGIN, x, run.y, run.size))
        cuts.sort(key=lambda cut: (cut.start, cut.kind is not Stamp.QR))
        segments: list[bytes] = []
        position = 0
        for cut in cuts:
            segments.append(
                pikepdf.unparse_content_stream(operations[position : cut.start]) + b"\n"
            )
            position = cut.end
        segments.append(pikepdf.unparse_content_stream(operations[position:]) + b"\n")
        key = int(page.obj.get("/StructParents", -1))
        pages.append(_PageTemplate(segments, cuts, len(parent_tree.get(key, []))))
    if panel_mcid is None:
        raise StampError("the blank has no placeholder for the code")
    skeleton, counts = _skeleton(pdf)
    return Template(pdf, pages, qr, panel_mcid, skeleton, *counts)


SKELETON_KEY = pikepdf.Name("/SCCopy")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, pikepdf.Array) else [value]


def _top_elements(root: pikepdf.Object) -> list[pikepdf.Object]:
    """The elements under the blank's Document element (or the root's, if it has none)."""
    kids = _as_list(root.get("/K"))
    if len(kids) == 1 and kids[0].get("/S") == "/Document":
        kids = _as_list(kids[0].get("/K"))
    return kids


def _skeleton(pdf: bytes, collapse: bool = True) -> tuple[bytes, tuple[int, int, int]]:
    """A small PDF holding what each copy needs its own of: the blank's structure elements
    (without their parent), its page objects emptied (the copy fills them), and the arrays of
    the parent tree, in page order. Opening it and letting qpdf copy it is the fast way to
    duplicate a tag tree (a few thousand objects) with every reference kept right."""
    source = pikepdf.open(io.BytesIO(pdf))
    kids = _top_elements(source.Root.StructTreeRoot)
    trees = _parent_tree(source)
    pages = [page.obj for page in source.pages]
    arrays = []
    for page in pages:
        key = int(page.get("/StructParents", -1))
        arrays.append(trees.get(key, pikepdf.Array()))
        for name in list(page.keys()):
            del page[name]
    for kid in kids:
        if "/P" in kid:
            del kid["/P"]
    _drop_unreferenced_ids(kids)
    if collapse:
        _collapse_spans(
            kids, {page.objgen: array for page, array in zip(pages, arrays, strict=True)}
        )
    skeleton = pikepdf.new()
    with_id, with_headers = _identified(kids)
    parts = source.make_indirect(pikepdf.Array([*kids, *pages, *arrays, *with_id, *with_headers]))
    skeleton.Root[SKELETON_KEY] = skeleton.copy_foreign(parts)
    buffer = io.BytesIO()
    skeleton.save(
        buffer, compress_streams=False, object_stream_mode=pikepdf.ObjectStreamMode.disable
    )
    return buffer.getvalue(), (len(kids), len(with_id), len(with_headers))


def _identified(kids: list[pikepdf.Object]) -> tuple[list[pikepdf.Object], list[pikepdf.Object]]:
    """Elements with an /ID (table headings), and elements whose /Headers name them."""
    with_id: list[pikepdf.Object] = []
    with_headers: list[pikepdf.Object] = []
    stack = list(kids)
    while stack:
        element = stack.pop()
        if "/ID" in element:
            with_id.append(element)
        if any(
            isinstance(attributes, pikepdf.Dictionary) and "/Headers" in attributes
            for attributes in _as_list(element.get("/A"))
        ):
            with_headers.append(element)
        stack += [
            item
            for item in _as_list(element.get("/K"))
            if isinstance(item, pikepdf.Dictionary) and "/S" in item
        ]
    return with_id, with_headers


def _rename_ids(copied: pikepdf.Object, start: int, template: Template, suffix: bytes) -> None:
    """Structure IDs are unique in a document: each copy's get a suffix, and so do the
    /Headers that name them."""
    for i in range(start, start + template.id_count):
        element = copied[i]
        element.ID = pikepdf.String(bytes(element.ID) + suffix)
    start += template.id_count
    for i in range(start, start + template.headers_count):
        element = copied[i]
        renamed = []
        for attributes in _as_list(element.get("/A")):
            if isinstance(attributes, pikepdf.Dictionary) and "/Headers" in attributes:
                headers = [pikepdf.String(bytes(h) + suffix) for h in _as_list(attributes.Headers)]
                attributes = pikepdf.Dictionary(
                    {str(key): attributes[key] for key in attributes.keys()}  # noqa: SIM118
                )
                attributes.Headers = pikepdf.Array(headers)
            renamed.append(attributes)
        element.A = renamed[0] if len(renamed) == 1 else pikepdf.Array(renamed)


PLAIN_SPAN_KEYS = {"/Type", "/S", "/P", "/K", "/Pg"}


def _drop_unreferenced_ids(kids: list[pikepdf.Object]) -> None:
    """Remove the /ID of elements no /Headers attribute refers to (WeasyPrint gives every
    table heading one): an ID must be unique in the document, and each copy would repeat
    it. IDs that are referred to are kept (then repeated per copy: not seen so far)."""
    elements: list[pikepdf.Object] = []
    referred: set[bytes] = set()
    stack = list(kids)
    while stack:
        element = stack.pop()
        elements.append(element)
        for attributes in _as_list(element.get("/A")):
            if isinstance(attributes, pikepdf.Dictionary) and "/Headers" in attributes:
                referred |= {bytes(header) for header in _as_list(attributes.Headers)}
        stack += [
            item
            for item in _as_list(element.get("/K"))
            if isinstance(item, pikepdf.Dictionary) and "/S" in item
        ]
    for element in elements:
        if "/ID" in element and bytes(element.ID) not in referred:
            del element["/ID"]


def _single_mcid(value: Any) -> int | None:
    """The marked-content id of a /K that is one integer, or an array of just one."""
    if isinstance(value, pikepdf.Array) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, pikepdf.Object) and value._type_code == pikepdf.ObjectType.integer:
        return int(value)
    return None


def _collapse_spans(
    kids: list[pikepdf.Object], arrays: dict[tuple[int, int], pikepdf.Object]
) -> None:
    """Fold each Span that only wraps one marked content of its parent's page into that
    parent (WeasyPrint wraps every text run of a paragraph in one): the same content in the
    same reading order, a third fewer objects to copy per copy. Spans with attributes, a
    language, an alternative text or several kids are kept."""
    stack = list(kids)
    while stack:
        element = stack.pop()
        page = element.get("/Pg")
        items = _as_list(element.get("/K"))
        folded: list[Any] = []
        changed = False
        for item in items:
            if isinstance(item, pikepdf.Dictionary) and "/S" in item:
                mcid = _single_mcid(item.get("/K"))
                if (
                    item.S == "/Span"
                    and set(item.keys()) <= PLAIN_SPAN_KEYS
                    and mcid is not None
                    and page is not None
                    and item.get("/Pg") is not None
                    and item.Pg.objgen == page.objgen
                    and page.objgen in arrays
                ):
                    arrays[page.objgen][mcid] = element
                    folded.append(mcid)
                    changed = True
                    continue
                stack.append(item)
            folded.append(item)
        if changed:
            element.K = folded[0] if len(folded) == 1 else pikepdf.Array(folded)


def _parent_tree(pdf: pikepdf.Pdf) -> dict[int, pikepdf.Object]:
    """StructParents key -> array of structure elements by MCID (a flat /Nums tree)."""
    root = pdf.Root.StructTreeRoot
    found: dict[int, pikepdf.Object] = {}

    def visit(node: pikepdf.Object) -> None:
        nums = node.get("/Nums")
        if nums is not None:
            for i in range(0, len(nums), 2):
                found[int(nums[i])] = nums[i + 1]
        for kid in node.get("/Kids", []):
            visit(kid)

    visit(root.ParentTree)
    return found


# --- stamping --------------------------------------------------------------------------------


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def _text(kind: str, cut: _Cut, shown: str, spacing: float) -> bytes:
    width = text_width(kind, shown, cut.size, spacing)
    x = cut.x - width / 2 if cut.centre else cut.x
    # WeasyPrint draws in CSS pixels, y downwards: the text matrix flips the glyphs back.
    return (
        f"q BT 0 0 0 rg {FONT_RESOURCES[kind]} {cut.size:.3f} Tf {spacing:.4f} Tc "
        f"1 0 0 -1 {x:.3f} {cut.y:.3f} Tm {_pdf_string(shown)} Tj ET Q\n"
    ).encode("ascii")


def _qr(code: str, box: QrBox, mcid: int) -> bytes:
    """The QR code as filled squares (runs of dark modules per row), tagged as a Figure."""
    matrix = segno.make(code, error="m", micro=False).matrix
    modules = len(matrix) + 2 * QR_BORDER
    unit = box.size / modules
    rects: list[str] = []
    for row, line in enumerate(matrix):
        y = box.y + (row + QR_BORDER) * unit
        column = 0
        while column < len(line):
            if line[column]:
                start = column
                while column < len(line) and line[column]:
                    column += 1
                x = box.x + (start + QR_BORDER) * unit
                rects.append(f"{x:.3f} {y:.3f} {(column - start) * unit:.3f} {unit:.3f} re")
            else:
                column += 1
    body = "\n".join(rects)
    return f"/Figure <</MCID {mcid}>> BDC q 0 0 0 rg\n{body}\nf Q EMC\n".encode("ascii")


@dataclass
class _Shared:
    """What every copy of a batch shares: the blank's page dictionaries and contents."""

    page_keys: list[dict[str, pikepdf.Object]]
    segments: list[list[pikepdf.Object]]


def _prepare(template: Template, title: str | None) -> tuple[pikepdf.Pdf, _Shared]:
    """The output document: the blank's catalogue, fonts and contents, without its pages."""
    out = pikepdf.open(io.BytesIO(template.pdf))
    fonts = {kind: _embed_font(out, kind) for kind in FONT_RESOURCES}
    page_keys: list[dict[str, pikepdf.Object]] = []
    segments: list[list[pikepdf.Object]] = []
    for page, page_template in zip(out.pages, template.pages, strict=True):
        resources = page.obj.Resources
        if "/Font" not in resources:
            resources.Font = pikepdf.Dictionary()
        for kind, font in fonts.items():
            resources.Font[FONT_RESOURCES[kind]] = font
        keep = {
            key: page.obj[key]
            for key in page.obj.keys()  # noqa: SIM118 (pikepdf dictionaries)
            if key not in ("/Contents", "/Parent", "/StructParents", "/Annots")
        }
        keep["/Resources"] = out.make_indirect(resources)
        page_keys.append(keep)
        # The blank's first operators assume the initial graphics state: q ... Q around it.
        # Stamps go between these, in the graphics state the blank has at that point.
        segments.append([out.make_stream(chunk) for chunk in page_template.segments])
    for key in ("/Outlines", "/Names"):  # they point at the blank's pages
        if key in out.Root:
            del out.Root[key]
    del out.pages[:]
    if title is not None:
        out.docinfo[pikepdf.Name.Title] = title
        with out.open_metadata(set_pikepdf_as_editor=False) as meta:
            meta["dc:title"] = title
    return out, _Shared(page_keys, segments)


def stamp(
    template: Template,
    codes: Sequence[str],
    qr_title: str,
    title: str | None = None,
    copied: Callable[[int], None] | None = None,
) -> bytes:
    """One tagged PDF: a copy of the blank per code, in order, each with its code and QR.

    `qr_title` is the QR code's alternative text with `%(code)s` (the code spelt out).
    `copied`, if given, is called with the number of copies made so far after each copy (a
    print batch's progress page: paper/batch.py).
    """
    if not codes:
        raise StampError("no code to stamp")
    out, shared = _prepare(template, title)
    struct_root = out.Root.StructTreeRoot
    document = out.make_indirect(
        pikepdf.Dictionary(Type=pikepdf.Name.StructElem, S=pikepdf.Name.Document, P=struct_root)
    )
    kids = pikepdf.Array()
    nums = pikepdf.Array()
    for done, code in enumerate(codes, start=1):
        _copy(out, template, shared, code, qr_title, document, kids, nums)
        if copied is not None:
            copied(done)
    document.K = kids
    struct_root.K = document
    struct_root.ParentTree = out.make_indirect(pikepdf.Dictionary(Nums=nums))
    struct_root.ParentTreeNextKey = len(nums) // 2
    buffer = io.BytesIO()
    out.save(
        buffer,
        compress_streams=True,
        object_stream_mode=pikepdf.ObjectStreamMode.generate,
    )
    return buffer.getvalue()


def stamp_each(
    template: Template, codes: Sequence[str], qr_title: str, title: str | None = None
) -> list[bytes]:
    """One tagged PDF per code (same copies as `stamp`)."""
    return [stamp(template, [code], qr_title, title) for code in codes]


def _copy(
    out: pikepdf.Pdf,
    template: Template,
    shared: _Shared,
    code: str,
    qr_title: str,
    document: pikepdf.Object,
    kids: pikepdf.Array,
    nums: pikepdf.Array,
) -> None:
    """Append one copy: its pages, its tag tree (the blank's, copied by qpdf) and stamps."""
    skeleton = pikepdf.open(io.BytesIO(template.skeleton))
    copied = out.copy_foreign(skeleton.Root[SKELETON_KEY])
    count, pages = template.kid_count, len(template.pages)
    new_pages = [copied[count + i] for i in range(pages)]
    trees = [copied[count + pages + i] for i in range(pages)]
    for i in range(count):
        kid = copied[i]
        kid.P = document
        kids.append(kid)
    _rename_ids(copied, count + 2 * pages, template, b"~%d" % (len(nums) // 2))
    display = codes.display(code)
    for index, (page, page_template) in enumerate(zip(new_pages, template.pages, strict=True)):
        for key, value in shared.page_keys[index].items():
            page[key] = value
        parents = trees[index]
        if not parents.is_indirect:
            parents = out.make_indirect(parents)
        segments = shared.segments[index]
        contents: list[pikepdf.Object] = [segments[0]]
        for segment, cut in zip(segments[1:], page_template.cuts, strict=True):
            contents.append(out.make_stream(_stamp(cut, display, code, template, page_template)))
            contents.append(segment)
        if index == template.qr.page:
            _tag_qr(out, template, page, parents, page_template.next_mcid, code, qr_title)
        page.Contents = pikepdf.Array(contents)
        page.StructParents = len(nums) // 2
        nums.append(len(nums) // 2)
        nums.append(parents)
        out.pages.append(pikepdf.Page(page))


def _stamp(cut: _Cut, display: str, code: str, template: Template, page: _PageTemplate) -> bytes:
    if cut.kind is Stamp.QR:
        return _qr(code, template.qr, page.next_mcid)
    if cut.kind is Stamp.CODE:
        return _text("mono", cut, display, LETTER_SPACING_MM * PX_PER_MM)
    # Repeated on every page for the typist: a pagination artifact, after the header's
    # marked content (an artifact may not sit inside tagged content).
    return (
        b"/Artifact <</Type /Pagination /Subtype /Header>> BDC\n"
        + _text("sans", cut, display, 0.0)
        + b"EMC\n"
    )


def _tag_qr(
    out: pikepdf.Pdf,
    template: Template,
    page: pikepdf.Object,
    parents: pikepdf.Object,
    mcid: int,
    code: str,
    qr_title: str,
) -> None:
    """The QR code's Figure, first in the panel that holds the code (before its label)."""
    paragraph = parents[template.panel_mcid]
    if paragraph.S == "/Span":  # not folded into its paragraph (see _collapse_spans)
        paragraph = paragraph.P
    panel = paragraph.P
    box = template.qr
    height = float(page.MediaBox[3])
    left, top = box.x * 0.75, height - box.y * 0.75
    figure = out.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.StructElem,
            S=pikepdf.Name.Figure,
            P=panel,
            Pg=page,
            K=mcid,
            Alt=pikepdf.String(qr_title % {"code": codes.spoken(code)}),
            A=pikepdf.Dictionary(
                O=pikepdf.Name.Layout,
                BBox=[left, top - box.size * 0.75, left + box.size * 0.75, top],
            ),
        )
    )
    existing = panel.get("/K")
    items = list(existing) if isinstance(existing, pikepdf.Array) else [existing]
    panel.K = pikepdf.Array([figure, *(item for item in items if item is not None)])
    if len(parents) != mcid:
        raise StampError("the blank's marked-content ids are not numbered from 0")
    parents.append(figure)


# --- the blank, from the paper renderer ------------------------------------------------------

QR_ID = "selfcheck-stamp-qr"
QR_SIDE_MM = {False: 28.0, True: 34.0}  # .code-panel__qr svg in normal and large print


def blank_html(renderer: Any, form: Any, locale: str, large: bool, site_url: str | None) -> str:
    """The coded form of the renderer (services/paper.py) with placeholders for the code.

    Uses the renderer's own form body, page names and footers, so the blank is laid out
    exactly as a coded copy rendered by WeasyPrint (same boxes, same pages).
    """
    from flask_babel import force_locale

    from selfcheck.paper import operations as paper

    shape = paper._Shape(form, locale, True, names=("s0a", "s0b"))
    with force_locale(locale):
        shape.qr_title = renderer._("Code personnel : %(code)s")
    shape.body = renderer._form_body(shape, large, site_url)
    # shape.pages stays 0: a document of one copy counts its own pages (questionnaires.html)
    shape.footer = renderer._footer(shape)
    side = QR_SIDE_MM[large]
    body = shape.body.replace(paper._PAGE_NAME, shape.names[0])
    body = body.replace(
        paper._QR,
        f'<div id="{QR_ID}" style="width: {side}mm; height: {side}mm; margin: 0 auto"></div>',
    )
    head, marker, tail = body.partition('data-code="')
    value, quote, rest = tail.partition('"')
    body = head + marker + value.replace(paper._CODE, BLANK_MARGIN) + quote + rest
    body = body.replace(paper._CODE, BLANK_CODE)
    html: str = renderer._document_html(
        locale, [paper.Copy(form, locale, None)], [body], [shape], large, False
    )
    return html


def render_template(
    renderer: Any, form: Any, locale: str, *, large: bool = False, site_url: str | None = None
) -> Template:
    """Render the blank once (WeasyPrint) and parse it for stamping."""
    with printing.deferred_full_collections():
        document = renderer._document(blank_html(renderer, form, locale, large, site_url))
        pdf = renderer.printer.write(document)
    for number, page in enumerate(document.pages):
        if QR_ID in page.anchors:
            left, top, right, _bottom = page.anchors[QR_ID]  # border box, CSS pixels
            return parse_blank(pdf, QrBox(number, left, top, right - left))
    raise StampError("the blank has no box for the QR code")
