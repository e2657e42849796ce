"""An independent k-anonymity check of an exported file (shares no code with the exporter).

It opens the zip as an analyst would, reads the data file with that format's own reader
(csv, openpyxl, pyreadstat), and counts distinct people per combination of the quasi-
identifier columns (an empty cell counts as its own value, as an attacker would see it).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pyreadstat

# The person's own columns: a file must hold them (checked). They are not the only columns
# checked: every column of the file is a quasi-identifier unless it is the pseudonym or an
# answer (`quasi_identifier_columns`), so a column added later is checked by default.
QUASI_IDENTIFIERS = (
    "structure",
    "department",
    "region",
    "age_band",
    "gender",
    "diploma",
    "status",
    "area",
    "forms",
)
PERSON = "pseudonym"
FORM = "form"  # long files: the row's form
# An answer: an item's variable, in capitals (COMFORT, T01_PRE, DEVICES_3), in a wide file
# after its form's prefix (before_COMFORT, followup_late_T01). The prefixes are read from the
# file itself: each form has a `<form>_month` column.
ANSWER = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*")
# A long file's answer: one row per person x form x variable, the variable's name, its value
# and (when allowed) the free text.
LONG_ANSWERS = ("variable", "value", "text")


def _normal(value: Any) -> Any:
    """One spelling per value across readers: '' and NaN are missing, 3.0 is 3."""
    if value is None or value == "":
        return None
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return value


def read_rows(zip_path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The data file of an export bundle as (column names, rows)."""
    with zipfile.ZipFile(zip_path) as bundle:
        data_name = next(n for n in bundle.namelist() if n.startswith("data."))
        raw = bundle.read(data_name)
    extension = data_name.rsplit(".", 1)[1]
    if extension == "csv":
        text = raw.decode("utf-8-sig")
        delimiter = ";" if text.split("\n", 1)[0].count(";") else ","
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        names = next(reader)
        rows = [dict(zip(names, map(_normal, line), strict=True)) for line in reader]
        return names, rows
    if extension == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(raw), read_only=True)["data"]
        values = sheet.iter_rows(values_only=True)
        names = [str(n) for n in next(values)]
        rows = [
            dict(
                zip(
                    names, map(_normal, list(line) + [None] * (len(names) - len(line))), strict=True
                )
            )
            for line in values
        ]
        return names, rows
    tmp = zip_path.with_suffix("." + extension)
    tmp.write_bytes(raw)
    read = pyreadstat.read_sav if extension == "sav" else pyreadstat.read_dta
    data, meta = read(str(tmp), output_format="dict")
    tmp.unlink()
    names = list(meta.column_names)
    count = meta.number_rows or 0
    rows = [{name: _normal(data[name][i]) for name in names} for i in range(count)]
    return names, rows


def quasi_identifier_columns(names: list[str]) -> list[str]:
    """Every column of the file but the pseudonym and the answers, in the file's order."""
    prefixes = sorted(
        (name.removesuffix("month") for name in names if name.endswith("_month")),
        key=len,
        reverse=True,
    )

    def is_answer(name: str) -> bool:
        prefix = next((p for p in prefixes if name.startswith(p)), "")
        return ANSWER.fullmatch(name.removeprefix(prefix)) is not None

    long = FORM in names
    return [
        name
        for name in names
        if name != PERSON and not is_answer(name) and not (long and name in LONG_ANSWERS)
    ]


def _by_person(zip_path: Path) -> tuple[list[str], dict[Any, list[dict[str, Any]]]]:
    """(quasi-identifier columns, each person's rows)."""
    names, rows = read_rows(zip_path)
    missing = [q for q in QUASI_IDENTIFIERS if q not in names]
    assert not missing, f"quasi-identifier columns missing from the file: {missing}"
    columns = quasi_identifier_columns(names)
    assert any(name.endswith("month") for name in columns), "no form details in the file"
    by_person: defaultdict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_person[row[PERSON]].append(row)
    for person_rows in by_person.values():
        heads = {tuple(row.get(q) for q in QUASI_IDENTIFIERS) for row in person_rows}
        assert len(heads) == 1, "a person's own columns differ by row"
        if FORM not in names:
            assert len(person_rows) == 1, "a wide file has one row per person"
    return columns, by_person


def people(zip_path: Path) -> dict[Any, tuple[Any, ...]]:
    """Each person's quasi-identifiers as an attacker sees them: every column but the
    pseudonym and the answers, of each of their rows (wide: one row; long: one per form,
    the set of them)."""
    columns, by_person = _by_person(zip_path)
    return {
        person: tuple(sorted({tuple(row.get(c) for c in columns) for row in person_rows}, key=repr))
        for person, person_rows in by_person.items()
    }


def person_table(zip_path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per person, every quasi-identifying column side by side: what pycanon is
    given. Wide: the file's columns. Long: the person's own columns, then per form number
    found in the file (follow-ups too) that form's rows' other columns (`form4_month`...)."""
    columns, by_person = _by_person(zip_path)
    if FORM not in columns:
        return columns, [{c: rows[0].get(c) for c in columns} for rows in by_person.values()]
    own = [c for c in columns if c in QUASI_IDENTIFIERS]
    per_form = [c for c in columns if c not in QUASI_IDENTIFIERS and c != FORM]
    forms = sorted({row[FORM] for rows in by_person.values() for row in rows}, key=repr)
    table_columns = [*own, *(f"form{form}_{c}" for form in forms for c in per_form)]
    table: list[dict[str, Any]] = []
    for person_rows in by_person.values():
        line = {**dict.fromkeys(table_columns), **{c: person_rows[0].get(c) for c in own}}
        seen: dict[Any, tuple[Any, ...]] = {}
        for row in person_rows:
            values = tuple(row.get(c) for c in per_form)
            assert seen.setdefault(row[FORM], values) == values, "a form's details differ"
            line.update({f"form{row[FORM]}_{c}": v for c, v in zip(per_form, values, strict=True)})
        table.append(line)
    return table_columns, table


def group_sizes(zip_path: Path) -> Counter[tuple[Any, ...]]:
    """Distinct people per combination of every quasi-identifying column."""
    return Counter(people(zip_path).values())


def smallest_group(zip_path: Path) -> int:
    sizes = group_sizes(zip_path)
    return min(sizes.values(), default=0)


def is_k_anonymous(zip_path: Path, k: int) -> bool:
    return all(size >= k for size in group_sizes(zip_path).values())
