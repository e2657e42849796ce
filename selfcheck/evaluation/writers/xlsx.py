"""XLSX: xlsxwriter in constant-memory mode (`FastXlsxWriter`, the one used), or openpyxl's
write-only mode (`XlsxWriter`, kept as the reference the benchmark compares with). Both send
rows to a temporary file, not to memory. benchmarks/bench_export.py measures both.

openpyxl: text is written as text: every string cell is a `WriteOnlyCell` of data type "s" (openpyxl
would otherwise store a string starting with "=" as a live formula), and a string that a
spreadsheet could still read as a formula gets a leading quote (`neutralised`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

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
