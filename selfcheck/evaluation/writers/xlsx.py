"""XLSX: `StreamingXlsxWriter` (the one used) writes the SpreadsheetML itself, one row of
prepared cells at a time; xlsxwriter in constant-memory mode (`FastXlsxWriter`) and openpyxl's
write-only mode (`XlsxWriter`) are kept as the references the benchmarks compare with. All three
send rows to a temporary file, not to memory. benchmarks/bench_export.py measures them.

openpyxl: text is written as text: every string cell is a `WriteOnlyCell` of data type "s" (openpyxl
would otherwise store a string starting with "=" as a live formula), and a string that a
spreadsheet could still read as a formula gets a leading quote (`neutralised`).
"""

from __future__ import annotations

import math
import re
import tempfile
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import compress
from operator import add
from pathlib import Path
from typing import IO, ClassVar

from selfcheck.evaluation.writers.base import Column, Missing, Row, Value, Writer, neutralised

# Excel refuses cells longer than this.
MAX_CELL = 32767

# xlsxwriter (13 MB of resident memory) and openpyxl (30 MB) are imported when a workbook is
# made, not with the app (docs/performance.md, "Import costs").


class XlsxWriter(Writer):
    extension: ClassVar[str] = "xlsx"
    media_type: ClassVar[str] = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    def __init__(self, path: Path, columns: Sequence[Column], title: str) -> None:
        super().__init__(path, columns, title)
        from openpyxl import Workbook  # type: ignore[import-untyped]
        from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]

        self.cell_class = WriteOnlyCell
        self.workbook = Workbook(write_only=True)
        self.workbook.properties.title = title[:255]
        self.sheet = self.workbook.create_sheet("data")
        self.sheet.append([column.name for column in self.columns])

    def write(self, row: Row) -> None:
        self.sheet.append([self.cell(value) for value in row])
        self.rows += 1

    def cell(self, value: Value) -> object:
        if isinstance(value, Missing):
            return value.value
        if isinstance(value, str):
            return self.text(neutralised(value)[:MAX_CELL])
        return value

    def text(self, value: str) -> object:
        cell = self.cell_class(self.sheet, value=None)
        cell.value = value
        cell.data_type = "s"  # after the value: openpyxl guesses "f" for a leading "="
        return cell

    def close(self) -> None:
        labels = self.workbook.create_sheet("variables")
        labels.append(["name", "label"])
        for column in self.columns:
            labels.append([self.text(column.name), self.text(neutralised(column.label))])
        self.workbook.save(self.path)


class FastXlsxWriter(Writer):
    """XLSX through xlsxwriter in constant-memory mode: each row goes to a temporary file as
    soon as it is written (rows must come in order, which they do), strings inline.

    Strings are always written as strings (`write_string`): never a formula, a number or a
    link, whatever they start with; spreadsheet-risky text still gets its leading quote.
    """

    extension: ClassVar[str] = "xlsx"
    media_type: ClassVar[str] = XlsxWriter.media_type

    def __init__(self, path: Path, columns: Sequence[Column], title: str) -> None:
        super().__init__(path, columns, title)
        import xlsxwriter  # type: ignore[import-untyped]

        self.workbook = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
            },
        )
        self.workbook.set_properties({"title": title[:255]})
        self.sheet = self.workbook.add_worksheet("data")
        for index, column in enumerate(self.columns):
            self.sheet.write_string(0, index, column.name)
        self.rows = 0

    def write(self, row: Row) -> None:
        self.rows += 1
        number = self.sheet.write_number
        string = self.sheet.write_string
        line = self.rows
        for index, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, str):
                string(line, index, neutralised(value)[:MAX_CELL])
            elif isinstance(value, Missing):
                number(line, index, value.value)
            else:
                number(line, index, value)

    def close(self) -> None:
        labels = self.workbook.add_worksheet("variables")
        labels.write_string(0, 0, "name")
        labels.write_string(0, 1, "label")
        for index, column in enumerate(self.columns, start=1):
            labels.write_string(index, 0, column.name)
            labels.write_string(index, 1, neutralised(column.label))
        self.workbook.close()


# The streaming writer -------------------------------------------------------------------------

