"""cProfile inside gunicorn workers, by request kind (benchmarks only).

Installed by wsgi_bench.py when SELFCHECK_BENCH_PROFILE_DIR names a directory (bench_journey's
`--profile DIR` sets it). Each worker profiles every request in a profile of its kind
("GET /q", "POST /q", ...: method and first path segment, as sql_counter.py), from the
moment gunicorn calls the app until the app has returned its body (Flask's teardown
included; gunicorn's own work, accepting and writing, is not: it is the difference between
the worker's CPU per request, printed by bench_journey, and these profiles). With
SELFCHECK_BENCH_PROFILE_WHOLE=1 a single profile covers the whole worker instead, from the
app's import to the worker's exit, gunicorn included, all kinds together. The clock is the
worker's CPU time (`time.process_time`), not the wall clock: waiting for PostgreSQL's answer
costs no CPU of the worker (the wall clock showed psycopg's `wait` as 58 % of a page save
on the loaded machine: waiting for a backend to be scheduled).

The profiles are written when the worker exits (SIGTERM at the end of the run), as
`<dir>/<pid>-<kind>.prof`. Read them, summed over the workers:

    .venv/bin/python benchmarks/profile_worker.py DIR            # every kind
    .venv/bin/python benchmarks/profile_worker.py DIR --kind "POST /q" --top 40
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import os
import pstats
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

WHOLE = "whole"


def kind_of(environ: dict[str, Any]) -> str:
    segment = str(environ.get("PATH_INFO", "/")).split("/")[1]
    return f"{environ.get('REQUEST_METHOD')} /{segment}"


class Profiles:
    """One cProfile per request kind in this worker, written at exit."""

    def __init__(self, folder: Path, whole: bool = False) -> None:
        self.folder = folder
        self.profiles: dict[str, cProfile.Profile] = {}
        self.requests: dict[str, int] = {}
        self.whole = whole
        if whole:
            self.profiles[WHOLE] = profile = cProfile.Profile(time.process_time)
            profile.enable()
        atexit.register(self.write)

    def write(self) -> None:
        for kind, profile in self.profiles.items():
            profile.disable()
            name = re.sub(r"[^A-Za-z0-9]+", "_", kind).strip("_") or "root"
            count = self.requests.get(kind, sum(self.requests.values()))
            profile.dump_stats(self.folder / f"{os.getpid()}-{name}-{count}.prof")

    def wrap(self, wsgi: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def profiled(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            kind = kind_of(environ)
            self.requests[kind] = self.requests.get(kind, 0) + 1
            if self.whole:
                return wsgi(environ, start_response)
            profile = self.profiles.get(kind)
            if profile is None:
                profile = self.profiles[kind] = cProfile.Profile(time.process_time)
            profile.enable()
            try:
                # The body is a list (Flask), read whole here: its making is counted.
                return list(wsgi(environ, start_response))
            finally:
                profile.disable()

        return profiled


def read(folder: Path) -> dict[str, tuple[pstats.Stats, int]]:
    """Every worker's profiles, summed by kind, with their request counts."""
    found: dict[str, tuple[pstats.Stats, int]] = {}
    for path in sorted(folder.glob("*.prof")):
        _pid, name, count = path.stem.split("-", 2)
        if name in found:
            stats, requests = found[name]
            stats.add(str(path))
            found[name] = (stats, requests + int(count))
        else:
            found[name] = (pstats.Stats(str(path)), int(count))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the worker profiles of a directory.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--kind", help='one kind only, e.g. "POST /q"')
    parser.add_argument("--top", type=int, default=25, help="functions per kind")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumtime)")
    args = parser.parse_args(argv)
    wanted = re.sub(r"[^A-Za-z0-9]+", "_", args.kind).strip("_") if args.kind else None
    for name, (stats, requests) in sorted(read(args.folder).items()):
        if wanted and name != wanted:
            continue
        total = stats.total_tt  # type: ignore[attr-defined]
        per = total / requests * 1000 if requests else 0.0
        print(f"\n=== {name}: {requests} requests, {total:.2f} s CPU, {per:.3f} ms per request")
        stats.sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
