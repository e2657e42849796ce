"""The streaming XLSX writer (`writers.xlsx.StreamingXlsxWriter`): read back by openpyxl and by
calamine (an independent reader, in Rust), cell for cell the same as xlsxwriter's file."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import openpyxl  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from selfcheck.evaluation.writers import WRITERS, Column, xlsx
from selfcheck.evaluation.writers.base import Missing, neutralised
from selfcheck.evaluation.writers.xlsx import (
    MAX_CELL,
    FastXlsxWriter,
    StreamingXlsxWriter,
    column_letters,
    utf16_truncated,
    xml_text,
)
from selfcheck.questionnaire.answer_types import ExportKind

COLUMNS = [
    Column("pseudonym", "Pseudonyme", ExportKind.STR, width=16),
    Column("answer", "=Réponse", ExportKind.INT, ((1, "Oui"), (2, "Non"))),
    Column("text", "Réponse libre", ExportKind.STR, width=200),
]
TRICKY = [
    "=1+1",  # a formula: stays text, with its quote
    "-8",  # a missing code as text (a string column): text, no quote
    "café ☕ 😀 مرحبا",  # unicode, beyond the BMP, right to left
    "  espaces autour  ",  # kept (xml:space="preserve")
    "ligne 1\nligne 2\ttab",  # newline and tab are kept as they are
    "bell\x07 and \x00 nul",  # control characters: _x0007_, _x0000_
    "_x0041_ littéral",  # a literal escape stays itself (_x005F_x0041_)
    "<r><t>rich</t></r>",  # xlsxwriter would have written this as raw XML
    "a & b < c > d \" ' ",
    "http://example.invalid",  # never a link
    "12",  # a number as text stays text
    "",  # an empty string: an empty text cell
]


def unescape_ooxml(text: str) -> str:
    """What Excel shows for a stored text: `_xHHHH_` decoded (openpyxl leaves it as it is)."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)


def _write(writer_class: Any, path: Path, rows: list[list[Any]]) -> None:
    writer = writer_class(path, COLUMNS, "Titre & <export>")
    for row in rows:
        writer.write(row)
    writer.close()


def _rows() -> list[list[Any]]:
    rows: list[list[Any]] = [[f"P{n}", n % 3 or None, text] for n, text in enumerate(TRICKY)]
    rows.append(["P-missing", Missing.NO_ANSWER, Missing.MASKED])
    rows.append(["P-empty", None, None])
    rows.append([None, Missing.MASKED, None])
    rows.append(["P-true", True, "x"])
    return rows


def _cells(path: Path, sheet: str = "data") -> list[tuple[Any, ...]]:
    book = openpyxl.load_workbook(path)
    return [tuple((c.value, c.data_type) for c in row) for row in book[sheet].iter_rows()]


def test_the_export_uses_the_streaming_writer() -> None:
    assert WRITERS["xlsx"] is StreamingXlsxWriter


