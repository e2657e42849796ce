"""XLSX through openpyxl's write-only mode (rows go to a temporary file, not to memory).

Text is written as text: every string cell is a `WriteOnlyCell` of data type "s" (openpyxl
would otherwise store a string starting with "=" as a live formula), and a string that a
spreadsheet could still read as a formula gets a leading quote (`neutralised`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]

from selfcheck.evaluation.writers.base import Column, Missing, Row, Value, Writer, neutralised

# Excel refuses cells longer than this.
MAX_CELL = 32767


class XlsxWriter(Writer):
    extension: ClassVar[str] = "xlsx"
    media_type: ClassVar[str] = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    def __init__(self, path: Path, columns: Sequence[Column], title: str) -> None:
        super().__init__(path, columns, title)
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
        cell = WriteOnlyCell(self.sheet, value=None)
        cell.value = value
        cell.data_type = "s"  # after the value: openpyxl guesses "f" for a leading "="
        return cell

    def close(self) -> None:
        labels = self.workbook.create_sheet("variables")
        labels.append(["name", "label"])
        for column in self.columns:
            labels.append([self.text(column.name), self.text(neutralised(column.label))])
        self.workbook.save(self.path)
