"""An independent k-anonymity check of an exported file (shares no code with the exporter).

It opens the zip as an analyst would, reads the data file with that format's own reader
(csv, openpyxl, pyreadstat), and counts distinct people per combination of the quasi-
identifier columns (an empty cell counts as its own value, as an attacker would see it).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pyreadstat

# Every column that can single someone out: the person's own columns, and per form (wide:
# before_month...; long: one row per form, `form` then its details).
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
FORM_NAMES = ("before", "after", "retro")
DETAILS = ("month", "channel", "wording", "version")
WIDE_DETAILS = tuple(f"{form}_{detail}" for form in FORM_NAMES for detail in DETAILS)
LONG_DETAILS = ("form", *DETAILS)
PERSON = "pseudonym"


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


def people(zip_path: Path) -> dict[Any, tuple[Any, ...]]:
    """Each person's quasi-identifiers as an attacker sees them: their own columns and, per
    form present, the form's details (wide: side by side; long: the set of form rows)."""
    names, rows = read_rows(zip_path)
    missing = [q for q in QUASI_IDENTIFIERS if q not in names]
    assert not missing, f"quasi-identifier columns missing from the file: {missing}"
    own: dict[Any, tuple[Any, ...]] = {}
    details: defaultdict[Any, set[tuple[Any, ...]]] = defaultdict(set)
    wide = all(name in names for name in WIDE_DETAILS)
    columns = WIDE_DETAILS if wide else LONG_DETAILS
    assert all(name in names for name in columns), "no form details in the file"
    for row in rows:
        person = row[PERSON]
        head = tuple(row.get(q) for q in QUASI_IDENTIFIERS)
        assert own.setdefault(person, head) == head, "a person's own columns differ by row"
        details[person].add(tuple(row.get(c) for c in columns))
    return {
        person: (*head, tuple(sorted(details[person], key=repr))) for person, head in own.items()
    }


def person_table(zip_path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per person, every quasi-identifying column side by side (wide or long file):
    what pycanon is given."""
    names, rows = read_rows(zip_path)
    table: dict[Any, dict[str, Any]] = {}
    columns = [*QUASI_IDENTIFIERS, *WIDE_DETAILS]
    for row in rows:
        person = table.setdefault(
            row[PERSON], {**dict.fromkeys(columns), **{q: row[q] for q in QUASI_IDENTIFIERS}}
        )
        if "form" in names:  # long: the row's form gives the prefix
            form = FORM_NAMES[int(row["form"]) - 1]
            for detail in DETAILS:
                person[f"{form}_{detail}"] = row[detail]
        else:
            for column in WIDE_DETAILS:
                person[column] = row[column]
    return columns, list(table.values())


def group_sizes(zip_path: Path) -> Counter[tuple[Any, ...]]:
    """Distinct people per combination of every quasi-identifying column."""
    return Counter(people(zip_path).values())


def smallest_group(zip_path: Path) -> int:
    sizes = group_sizes(zip_path)
    return min(sizes.values(), default=0)


def is_k_anonymous(zip_path: Path, k: int) -> bool:
    return all(size >= k for size in group_sizes(zip_path).values())
