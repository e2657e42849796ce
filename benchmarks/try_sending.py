"""The start (POST /s) and the sending (POST /check) timed one by one, in process.

    SELFCHECK_BENCH_DATABASE_URL=postgresql+psycopg://…/selfcheck_bench_x \
        benchmarks/boost.sh -15 .venv/bin/python benchmarks/try_sending.py --people 40

The app is built as the journey benchmark builds it (`wsgi_bench.py`, the start's rate limit
raised), on a database the journey benchmark has migrated and filled (its first structure
is used); no gunicorn, no load: each person's start and sending is timed alone (wall time
and the process's CPU; PostgreSQL's own CPU is not counted), after 5 people of warm-up.
What the two requests cost by themselves, where the journey load's figures mix every
request (issue 18, part 6, ninth pass: the sending's dashboard facts in 4 round trips).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

WARM_UP = 5


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"median {statistics.median(ordered):.2f} ms, mean {statistics.mean(ordered):.2f}, "
        f"p90 {ordered[int(len(ordered) * 0.9)]:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=40, help="people timed (default 40)")
    args = parser.parse_args()

    import wsgi_bench  # the app as the benchmark builds it (SELFCHECK_BENCH_DATABASE_URL)
    from sqlalchemy import select

    from selfcheck.platform.db import EXTENSION_KEY
    from selfcheck.platform.models import Structure
    from selfcheck.questionnaire.model import FormKind
    from tests.support import ANSWERS, Visitor

    app = wsgi_bench.app
    with app.extensions[EXTENSION_KEY].session() as session:
        slug = session.scalar(select(Structure.slug).order_by(Structure.id))
    if slug is None:
        parser.error("no structure: run bench_journey.py on this database first")
    times: dict[str, tuple[list[float], list[float]]] = {
        "start (POST /s)": ([], []),
        "sending (POST /check)": ([], []),
    }
    for person in range(args.people + WARM_UP):
        visitor = Visitor(app.test_client())
        visitor.get(f"/s/{slug}")
        chosen = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
        assert chosen.action is not None
        wall, cpu = time.perf_counter(), time.process_time()
        first = visitor.post(chosen.action, chosen.hidden())
        started = (time.perf_counter() - wall, time.process_time() - cpu)
        visitor.fill(ANSWERS[FormKind.BEFORE], first)
        wall, cpu = time.perf_counter(), time.process_time()
        sent = visitor.submit()
        sending = (time.perf_counter() - wall, time.process_time() - cpu)
        assert first.status_code == 302 and sent.status_code == 302
        if person >= WARM_UP:
            for (walls, cpus), (w, c) in zip(times.values(), (started, sending), strict=True):
                walls.append(w * 1000)
                cpus.append(c * 1000)
    print(f"{ROOT} ({args.people} people)")
    for name, (walls, cpus) in times.items():
        print(f"  {name}: wall {summary(walls)}; CPU {summary(cpus)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
