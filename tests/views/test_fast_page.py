"""Question pages served before Flask (`journey.fast_page`) are Flask's pages, byte for byte.

Every screen of each form, in several languages (Arabic, right to left, included), both
wordings and a display mode, is asked of Flask's path (the layer's `inner`) and then of the
layer: same status, same headers in the same order, same body, same access line (but its time
and duration), the request id being given by the "proxy" to both. And everything the layer
does not fully handle goes to Flask: no, tampered or expired cookie, a cookie due again, a
session holding staff keys, a query string, HEAD and POST, unknown or hidden screens, a page
not cached yet, an exception, a hook the layer does not know.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask, request_started
from sqlalchemy import event
from werkzeug.test import EnvironBuilder, run_wsgi_app

from selfcheck.journey import fast_page, views
from selfcheck.journey import operations as journey
from selfcheck.journey.page_cache import EXTENSION_KEY as PAGES_KEY
from selfcheck.journey.page_cache import PageCache
from selfcheck.platform import db, log, security, sessions
from selfcheck.platform.models import Structure
from selfcheck.questionnaire.model import FormKind
from tests.support import ANSWERS, Values, Visitor, only_handler, path_of, text_of

COOKIE = "selfcheck_session"
REQUEST_ID = "proxy-request-0001"

Result = tuple[str, list[tuple[str, str]], bytes, list[dict[str, Any]]]


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """The JSON access lines, as gunicorn writes them (log.JsonFormatter), to the one handler
    the access record reaches, as in production (`_run`): the layer then writes its line
    straight to it (`log._write_line`) and Flask's path through logging, both compared."""
    logger = logging.getLogger(log.REQUEST_LOGGER)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(log.JsonFormatter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    _HANDLERS[id(stream)] = handler
    yield stream
    del _HANDLERS[id(stream)]
    logger.removeHandler(handler)
    logger.setLevel(level)


# An `access_lines` stream -> its handler.
_HANDLERS: dict[int, logging.Handler] = {}


def _layer(app: Flask) -> fast_page.FastQuestionPages:
    layer = app.extensions[fast_page.EXTENSION_KEY]
    assert isinstance(layer, fast_page.FastQuestionPages)
    return layer


def _environ(
    path: str, cookie: str, method: str = "GET", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    sent = {"X-Request-ID": REQUEST_ID, **({"Cookie": cookie} if cookie else {}), **(headers or {})}
    client = {"REMOTE_ADDR": "127.0.0.1"}
    return EnvironBuilder(path=path, method=method, headers=sent, environ_base=client).get_environ()


def _run(wsgi: Any, environ: dict[str, Any], lines: io.StringIO) -> Result:
    lines.seek(0)
    lines.truncate()
    logger, handler = logging.getLogger(log.REQUEST_LOGGER), _HANDLERS[id(lines)]
    with only_handler(logger, handler):
        assert log._only_json_stream(logger, logging.INFO) is handler
        app_iter, status, headers = run_wsgi_app(wsgi, environ, buffered=True)
    body = b"".join(app_iter)
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    return status, headers.to_wsgi_list(), body, logged


def _comparable(logged: list[dict[str, Any]]) -> list[list[tuple[str, Any]]]:
    """The access lines, key order kept, without their time and duration."""
    varying = ("time", "duration_ms")
    return [[(k, v) for k, v in line.items() if k not in varying] for line in logged]


def both_paths(
    app: Flask, path: str, cookie: str, lines: io.StringIO, **kwargs: Any
) -> tuple[Result, Result, bool]:
    """Flask's answer, then the layer's, and whether the layer served it itself."""
    layer = _layer(app)
    flask_result = _run(layer.inner, _environ(path, cookie, **kwargs), lines)
    served = layer.served
    fast_result = _run(layer, _environ(path, cookie, **kwargs), lines)
    return flask_result, fast_result, layer.served == served + 1


def _timeless(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers with a cookie's expiry date left out: it is the time of the answer plus
    the cookie's lifetime, and the two answers compared can fall either side of a second."""
    return [(name, _EXPIRES.sub("Expires=…", value)) for name, value in headers]


_EXPIRES = re.compile(r"Expires=[^;]*")
# A CSRF token is the session's token, then the second it was signed and a signature: two
# answers either side of a second differ after the token's first dot, never before it.
_CSRF_SIGNED = re.compile(rb'(name="csrf_token" value="[^".]+)\.[^"]*"')


def _tokenless(body: bytes) -> bytes:
    return _CSRF_SIGNED.sub(rb'\1.(signed)"', body)


def assert_same(flask_result: Result, fast_result: Result) -> None:
    assert fast_result[0] == flask_result[0]
    assert _timeless(fast_result[1]) == _timeless(flask_result[1])
    assert _tokenless(fast_result[2]) == _tokenless(flask_result[2])
    assert _comparable(fast_result[3]) == _comparable(flask_result[3])


def _session_cookie(visitor: Visitor) -> str:
    found = visitor.client.get_cookie(COOKIE)
    assert found is not None
    return found.value


def walk(
    visitor: Visitor,
    app: Flask,
    location: str,
    answers: Values,
    lines: io.StringIO,
    cookies: str = "",
    headers: dict[str, str] | None = None,
    check: Callable[[bytes], None] = lambda _body: None,
) -> list[str]:
    """Answer page after page (as `Visitor.fill`), comparing both paths on every screen."""
    compared: list[str] = []
    while path_of(location).startswith("/q/"):
        path = path_of(location)
        cookie = f"{COOKIE}={_session_cookie(visitor)}" + (f"; {cookies}" if cookies else "")
        flask_result, fast_result, served = both_paths(app, path, cookie, lines, headers=headers)
        assert flask_result[0] == "200 OK", (path, flask_result[0])
        assert served, path
        assert_same(flask_result, fast_result)
        check(fast_result[2])
        compared.append(path.removeprefix("/q/"))
        visitor.get(location)
        names = visitor.page_form().question_names()
        given = {name: answers[name] for name in names if name in answers}
        posted = visitor.answer(given)
        if posted.status_code == 200 and 'name="confirmed_missing"' in text_of(posted):
            visitor.last = posted
            posted = visitor.answer(given)
        assert posted.status_code == 302, (path, posted.status_code)
        location = posted.headers["Location"]
    return compared


@pytest.mark.parametrize(
    ("form", "wording", "cookies", "headers", "marker"),
    [
        ("before", "standard", "", None, b'<html lang="fr" dir="ltr"'),
        ("before", "easy", "selfcheck_lang=en; display=large_contrast", None, b'lang="en"'),
        ("before", "standard", "", {"Accept-Language": "ar,fr;q=0.5"}, b'dir="rtl"'),
        ("retro", "standard", "selfcheck_lang=es", None, b'lang="es"'),
        ("retro", "easy", "display=contrast", {"Accept-Language": "ar"}, b'dir="rtl"'),
    ],
)
def test_every_screen_is_the_same_on_both_paths(
    visitor: Visitor,
    structure: Structure,
    app: Flask,
    access_lines: io.StringIO,
    form: str,
    wording: str,
    cookies: str,
    headers: dict[str, str] | None,
    marker: bytes,
) -> None:
    page = visitor.get(f"/s/{structure.slug}?wording={wording}")
    assert page.status_code == 200
    chosen = next(f for f in visitor.forms() if f.hidden().get("form") == form)
    assert chosen.action is not None
    started = visitor.post(chosen.action, chosen.hidden())

    def check(body: bytes) -> None:
        assert marker in body

    compared = walk(
        visitor, app, started.headers["Location"], ANSWERS[FormKind(form)], access_lines,
        cookies, headers, check,
    )  # fmt: skip
    assert len(compared) >= 5, compared


def test_the_after_form_too(
    visitor: Visitor, structure: Structure, app: Flask, access_lines: io.StringIO
) -> None:
    code = visitor.complete(structure.slug)
    visitor.follow(visitor.enter_code(code))
    started = visitor.post("/welcome-back")
    compared = walk(
        visitor, app, started.headers["Location"], ANSWERS[FormKind.AFTER], access_lines,
        "selfcheck_lang=en",
    )  # fmt: skip
    assert len(compared) >= 5, compared


@pytest.fixture
def on_page(visitor: Visitor, structure: Structure) -> str:
    """A person on their first page, which Flask's path has served (and cached) once."""
    location = visitor.start(structure.slug).headers["Location"]
    assert visitor.get(location).status_code == 200
    return path_of(location)


def _fast_served(app: Flask, path: str, cookie: str, lines: io.StringIO, **kwargs: Any) -> bool:
    flask_result, fast_result, served = both_paths(app, path, cookie, lines, **kwargs)
    assert_same(flask_result, fast_result)  # whoever served it
    return served


def test_the_page_served_before_flask_has_every_header(
    visitor: Visitor, app: Flask, on_page: str, access_lines: io.StringIO
) -> None:
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    layer = _layer(app)
    served = layer.served
    status, headers, body, logged = _run(layer, _environ(on_page, cookie), access_lines)
    assert layer.served == served + 1
    assert status == "200 OK"
    named = dict(headers)
    for name, value in security.HEADERS.items():
        assert named[name] == value
    assert named["Cache-Control"] == "no-store"
    assert named["X-Request-ID"] == REQUEST_ID
    assert named["Vary"] == "Cookie"
    assert named["Content-Type"] == "text/html; charset=utf-8"
    assert "Set-Cookie" not in named
    assert b"\x02" not in body  # every marker filled
    (line,) = logged
    assert line["route"] == "/q/<page_code>" and line["status"] == 200
    assert line["request_id"] == REQUEST_ID and line["method"] == "GET"
    assert on_page not in json.dumps(line)  # never the raw path
    # Without a proxy's id, a new one, as on Flask's path.
    environ = _environ(on_page, cookie, headers={"X-Request-ID": "bad id!"})
    _status, headers, _body, _logged = _run(layer, environ, access_lines)
    fresh = dict(headers)["X-Request-ID"]
    assert len(fresh) == 32 and fresh != REQUEST_ID
    # The headers are made once per process (`_Head`): each request still has its own id.
    environ = _environ(on_page, cookie, headers={"X-Request-ID": "proxy-request-0002"})
    _status, again, _body, _logged = _run(layer, environ, access_lines)
    assert dict(again)["X-Request-ID"] == "proxy-request-0002"
    assert [name for name, _ in again] == [name for name, _ in headers]


def test_hsts_and_the_client_address_when_configured(
    make_app: Callable[..., Flask], structure: Structure, access_lines: io.StringIO
) -> None:
    app = make_app(SESSION_COOKIE_SECURE=True, SELFCHECK_LOG_CLIENT_IP=True)
    client = app.test_client()
    secure: dict[str, Any] = {
        "base_url": "https://localhost",
        "headers": {"Referer": "https://localhost/"},
    }
    page = client.get(f"/s/{structure.slug}", **secure)
    visitor = Visitor(client)
    visitor.last, visitor.url = page, f"/s/{structure.slug}"
    chosen = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
    assert chosen.action is not None
    location = visitor.post(chosen.action, chosen.hidden(), **secure).headers["Location"]
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    path = path_of(location)
    assert client.get(path, **secure).status_code == 200
    flask_result, fast_result, served = both_paths(app, path, cookie, access_lines)
    assert served
    assert_same(flask_result, fast_result)
    assert dict(fast_result[1])["Strict-Transport-Security"] == security.HSTS
    assert fast_result[3][0]["client_ip"] == "127.0.0.1"  # when asked for, on both paths


def test_no_or_tampered_or_expired_cookie_goes_to_flask(
    visitor: Visitor,
    app: Flask,
    on_page: str,
    access_lines: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = _session_cookie(visitor)
    assert _fast_served(app, on_page, f"{COOKIE}={good}", access_lines)  # remembered now
    payload, signature = good.rsplit(".", 1)
    forged = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    for cookie in ("", f"{COOKIE}={forged}", f"{COOKIE}=garbage", f"{COOKIE}="):
        assert not _fast_served(app, on_page, cookie, access_lines)
        flask_result, _fast, _served = both_paths(app, on_page, cookie, access_lines)
        assert flask_result[0].startswith("302")  # back to the code page
    lifetime = app.permanent_session_lifetime.total_seconds()
    later = time.time() + lifetime + 1
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    assert not _fast_served(app, on_page, f"{COOKIE}={good}", access_lines)


def test_a_cookie_due_again_goes_to_flask_which_sends_it(
    visitor: Visitor,
    app: Flask,
    on_page: str,
    access_lines: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    assert _fast_served(app, on_page, cookie, access_lines)  # its session kept by the layer
    soon = time.time() + sessions.REFRESH_AFTER + 1
    monkeypatch.setattr(sessions.time, "time", lambda: soon)
    flask_result, _fast, served = both_paths(app, on_page, cookie, access_lines)
    assert not served
    assert any(name == "Set-Cookie" for name, _value in flask_result[1])


def test_a_kept_session_is_refused_once_the_secret_key_changes(
    visitor: Visitor, app: Flask, on_page: str, access_lines: io.StringIO
) -> None:
    """The layer keeps what a page needs of a verified session, but the interface checks
    the cookie on every request (`verified_at`): a new secret key forgets it."""
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    assert _fast_served(app, on_page, cookie, access_lines)
    assert _fast_served(app, on_page, cookie, access_lines)
    app.secret_key = "another secret key, long enough for the tests"
    assert not _fast_served(app, on_page, cookie, access_lines)
    flask_result, _fast, _served = both_paths(app, on_page, cookie, access_lines)
    assert flask_result[0].startswith("302")  # back to the code page


def test_a_session_with_other_keys_goes_to_flask(
    visitor: Visitor, app: Flask, on_page: str, access_lines: io.StringIO
) -> None:
    interface = app.session_interface
    assert isinstance(interface, sessions.RefreshingSessionInterface)
    session = interface.read(app, _session_cookie(visitor))
    assert session is not None
    serializer = interface.get_signing_serializer(app)
    assert serializer is not None
    assert _fast_served(app, on_page, f"{COOKIE}={serializer.dumps(dict(session))}", access_lines)
    for extra in ({"staff_id": 1}, {"_flashes": [("message", "x")]}, {"pending_2fa": {}}):
        cookie = f"{COOKIE}={serializer.dumps({**session, **extra})}"
        assert not _fast_served(app, on_page, cookie, access_lines)


def test_other_requests_go_to_flask(
    visitor: Visitor, app: Flask, on_page: str, access_lines: io.StringIO
) -> None:
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    assert _fast_served(app, on_page, cookie, access_lines)
    for path in (
        on_page + "?lang=en",  # a language choice: Flask sets its cookie
        on_page + "?display=large",
        on_page + "?return_to=check",
        "/q/no_such_screen",  # 404
        "/q/P_HELP",
        on_page + "/",
        "/check",
    ):
        assert not _fast_served(app, path, cookie, access_lines), path
    for method in ("HEAD", "POST"):
        assert not _fast_served(app, on_page, cookie, access_lines, method=method), method


def test_a_hidden_or_submitted_page_goes_to_flask(
    visitor: Visitor, structure: Structure, app: Flask, on_page: str, access_lines: io.StringIO
) -> None:
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    # Asked only after some answers (devices): not yet, so Flask sends the person on.
    flask_result, _fast, served = both_paths(app, "/q/p_device_use", cookie, access_lines)
    assert not served and flask_result[0].startswith("302")
    visitor.client.delete_cookie(COOKIE)
    visitor.complete(structure.slug)
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    flask_result, _fast, served = both_paths(app, "/q/p_help", cookie, access_lines)
    assert not served and flask_result[0].startswith("302")  # submitted: to /done


def test_a_page_not_cached_yet_goes_to_flask_then_is_served(
    visitor: Visitor, app: Flask, on_page: str, access_lines: io.StringIO
) -> None:
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    cache = app.extensions[PAGES_KEY]
    cache._store.clear()
    cache._built.clear()
    layer = _layer(app)
    served = layer.served
    database = app.extensions[db.EXTENSION_KEY]
    with _statements(database) as sent:
        assert _run(layer, _environ(on_page, cookie), access_lines)[0] == "200 OK"
    assert layer.served == served  # rendered by Flask
    # The state the layer read is handed to Flask's view, which does not read it again.
    assert len(sent) == 1 and sent[0].startswith("SELECT"), sent
    assert _fast_served(app, on_page, cookie, access_lines)


def test_a_redirect_left_to_flask_reads_the_state_once(
    visitor: Visitor, app: Flask, on_page: str, access_lines: io.StringIO
) -> None:
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    layer = _layer(app)
    database = app.extensions[db.EXTENSION_KEY]
    with _statements(database) as sent:
        status = _run(layer, _environ("/q/p_device_use", cookie), access_lines)[0]
    assert status.startswith("302") and len(sent) == 1, sent
    # Another person's state is never taken: Flask reads its own (response id checked).
    environ = _environ(on_page, cookie)
    environ[views.HANDED_STATE] = (-1, None)
    with _statements(database) as sent:
        assert _run(layer.inner, environ, access_lines)[0] == "200 OK"
    assert len(sent) == 1, sent


@contextmanager
def _statements(database: db.Database) -> Iterator[list[str]]:
    """The statements sent through every engine of the app (PostgreSQL's reader included)."""
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    for engine in database.engines():
        event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        for engine in database.engines():
            event.remove(engine, "before_cursor_execute", seen)


def test_an_exception_goes_to_flask(
    visitor: Visitor,
    app: Flask,
    on_page: str,
    access_lines: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cookie = f"{COOKIE}={_session_cookie(visitor)}"

    def broken(*_args: object) -> None:
        raise RuntimeError("something unforeseen")

    monkeypatch.setattr(PageCache, "built", broken)  # used by the layer only
    layer = _layer(app)
    served = layer.served
    status, _headers, _body, logged = _run(layer, _environ(on_page, cookie), access_lines)
    assert status == "200 OK" and layer.served == served
    assert len(logged) == 1  # one access line: Flask's


def test_a_hook_the_layer_does_not_know_turns_it_off(
    visitor: Visitor, app: Flask, on_page: str, access_lines: io.StringIO
) -> None:
    cookie = f"{COOKIE}={_session_cookie(visitor)}"
    assert _fast_served(app, on_page, cookie, access_lines)
    app.after_request_funcs[None].append(lambda response: response)
    assert not _fast_served(app, on_page, cookie, access_lines)
    app.after_request_funcs[None].pop()
    assert _fast_served(app, on_page, cookie, access_lines)

    def receiver(_sender: object, **_extra: object) -> None:
        pass

    request_started.connect(receiver, app)  # a signal the layer would not send
    try:
        assert not _fast_served(app, on_page, cookie, access_lines)
    finally:
        request_started.disconnect(receiver, app)
    assert _fast_served(app, on_page, cookie, access_lines)
    app.config[fast_page.CONFIG_KEY] = False
    assert not _fast_served(app, on_page, cookie, access_lines)


def test_the_state_read_on_a_bare_connection_is_the_one_read_in_a_session(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    """`load_state` on a bare connection sends the SELECT as its SQL text (compiled once
    per dialect): the same state as the statement run in a session."""
    started = visitor.start(structure.slug)
    visitor.fill(ANSWERS[FormKind.BEFORE], started, until="p_tasks_device")
    interface = app.session_interface
    assert isinstance(interface, sessions.RefreshingSessionInterface)
    session = interface.read(app, _session_cookie(visitor))
    assert session is not None
    response_id = session["response_id"]
    database = app.extensions[db.EXTENSION_KEY]
    with database.reader.connect() as connection:
        bare = journey.load_state(connection, response_id)
        assert journey.load_state(connection, response_id + 1000) is None
    with database.session() as orm:
        in_session = journey.load_state(orm, response_id)
    assert bare is not None and bare == in_session
    assert len(bare.answers) > 10
    # `read_state` (the layer's read): on a pooled DBAPI connection of the reader directly,
    # on both databases (PostgreSQL's reader is in autocommit from its connections' start).
    assert journey._bare_reader(database.reader)
    assert journey.read_state(database.reader, response_id) == in_session
    assert journey.read_state(database.reader, response_id + 1000) is None


def test_the_read_without_a_connection_gives_way_to_listeners_and_never_reuses_a_failure(
    visitor: Visitor, structure: Structure, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`journey.read_state` skips SQLAlchemy's `Connection` only when nothing listens to
    statements or new connections: a listener (the round-trip counters) sees the read. A
    failed read invalidates the pooled DBAPI connection, which is not given out again."""
    visitor.start(structure.slug)
    interface = app.session_interface
    assert isinstance(interface, sessions.RefreshingSessionInterface)
    session = interface.read(app, _session_cookie(visitor))
    assert session is not None
    response_id = session["response_id"]
    database = app.extensions[db.EXTENSION_KEY]
    reader = database.reader
    assert journey._bare_reader(reader)
    expected = journey.read_state(reader, response_id)
    seen: list[str] = []

    def statement(*args: Any) -> None:
        seen.append(args[2])

    def connected(_connection: Any) -> None:
        seen.append("connected")

    for name, listener in (("before_cursor_execute", statement), ("engine_connect", connected)):
        event.listen(reader, name, listener)
        try:
            assert not journey._bare_reader(reader)
            assert journey.read_state(reader, response_id) == expected
        finally:
            event.remove(reader, name, listener)
        assert journey._bare_reader(reader)
    assert len(seen) == 2 and "FROM response" in seen[0] and seen[1] == "connected"
    assert journey._bare_reader(reader.execution_options(isolation_level="AUTOCOMMIT")) is False

    invalidated: list[object] = []
    event.listen(reader, "invalidate", lambda *args: invalidated.append(args[0]))
    real = journey._state_sql
    monkeypatch.setattr(
        journey,
        "_state_sql",
        lambda dialect: (
            real(dialect)[0].replace("FROM response", "FROM nowhere"),
            real(dialect)[1],
        ),
    )
    with pytest.raises(Exception, match="nowhere"):
        journey.read_state(reader, response_id)
    assert len(invalidated) == 1
    assert reader.pool.checkedout() == 0
    monkeypatch.setattr(journey, "_state_sql", real)
    assert journey.read_state(reader, response_id) == expected  # on a new connection


def test_a_failed_read_on_the_dbapi_cursor_is_never_reused(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state is read on the connection's DBAPI cursor (`operations._read_rows`): a
    statement that fails invalidates the pooled connection, which is not given out again."""
    real = journey._state_sql

    def broken(dialect: Any) -> tuple[str, bool]:
        sql, positional = real(dialect)
        assert "FROM response" in sql
        return sql.replace("FROM response", "FROM nowhere"), positional

    monkeypatch.setattr(journey, "_state_sql", broken)
    database = app.extensions[db.EXTENSION_KEY]
    with database.reader.connect() as connection:
        with pytest.raises(Exception, match="nowhere"):
            journey.load_state(connection, 1)
        assert connection.invalidated
