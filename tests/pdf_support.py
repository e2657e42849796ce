"""Open generated PDFs the way a reader would: text, pages, tags, fonts, sizes, QR codes."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pypdf
import pypdfium2 as pdfium
import zxingcpp


def reader(pdf: bytes) -> pypdf.PdfReader:
    assert pdf.startswith(b"%PDF-"), pdf[:20]
    return pypdf.PdfReader(io.BytesIO(pdf))


def flat(text: str) -> str:
    """Whitespace (line breaks, no-break spaces of French typography) as single spaces, and
    a word broken after its hyphen at the end of a line ("rendez-\nvous") joined again."""
    spaced = re.sub(r"\s+", " ", text.replace("\xa0", " ").replace("\u202f", " ")).strip()
    return re.sub(r"(?<=\w)- (?=\w)", "-", spaced)


def page_texts(pdf: bytes) -> list[str]:
    return [flat(page.extract_text() or "") for page in reader(pdf).pages]


def text(pdf: bytes) -> str:
    return " ".join(page_texts(pdf))


def page_count(pdf: bytes) -> int:
    return len(reader(pdf).pages)


@dataclass(frozen=True)
class Run:
    """A piece of text drawn at a size (points, after the text and page matrices)."""

    text: str
    size: float


def text_runs(pdf: bytes) -> list[Run]:
    runs: list[Run] = []
    for page in reader(pdf).pages:

        def visit(content: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
            if content.strip():
                scale = math.hypot(tm[0], tm[1]) * math.hypot(cm[0], cm[1])
                runs.append(Run(content.strip(), round(size * scale, 2)))

        page.extract_text(visitor_text=visit)
    return runs


def structure(pdf: bytes) -> dict[str, Any]:
    """What PDF/UA needs at the document level: tags, marked content, language, title."""
    document = reader(pdf)
    root = document.trailer["/Root"]
    mark_info = root.get("/MarkInfo")
    preferences = root.get("/ViewerPreferences")
    return {
        "struct_tree": "/StructTreeRoot" in root,
        "marked": bool(mark_info and mark_info.get("/Marked")),
        "lang": str(root.get("/Lang", "")),
        "title": str((document.metadata or {}).get("/Title", "")),
        "display_title": bool(preferences and preferences.get("/DisplayDocTitle")),
        "tags": sorted(_tags(root["/StructTreeRoot"])) if "/StructTreeRoot" in root else [],
        "figures": _alt_texts(root["/StructTreeRoot"]) if "/StructTreeRoot" in root else [],
    }


def _alt_texts(node: Any, depth: int = 0) -> list[str]:
    """Alternative texts of the Figure elements (QR code, chart), in document order."""
    node = node.get_object()
    if depth > 40 or not isinstance(node, pypdf.generic.DictionaryObject):
        return []
    found = [str(node.get("/Alt", ""))] if node.get("/S") == "/Figure" else []
    kids = node.get("/K")
    items = kids if isinstance(kids, pypdf.generic.ArrayObject) else [kids]
    for kid in items:
        if isinstance(kid, pypdf.generic.IndirectObject | pypdf.generic.DictionaryObject):
            found += _alt_texts(kid, depth + 1)
    return found


def _tags(node: Any, depth: int = 0) -> set[str]:
    """Structure types used in the tag tree (H1, Table, Figure, L, LI…), a few levels deep."""
    found: set[str] = set()
    node = node.get_object()
    if depth > 12:
        return found
    if isinstance(node, pypdf.generic.DictionaryObject):
        if "/S" in node:
            found.add(str(node["/S"]).lstrip("/"))
        kids = node.get("/K")
        if kids is not None:
            items = kids if isinstance(kids, pypdf.generic.ArrayObject) else [kids]
            for kid in items:
                if isinstance(kid, pypdf.generic.IndirectObject | pypdf.generic.DictionaryObject):
                    found |= _tags(kid, depth + 1)
    return found


def fonts(pdf: bytes) -> Iterator[tuple[str, bool]]:
    """(font name, embedded?) for every font used on every page."""
    for page in reader(pdf).pages:
        resources = page.get("/Resources")
        if resources is None or "/Font" not in resources:
            continue
        for font in resources["/Font"].values():
            font = font.get_object()
            described = font
            if "/DescendantFonts" in font:
                described = font["/DescendantFonts"][0].get_object()
            descriptor = described.get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor is not None else {}
            embedded = any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3"))
            yield str(font.get("/BaseFont", "?")), embedded


def page_image(pdf: bytes, page_index: int = 0, scale: float = 2.0) -> Any:
    """A page as a PIL image, rendered at scale x 72 dpi by PDFium (Chrome's PDF engine)."""
    document = pdfium.PdfDocument(pdf)
    try:
        page = document[page_index]
        try:
            bitmap = page.render(scale=scale)
            try:
                return bitmap.to_pil()
            finally:
                bitmap.close()
        finally:
            page.close()
    finally:
        document.close()


def qr_codes(pdf: bytes, page_index: int = 0, scale: float = 2.0) -> list[str]:
    """QR codes found on a page rendered at scale x 72 dpi, as a phone camera would see it."""
    image = page_image(pdf, page_index, scale)
    return [
        result.text
        for result in zxingcpp.read_barcodes(image)
        if result.format == zxingcpp.BarcodeFormat.QRCode
    ]
