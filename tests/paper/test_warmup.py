"""A web worker warms up for its first paper form in the background (paper/warmup.py).

The renderer is counted, not run (a render takes half a second): what is tested is when the
warm-up runs, what it renders and that a failure only logs. benchmarks/bench_stamping.py
measures what it buys (a fresh worker's first blank form).
"""

from __future__ import annotations

import logging
import runpy
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from selfcheck.paper import operations as paper
from selfcheck.paper import warmup
from selfcheck.questionnaire.model import FormKind

# The app's database is incidental: run on the SQLite pass only (tests/database_use.py).
pytestmark = pytest.mark.one_database(
    reason="the warm-up renders a blank form from the item bank (counted): no query"
)

ROOT = Path(__file__).resolve().parents[2]


class Counted:
    """Stands for `PaperRenderer.questionnaires`: records each call and its thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[paper.Copy, ...], dict[str, Any], str]] = []

    def __call__(self, copies: Any, **options: Any) -> bytes:
        self.calls.append((tuple(copies), options, threading.current_thread().name))
        return b"%PDF-1.7\n%%EOF\n"


@pytest.fixture
def renders(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Counted:
    counted = Counted()
    monkeypatch.setattr(paper.renderer(app), "questionnaires", counted)
    monkeypatch.delenv(warmup.CONFIG_KEY, raising=False)
    return counted


def served(app: Flask) -> Flask:
    """The app as a production worker has it (the suite's apps are `testing`)."""
    app.testing = False
    return app


def test_a_worker_renders_one_blank_form_in_the_background(
    app: Flask, renders: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    collections: list[str] = []

    def collect() -> int:
        collections.append(threading.current_thread().name)
        return 0

    monkeypatch.setattr(warmup.gc, "collect", collect)
    thread = warmup.start(served(app))
    assert thread is not None and thread.daemon
    thread.join(timeout=10)
    assert not thread.is_alive()
    [(copies, options, name)] = renders.calls
    assert copies == (paper.Copy(FormKind.BEFORE, app.config["BABEL_DEFAULT_LOCALE"], None),)
    assert options == {"site_url": warmup.SITE_URL}
    assert name == "selfcheck-paper-warmup"  # not the thread that serves requests
    assert collections == [name]  # the deferred full collection: not in the first request
    assert warmup.start(app) is None  # once per app
    assert len(renders.calls) == 1


def test_no_warm_up_in_tests_debug_mode_or_when_turned_off(
    app: Flask, renders: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert warmup.start(app) is None  # testing
    assert warmup.start(object()) is None  # not a Flask app (a wrapped WSGI callable)
    served(app).debug = True
    assert warmup.start(app) is None
    app.debug = False
    monkeypatch.setenv(warmup.CONFIG_KEY, "0")
    assert not warmup.enabled(app)
    app.config[warmup.CONFIG_KEY] = True  # the app's config wins over the environment
    assert warmup.enabled(app)
    app.config[warmup.CONFIG_KEY] = "off"
    assert warmup.start(app) is None
    assert renders.calls == []


def test_a_failed_warm_up_is_logged_not_raised(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(copies: Any, **options: Any) -> bytes:
        raise OSError("no fonts")

    monkeypatch.setattr(paper.renderer(app), "questionnaires", broken)
    with caplog.at_level(logging.ERROR, logger=warmup.__name__):
        assert warmup.warm(app) is None
    assert "paper warm-up failed" in caplog.text


def test_gunicorn_starts_it_once_a_worker_has_its_app(
    app: Flask, renders: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SELFCHECK_STATISTICS_WARMUP", "0")  # tested on its own
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    settings["post_worker_init"](SimpleNamespace(wsgi=served(app)))
    thread = app.extensions[warmup.EXTENSION_KEY]
    thread.join(timeout=10)
    assert len(renders.calls) == 1


def test_the_warm_up_keeps_the_first_form_when_the_address_is_known(
    app: Flask, renders: Counted, tmp_path: Path
) -> None:
    from selfcheck import prefill
    from selfcheck.paper import blank_cache

    app.config[blank_cache.CONFIG_KEY] = str(tmp_path / "blanks")
    app.config[prefill.SITE_KEY] = "https://selfcheck.example.org"
    assert warmup.warm(served(app)) is not None
    [(copies, options, _)] = renders.calls
    address = "https://selfcheck.example.org/code"
    assert copies == (paper.Copy(FormKind.BEFORE, app.config["BABEL_DEFAULT_LOCALE"], None),)
    assert options == {"site_url": address}
    # kept: the first person who asks for it is served from the file
    with app.app_context():
        data = blank_cache.blank_form(
            paper.renderer(app),
            FormKind.BEFORE,
            app.config["BABEL_DEFAULT_LOCALE"],
            site_url=address,
            cache=tmp_path / "blanks",
        )
    assert data == b"%PDF-1.7\n%%EOF\n" and len(renders.calls) == 1
    # a second worker's warm-up renders (to warm itself) but does not write it again
    assert warmup.warm(app) is not None and len(renders.calls) == 2
