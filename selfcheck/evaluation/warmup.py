"""A web worker imports SciPy in the background once it has built its app (issue 18).

The dashboard's figures need SciPy (evaluation/statistics.py), imported on first use: 0.6 s on
a quiet machine, 1.8 s or more under load, and about 60 MB, once per process. Without a
warm-up, the first dashboard view each worker serves paid it, on top of a first view's own
checks (BENCHMARKS.md, "Dashboard first view ever of an evaluator"). A worker that never
serves an evaluator spends the memory for nothing: `SELFCHECK_STATISTICS_WARMUP=0` turns it
off (platform/warmup.py says when it runs at all).
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from selfcheck.evaluation import statistics
from selfcheck.platform import warmup as background

CONFIG_KEY = "SELFCHECK_STATISTICS_WARMUP"
EXTENSION_KEY = "selfcheck-statistics-warmup"  # also the thread's name

log = logging.getLogger(__name__)


def start(app: object) -> threading.Thread | None:
    """Import SciPy in a background thread (at most once per app); None when not started."""
    return background.start(app, CONFIG_KEY, EXTENSION_KEY, warm)


def warm(app: Flask) -> float | None:
    """Import the statistics' SciPy modules; the seconds it took, or None if it failed
    (logged: a failed warm-up only means a slower first dashboard view)."""
    # Looked up at the call: tests stand in for it.
    return background.timed(
        lambda: statistics.load_scipy(),
        "statistics",
        "the first dashboard view will be slower",
        log,
    )