def test_read_back_by_openpyxl_values_types_and_variables(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    _write(StreamingXlsxWriter, path, _rows())
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["data", "variables"]
    assert book.properties.title == "Titre & <export>"
    sheet = book["data"]
    assert sheet.dimensions == f"A1:C{len(_rows()) + 1}"
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("pseudonym", "answer", "text")
    texts = [unescape_ooxml(row[2]) if row[2] is not None else None for row in rows[1:13]]
    assert texts == ["'=1+1", *TRICKY[1:]]  # "" too: an empty text cell
    assert [row[1] for row in rows[1:4]] == [None, 1, 2]  # numbers, empty when None
    assert rows[13] == ("P-missing", -8, -7)
    assert rows[14] == ("P-empty", None, None)
    assert rows[15] == (None, -7, None)
    assert rows[16] == ("P-true", 1, "x")
    for row in sheet.iter_rows(min_row=2):
        assert row[0].value is None or row[0].data_type == "s"
        assert row[1].value is None or row[1].data_type == "n"
        # Text, but a missing code is a number in every column (as in every format).
        text = row[2].value
        assert text is None or row[2].data_type == ("n" if text == -7 else "s")
        assert row[2].hyperlink is None
    labels = list(book["variables"].iter_rows(values_only=True))
    assert labels == [
        ("name", "label"),
        ("pseudonym", "Pseudonyme"),
        ("answer", "'=Réponse"),  # a label that looks like a formula is neutralised too
        ("text", "Réponse libre"),
    ]


def test_read_back_by_calamine(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    _write(StreamingXlsxWriter, path, _rows())
    book = CalamineWorkbook.from_path(str(path))
    assert book.sheet_names == ["data", "variables"]
    rows = book.get_sheet_by_name("data").to_python()
    assert rows[0] == ["pseudonym", "answer", "text"]
    # calamine decodes the _xHHHH_ escapes itself, as Excel does.
    assert [row[2] for row in rows[1:13]] == ["'=1+1", *TRICKY[1:]]
    assert rows[3][1] == 2.0 and rows[1][1] == ""  # a number; an empty cell
    assert rows[13] == ["P-missing", -8.0, -7.0]
    assert rows[14] == ["P-empty", "", ""]
    labels = book.get_sheet_by_name("variables").to_python()
    assert labels[2] == ["answer", "'=Réponse"]


def test_the_same_cells_as_xlsxwriter(tmp_path: Path) -> None:
    # Rows without a `<r>` rich string, which xlsxwriter writes as raw XML.
    rows = [row for row in _rows() if not str(row[2]).startswith("<r>")]
    _write(StreamingXlsxWriter, tmp_path / "stream.xlsx", rows)
    _write(FastXlsxWriter, tmp_path / "xlsxwriter.xlsx", rows)
    for sheet in ("data", "variables"):
        ours = _cells(tmp_path / "stream.xlsx", sheet)
        theirs = _cells(tmp_path / "xlsxwriter.xlsx", sheet)
        assert ours == theirs


def test_every_part_is_well_formed_xml_and_the_temporary_files_are_gone(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    _write(StreamingXlsxWriter, path, _rows())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.xlsx"]
    with zipfile.ZipFile(path) as book:
        names = book.namelist()
        assert names[0] == "[Content_Types].xml"
        for name in names:
            ElementTree.fromstring(book.read(name))  # raises on malformed XML
        types = book.read("[Content_Types].xml").decode()
        for name in names:
            if name.startswith(("xl/", "docProps/")) and not name.endswith(".rels"):
                assert f'PartName="/{name}"' in types


def test_long_text_is_cut_to_excel_s_cell_length(tmp_path: Path) -> None:
    path = tmp_path / "long.xlsx"
    # 32,766 units, then an emoji of two units that would make 32,768: dropped whole.
    text = "a" * (MAX_CELL - 1) + "😀" + "b" * 10
    _write(StreamingXlsxWriter, path, [["p", 1, text]])
    value = openpyxl.load_workbook(path)["data"]["C2"].value
    assert value == "a" * (MAX_CELL - 1)


def test_rows_beyond_a_sheet_go_on_to_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(StreamingXlsxWriter, "sheet_rows", 3)  # the header and two rows
    path = tmp_path / "data.xlsx"
    _write(StreamingXlsxWriter, path, [[f"P{n}", n, None] for n in range(5)])
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["data", "data_2", "data_3", "variables"]
    header = ("pseudonym", "answer", "text")
    assert list(book["data"].iter_rows(values_only=True)) == [
        header,
        ("P0", 0, None),
        ("P1", 1, None),
    ]
    assert list(book["data_2"].iter_rows(values_only=True))[1:] == [
        ("P2", 2, None),
        ("P3", 3, None),
    ]
    assert list(book["data_3"].iter_rows(values_only=True)) == [header, ("P4", 4, None)]


def test_text_stays_text_even_without_the_quote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx, "neutralised", lambda text: text)
    path = tmp_path / "raw.xlsx"
    _write(StreamingXlsxWriter, path, [["=1+1", 1, '=HYPERLINK("x")']])
    with zipfile.ZipFile(path) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet
    assert _cells(path)[1] == (("=1+1", "s"), (1, "n"), ('=HYPERLINK("x")', "s"))


def test_helpers() -> None:
    assert [column_letters(i) for i in (0, 25, 26, 51, 52, 701, 702, 16383)] == [
        "A",
        "Z",
        "AA",
        "AZ",
        "BA",
        "ZZ",
        "AAA",
        "XFD",
    ]
    assert utf16_truncated("😀😀", 3) == "😀"
    assert utf16_truncated("abc", 3) == "abc"
    assert xml_text("a<b>&c") == "a&lt;b&gt;&amp;c"
    assert xml_text("\x1f_x00aF_\ufffe") == "_x001F__x005F_x00aF__xFFFE_"
    assert xml_text("plain") == "plain"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=st.lists(st.text(max_size=40), min_size=1, max_size=5))
def test_any_text_reads_back_as_written(texts: list[str], tmp_path: Path) -> None:
    # Every character (controls, non-characters, beyond the BMP, XML's own, spaces at the
    # edges, a literal `_xHHHH_`) comes back from calamine, which decodes the escapes.
    path = tmp_path / "any.xlsx"
    _write(StreamingXlsxWriter, path, [[text, None, "x" + text] for text in texts])
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("data").to_python()
    assert [row[0] for row in rows[1:]] == [neutralised(text) for text in texts]
    assert [row[2] for row in rows[1:]] == ["x" + text for text in texts]
