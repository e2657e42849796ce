"""Database round trips per request, counted inside gunicorn workers (benchmarks only).

Installed by wsgi_bench.py when SELFCHECK_BENCH_SQL_DIR names a directory. SQLAlchemy events
count, per worker process: statements (`before_cursor_execute`), transactions begun, commits,
rollbacks, and pings (the dialect's `do_ping`, wrapped: a pooled connection tested with
`SELECT 1` before use, by `pool_pre_ping` on every check-out or by platform/db.py only when
it may be dead). psycopg sends BEGIN as a statement of its own, so on PostgreSQL
round trips = statements + begins + commits + rollbacks + pings. Also counted, not round
trips: statements compiled afresh (SQLAlchemy's compiled cache missed) and statements that
cannot be cached.

Each worker keeps cumulative totals by request kind ("GET /q", "POST /check"...) and writes
them after every request into `<dir>/<pid>.json` (one pwrite of a few hundred bytes): the
benchmark reads every worker's file before and after a load and subtracts.

Also kept by request kind (integers, microseconds; not round trips): the worker's wall time
from the WSGI call to the end of the request (`worker_wall_us`: the body is a list by then,
gunicorn's accept, parse and write are outside), the CPU of the worker's thread in it
(`worker_cpu_us`, `time.thread_time`), and on PostgreSQL the CPU of the backends of the
worker's pooled connections meanwhile (`backend_cpu_us`: their
`/proc/<pid>/schedstat` run time, in nanoseconds; a sync worker serves one request at a time,
so what its connections' backends ran between the start and the end of a request is that
request's). Reading the backends' schedstat costs the worker two reads of about 10 us per
connection and request (PostgreSQL only).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

KINDS = ("statements", "begins", "commits", "rollbacks", "pings")
# Not round trips: statements SQLAlchemy compiled afresh (its compiled cache missed), and
# statements it cannot cache at all (no cache key, caching off). Both cost the worker CPU.
COMPILES = ("compiled", "uncached")
COUNTED = (*KINDS, *COMPILES)
# Times by request kind (microseconds), not counts: see the module's docstring.
TIMES = ("worker_wall_us", "worker_cpu_us", "backend_cpu_us")
WIDTH = 8192  # bytes written at offset 0 each time (padded with spaces)


def in_autocommit(connection: Any) -> bool:
    """Whether `connection` runs without transactions: its AUTOCOMMIT execution option (the
    rate-limit counters), or its DBAPI connection in autocommit from its start (PostgreSQL's
    reader, platform/db.py). SQLAlchemy still fires begin, commit and rollback events on it,
    though nothing is sent (psycopg sends no BEGIN in autocommit, and its rollback outside a
    transaction sends nothing)."""
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return True
    try:
        dbapi_connection = connection.connection.dbapi_connection
    except Exception:  # closed or invalidated meanwhile
        return False
    return getattr(dbapi_connection, "autocommit", None) is True


class Counter:
    def __init__(self, engine: Engine, folder: Path, also: Iterable[Engine] = ()) -> None:
        """`also`: other engines of the app with pools of their own (PostgreSQL's reader,
        platform/db.py `Database.engines`), counted the same way."""
        self.now = dict.fromkeys(COUNTED, 0)
        self.totals: dict[str, dict[str, int]] = {}
        self.backends: set[int] = set()  # PostgreSQL backend pids of this worker's connections
        self.folder = folder
        self.fd: int | None = None
        self.pid = 0

        def bump(kind: str) -> Callable[..., None]:
            def handler(*_args: Any, **_kwargs: Any) -> None:
                self.now[kind] += 1

            return handler

        def transaction(kind: str) -> Callable[..., None]:
            # An AUTOCOMMIT connection (the rate-limit counters) sends no BEGIN, COMMIT or
            # ROLLBACK, although SQLAlchemy still fires the events.
            def handler(connection: Any, *_args: Any) -> None:
                if not in_autocommit(connection):
                    self.now[kind] += 1

            return handler

        for each in (engine, *also):
            self._listen(each, bump, transaction)

    def _listen(
        self,
        engine: Engine,
        bump: Callable[[str], Callable[..., None]],
        transaction: Callable[[str], Callable[..., None]],
    ) -> None:
        hit, miss = engine.dialect.CACHE_HIT, engine.dialect.CACHE_MISS

        def statement(
            _connection: Any, _cursor: Any, _sql: Any, _parameters: Any, context: Any, *_rest: Any
        ) -> None:
            self.now["statements"] += 1
            cache = getattr(context, "cache_hit", hit)
            if cache is miss:
                self.now["compiled"] += 1
            elif cache is not hit:
                self.now["uncached"] += 1

        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "begin", transaction("begins"))
        event.listen(engine, "commit", transaction("commits"))
        event.listen(engine, "rollback", transaction("rollbacks"))
        ping = engine.dialect.do_ping

        def counted_ping(dbapi_connection: Any) -> bool:
            self.now["pings"] += 1
            return ping(dbapi_connection)

        engine.dialect.do_ping = counted_ping  # type: ignore[method-assign]

        def connected(dbapi_connection: Any, _record: Any) -> None:
            info = getattr(dbapi_connection, "info", None)  # psycopg 3: libpq's, no round trip
            pid = getattr(info, "backend_pid", None)
            if isinstance(pid, int) and pid > 0:
                self.backends.add(pid)

        event.listen(engine, "connect", connected)

    def backend_ns(self) -> int:
        """Run time so far of the backends of this worker's connections (nanoseconds)."""
        total = 0
        for pid in list(self.backends):
            try:
                with open(f"/proc/{pid}/schedstat", "rb") as stats:
                    total += int(stats.read().split(maxsplit=1)[0])
            except (OSError, ValueError, IndexError):
                self.backends.discard(pid)  # connection closed: its backend is gone
        return total

    def record(self, key: str, times: tuple[int, int, int] = (0, 0, 0)) -> None:
        if self.fd is None or self.pid != os.getpid():  # opened in the worker, after fork
            self.pid = os.getpid()
            path = self.folder / f"{self.pid}.json"
            self.fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        entry = self.totals.setdefault(key, dict.fromkeys(("requests", *COUNTED, *TIMES), 0))
        entry["requests"] += 1
        for kind in COUNTED:
            entry[kind] += self.now[kind]
            self.now[kind] = 0
        for name, value in zip(TIMES, times, strict=True):
            entry[name] += value
        data = json.dumps(self.totals).encode()
        if len(data) < WIDTH:
            os.pwrite(self.fd, data.ljust(WIDTH), 0)

    def wrap(self, wsgi: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            backend = self.backend_ns() if self.backends else 0
            cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
            try:
                return wsgi(environ, start_response)  # Flask has torn down the request here
            finally:
                times = (
                    (time.perf_counter_ns() - wall) // 1000,
                    (time.thread_time_ns() - cpu) // 1000,
                    max(0, self.backend_ns() - backend) // 1000 if self.backends else 0,
                )
                segment = environ.get("PATH_INFO", "/").split("/")[1]
                self.record(f"{environ.get('REQUEST_METHOD')} /{segment}", times)

        return counted


def read_totals(folder: Path) -> dict[str, dict[str, int]]:
    """Every worker's totals, summed by request kind."""
    summed: dict[str, dict[str, int]] = {}
    for path in folder.glob("*.json"):
        text = path.read_text(encoding="utf-8").strip()
        if not text:
            continue
        for key, counts in json.loads(text).items():
            entry = summed.setdefault(key, dict.fromkeys(counts, 0))
            for name, value in counts.items():
                entry[name] = entry.get(name, 0) + value
    return summed


def difference(
    after: dict[str, dict[str, int]], before: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    out = {}
    for key, counts in after.items():
        earlier = before.get(key, {})
        delta = {name: value - earlier.get(name, 0) for name, value in counts.items()}
        if delta.get("requests"):
            out[key] = delta
    return out


def round_trips(counts: dict[str, int]) -> int:
    return sum(counts.get(kind, 0) for kind in KINDS)
