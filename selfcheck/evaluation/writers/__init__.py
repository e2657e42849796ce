"""Streaming writers of the export formats: one row at a time, memory bounded by one row.

Each writer gets the column specifications once (`Column`), then `write(row)` per row and
`close()`. CSV and XLSX come from the standard library and xlsxwriter (constant-memory mode); Stata
118 (.dta) and SPSS (.sav) are written here by hand, because pyreadstat can only write a
whole DataFrame held in memory. Registry: `WRITERS` maps a format code to its writer.
"""

from __future__ import annotations

from selfcheck.evaluation.writers.base import Column, Row, Writer
from selfcheck.evaluation.writers.csv_writer import CsvWriter, ExcelCsvWriter
from selfcheck.evaluation.writers.dta import DtaWriter
from selfcheck.evaluation.writers.sav import SavWriter
from selfcheck.evaluation.writers.xlsx import FastXlsxWriter

WRITERS: dict[str, type[Writer]] = {
    "csv": CsvWriter,
    "csv-excel": ExcelCsvWriter,
    "xlsx": FastXlsxWriter,  # xlsxwriter; openpyxl's XlsxWriter is kept for comparison
    "sav": SavWriter,
    "dta": DtaWriter,
}

__all__ = ["WRITERS", "Column", "Row", "Writer"]
