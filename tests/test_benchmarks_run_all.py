"""The benchmark suite's table building (benchmarks/run_all.py): pure functions, no run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCH_DIR) not in sys.path:  # the benchmarks are scripts, not a package
    sys.path.insert(0, str(BENCH_DIR))

import run_all  # noqa: E402
from common import row  # noqa: E402


def _result(name: str, summary: list[dict[str, Any]]) -> dict[str, Any]:
    return {"benchmark": name, "machine": {}, "summary": summary}


PAGE_ROW = row(
    "questionnaire page",
    2254.0,
    "req/s",
    database="sqlite",
    baseline="hello-world route",
    baseline_value=4167.0,
    goal=">= 0.5x hello-world",
    met=True,
)


def test_row_computes_the_ratio_unless_given() -> None:
    assert PAGE_ROW["ratio"] == 2254.0 / 4167.0
    assert row("x", 2.0, "s", goal="g", baseline_value=4.0, ratio=0.7)["ratio"] == 0.7
    assert row("x", 2.0, "s", goal="g")["ratio"] is None
    assert set(PAGE_ROW) == set(run_all.ROW_KEYS)


def test_check_row_names_what_is_missing() -> None:
    assert run_all.check_row(PAGE_ROW) == []
    assert run_all.check_row({"figure": "x"})[0] == "missing database"
    assert "database 'mysql'" in run_all.check_row({**PAGE_ROW, "database": "mysql"})
    assert run_all.check_row(3) == ["not an object"]


def test_numbers_keep_three_significant_figures() -> None:
    assert run_all.format_number(4167.2) == "4,167"
    assert run_all.format_number(52.34) == "52.3"
    assert run_all.format_number(1.234) == "1.23"
    assert run_all.format_number(0.4551) == "0.455"
    assert run_all.format_number(0) == "0"
    assert run_all.format_number(None) == "–"


def test_table_rows() -> None:
    (line,) = run_all.table_rows("pages", [PAGE_ROW])
    assert line == (
        "| pages | questionnaire page | sqlite | 2,254 req/s | hello-world route: 4,167 "
        "| 0.541x | >= 0.5x hello-world | yes |"
    )
    missed = {**PAGE_ROW, "met": False, "figure": "a | b"}
    assert run_all.table_rows("pages", [missed])[0].endswith("| **no** |")
    assert "a \\| b" in run_all.table_rows("pages", [missed])[0]


def test_a_row_not_run_shows_why() -> None:
    entry = {**row("load", None, "req/s", goal="g", database="postgresql"), "note": "not run: no"}
    (line,) = run_all.table_rows("journey", [entry])
    assert "| postgresql | not run: no |" in line


def test_a_malformed_row_is_shown_not_fatal() -> None:
    (line,) = run_all.table_rows("export", [{"figure": "x"}])
    assert "malformed row" in line


def test_render_lists_absent_and_failed_benchmarks_and_the_machine() -> None:
    runs = [
        run_all.Run("pages", "ok", 12.0),
        run_all.Run("pdf", "failed (exit 1)", 3.0),
        run_all.Run("export", "absent (no bench script in this tree)"),
    ]
    info = {
        "cpu": "AMD EPYC",
        "cores": 2,
        "ram_gib": 23.4,
        "os": "Debian GNU/Linux 12",
        "python": "3.11.7",
        "sqlite": "3.40.1",
        "postgresql": None,
    }
    text = run_all.render(info, runs, {"pages": _result("pages", [PAGE_ROW])}, "today", False)
    assert "| pages | questionnaire page | sqlite |" in text
    assert "| pdf | (failed (exit 1)) |" in text
    assert "| export | (absent (no bench script in this tree)) |" in text
    assert "| CPU | AMD EPYC |" in text and "| RAM | 23.4 GiB |" in text
    assert "| PostgreSQL | not configured (SELFCHECK_BENCH_POSTGRES_URL) |" in text
    assert "| pages | ok | 12 s |" in text
    assert "quick mode" in run_all.render(info, runs, {}, "today", True)
    assert "load average" not in text
    assert "| 1-minute load average, before / after the suite | 9.50 / 11.2" in run_all.render(
        info, runs, {}, "today", False, (9.5, 11.2)
    )


def test_replace_section_keeps_the_text_around() -> None:
    document = f"# Title\n\nintro\n\n{run_all.BEGIN}\nold table\n{run_all.END}\n\n## Notes\n"
    updated = run_all.replace_section(document, "new table")
    assert updated == f"# Title\n\nintro\n\n{run_all.BEGIN}\nnew table\n{run_all.END}\n\n## Notes\n"
    appended = run_all.replace_section("# Title\n", "table")
    assert appended == f"# Title\n\n{run_all.BEGIN}\ntable\n{run_all.END}\n"


def test_load_results_skips_missing_broken_and_off_contract_files(tmp_path: Path) -> None:
    (tmp_path / "pages.json").write_text(json.dumps(_result("pages", [PAGE_ROW])))
    (tmp_path / "pdf.json").write_text("{not json")
    (tmp_path / "old.json").write_text(json.dumps({"benchmark": "old", "passed": True}))
    found = run_all.load_results(["pages", "pdf", "old", "export"], tmp_path)
    assert list(found) == ["pages"]


def test_discover_finds_bench_scripts(tmp_path: Path) -> None:
    for name in ("bench_b.py", "bench_a.py", "common.py", "run_all.py"):
        (tmp_path / name).write_text("")
    assert run_all.discover(tmp_path) == ["a", "b"]
