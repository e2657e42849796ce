"""What one request of each kind of the journey costs, in process: the worker's CPU and, on
PostgreSQL, the CPU of its backends (issue 18, part 6, tenth pass).

    SELFCHECK_BENCH_DATABASE_URL=postgresql+psycopg://…/selfcheck_bench_x \\
        benchmarks/boost.sh -15 .venv/bin/python benchmarks/try_kinds.py --prepare
    SELFCHECK_BENCH_DATABASE_URL=sqlite:////tmp/x/j.db … try_kinds.py --prepare

The app is built as the journey benchmark builds it (`wsgi_bench.py`); `--prepare` empties
and migrates the database first (bench_journey.py's `prepare_database`: give it a database of
its own). `--people` people go through a whole journey with the Flask test client (the WSGI
app, no gunicorn, no load), each request timed alone: CPU of this thread
(`time.thread_time`) and the run time of the backends of the engine's pooled connections
(`/proc/<pid>/schedstat`, as sql_counter.py), by request kind (method and first path
segment). Then GET /q of one page, GET /done and GET /summary of the last person are
requested `--repeat` times more. Medians are printed. `--profile KIND` (e.g. "GET /summary",
"POST /q", "all") runs every timed request of that kind (journeys and repeats) under cProfile and
prints the functions with the most own time (its timings then include the profiler's cost).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

WARM_UP = 3


class Backends:
    """Run time of the PostgreSQL backends of an engine's connections (nanoseconds)."""

    def __init__(self, *engines: Any) -> None:
        from sqlalchemy import event

        self.pids: set[int] = set()

        def connected(dbapi_connection: Any, _record: Any) -> None:
            pid = getattr(getattr(dbapi_connection, "info", None), "backend_pid", None)
            if isinstance(pid, int) and pid > 0:
                self.pids.add(pid)

        for engine in engines:  # PostgreSQL's reader has a pool of its own (platform/db.py)
            event.listen(engine, "connect", connected)

    def ns(self) -> int:
        total = 0
        for pid in list(self.pids):
            try:
                with open(f"/proc/{pid}/schedstat", "rb") as stats:
                    total += int(stats.read().split(maxsplit=1)[0])
            except (OSError, ValueError, IndexError):
                self.pids.discard(pid)
        return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=20, help="whole journeys timed")
    parser.add_argument("--repeat", type=int, default=300, help="repeats of the reads")
    parser.add_argument("--dump", help="with --profile: also write the profile to this file")
    parser.add_argument("--prepare", action="store_true", help="empty and migrate first")
    parser.add_argument("--profile", help='request kind to profile ("POST /q", "GET /summary")')
    args = parser.parse_args()
    url = os.environ.get("SELFCHECK_BENCH_DATABASE_URL", "")
    if args.prepare:
        from bench_journey import prepare_database

        prepare_database(url)

    import wsgi_bench  # the app as the benchmark builds it (SELFCHECK_BENCH_DATABASE_URL)
    from sqlalchemy import select
    from werkzeug.datastructures import MultiDict

    from selfcheck.platform.db import EXTENSION_KEY
    from selfcheck.platform.models import Structure
    from selfcheck.questionnaire.model import FormKind
    from tests.support import ANSWERS, Visitor, csrf_token, path_of

    app = wsgi_bench.app
    database = app.extensions[EXTENSION_KEY]
    engines = database.engines() if hasattr(database, "engines") else (database.engine,)
    backends = Backends(*engines)
    with app.extensions[EXTENSION_KEY].session() as session:
        slug = session.scalar(select(Structure.slug).order_by(Structure.id))
    assert slug is not None, "no structure: run with --prepare"
    times: dict[str, tuple[list[float], list[float]]] = {}

    profiler = cProfile.Profile(time.thread_time) if args.profile else None  # CPU, not wall

    def timed(kind: str, call: Callable[[], Any], record: bool = True) -> Any:
        profiled = (
            profiler is not None
            and record
            and (args.profile == "all" or kind.startswith(args.profile or "-"))
        )
        backend, cpu = backends.ns(), time.thread_time_ns()
        if profiled:
            profiler.enable()
        result = call()
        if profiled:
            profiler.disable()
        if record:
            cpus, backend_cpus = times.setdefault(kind, ([], []))
            cpus.append((time.thread_time_ns() - cpu) / 1e6)
            backend_cpus.append((backends.ns() - backend) / 1e6)
        return result

    def posted(visitor: Any, url: str, data: Any) -> Callable[[], Any]:
        """The POST alone: its form read from the page before the clock starts (the client's
        HTML parsing is not the server's cost)."""
        form = MultiDict(data)
        if "csrf_token" not in form:
            form["csrf_token"] = csrf_token(visitor.html)
        return partial(visitor.client.post, path_of(url), data=form)

    visitor: Any = None
    page_url = ""
    for person in range(args.people + WARM_UP):
        record = person >= WARM_UP
        visitor = Visitor(app.test_client())
        timed("GET /s", partial(visitor.get, f"/s/{slug}"), record)
        chosen = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
        assert chosen.action is not None
        response = timed("POST /s", posted(visitor, chosen.action, chosen.hidden()), record)
        assert response.status_code == 302, response.status_code
        answers = ANSWERS[FormKind.BEFORE]
        while response.headers["Location"].startswith("/q/"):
            page_url = response.headers["Location"]
            timed("GET /q", partial(visitor.get, page_url), record)
            page = visitor.page_form()
            data = MultiDict(page.hidden())
            for name in page.question_names():
                if name in answers:
                    given = answers[name]
                    data.setlist(name, [given] if isinstance(given, str) else list(given))
            data["action"] = "next"
            response = timed("POST /q", posted(visitor, page_url, data), record)
            assert response.status_code == 302, response.status_code
        timed("GET /check", partial(visitor.get, "/check"), record)
        sending = next(f for f in visitor.forms() if f.action and path_of(f.action) == "/check")
        sent = timed("POST /check", posted(visitor, "/check", sending.hidden()), record)
        assert sent.status_code == 302, sent.status_code
        timed("GET /done", partial(visitor.get, "/done"), record)
        timed("GET /summary", partial(visitor.get, "/summary"), record)
    assert visitor is not None
    repeats: dict[str, Callable[[], Any]] = {
        "GET /q (again)": partial(visitor.get, page_url),
        "GET /done (again)": partial(visitor.get, "/done"),
        "GET /summary (again)": partial(visitor.get, "/summary"),
    }
    for _ in range(args.repeat):
        for kind, call in repeats.items():
            timed(kind, call)
    print(f"{url.split('@')[-1]} ({args.people} journeys, {args.repeat} repeats)")
    print("| request | timed | worker CPU ms (median) | backend CPU ms (median, mean) |")
    print("|---|---:|---:|---:|")
    for kind, (cpus, backend_cpus) in times.items():
        print(
            f"| {kind} | {len(cpus)} | {statistics.median(cpus):.3f} "
            f"| {statistics.median(backend_cpus):.3f}, {statistics.mean(backend_cpus):.3f} |"
        )
    if profiler is not None:
        if args.dump:
            profiler.dump_stats(args.dump)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(45)
        pstats.Stats(profiler, stream=out).sort_stats("cumtime").print_stats(60)
        pstats.Stats(profiler, stream=out).sort_stats("cumtime").print_stats(
            "operations|fast_page|psycopg|sqlalchemy", 30
        )
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
