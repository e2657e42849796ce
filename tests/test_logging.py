"""Structured JSON logs: one object per line, request fields, and no personal data."""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from selfcheck.platform import log
from selfcheck.platform.log import REQUEST_ID_HEADER, REQUEST_LOGGER, JsonFormatter
from tests.conftest import AppFactory
from tests.support import Visitor, only_handler

CODE = "K7M2QX9RT"
PERSON = "8675309"  # a person's id in a staff page's address (the code never is)


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
    response = client.get(f"/staff/people/{PERSON}?secret=1")
    text = capture.getvalue()
    assert PERSON not in text and "secret" not in text
    entries = [e for e in _read(capture) if e["logger"] == REQUEST_LOGGER]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["route"] == "/staff/people/<int:person_id>"
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
        "flask", logging.ERROR, __file__, 1, f"Exception on /staff/people/{PERSON} [GET]", (), None
    )
    with app.test_request_context(f"/staff/people/{PERSON}"):
        entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "Exception on /staff/people/<int:person_id> [GET]"
    assert entry["route"] == "/staff/people/<int:person_id>"


@pytest.fixture
def alone() -> Iterator[tuple[logging.Logger, logging.StreamHandler[io.StringIO]]]:
    """The access logger with a JSON stream handler: the one it reaches, as in production,
    inside `only_handler` (in the test itself: pytest attaches its own at each phase)."""
    logger = logging.getLogger(REQUEST_LOGGER)
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _access(config: dict[str, object]) -> None:
    log.access_line(
        config,
        request_id="a" * 32,
        method="GET",
        route="/q/<page_code>",
        endpoint="journey.question",
        status=200,
        started=None,
        remote_addr="127.0.0.1",
    )


@pytest.mark.parametrize("client_ip", [False, True])
def test_the_access_line_written_straight_is_the_formatters_line(
    alone: tuple[logging.Logger, logging.StreamHandler[io.StringIO]], client_ip: bool
) -> None:
    """Outside a request (the question pages served before Flask) the line goes straight to
    the one handler (issue 18, round 18): the same line as the record formatted by
    `JsonFormatter`, key order kept, but its time."""
    logger, handler = alone
    config: dict[str, object] = {"SELFCHECK_LOG_CLIENT_IP": client_ip}
    with only_handler(logger, handler):
        assert log._only_json_stream(logger, logging.INFO) is handler
        _access(config)
    straight = handler.stream.getvalue()
    assert straight.endswith("\n") and straight.count("\n") == 1
    # The same record through logging (another handler too: `_only_json_stream` gives way).
    other = logging.StreamHandler(io.StringIO())
    other.setFormatter(JsonFormatter())
    with only_handler(logger, handler):
        logger.addHandler(other)
        try:
            assert log._only_json_stream(logger, logging.INFO) is None
            _access(config)
        finally:
            logger.removeHandler(other)
    lines = [json.loads(straight), *_read(handler.stream)[1:], *_read(other.stream)]  # type: ignore[arg-type]
    assert len(lines) == 3
    for line in lines:
        line.pop("time")
    assert [list(line.items()) for line in lines] == [list(lines[0].items())] * 3
    expected = ["level", "logger", "message", "request_id", "method", "route", "status"]
    assert list(lines[0]) == [*expected, "duration_ms", *(["client_ip"] if client_ip else [])]


def test_the_access_line_goes_through_logging_when_anything_may_change_it(
    alone: tuple[logging.Logger, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, handler = alone
    with only_handler(logger, handler):
        _check_each_change_gives_way(logger, handler)


def _check_each_change_gives_way(
    logger: logging.Logger, handler: logging.StreamHandler[io.StringIO]
) -> None:
    assert log._only_json_stream(logger, logging.INFO) is handler
    seen: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record)
        return True

    for owner in (logger, handler):  # a filter on the logger or on the handler
        owner.addFilter(keep)
        try:
            assert log._only_json_stream(logger, logging.INFO) is None
            _access({"SELFCHECK_LOG_CLIENT_IP": False})
        finally:
            owner.removeFilter(keep)
    assert len(seen) == 2
    handler.setFormatter(logging.Formatter())  # another formatter
    assert log._only_json_stream(logger, logging.INFO) is None
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.WARNING)  # a handler that would drop it
    assert log._only_json_stream(logger, logging.INFO) is None
    handler.setLevel(logging.NOTSET)
    logger.disabled = True
    try:
        assert log._only_json_stream(logger, logging.INFO) is None
    finally:
        logger.disabled = False


def test_a_failed_write_is_handled_as_logging_does(
    alone: tuple[logging.Logger, logging.StreamHandler[io.StringIO]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger, handler = alone
    handled: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", handled.append)
    handler.stream.close()  # writing raises ValueError
    with only_handler(logger, handler):
        assert log._only_json_stream(logger, logging.INFO) is handler
        _access({"SELFCHECK_LOG_CLIENT_IP": False})
    assert [record.getMessage() for record in handled] == ["request"]
    assert handled[0].__dict__["route"] == "/q/<page_code>"


def test_a_new_request_id_is_uuid4_hex_of_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """`new_request_id` makes `uuid.uuid4().hex` without the `UUID` object (issue 18)."""
    for drawn in (bytes(16), b"\xff" * 16, *(os.urandom(16) for _ in range(200))):
        monkeypatch.setattr(os, "urandom", lambda _n, drawn=drawn: drawn)
        made = log.new_request_id("")
        assert made == uuid.UUID(bytes=drawn, version=4).hex
        assert uuid.UUID(made).version == 4 and log.REQUEST_ID_RE.match(made)
    assert log.new_request_id("a" * 32) == "a" * 32
