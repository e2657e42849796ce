"""What the per-request savings of issue 18 (part 5) keep: every check still holds.

Verified session cookies are remembered per worker, the CSRF token of question pages is signed
once per session, cached pages are filled by a join: none of it may let a tampered or expired
cookie in, share one person's session objects with another request, or leak a marker.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from flask import Flask, request
from sqlalchemy import Connection, event, select, text

from selfcheck.journey import operations as journey
from selfcheck.journey.page_cache import (
    MARK,
    REQUEST_CODE,
    REQUEST_CSRF,
    Template,
    checked_marker,
    fill,
    marker,
    value_marker,
)
from selfcheck.platform import db, security, sessions
from selfcheck.platform.models import Beneficiary, Response, Structure
from selfcheck.privacy import operations as privacy
from selfcheck.questionnaire.model import FormKind
from tests.support import ANSWERS, Visitor, csrf_token, listening

COOKIE = "selfcheck_session"


def _cookie(visitor: Visitor) -> str:
    found = visitor.client.get_cookie(COOKIE)
    assert found is not None
    return found.value


def _started(visitor: Visitor, structure: Structure) -> str:
    location = visitor.start(structure.slug).headers["Location"]
    assert visitor.get(location).status_code == 200
    return location


def test_a_remembered_cookie_is_still_checked_for_age(
    visitor: Visitor, structure: Structure, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = _started(visitor, structure)
    assert visitor.get(location).status_code == 200  # now served from the verified cookies
    interface = app.session_interface
    assert isinstance(interface, sessions.RefreshingSessionInterface)
    assert _cookie(visitor) in interface._verified
    lifetime = app.permanent_session_lifetime.total_seconds()
    later = time.time() + lifetime + 1
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    expired = visitor.get(location)
    assert expired.status_code == 302  # no session any more: back to the start
    assert "/q/" not in expired.headers["Location"]


def test_a_tampered_cookie_is_refused_even_next_to_a_remembered_one(
    visitor: Visitor, structure: Structure
) -> None:
    location = _started(visitor, structure)
    good = _cookie(visitor)
    payload, signature = good.rsplit(".", 1)
    forged = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    visitor.client.set_cookie(COOKIE, forged)
    assert visitor.get(location).status_code == 302
    visitor.client.set_cookie(COOKIE, good)
    assert visitor.get(location).status_code == 200


def test_each_request_gets_its_own_session_objects(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    _started(visitor, structure)
    interface = app.session_interface
    cookie = _cookie(visitor)
    with app.test_request_context(headers={"Cookie": f"{COOKIE}={cookie}"}):
        first = interface.open_session(app, request)
    with app.test_request_context(headers={"Cookie": f"{COOKIE}={cookie}"}):
        second = interface.open_session(app, request)
    assert first is not None and second is not None
    assert dict(first) == dict(second) and first is not second
    first["changed"] = True
    assert "changed" not in second
    assert first.signed_at == second.signed_at > 0


def test_a_new_secret_key_forgets_the_remembered_cookies(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    location = _started(visitor, structure)
    app.secret_key = "another secret key, long enough for the test"
    assert visitor.get(location).status_code == 302


def test_the_page_csrf_token_is_signed_once_and_valid(
    visitor: Visitor, structure: Structure
) -> None:
    location = _started(visitor, structure)
    first = csrf_token(visitor.html)
    visitor.get(location)
    assert csrf_token(visitor.html) == first  # no time limit: the same signed token
    assert visitor.answer({"ASSIST": ["seul"]}).status_code == 302


def test_with_a_time_limit_every_page_signs_its_token(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    _started(visitor, structure)
    assert (
        security.CSRF_TOKENS_KEY not in app.extensions
        or not app.extensions[security.CSRF_TOKENS_KEY]
    )
    assert visitor.answer({"ASSIST": ["seul"]}).status_code == 302


def test_a_page_template_fills_like_fill() -> None:
    html = (
        f'<input id="f-A-1"{checked_marker("f-A-1")}><input id="f-A-2"{checked_marker("f-A-2")}>'
        f'<input value="{value_marker("NOTE")}"><input name="csrf_token" value="{REQUEST_CSRF}">'
        f"<p>{marker('unknown')}</p>{REQUEST_CODE}"
    )
    values = {checked_marker("f-A-1"): " checked", value_marker("NOTE"): 'a"b<c'}
    values[REQUEST_CSRF] = "token"
    template = Template.parse(html)
    filled = template.fill(values)
    assert filled == fill(html, values)
    assert '<input id="f-A-1" checked><input id="f-A-2">' in filled
    assert 'value="a&#34;b&lt;c"' in filled and 'value="token"' in filled
    assert "<p></p>" in filled and MARK not in filled
    assert Template.parse("no marker").fill(values) == "no marker"


def test_a_page_save_does_not_wait_for_the_disk_but_sending_does(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    engine = app.extensions[db.EXTENSION_KEY].engine
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    with listening(app.extensions[db.EXTENSION_KEY], ("before_cursor_execute", seen)):
        started = visitor.start(structure.slug)
        visitor.fill(ANSWERS[FormKind.BEFORE], started)
        saves = [s for s in statements if "synchronous_commit" in s]
        statements.clear()
        sent = visitor.submit()
        at_sending = [s for s in statements if "synchronous_commit" in s]
    assert sent.status_code == 302 and visitor.follow(sent).status_code == 200
    assert at_sending == []
    if engine.dialect.name == "postgresql":
        # Said in the page's one statement (set_config: SET LOCAL as a function, for the
        # statement's own transaction: `journey.save_read_page`).
        assert saves and all("set_config" in s and s.startswith("WITH touched") for s in saves)
    else:
        assert saves == []


def test_page_saves_wait_for_the_disk_when_the_operator_says_so(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    """SELFCHECK_POSTGRES_PAGE_SAVES_WAIT=1: no page save skips the wait, on either path (the
    one statement, or the locked save when the row changed since it was read)."""
    database: db.Database = app.extensions[db.EXTENSION_KEY]
    database.page_saves_wait = True
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    with listening(database, ("before_cursor_execute", seen)):
        visitor.fill(ANSWERS[FormKind.BEFORE], visitor.start(structure.slug))
        with visitor.client.session_transaction() as cookie:
            response_id = cookie["response_id"]
        with database.session() as session:
            assert journey.lock_state(session, response_id) is not None
            session.rollback()
    assert not [s for s in statements if "synchronous_commit" in s]
    if database.engine.dialect.name == "postgresql":
        assert any(s.startswith("WITH touched") for s in statements)


def test_an_erasure_waits_for_the_disk(visitor: Visitor, structure: Structure, app: Flask) -> None:
    """The person's erasure (and anything of the staff): no statement of it says not to wait
    for the disk, and its transaction has the connection's usual synchronous_commit."""
    database: db.Database = app.extensions[db.EXTENSION_KEY]
    visitor.fill(ANSWERS[FormKind.BEFORE], visitor.start(structure.slug))
    with visitor.client.session_transaction() as cookie:
        response_id = cookie["response_id"]
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    with database.session() as session:
        code = session.scalar(
            select(Beneficiary.code)
            .join(Response, Response.beneficiary_id == Beneficiary.id)
            .where(Response.id == response_id)
        )
        assert code is not None
        postgres = database.engine.dialect.name == "postgresql"
        usual = session.scalar(text("SHOW synchronous_commit")) if postgres else None
        session.commit()
        event.listen(database.engine, "before_cursor_execute", seen)
        try:
            assert privacy.erase_by_code(session, code, secret=str(app.secret_key)) == 1
            if postgres:
                assert session.scalar(text("SHOW synchronous_commit")) == usual
            session.commit()
        finally:
            event.remove(database.engine, "before_cursor_execute", seen)
    said = [s for s in statements if "synchronous_commit" in s and not s.startswith("SHOW")]
    assert statements and said == []


