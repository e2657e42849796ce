"""Background warm-ups of a web worker, started once it has built its app (gunicorn's
`post_worker_init`, gunicorn.conf.py): work whose first run in a process costs much more than
the next ones (a first paper form, SciPy's import), done in a daemon thread while the worker
already answers requests, so that no user pays it.

Only for processes that serve requests: never in tests (the app is `testing`), in debug mode
(templates and modules reload), nor in CLI commands, which do not call it. Each warm-up has a
switch of its own (the app's config, else the environment variable; default on).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from flask import Flask

log = logging.getLogger(__name__)


def enabled(app: Flask, switch: str) -> bool:
    """Whether the warm-up turned on or off by `switch` runs for this app: not in tests or
    debug mode, nor when turned off (`0`, `false`, `no`, `off` or empty)."""
    if app.testing or app.debug:
        return False
    configured = app.config.get(switch)
    if configured is None:
        configured = os.environ.get(switch, "1")
    return str(configured).strip().lower() not in {"0", "false", "no", "off", ""}


def start(
    app: object, switch: str, name: str, work: Callable[[Flask], object]
) -> threading.Thread | None:
    """`work(app)` in a daemon thread called `name`, at most once per app (remembered in
    `app.extensions[name]`); None when not started (not a selfcheck app, tests, debug mode,
    turned off, or already started)."""
    if not isinstance(app, Flask) or not enabled(app, switch) or name in app.extensions:
        return None
    thread = threading.Thread(target=work, args=(app,), name=name, daemon=True)
    app.extensions[name] = thread
    try:
        thread.start()
    except RuntimeError:
        # No thread to be had (a process or cgroup limit on threads, e.g. systemd's
        # TasksMax). Raised out of gunicorn's `post_worker_init`, it failed the worker's boot,
        # and gunicorn then stops the whole server (attack24): a worker serves without it.
        log.warning("background warm-up not started: no thread available", extra={"warm_up": name})
        return None
    return thread


def timed(
    work: Callable[[], object], what: str, slower: str, logger: logging.Logger
) -> float | None:
    """Run a warm-up's `work`: the seconds it took, or None if it failed. A failure is logged
    (on `logger`, as "<what> warm-up failed (<slower>)"), never raised: it only means that
    `slower` happens."""
    began = time.perf_counter()
    try:
        work()
    except Exception:
        logger.exception("%s warm-up failed (%s)", what, slower)
        return None
    seconds = time.perf_counter() - began
    logger.info("%s warm-up done", what, extra={"seconds": round(seconds, 3)})
    return seconds
