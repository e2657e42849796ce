"""XLSX writers compared on the same rows: the streaming writer (the one used), xlsxwriter
(constant memory) and openpyxl (write-only), and the CSV writer as a reference, in CPU seconds
(less sensitive to a shared machine than wall time), interleaved over several rounds, median
kept, with each file's size.

    .venv/bin/python benchmarks/bench_xlsx_writers.py                 # 20,000 rows x 300 cols
    .venv/bin/python benchmarks/bench_xlsx_writers.py --rows 2000     # smoke check
    .venv/bin/python benchmarks/bench_xlsx_writers.py --levels 1,6 --writers csv,stream
                                                    # the streaming writer at deflate levels

Each writer's cells are prepared once per distinct (column, value) before the clock starts,
as the export remembers each variable's prepared cells (`export.WideCoder`); `--raw` times
`write(row)` on raw values instead (every cell through `prepare`).

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


def prepared(writer_class: Any, columns: list[Any], rows: list[list[Any]], folder: Path) -> Any:
    """The rows as the export gives them to `write_prepared`: each distinct (column, value)
    prepared once (free text apart, which is rare in a wide export)."""
    writer = writer_class(folder / f"prepare.{writer_class.extension}", columns, "bench")
    memory: dict[tuple[int, Any], Any] = {}
    out = []
    for row in rows:
        line = []
        for index, value in enumerate(row):
            key = (index, value)
            if key not in memory:
                memory[key] = writer.prepare(value)
            line.append(memory[key])
        out.append(line)
    writer.close()
    return out


def run(
    writer_class: Any, columns: list[Any], rows: list[list[Any]], folder: Path, raw: bool
) -> tuple[float, int]:
    path = folder / f"out.{writer_class.extension}"
    began = time.process_time()
    writer = writer_class(path, columns, "bench")
    write = writer.write if raw else writer.write_prepared
    for row in rows:
        write(row)
    writer.close()
    seconds = time.process_time() - began
    size = path.stat().st_size
    path.unlink()
    return seconds, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--columns", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", default="csv,stream,xlsxwriter,openpyxl")
    parser.add_argument("--levels", help="deflate levels of the streaming writer, e.g. 1,6")
    parser.add_argument("--raw", action="store_true", help="time write(row) on raw values")
    args = parser.parse_args()

    from selfcheck.evaluation.writers import xlsx
    from selfcheck.evaluation.writers.csv_writer import CsvWriter

    classes = {
        "csv": CsvWriter,
        "stream": xlsx.StreamingXlsxWriter,
        "xlsxwriter": xlsx.FastXlsxWriter,
        "openpyxl": xlsx.XlsxWriter,
    }
    writers: dict[str, tuple[Any, int | None]] = {}
    for name in args.writers.split(","):
        if name == "stream" and args.levels:
            for level in args.levels.split(","):
                writers[f"stream-{level}"] = (classes[name], int(level))
        else:
            writers[name] = (classes[name], None)
    columns, rows = make_rows(args.rows, args.columns)
    times: dict[str, list[float]] = {name: [] for name in writers}
    sizes: dict[str, int] = {}
    default_level = xlsx.DEFLATE_LEVEL
    with tempfile.TemporaryDirectory(prefix="bench-xlsx-") as tmp:
        folder = Path(tmp)
        inputs = {
            name: rows if args.raw else prepared(writer_class, columns, rows, folder)
            for name, (writer_class, _level) in writers.items()
        }
        for number in range(args.rounds):
            for name, (writer_class, level) in writers.items():
                xlsx.DEFLATE_LEVEL = default_level if level is None else level
                seconds, sizes[name] = run(writer_class, columns, inputs[name], folder, args.raw)
                times[name].append(seconds)
                print(f"round {number + 1} {name:<11} {seconds:.2f} s CPU", flush=True)
    xlsx.DEFLATE_LEVEL = default_level
    median = {name: statistics.median(values) for name, values in times.items()}
    cells = args.rows * (args.columns + 1)
    first = next(iter(median))
    print(f"\n{args.rows:,} rows x {args.columns + 1} columns ({cells:,} cells), CPU seconds:")
    print(f"| writer | CPU s (median) | / {first} | file size |")
    print("|---|---:|---:|---:|")
    for name, value in median.items():
        print(
            f"| {name} | {value:.2f} | {value / median[first]:.2f}x | {sizes[name] / 1e6:.1f} MB |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
