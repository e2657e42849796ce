"""Per-request CPU inside a gunicorn worker: the app's part, gunicorn's part, the collector's.

`SELFCHECK_BENCH_TIMING_DIR=<dir>` (wsgi_bench.py and wsgi_bare.py) wraps the outermost WSGI
callable: for each request, the CPU time of the thread (`time.thread_time`) spent in the app
call and in iterating and closing its body, the CPU of the whole process between two
requests' starts (the rest is gunicorn's own work: accept, parse, write, heartbeat), and the
time of Python's garbage collections (`gc.callbacks`). Every 500 requests the means so far are
written to `<dir>/timing-<pid>.json` (read by perf_split.py). A probe, not a measure of rate.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

EVERY = 500


class Timing:
    def __init__(self, app: Callable[..., Iterable[bytes]], directory: Path) -> None:
        self.app = app
        self.directory = directory
        self.count = 0
        self.app_cpu = 0.0
        self.process_cpu = 0.0
        self.gc_time = 0.0
        self.gc_runs = [0, 0, 0]
        self._gc_started = 0.0
        self._last_process: float | None = None
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.thread_time()
        else:
            self.gc_time += time.thread_time() - self._gc_started
            self.gc_runs[info["generation"]] += 1

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        now = time.process_time()
        if self._last_process is not None:
            self.process_cpu += now - self._last_process
        self._last_process = now
        began = time.thread_time()
        body = self.app(environ, start_response)
        self.app_cpu += time.thread_time() - began
        try:
            yield from body  # gunicorn writes between the chunks: not counted as the app's
        finally:
            began = time.thread_time()
            close = getattr(body, "close", None)
            if close is not None:
                close()
            self.app_cpu += time.thread_time() - began
            self.count += 1
            if self.count % EVERY == 0:
                self.dump()

    def dump(self) -> None:
        data = {  # totals (seconds): perf_split.py takes differences
            "requests": self.count,
            "app_cpu": self.app_cpu,
            "process_cpu": self.process_cpu,
            "gc": self.gc_time,
            "gc_runs": self.gc_runs,
        }
        path = self.directory / f"timing-{os.getpid()}.json"
        path.write_text(json.dumps(data), encoding="utf-8")


def wrap(app: Any) -> Any:
    directory = os.environ.get("SELFCHECK_BENCH_TIMING_DIR")
    if not directory:
        return app
    return Timing(app, Path(directory))
