"""Structured JSON logs: one object per line, request fields, and no personal data."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from flask import Flask

from selfcheck.platform.log import REQUEST_ID_HEADER, REQUEST_LOGGER, JsonFormatter
from tests.conftest import AppFactory
from tests.support import Visitor

CODE = "K7M2QX9RT"


def _read(handler_stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in handler_stream.getvalue().splitlines()]


@pytest.fixture
def capture() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def test_a_record_outside_requests() -> None:
    record = logging.LogRecord(
        "selfcheck.x", logging.WARNING, __file__, 1, "hello %s", ("you",), None
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "selfcheck.x"
    assert entry["message"] == "hello you"
    assert entry["time"].endswith("+00:00")


def test_one_line_per_request_with_the_rule_not_the_path(app: Flask, capture: io.StringIO) -> None:
    client = app.test_client()
    response = client.get(f"/staff/people/{CODE}?secret=1")
    text = capture.getvalue()
    assert CODE not in text and "secret" not in text
    entries = [e for e in _read(capture) if e["logger"] == REQUEST_LOGGER]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["route"] == "/staff/people/<code>"
    assert entry["method"] == "GET"
    assert entry["status"] == response.status_code
    assert isinstance(entry["duration_ms"], float)
    assert entry["request_id"] == response.headers[REQUEST_ID_HEADER]
    assert "client_ip" not in entry


def test_unmatched_paths_are_not_logged(app: Flask, capture: io.StringIO) -> None:
    app.test_client().get(f"/nothing/{CODE}")
    entry = next(e for e in _read(capture) if e["logger"] == REQUEST_LOGGER)
    assert entry["route"] == "<unmatched>"
    assert entry["status"] == 404
    assert CODE not in capture.getvalue()


def test_form_values_are_never_logged(visitor: Visitor, capture: io.StringIO) -> None:
    visitor.get("/code")
    response = visitor.post("/code", {"code": CODE})
    assert response.status_code < 500
    assert CODE not in capture.getvalue()
    for line in capture.getvalue().splitlines():
        json.loads(line)  # every line is one JSON object


def test_a_refused_request_still_has_its_id(app: Flask, capture: io.StringIO) -> None:
    response = app.test_client().post("/code", data={"code": CODE})  # no CSRF token
    assert response.status_code == 400
    entry = next(e for e in _read(capture) if e["logger"] == REQUEST_LOGGER)
    assert entry["request_id"] == response.headers[REQUEST_ID_HEADER]
    assert isinstance(entry["duration_ms"], float)
    assert CODE not in capture.getvalue()


def test_a_proxy_request_id_is_kept_and_a_bad_one_replaced(app: Flask) -> None:
    client = app.test_client()
    kept = client.get("/", headers={REQUEST_ID_HEADER: "0123456789abcdef0123456789abcdef"})
    assert kept.headers[REQUEST_ID_HEADER] == "0123456789abcdef0123456789abcdef"
    replaced = client.get("/", headers={REQUEST_ID_HEADER: "<script>"})
    assert replaced.headers[REQUEST_ID_HEADER] != "<script>"
    assert len(replaced.headers[REQUEST_ID_HEADER]) == 32


def test_client_ip_only_when_configured(make_app: AppFactory, capture: io.StringIO) -> None:
    app = make_app(SELFCHECK_LOG_CLIENT_IP=True)
    app.test_client().get("/", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    entry = next(e for e in _read(capture) if e["logger"] == REQUEST_LOGGER)
    assert entry["client_ip"] == "192.0.2.7"


def test_exceptions_keep_the_stack_not_the_message(
    make_app: AppFactory, capture: io.StringIO
) -> None:
    app = make_app(TESTING=False)

    @app.get("/boom/<code>")
    def boom(code: str) -> str:
        raise ValueError(f"value {code} refused")

    response = app.test_client().get(f"/boom/{CODE}")
    assert response.status_code == 500
    text = capture.getvalue()
    assert CODE not in text and "refused" not in text
    errors = [e for e in _read(capture) if e["level"] == "ERROR"]
    assert errors, text
    exception = errors[0]["exception"]
    assert isinstance(exception, dict)
    assert exception["type"] == "ValueError"
    assert any("boom" in frame for frame in exception["stack"])
    assert errors[0]["route"] == "/boom/<code>"


def test_a_raw_path_in_a_message_becomes_the_rule(app: Flask) -> None:
    record = logging.LogRecord(
        "flask", logging.ERROR, __file__, 1, f"Exception on /staff/people/{CODE} [GET]", (), None
    )
    with app.test_request_context(f"/staff/people/{CODE}"):
        entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "Exception on /staff/people/<code> [GET]"
    assert entry["route"] == "/staff/people/<code>"
