"""attack16: an outside attack on rounds 21 and 22 (the CSRF tokens verified once, the
PostgreSQL reader, the jobs' retries, attack15's fixes).

- A CSRF token's signature is base64 that itsdangerous decodes leniently: characters outside
  the alphabet are dropped, so `sig[:5] + "!" * 60000 + sig[5:]` is the same valid token to
  Flask-WTF. req21's memory of verified tokens (`security.CheckedCSRFProtect`) was bounded
  in entries (4096) but not in bytes: one session posting its one token padded to the form's
  64 KB limit 4096 times pinned ~256 MB in each worker. Now only tokens in their plain form
  (URL-safe base64 and dots, at most `CSRF_TOKEN_MAX_LENGTH` characters) are remembered;
  others are still verified by Flask-WTF, every time.
- The session cookies verified once (`sessions.RefreshingSessionInterface`, an earlier
  round) had the same padding: a cookie up to gunicorn's 8 KB header line, 4096 of them, and
  the question pages served before Flask kept it twice more (`fast_page`: the parsed Cookie
  header and the journey's session, by cookie value).
- attack10 (round 17) made the fast pages keep a parsed Cookie header only once its session
  cookie verified, against ~580 MB a worker of 8 KB headers of 1,600 tiny cookies. But a bot
  needs only one journey (public) for its one valid cookie: beside it, 1,600 tiny cookies,
  one name changed each request, and every header was verified and kept (~140 KB each,
  4096 a worker). Now a header is kept only when it is small and has a few cookies, as a
  browser's; others are parsed again each time.
"""

from __future__ import annotations

import io
import itertools
import pickle
import string
from pathlib import Path

import pytest
import sqlalchemy.exc
from flask import Flask
from sqlalchemy import Connection

from selfcheck.platform import jobs, security
from selfcheck.platform.db import Database
from selfcheck.platform.models import Beneficiary, Structure
from selfcheck.platform.sessions import RefreshingSessionInterface
from tests.conftest import AppFactory
from tests.support import Visitor, count, csrf_token, path_of, words
from tests.views.test_admin_mail import (
    Inbox,
    admin_who_invited,
    inbox,
    link_in,
    queued_mailing_app,
    run_worker_once,
)
from tests.views.test_fast_page import _environ, _layer, _run, access_lines, on_page

__all__ = ["access_lines", "inbox", "on_page"]  # the fixtures, used here


def _padded(token: str, n: int, size: int) -> str:
    """`token` with junk inside its signature that base64 decoding drops (still valid)."""
    signed, signature = token.rsplit(".", 1)
    junk = "!" * (n + 1) + "~" * size
    junk = junk[: len(junk) - len(junk) % 4]  # keep the padding arithmetic unchanged
    return f"{signed}.{signature[:5]}{junk}{signature[5:]}"


def _remembered_bytes(app: Flask) -> int:
    verified: dict[tuple[object, str], str] = app.extensions.get(security.CSRF_VERIFIED_KEY, {})
    return sum(len(token) + len(held) for (_key, token), held in verified.items())


