"""CSV: UTF-8 with commas, or the French Excel variant (semicolons, BOM, decimal comma)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from selfcheck.evaluation.writers.base import Column, Missing, Row, Value, Writer, neutralised


class CsvWriter(Writer):
    extension: ClassVar[str] = "csv"
    media_type: ClassVar[str] = "text/csv"
    delimiter: ClassVar[str] = ","
    encoding: ClassVar[str] = "utf-8"

    def __init__(self, path: Path, columns: Sequence[Column], title: str) -> None:
        super().__init__(path, columns, title)
        self.file = path.open("w", encoding=self.encoding, newline="")
        self.csv = csv.writer(self.file, delimiter=self.delimiter, lineterminator="\r\n")
        self.csv.writerow([column.name for column in self.columns])

    def write(self, row: Row) -> None:
        self.write_prepared([self.prepare(value) for value in row])

    def prepare(self, value: Value) -> str:
        return "" if value is None else self.cell(value)

    def write_prepared(self, row: Sequence[object]) -> None:
        self.csv.writerow(row)
        self.rows += 1

    def cell(self, value: int | str | float | Missing) -> str:
        if isinstance(value, Missing):
            return value.text
        if isinstance(value, str):
            return neutralised(value)
        return str(value)

    def close(self) -> None:
        self.file.close()


class ExcelCsvWriter(CsvWriter):
    """For Excel set to French: `;` separator, BOM so the UTF-8 is recognised, decimal comma.

    Every exported number is a whole number today; a decimal would be written 1,5.
    """

    delimiter: ClassVar[str] = ";"
    encoding: ClassVar[str] = "utf-8-sig"

    def cell(self, value: int | str | float | Missing) -> str:
        if isinstance(value, float):
            return repr(value).replace(".", ",")
        return super().cell(value)
