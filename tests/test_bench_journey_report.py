"""bench_journey's report of issue 18's goal 2 (round 18): the ceiling without pauses next to
Little's law and the people it serves at the form's typical pace, the p95 with pauses, and
how PostgreSQL was reached."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCH_DIR) not in sys.path:  # the benchmarks are scripts, not a package
    sys.path.insert(0, str(BENCH_DIR))

import bench_journey  # noqa: E402


def _load(think: float = 0.0) -> bench_journey.Load:
    return bench_journey.Load(
        target="journey",
        users=200,
        duration=30.0,
        journeys=100,
        requests=10_200,  # 340 req/s
        errors=0,
        p50_ms=450.0,
        p95_ms=1_400.0 if not think else 30.0,
        messages=[],
        mean_ms=590.0 if not think else 10.0,
        think=think,
        requests_per_journey=34,
    )


def test_the_ceiling_is_reported_with_littles_law_and_the_people_it_serves() -> None:
    rows = {r["figure"]: r for r in bench_journey.summary_rows("postgresql", _load(), _load())}
    mean = next(r for figure, r in rows.items() if "Little's law" in figure)
    assert mean["value"] == 590.0
    assert round(mean["baseline_value"], 1) == round(200 / 340 * 1000, 1)
    people = next(r for figure, r in rows.items() if "typical pace" in figure)
    typical = bench_journey.typical_journey_seconds()
    assert 60 <= typical <= 3600  # the form's own estimate, from the item bank
    assert round(people["value"], 3) == round(340 * typical / 34, 3)


def test_a_load_with_pauses_has_no_littles_law_row_and_its_own_p95_goal() -> None:
    paused = _load(think=2.0)
    rows = bench_journey.summary_rows("postgresql", paused, paused)
    assert not any("Little's law" in r["figure"] for r in rows)
    extra = bench_journey.paused_rows("postgresql", paused)
    p95 = next(r for r in extra if r["figure"].endswith("p95 latency"))
    assert p95["value"] == 30.0 and p95["met"] is True and "think 2 s" in p95["figure"]


def test_how_postgresql_is_reached() -> None:
    reached = bench_journey.postgres_connection
    assert reached(None) is None
    assert reached("postgresql+psycopg://u:p@127.0.0.1:5432/db") == "tcp 127.0.0.1"
    assert reached("postgresql+psycopg://u:p@/db?host=/var/run/postgresql") == "unix socket"