def test_attack16_padded_csrf_tokens_do_not_grow_the_workers_memory(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    location = visitor.start(structure.slug).headers["Location"]
    assert visitor.get(location).status_code == 200
    token = csrf_token(visitor.html)
    before = _remembered_bytes(app)
    for n in range(16):
        padded = _padded(token, n, 40_000)
        visitor.get(location)
        answered = visitor.answer({"ASSIST": ["seul"]}, csrf_token=padded)
        assert answered.status_code in (302, 400), answered.status_code
    grown = _remembered_bytes(app) - before
    # x 4096 / 16 in a worker: megabytes per request would be gigabytes.
    assert grown < 16 * 512, f"{grown} bytes remembered for 16 padded tokens"
    # The plain token is still remembered and still works.
    visitor.get(location)
    assert visitor.answer({"ASSIST": ["seul"]}).status_code == 302


def test_attack16_padded_session_cookies_are_not_remembered(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    visitor.start(structure.slug)
    cookie = visitor.client.get_cookie("selfcheck_session")
    assert cookie is not None
    interface = app.session_interface
    assert isinstance(interface, RefreshingSessionInterface)
    before = sum(len(value) for value in interface._verified)
    for n in range(16):
        padded = _padded(cookie.value, n, 6_000)
        bot = app.test_client(use_cookies=False)  # the header as sent, no size warning
        page = bot.get(f"/s/{structure.slug}", headers={"Cookie": f"selfcheck_session={padded}"})
        assert page.status_code == 200
    grown = sum(len(value) for value in interface._verified) - before
    assert grown < 16 * 512, f"{grown} bytes remembered for 16 padded cookies"


def _tiny_cookies(i: int, size: int = 7000) -> str:
    names = ("".join(p) for p in itertools.product(string.ascii_letters, repeat=2))
    parts = [f"zz{i}=1"]
    for name in names:
        if sum(len(part) + 2 for part in parts) > size:
            break
        parts.append(f"{name}=1")
    return "; ".join(parts)


def journey_cookie(visitor: Visitor) -> str:
    """The session cookie of the visitor's journey, as the browser sends it back."""
    cookie = visitor.client.get_cookie("selfcheck_session")
    assert cookie is not None
    return cookie.value


def test_attack16_a_valid_session_beside_many_cookies_is_not_kept_per_header(
    visitor: Visitor, app: Flask, on_page: str, access_lines: io.StringIO
) -> None:
    layer = _layer(app)
    value = journey_cookie(visitor)
    before = set(layer._cookies)
    served = 0
    for i in range(16):
        header = f"selfcheck_session={value}; {_tiny_cookies(i)}"
        status, _headers, _body, _logged = _run(layer, _environ(on_page, header), access_lines)
        assert status.startswith("200"), status
        served += 1
    added = [header for header in layer._cookies if header not in before]
    kept = sum(len(header) + 64 * len(layer._cookies[header]) for header in added)
    assert served == 16
    assert kept < 16 * 1024, f"{len(added)} headers, ~{kept // 1024} KB kept"


def test_attack16_padded_session_cookies_are_not_kept_by_the_fast_pages(
    visitor: Visitor, app: Flask, on_page: str, access_lines: io.StringIO
) -> None:
    layer = _layer(app)
    value = journey_cookie(visitor)
    interface = app.session_interface
    assert isinstance(interface, RefreshingSessionInterface)

    def size() -> int:
        return (
            sum(len(header) for header in layer._cookies)
            + sum(len(cookie) for cookie in layer._sessions)
            + sum(len(cookie) for cookie in interface._verified)
        )

    before = size()
    for n in range(16):
        header = f"selfcheck_session={_padded(value, n, 6_000)}"
        status, _headers, _body, _logged = _run(layer, _environ(on_page, header), access_lines)
        assert status.startswith("200"), status
    grown = size() - before
    assert grown < 16 * 1024, f"~{grown // 1024} KB kept for 16 padded cookies"


def test_attack16_a_database_pool_used_up_answers_503_not_500(
    visitor: Visitor,
    structure: Structure,
    app: Flask,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every reader connection taken (PostgreSQL: the reader's own pool, 2 + 8; SQLite: the
    engine's) and none coming back in time: the page says to come back in a few minutes, with
    503 and Retry-After, not "500" and a stack trace in the log as a bug."""
    bot = Visitor(app.test_client())
    assert bot.get(f"/s/{structure.slug}").status_code == 200
    start = next(f for f in bot.forms() if f.hidden().get("form") == "before")
    location = visitor.start(structure.slug).headers["Location"]
    assert visitor.get(location).status_code == 200
    form = {**visitor.page_form().hidden(), "ASSIST": "seul", "action": "next"}
    people = count(database, Beneficiary)
    reader = database.reader
    monkeypatch.setattr(reader.pool, "_timeout", 0.05)
    held: list[Connection] = []
    try:
        with pytest.raises(sqlalchemy.exc.TimeoutError):
            for _ in range(100):
                held.append(reader.connect())
        for page in (visitor.get(location), visitor.client.post(path_of(location), data=form)):
            assert page.status_code == 503, page.status_code
            assert page.headers["Retry-After"].isdigit()
            assert "Réessayez dans quelques minutes" in words(page)
        # A start, whose rate-limit counters are written on the reader (PostgreSQL) or the
        # engine: refused (fail closed), nobody created.
        assert start.action is not None
        assert bot.post(start.action, start.hidden()).status_code == 503
    finally:
        for connection in held:
            connection.close()
    assert count(database, Beneficiary) == people
    assert visitor.get(location).status_code == 200


# --- the job queue's messages: signed, never unpickled from whoever wrote the table ---------

_UNPICKLED: list[str] = []


def _unpickled() -> None:  # what a forged message would run in the job worker
    _UNPICKLED.append("ran")


class _Forged:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_unpickled, ())


def test_attack16_a_message_written_into_the_queue_is_never_unpickled(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    """huey's messages were pickles in a table of the app's database (PostgreSQL) or a file
    of the instance folder (SQLite): whoever can write that table (the database's credentials,
    a hosting administrator) ran any code in the job worker, which unpickles each message it
    takes (and, since jobs21, each one every minute, looking for lost jobs). Now signed under
    the app's secret key: a message not signed by it is refused before it is unpickled."""
    queue_url = "" if database_url.startswith("postgresql") else f"sqlite:///{tmp_path / 'q.db'}"
    app = make_app(SELFCHECK_JOBS_URL=queue_url)
    queue = jobs.queue(app)
    huey = queue.huey
    huey.flush()
    _UNPICKLED.clear()
    try:
        huey.storage.enqueue(pickle.dumps(_Forged()))
        assert jobs.messages(queue) == set()  # skipped, not run
        assert _UNPICKLED == []
        with pytest.raises(ValueError):
            huey.dequeue()
        assert _UNPICKLED == []
        # The app's own messages still go through, and one signed under another key does not.
        with app.app_context():
            queue.task("0" * 32)
            assert jobs.messages(queue) == {"0" * 32}
        other = make_app(SELFCHECK_JOBS_URL=queue_url, SECRET_KEY="another secret key, long enough")
        assert jobs.messages(jobs.queue(other)) == set()
    finally:
        huey.flush()


def test_attack16_a_queued_mail_holds_neither_its_address_nor_its_link_in_clear(
    make_app: AppFactory,
    database: Database,
    structure: Structure,
    inbox: tuple[Inbox, int],
    tmp_path: Path,
) -> None:
    """An invitation or a password-reset link waits in the queue's storage until the worker
    sends it (seconds; minutes when SMTP fails and it is tried again). That storage is the
    app's PostgreSQL database (or the instance folder's queue file), whose deleted rows stay
    on disk until vacuumed: a copy of the database files gave a staff account's one-time
    link (72 hours) beside its address. Now the address and the body are sealed under the
    app's secret key in the message, unsealed by the worker."""
    handler, port = inbox
    app = queued_mailing_app(make_app, tmp_path, port)
    admin = admin_who_invited(app, database, structure)
    huey = jobs.queue(app).huey
    stored = b"".join(huey.storage.enqueued_items())
    assert stored
    assert b"file@example.org" not in stored
    assert b"/staff/link/" not in stored
    assert run_worker_once(app) == 1
    (message,) = handler.messages
    assert message["To"] == "file@example.org"
    assert link_in(message) in admin.html