def test_a_locked_state_read_without_flush_wait_sets_it_for_its_transaction_only(
    visitor: Visitor, structure: Structure, database: db.Database
) -> None:
    _started(visitor, structure)
    with visitor.client.session_transaction() as cookie:
        response_id = cookie["response_id"]
    session = database.session()
    postgres = session.get_bind().dialect.name == "postgresql"
    try:
        usual = session.scalar(text("SHOW synchronous_commit")) if postgres else None
        session.commit()
        state = journey.lock_state(session, response_id, no_flush_wait=True)
        assert state is not None and state.id == response_id
        if not postgres:
            return
        assert session.scalar(text("SHOW synchronous_commit")) == "off"
        session.commit()
        assert journey.lock_state(session, response_id) is not None
        assert session.scalar(text("SHOW synchronous_commit")) == usual
    finally:
        session.rollback()
        session.close()


def test_a_page_token_of_one_session_is_refused_in_another(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    """attack2: the tokens kept per worker are keyed by each session's own secret, so one
    person's token (read over their shoulder, or from a copied page) opens nothing for
    another session, even while both are remembered."""
    _started(visitor, structure)
    theirs = csrf_token(visitor.html)
    other = Visitor(app.test_client())
    _started(other, structure)
    assert csrf_token(other.html) != theirs
    refused = other.answer({"ASSIST": ["seul"]}, csrf_token=theirs)
    assert refused.status_code == 400
    assert other.answer({"ASSIST": ["seul"]}).status_code == 302  # its own token: saved


def test_a_staff_cookie_copied_before_logout_opens_nothing_after_it(
    app: Flask, database: db.Database, structure: Structure
) -> None:
    """attack2: a staff cookie remembered by the worker is still checked against the
    account's session generation, which signing out raises."""
    from selfcheck.platform.models import Role
    from tests.staff import add_staff, signed_in

    account = add_staff(database, Role.MEDIATOR, structure)
    staff = signed_in(app, account)
    assert staff.get("/staff/").status_code == 200
    copied = _cookie(staff)
    assert staff.get("/staff/").status_code == 200  # now a remembered cookie
    interface = app.session_interface
    assert isinstance(interface, sessions.RefreshingSessionInterface)
    assert copied in interface._verified
    out = staff.client.post("/staff/logout", data={"csrf_token": csrf_token(staff.html)})
    assert out.status_code == 302 and "signed_out=1" in out.headers["Location"]
    thief = Visitor(app.test_client())
    thief.client.set_cookie(COOKIE, copied)
    replayed = thief.get("/staff/")
    assert replayed.status_code == 302 and "login" in replayed.headers["Location"]


def test_a_page_view_is_one_select_on_one_connection_without_a_transaction(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    location = _started(visitor, structure)
    assert visitor.answer({"ASSIST": ["seul"]}).status_code == 302
    engine = app.extensions[db.EXTENSION_KEY].engine
    statements: list[tuple[str, bool]] = []
    checkouts: list[object] = []

    def seen(conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        dbapi = conn.connection.dbapi_connection
        statements.append((statement, bool(getattr(dbapi, "autocommit", False))))

    def checkout(*args: object) -> None:
        checkouts.append(args)

    with listening(
        app.extensions[db.EXTENSION_KEY],
        ("before_cursor_execute", seen),
        ("checkout", checkout),
    ):
        page = visitor.get(location)
    assert page.status_code == 200
    assert 'value="seul" checked' in page.get_data(as_text=True)  # the answer just saved
    assert len(checkouts) == 1  # one connection (PostgreSQL: no ping when used seconds ago)
    assert [s.split()[0] for s, _ in statements] == ["SELECT"]
    if engine.dialect.name == "postgresql":
        # No BEGIN before the SELECT nor ROLLBACK after it (nor a ping): 1 round trip, not 4.
        assert statements[0][1] is True


def _statements_of(app: Flask, call: Callable[[], object]) -> tuple[list[str], list[bool], int]:
    """The SQL statements a request sends, whether each ran outside a transaction (psycopg's
    autocommit), and the pool check-outs."""
    statements: list[str] = []
    autocommit: list[bool] = []
    checkouts: list[object] = []

    def seen(conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)
        dbapi = conn.connection.dbapi_connection
        autocommit.append(bool(getattr(dbapi, "autocommit", False)))

    def checkout(*args: object) -> None:
        checkouts.append(args)

    with listening(
        app.extensions[db.EXTENSION_KEY],
        ("before_cursor_execute", seen),
        ("checkout", checkout),
    ):
        call()
    return statements, autocommit, len(checkouts)


def test_a_page_save_reads_the_state_locked_and_nothing_for_the_facts(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    """POST /q: the state read (SQLite: with the response's row locked; PostgreSQL: with the
    row's version, unlocked), the page's answers replaced, the response's furthest page and
    time in one UPDATE. The dashboard facts read nothing:
    the DELETE names its response, and the response is known to be in progress (PostgreSQL;
    SQLite reads its status at commit, inside the write transaction). Issue 18."""
    location = _started(visitor, structure)
    statements, _autocommit, checkouts = _statements_of(
        app, lambda: visitor.answer({"ASSIST": ["seul"]})
    )
    assert visitor.get(location).status_code == 200
    assert 'value="seul" checked' in visitor.html
    assert checkouts == 1
    words = [s.split()[0] for s in statements]
    assert not any("DISTINCT" in s for s in statements)
    if app.extensions[db.EXTENSION_KEY].engine.dialect.name == "postgresql":
        # The state read unlocked with the row's version, then the UPDATE, DELETE and INSERT
        # as one statement guarded by that version (journey.save_read_page, round 17).
        assert "FOR UPDATE" not in statements[0] and "xmin" in statements[0]
        assert statements[1].startswith("WITH touched") and "set_config" in statements[1]
        assert words == ["SELECT", "WITH"]
    else:
        assert words == ["SELECT", "DELETE", "INSERT", "UPDATE", "SELECT"]


def test_the_start_page_reads_on_one_connection_without_a_transaction(
    visitor: Visitor, structure: Structure, app: Flask
) -> None:
    """GET /s: the structure (and the open response, if any) on a bare connection, without
    the ORM session; on PostgreSQL without BEGIN and ROLLBACK (issue 18)."""
    path = f"/s/{structure.slug}"
    statements, autocommit, checkouts = _statements_of(app, lambda: visitor.get(path))
    assert [s.split()[0] for s in statements] == ["SELECT"] and checkouts == 1
    _started(visitor, structure)
    statements, autocommit, checkouts = _statements_of(app, lambda: visitor.get(path))
    assert visitor.get(path).status_code == 200
    assert "Vous avez un questionnaire en cours" in visitor.html
    assert [s.split()[0] for s in statements] == ["SELECT", "SELECT"] and checkouts == 1
    if app.extensions[db.EXTENSION_KEY].engine.dialect.name == "postgresql":
        assert all(autocommit)
    assert visitor.get("/s/nowhere").status_code == 404
