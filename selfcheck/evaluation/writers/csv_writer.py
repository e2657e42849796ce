"""CSV: UTF-8 with commas, or the French Excel variant (semicolons, BOM, decimal comma)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from selfcheck.evaluation.writers.base import Column, Missing, Row, Value, Writer, neutralised

# Where a spreadsheet may start a cell inside a text: at a separator it splits at that is not
# the file's (Excel in French splits a comma file at ";", Excel in English a ";" file at ",",
# LibreOffice often at tabs too) and, the row then split elsewhere than the quotes say, at a
# line break. A formula start just after one gets the leading quote too (attack round 16,
# tests/evaluation/test_attack7_findings.py).
_INNER_FORMULA = re.compile(r"([,;\t\r\n])(?=[=+\-@\t\r])")


def csv_neutralised(text: str) -> str:
    """`neutralised`, and a quote after each separator or line break a formula start follows:
    no cell of the text starts a formula, whatever separator the file is read at."""
    text = neutralised(text)
    if _INNER_FORMULA.search(text) is None:
        return text
    return _INNER_FORMULA.sub(r"\1'", text)


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
        # What the csv module quotes (QUOTE_MINIMAL): a cell holding the delimiter, the quote
        # or a line end character. Any other cell is written as it is.
        self.quoted_cells = re.compile("[" + re.escape(self.delimiter + '"\r\n') + "]")

    def write(self, row: Row) -> None:
        self.write_prepared([self.prepare(value) for value in row])

    def prepare(self, value: Value) -> str:
        return "" if value is None else self.cell(value)

    def write_prepared(self, row: Sequence[object]) -> None:
        self.csv.writerow(row)
        self.rows += 1

    def text(self, cells: Iterable[str]) -> str:
        """Prepared cells as a row writes them, joined by the delimiter, without the line
        end: a row written by `write_text` from such pieces, joined by the delimiter, is
        the row `write_prepared` writes from their cells (the csv module quotes each cell
        on its own)."""
        return self.delimiter.join(map(self.quote, cells))

    def quote(self, cell: str) -> str:
        """One prepared cell as the csv module writes it inside a row."""
        if self.quoted_cells.search(cell) is None:
            return cell
        # The csv module itself quotes it: a row of the cell and an empty one (a row of a
        # lone empty cell is a special case), its trailing delimiter and line end cut.
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=self.delimiter, lineterminator="\r\n").writerow([cell, ""])
        return buffer.getvalue()[: -len(self.delimiter) - 2]

    def write_text(self, text: str) -> None:
        """A row already made of `text` pieces (joined by the delimiter)."""
        self.file.write(text + "\r\n")
        self.rows += 1

    def write_encoded(self, data: bytes, rows: int) -> None:
        """`rows` rows already encoded in UTF-8 (the file's `encoding`, whose byte order
        mark, if any, came with the header), each ending with its line end."""
        self.file.flush()
        self.file.buffer.write(data)
        self.rows += rows

    def cell(self, value: int | str | float | Missing) -> str:
        if isinstance(value, Missing):
            return value.text
        if isinstance(value, str):
            return csv_neutralised(value)
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