SHEET_ROWS = 1_048_576  # rows of a worksheet in Excel; more continue on the next sheet
MAX_COLUMNS = 16_384  # columns of a worksheet in Excel (A to XFD)
CACHE_MAX = 4096  # distinct values whose cell is remembered by `StreamingXlsxWriter.prepare`
COPY_CHUNK = 1 << 20
# Deflate level of the parts (benchmarks/bench_xlsx_writers.py --levels; docs/performance.md).
DEFLATE_LEVEL = 1

# What a cell's text cannot hold as it is: the XML's own special characters, the control
# characters XML refuses (written `_xHHHH_`, as Excel writes and reads them back), the two
# non-characters, and a literal `_xHHHH_` (whose underscore is escaped in turn: `_x005F_`).
_SPECIAL = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")
_LITERAL_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]")
# Put where a row's number goes in its cells' references (never left in a cell's text: control
# characters are escaped).
_ROW = "\x00"


def utf16_truncated(text: str, limit: int) -> str:
    """`text` cut to `limit` UTF-16 code units (Excel's measure of a cell's length), without
    splitting a character beyond U+FFFF."""
    if len(text) <= limit // 2:
        return text
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text


def xml_text(text: str) -> str:
    """`text` as the content of a cell's `<t>` element: cut to Excel's cell length, control
    characters written `_xHHHH_` (a literal `_xHHHH_` gets its underscore escaped), `&`, `<`
    and `>` as entities. The same text as xlsxwriter's for an inline string."""
    text = utf16_truncated(text, MAX_CELL)
    if _SPECIAL.search(text) is None:
        return text
    text = _LITERAL_ESCAPE.sub(r"_x005F\1", text)
    text = _CONTROL.sub(lambda found: f"_x{ord(found.group()):04X}_", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def column_letters(index: int) -> str:
    """The letters of the column at `index` (0: A, 25: Z, 26: AA)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _string_cell(text: str) -> str:
    """The end of a text cell (after its reference): always an inline string, never a formula
    or a number, whatever the text looks like."""
    escaped = xml_text(text)
    if escaped[:1].isspace() or escaped[-1:].isspace():
        return f'" t="inlineStr"><is><t xml:space="preserve">{escaped}</t></is></c>'
    return f'" t="inlineStr"><is><t>{escaped}</t></is></c>'


def _number_cell(number: int | float) -> str:
    return f'"><v>{number}</v></c>'


def _xml_attribute(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPES = "application/vnd.openxmlformats-officedocument"
_SHEET_END = (
    '</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3"'
    ' footer="0.3"/></worksheet>'
)
_STYLES = (
    f'{_XML_HEAD}<styleSheet xmlns="{_MAIN}"><fonts count="1"><font><sz val="11"/>'
    '<name val="Calibri"/><family val="2"/></font></fonts><fills count="2"><fill>'
    '<patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    '</fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
    '</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
    '</cellStyleXfs><cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"'
    ' xfId="0"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0"'
    ' builtinId="0"/></cellStyles><dxfs count="0"/><tableStyles count="0"/></styleSheet>'
)
_ROOT_RELS = (
    f'{_XML_HEAD}<Relationships xmlns="{_PACKAGE_RELS}">'
    f'<Relationship Id="rId1" Type="{_RELS}/officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships'
    '/metadata/core-properties" Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{_RELS}/extended-properties" Target="docProps/app.xml"/>'
    "</Relationships>"
)


def _sheet_head(rows: int, columns: int, selected: bool) -> str:
    """A worksheet's XML up to its first row: `rows` x `columns` cells from A1."""
    dimension = f"A1:{column_letters(columns - 1)}{rows}" if rows and columns else "A1"
    view = ' tabSelected="1"' if selected else ""
    return (
        f'{_XML_HEAD}<worksheet xmlns="{_MAIN}" xmlns:r="{_RELS}">'
        f'<dimension ref="{dimension}"/><sheetViews><sheetView{view} workbookViewId="0"/>'
        '</sheetViews><sheetFormatPr defaultRowHeight="15"/><sheetData>'
    )


class _Sheet:
    """One worksheet being written: its rows go to a temporary file (plain XML), copied into
    the workbook's zip once its size (the `dimension`) is known."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        handle, name_on_disk = tempfile.mkstemp(prefix="sheet-", suffix=".xml", dir=folder)
        self.file_path = Path(name_on_disk)
        self.file: IO[str] = open(  # noqa: SIM115 - closed by the writer's `close`
            handle, "w", encoding="utf-8", errors="replace", newline="", buffering=COPY_CHUNK
        )
        self.rows = 0


class StreamingXlsxWriter(Writer):
    """XLSX written directly: SpreadsheetML rows streamed to a temporary file, then the
    workbook's zip made at `close` (the data sheets, the "variables" sheet, the small parts).

    Most of the work is done once per distinct value: `prepare` turns a value into the end of
    its cell (what follows the cell's reference: a number, or an inline string, escaped),
    remembered (up to `CACHE_MAX` distinct values at a time); the export remembers each variable's
    prepared cells too (`export.WideCoder`). A row is then put together in C: each column's
    reference (`<c r="AB`) added to its prepared cell, empty cells left out, the row number put
    in with one `replace`. Strings are always inline strings (never a formula, a number or a
    link) and keep the leading quote of `neutralised`. Memory: one row. Rows beyond Excel's
    1,048,576 go on to a sheet "data_2" (then "data_3"...), which starts with the header again.
    """

    extension: ClassVar[str] = "xlsx"
    media_type: ClassVar[str] = XlsxWriter.media_type
    sheet_rows: ClassVar[int] = SHEET_ROWS

    def __init__(self, path: Path, columns: Sequence[Column], title: str) -> None:
        super().__init__(path, columns, title)
        if len(self.columns) > MAX_COLUMNS:
            raise ValueError(f"{len(self.columns)} columns: an XLSX sheet holds {MAX_COLUMNS}")
        self.starts = tuple(f'<c r="{column_letters(i)}{_ROW}' for i in range(len(self.columns)))
        self.cache: dict[object, str] = {}
        self.header = [_string_cell(column.name) for column in self.columns]
        self.sheets: list[_Sheet] = []
        self._new_sheet()

    def _new_sheet(self) -> None:
        number = len(self.sheets) + 1
        self.sheet = _Sheet("data" if number == 1 else f"data_{number}", self.path.parent)
        self.sheets.append(self.sheet)
        self.file = self.sheet.file
        self.line = 0  # rows written on this sheet, the header included
        self._row(self.header)

    def prepare(self, value: Value) -> str:
        """The end of `value`'s cell after its reference; "" for no cell (None)."""
        cell = self.cache.get(value)
        if cell is not None:
            return cell
        if value is None:
            return ""
        if isinstance(value, str):
            cell = _string_cell(neutralised(value))
        elif isinstance(value, Missing):
            cell = _number_cell(value.value)
        elif isinstance(value, float) and not math.isfinite(value):
            cell = _string_cell(str(value))
        else:
            # A bool is written as the number it is (xlsxwriter's write_number did the same).
            cell = _number_cell(int(value) if isinstance(value, int) else value)
        if len(self.cache) >= CACHE_MAX:
            # Unique values (pseudonyms, free text) would fill it for good: start again, and
            # the frequent values come back at once.
            self.cache.clear()
        self.cache[value] = cell
        return cell

    def write(self, row: Row) -> None:
        prepare = self.prepare
        self.write_prepared([prepare(value) for value in row])

    def write_prepared(self, row: Sequence[object]) -> None:
        if self.line == self.sheet_rows:
            self.sheet.rows = self.line
            self._new_sheet()
        self._row(row)  # type: ignore[arg-type]  # prepared cells are strings
        self.rows += 1

    def _row(self, cells: Sequence[str]) -> None:
        self.line += 1
        number = str(self.line)
        self.file.write(
            f'<row r="{number}">'
            + "".join(compress(map(add, self.starts, cells), cells)).replace(_ROW, number)
            + "</row>"
        )

    def close(self) -> None:
        self.sheet.rows = self.line
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        names = [sheet.name for sheet in self.sheets] + ["variables"]
        try:
            for sheet in self.sheets:
                sheet.file.close()
            with zipfile.ZipFile(
                self.path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=DEFLATE_LEVEL
            ) as book:
                book.writestr("[Content_Types].xml", _content_types(len(names)))
                book.writestr("_rels/.rels", _ROOT_RELS)
                book.writestr("docProps/app.xml", _app(names))
                book.writestr("docProps/core.xml", _core(self.title[:255], now))
                book.writestr("xl/workbook.xml", _workbook(names))
                book.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(names)))
                book.writestr("xl/styles.xml", _STYLES)
                for number, sheet in enumerate(self.sheets, start=1):
                    self._copy(book, number, sheet)
                book.writestr(f"xl/worksheets/sheet{len(names)}.xml", self._variables())
        finally:
            for sheet in self.sheets:
                sheet.file.close()
                sheet.file_path.unlink(missing_ok=True)

    def _copy(self, book: zipfile.ZipFile, number: int, sheet: _Sheet) -> None:
        head = _sheet_head(sheet.rows, len(self.columns), selected=number == 1).encode()
        tail = _SHEET_END.encode()
        size = len(head) + sheet.file_path.stat().st_size + len(tail)
        with (
            book.open(
                f"xl/worksheets/sheet{number}.xml", "w", force_zip64=size > ZIP64_SAFE
            ) as member,
            sheet.file_path.open("rb") as rows,
        ):
            member.write(head)
            while chunk := rows.read(COPY_CHUNK):
                member.write(chunk)
            member.write(tail)

    def _variables(self) -> str:
        """The "variables" sheet: each column's name and label."""
        lines = [f'<row r="1"><c r="A1{_string_cell("name")}<c r="B1{_string_cell("label")}</row>']
        for line, column in enumerate(self.columns, start=2):
            lines.append(
                f'<row r="{line}"><c r="A{line}{_string_cell(column.name)}'
                f'<c r="B{line}{_string_cell(neutralised(column.label))}</row>'
            )
        head = _sheet_head(len(self.columns) + 1, 2, selected=False)
        return head + "".join(lines) + _SHEET_END


