"""The writers: no formula injection in CSV and XLSX; three kinds of missing read back."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import openpyxl  # type: ignore[import-untyped]
import pyreadstat
import pytest

from selfcheck.evaluation.writers import WRITERS, Column, Writer, xlsx
from selfcheck.evaluation.writers.base import Missing, neutralised
from selfcheck.questionnaire.answer_types import ExportKind

ATTACKS = [
    '=HYPERLINK("http://evil.example","clic")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\tcmd",
    "\rcmd",
]
COLUMNS = [
    Column("pseudonym", "Pseudonyme", ExportKind.STR, width=16),
    Column(
        "answer",
        "Réponse",
        ExportKind.INT,
        ((1, "Oui"), (2, "Non"), (-8, "Sans réponse"), (-7, "Masqué pour l'anonymat")),
    ),
    Column("text", "Réponse libre", ExportKind.STR, width=200),
]


def test_neutralised_prefixes_a_quote_and_leaves_plain_text() -> None:
    for attack in ATTACKS:
        assert neutralised(attack) == "'" + attack
    assert neutralised("bonjour = salut") == "bonjour = salut"
    assert neutralised("-7") == "-7"  # a missing code stays a number


@pytest.mark.parametrize("fmt", ["csv", "csv-excel"])
def test_csv_cells_cannot_start_a_formula(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    writer = WRITERS[fmt](path, COLUMNS, "test")
    for index, attack in enumerate(ATTACKS):
        writer.write([f"p{index}", 1, attack])
    writer.close()
    text = path.read_bytes().decode("utf-8-sig")
    delimiter = ";" if fmt == "csv-excel" else ","
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))[1:]
    assert [row[2] for row in rows] == ["'" + attack for attack in ATTACKS]
    for row in rows:
        assert not row[2].startswith(("=", "+", "-", "@", "\t", "\r"))


def unescape_ooxml(text: str) -> str:
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)


def test_xlsx_writes_text_as_text(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    writer = WRITERS["xlsx"](path, COLUMNS, "test")
    for index, attack in enumerate(ATTACKS):
        writer.write([f"p{index}", 1, attack])
    writer.close()
    sheet = openpyxl.load_workbook(path)["data"]
    cells = [row[2] for row in sheet.iter_rows(min_row=2)]
    # A control character is stored escaped (_x000D_, as the format says and Excel reads
    # back); openpyxl shows the escape as it is.
    assert [unescape_ooxml(cell.value) for cell in cells] == ["'" + attack for attack in ATTACKS]
    assert all(cell.data_type == "s" for cell in cells)


@pytest.mark.parametrize(
    "writer_class", [xlsx.StreamingXlsxWriter, xlsx.FastXlsxWriter, xlsx.XlsxWriter]
)
def test_xlsx_text_stays_text_even_without_the_quote(
    writer_class: type[Writer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every XLSX writer (the streaming one, used; xlsxwriter and openpyxl, the references): a
    # string is stored as a string, never as a formula, a number or a link, even if the quote
    # were not added.
    monkeypatch.setattr(xlsx, "neutralised", lambda text: text)
    path = tmp_path / "raw.xlsx"
    writer = writer_class(path, COLUMNS, "test")
    writer.write(["=1+1", 1, "http://example.invalid"])
    writer.write(["12", Missing.MASKED, None])
    writer.close()
    sheet = openpyxl.load_workbook(path)["data"]
    first, second = list(sheet.iter_rows(min_row=2, values_only=False))
    assert (first[0].value, first[0].data_type) == ("=1+1", "s")
    assert (first[2].value, first[2].data_type) == ("http://example.invalid", "s")
    assert first[2].hyperlink is None
    assert (second[0].value, second[0].data_type) == ("12", "s")
    assert (second[1].value, second[1].data_type) == (Missing.MASKED.value, "n")
    assert second[2].value is None


def _write_missing(fmt: str, path: Path) -> None:
    writer = WRITERS[fmt](path, COLUMNS, "test")
    writer.write(["a", 1, "x"])
    writer.write(["b", None, None])  # not asked
    writer.write(["c", Missing.NO_ANSWER, Missing.NO_ANSWER])
    writer.write(["d", Missing.MASKED, Missing.MASKED])
    writer.close()


def test_sav_declares_the_missing_codes_as_user_missing(tmp_path: Path) -> None:
    path = tmp_path / "data.sav"
    _write_missing("sav", path)
    data, meta = pyreadstat.read_sav(str(path), user_missing=True, output_format="dict")
    assert meta.column_names_to_labels["answer"] == "Réponse"
    assert meta.variable_value_labels["answer"][-7.0] == "Masqué pour l'anonymat"
    assert meta.variable_value_labels["answer"][-8.0] == "Sans réponse"
    assert meta.missing_ranges["answer"] == [
        {"lo": -8.0, "hi": -8.0},
        {"lo": -7.0, "hi": -7.0},
    ]
    assert list(data["answer"]) == [1.0, None, -8.0, -7.0]  # None: system missing
    plain, _meta = pyreadstat.read_sav(str(path), output_format="dict")
    assert list(plain["answer"])[1:] == [None, None, None]  # all three missing to SPSS


def test_dta_uses_extended_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "data.dta"
    _write_missing("dta", path)
    data, meta = pyreadstat.read_dta(str(path), user_missing=True, output_format="dict")
    assert meta.column_names_to_labels["answer"] == "Réponse"
    assert meta.missing_user_values["answer"] == ["a", "b"]
    assert list(data["answer"]) == [1, None, "a", "b"]  # ".", .a no answer, .b masked
    labels = meta.variable_value_labels["answer"]
    assert labels["a"] == "Sans réponse" and labels["b"] == "Masqué pour l'anonymat"
    assert list(data["text"])[3] == "-7"
