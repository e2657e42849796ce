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
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

KINDS = ("statements", "begins", "commits", "rollbacks", "pings")
# Not round trips: statements SQLAlchemy compiled afresh (its compiled cache missed), and
# statements it cannot cache at all (no cache key, caching off). Both cost the worker CPU.
COMPILES = ("compiled", "uncached")
COUNTED = (*KINDS, *COMPILES)
WIDTH = 8192  # bytes written at offset 0 each time (padded with spaces)


class Counter:
    def __init__(self, engine: Engine, folder: Path) -> None:
        self.now = dict.fromkeys(COUNTED, 0)
        self.totals: dict[str, dict[str, int]] = {}
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
                if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                    self.now[kind] += 1

            return handler

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

    def record(self, key: str) -> None:
        if self.fd is None or self.pid != os.getpid():  # opened in the worker, after fork
            self.pid = os.getpid()
            path = self.folder / f"{self.pid}.json"
            self.fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        entry = self.totals.setdefault(key, dict.fromkeys(("requests", *COUNTED), 0))
        entry["requests"] += 1
        for kind in COUNTED:
            entry[kind] += self.now[kind]
            self.now[kind] = 0
        data = json.dumps(self.totals).encode()
        if len(data) < WIDTH:
            os.pwrite(self.fd, data.ljust(WIDTH), 0)

    def wrap(self, wsgi: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            try:
                return wsgi(environ, start_response)  # Flask has torn down the request here
            finally:
                segment = environ.get("PATH_INFO", "/").split("/")[1]
                self.record(f"{environ.get('REQUEST_METHOD')} /{segment}")

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
