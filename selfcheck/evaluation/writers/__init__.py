"""Streaming writers of the export formats: one row at a time, memory bounded by one row.

Each writer gets the column specifications once (`Column`), then `write(row)` per row and
`close()`. CSV comes from the standard library; XLSX (SpreadsheetML rows streamed into the zip,
`xlsx.StreamingXlsxWriter`), Stata 118 (.dta) and SPSS (.sav) are written here by hand: the
libraries either hold a whole DataFrame in memory (pyreadstat) or spend most of an export's
time on their per-cell Python (xlsxwriter, openpyxl; docs/performance.md). Registry: `WRITERS`
maps a format code to its writer.
"""

from __future__ import annotations

from selfcheck.evaluation.writers.base import Column, Row, Writer
from selfcheck.evaluation.writers.csv_writer import CsvWriter, ExcelCsvWriter
from selfcheck.evaluation.writers.dta import DtaWriter
from selfcheck.evaluation.writers.sav import SavWriter
from selfcheck.evaluation.writers.xlsx import StreamingXlsxWriter

WRITERS: dict[str, type[Writer]] = {
    "csv": CsvWriter,
    "csv-excel": ExcelCsvWriter,
    # Written here; xlsx.FastXlsxWriter (xlsxwriter) and xlsx.XlsxWriter (openpyxl) are kept
    # for the benchmarks' comparison.
    "xlsx": StreamingXlsxWriter,
    "sav": SavWriter,
    "dta": DtaWriter,
}

__all__ = ["WRITERS", "Column", "Row", "Writer"]