# A member whose size may pass zipfile's limit for plain zip is written with zip64 headers.
ZIP64_SAFE = zipfile.ZIP64_LIMIT - (1 << 24)


def _content_types(sheets: int) -> str:
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml"'
        f' ContentType="{_TYPES}.spreadsheetml.worksheet+xml"/>'
        for n in range(1, sheets + 1)
    )
    return (
        f'{_XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels"'
        ' ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/docProps/app.xml" ContentType="{_TYPES}.extended-properties+xml"/>'
        '<Override PartName="/docProps/core.xml"'
        ' ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{_TYPES}.spreadsheetml.styles+xml"/>'
        '<Override PartName="/xl/workbook.xml"'
        f' ContentType="{_TYPES}.spreadsheetml.sheet.main+xml"/>{overrides}</Types>'
    )


def _app(names: Sequence[str]) -> str:
    titles = "".join(f"<vt:lpstr>{_xml_attribute(name)}</vt:lpstr>" for name in names)
    return (
        f'{_XML_HEAD}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
        'extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/'
        'docPropsVTypes"><Application>selfcheck</Application><HeadingPairs>'
        '<vt:vector size="2" baseType="variant"><vt:variant><vt:lpstr>Worksheets</vt:lpstr>'
        f"</vt:variant><vt:variant><vt:i4>{len(names)}</vt:i4></vt:variant></vt:vector>"
        f'</HeadingPairs><TitlesOfParts><vt:vector size="{len(names)}" baseType="lpstr">'
        f"{titles}</vt:vector></TitlesOfParts></Properties>"
    )


