"""XLSX writers compared on the same rows: xlsxwriter (constant memory) against openpyxl
(write-only), and the CSV writer as a reference, in CPU seconds (less sensitive to a shared
machine than wall time), interleaved over several rounds, median kept.

    .venv/bin/python benchmarks/bench_xlsx_writers.py                 # 20,000 rows x 300 cols
    .venv/bin/python benchmarks/bench_xlsx_writers.py --rows 2000     # smoke check

Rows look like a wide export: a pseudonym and a few short strings, then mostly small codes,
some empty cells (not asked) and missing codes. The database is left out: bench_export.py
measures the whole export.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def make_rows(count: int, width: int) -> tuple[list[Any], list[list[Any]]]:
    from selfcheck.evaluation.writers import Column
    from selfcheck.evaluation.writers.base import Missing

    rng = random.Random(7)
    columns = [Column("pseudonym", "Pseudonyme", "str", width=16)]
    columns += [
        Column(f"c{i}", f"Colonne {i}", "str" if i % 40 == 0 else "int") for i in range(width)
    ]
    rows = []
    for n in range(count):
        row: list[Any] = [f"P{n:08d}"]
        for i in range(width):
            draw = rng.random()
            if i % 40 == 0:
                row.append("2026-T1" if draw < 0.9 else None)
            elif draw < 0.25:
                row.append(None)
            elif draw < 0.28:
                row.append(Missing.NO_ANSWER)
            else:
                row.append(rng.randint(0, 5))
        rows.append(row)
    return columns, rows


def run(writer_class: Any, columns: list[Any], rows: list[list[Any]], folder: Path) -> float:
    path = folder / f"out.{writer_class.extension}"
    began = time.process_time()
    writer = writer_class(path, columns, "bench")
    for row in rows:
        writer.write(row)
    writer.close()
    seconds = time.process_time() - began
    path.unlink()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--columns", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from selfcheck.evaluation.writers.csv_writer import CsvWriter
    from selfcheck.evaluation.writers.xlsx import FastXlsxWriter, XlsxWriter

    columns, rows = make_rows(args.rows, args.columns)
    writers = {"csv": CsvWriter, "xlsxwriter": FastXlsxWriter, "openpyxl": XlsxWriter}
    times: dict[str, list[float]] = {name: [] for name in writers}
    with tempfile.TemporaryDirectory(prefix="bench-xlsx-") as tmp:
        for number in range(args.rounds):
            for name, writer_class in writers.items():
                times[name].append(run(writer_class, columns, rows, Path(tmp)))
                print(f"round {number + 1} {name:<11} {times[name][-1]:.2f} s CPU", flush=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    cells = args.rows * (args.columns + 1)
    print(f"\n{args.rows:,} rows x {args.columns + 1} columns ({cells:,} cells), CPU seconds:")
    print("| writer | CPU s (median) | / csv | / openpyxl |")
    print("|---|---:|---:|---:|")
    for name, value in median.items():
        print(
            f"| {name} | {value:.2f} | {value / median['csv']:.2f}x "
            f"| {value / median['openpyxl']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
