"""Structured logs: one JSON object per line on stdout, with no personal data.

Every record becomes `{"time", "level", "logger", "message", ...}`; inside a request it also
carries the request id, the method and the URL *rule* (`/staff/people/<int:person_id>`, never
the raw path, which may hold an id, or a code in an address from before round 23). `init_app`
writes one line per request (the access log: method, rule, status, duration, request id) and
sends `X-Request-ID` back.

What is never logged: raw paths and query strings, form values, cookies, exception messages
(a database error's message may quote the values it refused: only the exception type and the
stack's file/line/function are kept), and the client's IP address unless
SELFCHECK_LOG_CLIENT_IP=1 (behind a proxy it is the address ProxyFix trusted).

`gunicorn.conf.py` installs `JsonFormatter` on the root logger and on gunicorn's own
loggers; `configure()` does the same for any other entry point.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from selfcheck.platform.config import _env_bool

REQUEST_LOGGER = "selfcheck.request"
REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's id (nginx $request_id is 32 hex digits) is kept only if it looks like one.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Probed every few seconds by load balancers: logged at DEBUG only.
QUIET_ENDPOINTS = frozenset({"health.healthz"})
UNMATCHED_ROUTE = "<unmatched>"
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def route_template() -> str:
    """The URL rule of the current request (`/q/<page_code>`), never the raw path."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED_ROUTE


def _stack(exc_info: Any) -> dict[str, Any]:
    """Exception type and frames (file, line, function): no message, no locals."""
    exc_type, _value, tb = exc_info
    frames = traceback.extract_tb(tb)
    return {
        "type": getattr(exc_type, "__qualname__", str(exc_type)),
        "stack": [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames],
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request fields, extras."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry = _entry(record.created, record.levelname, record.name, message)
        if has_request_context():
            # Flask's "Exception on /staff/people/1234 [GET]" quotes the raw path.
            rule = route_template()
            if request.path and request.path in message:
                entry["message"] = message.replace(request.path, rule)
            entry.setdefault("request_id", g.get("request_id"))
            entry.setdefault("method", request.method)
            entry.setdefault("route", rule)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = _stack(record.exc_info)
        return _dumps(entry)


def _entry(created: float, level: str, name: str, message: str) -> dict[str, Any]:
    """The fields every line starts with, in their order."""
    return {
        "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": name,
        "message": message,
    }


def _dumps(entry: dict[str, Any]) -> str:
    return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Send every log record, as JSON lines, to stdout (or `stream`)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def new_request_id(incoming: str) -> str:
    """The request's id: the proxy's (`X-Request-ID`) if it looks like one, else a new one:
    `uuid.uuid4().hex`, the same 16 random bytes with the same version and variant bits,
    without building a `UUID` object (issue 18, round 18)."""
    if REQUEST_ID_RE.match(incoming):
        return incoming
    number = int.from_bytes(os.urandom(16), "big")
    return "%032x" % (number & _UUID4_KEEP | _UUID4_SET)  # as `UUID.hex`


# What `uuid.UUID(bytes=..., version=4)` does to the number: variant RFC 4122, version 4.
_UUID4_KEEP = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def tag(response: Response, request_id: str | None) -> None:
    """Send the request id back (`X-Request-ID`)."""
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id


def access_line(
    config: Mapping[str, Any],
    *,
    request_id: str | None,
    method: str,
    route: str,
    endpoint: str | None,
    status: int,
    started: float | None,
    remote_addr: str | None,
) -> None:
    """Write the request's access line: the one function of the Flask hook (`init_app`) and
    of the question pages served before Flask (`journey.fast_page`), so that both write the
    same line. The request fields are passed in, not read from Flask's request context (the
    fast path has none): in a request context the formatter's own request fields are the
    same values, in the same order."""
    level = logging.DEBUG if endpoint in QUIET_ENDPOINTS else logging.INFO
    logger = _REQUEST_LOG
    if not logger.isEnabledFor(level):
        return
    duration = None if started is None else (time.perf_counter() - started) * 1000
    fields: dict[str, Any] = {
        "request_id": request_id,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": None if duration is None else round(duration, 2),
    }
    if config["SELFCHECK_LOG_CLIENT_IP"]:
        fields["client_ip"] = remote_addr
    if not has_request_context() and (handler := _only_json_stream(logger, level)) is not None:
        _write_line(handler, logger, level, fields)
        return
    # The record made directly: `logger.log` would first walk the stack for the caller's file
    # and line, which the JSON line does not show (issue 18, part 5).
    record = logger.makeRecord(logger.name, level, __file__, 0, "request", (), None, extra=fields)
    logger.handle(record)


def _only_json_stream(logger: logging.Logger, level: int) -> logging.StreamHandler[Any] | None:
    """The one handler a record of `logger` at `level` reaches, when it is a plain
    `StreamHandler` with a plain `JsonFormatter` and nothing on the way filters or changes
    the record (no filter on the logger or the handler, no other handler): the production
    setting (`gunicorn.conf.py`, `configure`). Else None: the record goes through logging."""
    if logger.disabled or logger.filters:
        return None
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found.extend(current.handlers)
        if not current.propagate:
            break
        current = current.parent
    if len(found) != 1:
        return None
    handler = found[0]
    if (
        type(handler) is not logging.StreamHandler
        or type(handler.formatter) is not JsonFormatter
        or handler.filters
        or level < handler.level
    ):
        return None
    return handler


def _write_line(
    handler: logging.StreamHandler[Any], logger: logging.Logger, level: int, fields: dict[str, Any]
) -> None:
    """What `logger.handle` of the access record does when `_only_json_stream` found its
    handler, without the `LogRecord`: the line `JsonFormatter.format` makes of that record
    outside a request context (its fields, then the record's extra fields, in their order),
    written and flushed as `StreamHandler.emit` does, under the handler's lock (issue 18,
    round 18: the record and the logging calls were about a fifth of a question page served
    before Flask). The access line is written outside Flask's request context only by the
    question pages served before Flask (`journey.fast_page`)."""
    entry = _entry(time.time(), logging.getLevelName(level), logger.name, "request")
    entry.update(fields)
    line = _dumps(entry)
    handler.acquire()
    try:
        handler.stream.write(line + handler.terminator)
        handler.flush()
    except RecursionError:
        raise
    except Exception:
        record = logger.makeRecord(
            logger.name, level, __file__, 0, "request", (), None, extra=fields
        )
        handler.handleError(record)
    finally:
        handler.release()


_REQUEST_LOG = logging.getLogger(REQUEST_LOGGER)


def init_app(app: Flask) -> None:
    """Request ids, and one access-log line per request (see module docstring)."""
    app.config.setdefault("SELFCHECK_LOG_CLIENT_IP", _env_bool("LOG_CLIENT_IP", False))

    def _start() -> None:
        g.request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER, ""))
        g.request_started = time.perf_counter()

    # First of all hooks: a request refused by an earlier one (CSRF) still gets its id.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)

    @app.after_request
    def _log(response: Response) -> Response:
        request_id = g.get("request_id")
        tag(response, request_id)
        access_line(
            app.config,
            request_id=request_id,
            method=request.method,
            route=route_template(),
            endpoint=request.endpoint,
            status=response.status_code,
            started=g.get("request_started"),
            remote_addr=request.remote_addr,
        )
        return response
