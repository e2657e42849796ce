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


def test_latency_and_cost_by_request_kind() -> None:
    """Round 20: the client's latencies and the workers' times (sql_counter's microseconds)
    meet by request kind, per request; the kinds as sql_counter keys them."""
    assert bench_journey.request_kind("POST", "/q/p_devices?x=1") == "POST /q"
    assert bench_journey.request_kind("GET", "/s/demo") == "GET /s"
    load = _load()
    load.kinds = {"POST /q": {"requests": 4, "p50_ms": 10.0, "p95_ms": 20.0, "mean_ms": 12.0}}
    load.sql = {
        "POST /q": {
            "requests": 4,
            "statements": 8,
            "worker_wall_us": 40_000,
            "worker_cpu_us": 8_000,
            "backend_cpu_us": 2_000,
        },
        "GET /q": {
            "requests": 2,
            "statements": 2,
            "worker_wall_us": 2_000,
            "worker_cpu_us": 1_000,
            "backend_cpu_us": 1_000,
        },
    }
    load.add_worker_times()
    saves = load.kinds["POST /q"]
    assert (saves["worker_wall_ms"], saves["worker_cpu_ms"], saves["backend_cpu_ms"]) == (
        10.0,
        2.0,
        0.5,
    )
    assert saves["p95_ms"] == 20.0 and saves["cpu_share"] == 10_000 / 12_000
    assert load.kinds["GET /q"]["requests"] is None  # the client saw none of that kind
    table = bench_journey.kinds_table("postgresql", load)
    assert "| POST /q | 4 | 10.00 | 20.00 | 12.00 | 10.00 | 2.00 | 0.50 | 83% |" in table
    assert load.round_trips == 10 / 6  # the round trips' sums are untouched
