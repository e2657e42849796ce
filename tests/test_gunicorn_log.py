"""gunicorn's access record built only when a handler would write it (gunicorn_log.py)."""

from __future__ import annotations

import logging
import runpy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from selfcheck.platform.gunicorn_log import QuietAccessLogger, access_would_be_written

ROOT = Path(__file__).resolve().parents[1]


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def access_logger() -> Iterator[logging.Logger]:
    """gunicorn.access as gunicorn.conf.py leaves it, no handler and not propagated (pytest's
    own capture handlers, added to it for the test's call, taken off by `_bare`), restored."""
    logger = logging.getLogger("gunicorn.access")
    saved = (list(logger.handlers), logger.propagate, logger.level, logger.disabled)
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    for handler in saved[0]:
        logger.addHandler(handler)
    logger.propagate, logger.level, logger.disabled = saved[1], saved[2], saved[3]


def _bare(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = False


def _logger(monkeypatch: pytest.MonkeyPatch) -> tuple[QuietAccessLogger, list[int]]:
    """The logger with a `logconfig_dict` (so gunicorn's own switch says "enabled", as in
    production) whose dictConfig is not applied: the test's logging stays as it is."""
    monkeypatch.setattr(glogging, "dictConfig", lambda config: None)
    cfg = Config()
    cfg.set("logconfig_dict", {"version": 1})
    cfg.set("errorlog", "-")
    built: list[int] = []
    logger = QuietAccessLogger(cfg)
    original = logger.atoms

    def atoms(*args: Any) -> Any:
        built.append(1)
        return original(*args)

    monkeypatch.setattr(logger, "atoms", atoms)
    for handler in list(logger.error_log.handlers):  # gunicorn's stream handler on stderr
        if getattr(handler, "_gunicorn", False):
            logger.error_log.removeHandler(handler)
    return logger, built


def _request() -> tuple[Any, Any, dict[str, str]]:
    resp = SimpleNamespace(status="200 OK", headers=[("Content-Length", "5")], sent=5)
    req = SimpleNamespace(
        headers=[("HOST", "localhost")],
        uri="/q/x",
        method="GET",
        query="",
        version=(1, 1),
        path="/q/x",
    )
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/q/x",
        "PATH_INFO": "/q/x",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    return resp, req, environ


def test_no_access_record_is_built_when_no_handler_would_write_it(
    access_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger, built = _logger(monkeypatch)
    _bare(access_logger)
    assert logger.access_log_enabled  # gunicorn's own switch: on, because of logconfig_dict
    assert not access_would_be_written(access_logger)
    logger.access(*_request(), timedelta(milliseconds=3))
    assert built == []


def test_the_record_is_written_as_before_once_a_handler_would_take_it(
    access_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger, built = _logger(monkeypatch)
    _bare(access_logger)
    kept = Kept()
    access_logger.addHandler(kept)
    logger.access(*_request(), timedelta(milliseconds=3))
    assert built == [1]
    assert len(kept.records) == 1
    assert '"GET /q/x HTTP/1.1" 200' in kept.records[0].getMessage()


def test_a_parent_handler_counts_while_the_logger_propagates(
    access_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = logging.getLogger("gunicorn")
    kept = Kept()
    parent.addHandler(kept)
    try:
        logger, built = _logger(monkeypatch)  # gunicorn sets propagate off: on again below
        _bare(access_logger)
        access_logger.propagate = True
        assert access_would_be_written(access_logger)
        logger.access(*_request(), timedelta(milliseconds=3))
        assert built == [1] and len(kept.records) == 1
        access_logger.setLevel(logging.WARNING)  # INFO off: nothing would be written
        assert not access_would_be_written(access_logger)
    finally:
        parent.removeHandler(kept)


def test_production_settings_use_it_with_gunicorns_access_log_off() -> None:
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["logger_class"] == "selfcheck.platform.gunicorn_log.QuietAccessLogger"
    assert settings["accesslog"] is None
    access = settings["logconfig_dict"]["loggers"]["gunicorn.access"]
    assert access["handlers"] == [] and access["propagate"] is False