def _core(title: str, now: str) -> str:
    return (
        f"{_XML_HEAD}<cp:coreProperties"
        ' xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"'
        ' xmlns:dcmitype="http://purl.org/dc/dcmitype/"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{xml_text(title)}</dc:title>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{now}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{now}</dcterms:modified>'
        "</cp:coreProperties>"
    )


def _workbook(names: Sequence[str]) -> str:
    sheets = "".join(
        f'<sheet name="{_xml_attribute(name)}" sheetId="{n}" r:id="rId{n}"/>'
        for n, name in enumerate(names, start=1)
    )
    return (
        f'{_XML_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_RELS}"><bookViews>'
        '<workbookView xWindow="240" yWindow="15" windowWidth="16095" windowHeight="9660"/>'
        f"</bookViews><sheets>{sheets}</sheets></workbook>"
    )


def _workbook_rels(sheets: int) -> str:
    links = "".join(
        f'<Relationship Id="rId{n}" Type="{_RELS}/worksheet" Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, sheets + 1)
    )
    return (
        f'{_XML_HEAD}<Relationships xmlns="{_PACKAGE_RELS}">{links}'
        f'<Relationship Id="rId{sheets + 1}" Type="{_RELS}/styles" Target="styles.xml"/>'
        "</Relationships>"
    )
