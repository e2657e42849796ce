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

QUASI_IDENTIFIERS = (
    "structure",
    "department",
    "region",
    "age_band",
    "gender",
    "diploma",
    "status",
    "area",
)
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


def group_sizes(zip_path: Path) -> Counter[tuple[Any, ...]]:
    """Distinct people per quasi-identifier combination."""
    _names, rows = read_rows(zip_path)
    people: defaultdict[tuple[Any, ...], set[Any]] = defaultdict(set)
    for row in rows:
        people[tuple(row.get(q) for q in QUASI_IDENTIFIERS)].add(row[PERSON])
    return Counter({key: len(value) for key, value in people.items()})


def smallest_group(zip_path: Path) -> int:
    sizes = group_sizes(zip_path)
    return min(sizes.values(), default=0)


def is_k_anonymous(zip_path: Path, k: int) -> bool:
    return all(size >= k for size in group_sizes(zip_path).values())
