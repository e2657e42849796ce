"""A web worker imports SciPy in the background once it has its app (evaluation/warmup.py).

What is tested: when the warm-up runs (gunicorn's hook, once per app; never in tests, debug
mode or when turned off), that it runs beside the request thread and that a failure only logs.
bench_dashboard.py measures the first view it spares."""

from __future__ import annotations

import logging
import runpy
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask

from selfcheck.evaluation import statistics, warmup
from selfcheck.paper import warmup as paper_warmup

pytestmark = pytest.mark.one_database(reason="an import in a thread: no query")

ROOT = Path(__file__).resolve().parents[3]


class Counted:
    """Stands for `statistics.load_scipy`: records the thread of each call."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def __call__(self) -> None:
        self.threads.append(threading.current_thread().name)


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Counted:
    counted = Counted()
    monkeypatch.setattr(statistics, "load_scipy", counted)
    monkeypatch.delenv(warmup.CONFIG_KEY, raising=False)
    return counted


def served(app: Flask) -> Flask:
    """The app as a production worker has it (the suite's apps are `testing`)."""
    app.testing = False
    return app


def test_a_worker_imports_scipy_in_the_background_once(app: Flask, loads: Counted) -> None:
    thread = warmup.start(served(app))
    assert thread is not None and thread.daemon
    thread.join(timeout=10)
    assert loads.threads == ["selfcheck-statistics-warmup"]  # not the request thread
    assert warmup.start(app) is None  # once per app
    assert loads.threads == ["selfcheck-statistics-warmup"]


def test_no_warm_up_in_tests_debug_mode_or_when_turned_off(
    app: Flask, loads: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert warmup.start(app) is None  # testing
    assert warmup.start(object()) is None  # not a Flask app
    served(app).debug = True
    assert warmup.start(app) is None
    app.debug = False
    monkeypatch.setenv(warmup.CONFIG_KEY, "off")
    assert warmup.start(app) is None
    monkeypatch.setenv(warmup.CONFIG_KEY, "1")
    app.config[warmup.CONFIG_KEY] = "0"  # the app's config wins over the environment
    assert warmup.start(app) is None
    assert loads.threads == []


def test_a_failed_warm_up_is_logged_not_raised(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise ImportError("no scipy")

    monkeypatch.setattr(statistics, "load_scipy", broken)
    with caplog.at_level(logging.ERROR, logger=warmup.__name__):
        assert warmup.warm(app) is None
    assert "statistics warm-up failed" in caplog.text


def test_the_real_import_leaves_scipy_loaded(app: Flask) -> None:
    import sys

    seconds = warmup.warm(app)
    assert seconds is not None and seconds >= 0
    assert "scipy.stats" in sys.modules and "scipy.optimize" in sys.modules


def test_gunicorn_starts_both_warm_ups_once_a_worker_has_its_app(
    app: Flask, loads: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paper_warmup.CONFIG_KEY, "0")  # the paper one has tests of its own
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    settings["post_worker_init"](SimpleNamespace(wsgi=served(app)))
    app.extensions[warmup.EXTENSION_KEY].join(timeout=10)
    assert loads.threads == ["selfcheck-statistics-warmup"]
    assert paper_warmup.EXTENSION_KEY not in app.extensions


def test_attack24_a_warm_up_without_a_thread_never_stops_the_worker(
    app: Flask,
    loads: Counted,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A thread that cannot start (a process or cgroup limit on threads) raised out of
    gunicorn's `post_worker_init`: the worker failed to boot, and gunicorn then halts the whole
    server ("Reason: Worker failed to boot", exit 3: seen with gunicorn 27). Now the worker
    serves without its warm-ups, and the log says so."""

    def no_thread(_thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    with caplog.at_level(logging.WARNING):
        settings["post_worker_init"](SimpleNamespace(wsgi=served(app)))
    assert loads.threads == []
    assert caplog.text.count("background warm-up not started") == 2  # paper and statistics
    assert app.test_client().get("/").status_code == 200
