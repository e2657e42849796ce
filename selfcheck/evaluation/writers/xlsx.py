"""XLSX through openpyxl's write-only mode (rows go to a temporary file, not to memory)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from openpyxl import Workbook  # type: ignore[import-untyped]

from selfcheck.evaluation.writers.base import Column, Row, Writer

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
        self.sheet.append([value[:MAX_CELL] if isinstance(value, str) else value for value in row])
        self.rows += 1

    def close(self) -> None:
        labels = self.workbook.create_sheet("variables")
        labels.append(["name", "label"])
        for column in self.columns:
            labels.append([column.name, column.label])
        self.workbook.save(self.path)
