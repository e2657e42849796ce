"""Regression tests for the outside security review (issue 13), one or more per finding.

Every test here runs on SQLite and, with SELFCHECK_TEST_DATABASE_URL set, on PostgreSQL.
Findings 3 and 4 (exports) are tested with the anonymisation work; finding 5 (platform
lockout), 9 (login lockout) and the staff-lookup limits of finding 2 are in
test_rate_limits.py, tests/services/test_auth.py and here.
"""

from __future__ import annotations

import gzip
import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from selfcheck.accounts.structures import create_structure
from selfcheck.cli import main
from selfcheck.journey import operations as journey
from selfcheck.paper import operations as paper
from selfcheck.paper import views as paper_views
from selfcheck.platform import backup, codes
from selfcheck.platform.db import Database, make_engine
from selfcheck.platform.models import AuditEvent, Beneficiary, Role, StaffUser, Structure
from tests.conftest import is_postgres
from tests.staff import PASSWORD, Account, add_staff, sign_in, signed_in
from tests.support import Visitor, error_summary, follow_job, person_url, text_of, words
from tests.views.test_entry import TYPED, open_code, post_screen, printed, screen_url

ENTRY = "/staff/entry/"
SESSION_COOKIE = "selfcheck_session"


def unknown_code(n: int) -> str:
    payload = f"ZZZZZZ{n:02d}"
    return payload + codes.check_character(payload)


@pytest.fixture
def mediator(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.MEDIATOR, structure)


@pytest.fixture
def admin(database: Database, structure: Structure) -> Account:
    return add_staff(database, Role.STRUCTURE_ADMIN, structure)


# --- 1. erasure leaves nothing of the person in the audit trail -------------------------------


def test_erasure_redacts_the_audit_trail_and_later_backups(
    app: Flask,
    database: Database,
    db_session: Session,
    structure: Structure,
    mediator: Account,
    admin: Account,
    tmp_path: Path,
) -> None:
    # A paper form without a code (its create event held the code), typed, finished, then
    # edited (the edit event held old and new values); a free text easy to search for.
    visitor = signed_in(app, mediator)
    code = printed(db_session, structure)
    url = screen_url(visitor, code)
    assert post_screen(visitor, url, TYPED, "finish").status_code == 302
    assert post_screen(visitor, url, {**TYPED, "T05": ["4"]}).status_code == 302
    with database.session() as session:
        before = list(session.scalars(select(AuditEvent)))
        assert any(json.loads(e.changes).get("T05") for e in before)
    # The person erases themselves with their code.
    person = Visitor(app.test_client())
    person.get("/privacy/erase")
    erased = person.post("/privacy/erase", {"code": codes.display(code), "confirm": "y"})
    assert erased.status_code == 302
    with database.session() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        for event in events:
            assert code not in event.changes and codes.display(code) not in event.changes
            assert event.beneficiary_id is None
        redacted = [e for e in events if e.action != "erase"]
        # Who did what, when: kept. The values, the code and the record ids: gone.
        assert [(e.action, e.entity, e.user_id) for e in redacted] == [
            (e.action, e.entity, e.user_id) for e in before
        ]
        assert all(e.changes == "{}" and e.entity_id is None for e in redacted)
    # The audit page does not show the erased code.
    trail = signed_in(app, admin).get("/staff/audit")
    assert trail.status_code == 200
    assert code not in text_of(trail) and codes.display(code) not in text_of(trail)
    # A backup made afterwards holds no trace of the code.
    file = tmp_path / "after-erasure.gz"
    backup.backup(database.engine, file)
    with gzip.open(file, "rt", encoding="utf-8") as dump:
        content = dump.read()
    assert code not in content and codes.display(code) not in content
    # Nor does the SQLite file itself (deleted rows are overwritten, not left in free pages).
    if not is_postgres():
        database_file = Path(str(database.engine.url.database))
        raw = b"".join(
            path.read_bytes()
            for path in (database_file, Path(f"{database_file}-wal"))
            if path.exists()
        )
        assert code.encode() not in raw


def test_an_erasure_after_a_deletion_redacts_the_deletion_too(
    app: Flask, database: Database, db_session: Session, structure: Structure, admin: Account
) -> None:
    visitor = signed_in(app, admin)
    code = printed(db_session, structure)
    url = screen_url(visitor, code)
    assert post_screen(visitor, url, TYPED, "finish").status_code == 302
    response_id = int(url.rstrip("/").rsplit("/", 1)[-1])
    page = person_url(database, code)
    visitor.get(f"{page}/responses/{response_id}/delete")
    deleted = visitor.post(f"{page}/responses/{response_id}/delete")
    assert deleted.status_code == 302
    with database.session() as session:
        assert any(code in e.changes for e in session.scalars(select(AuditEvent)))
    visitor.get(f"{page}/erase")
    assert visitor.post(f"{page}/erase", {"reason": "person_asked"}).status_code == 302
    with database.session() as session:
        assert not any(code in e.changes for e in session.scalars(select(AuditEvent)))


# --- 2. no code oracle across structures ------------------------------------------------------


def test_other_structures_are_answered_as_if_they_did_not_exist(
    app: Flask, database: Database, db_session: Session, structure: Structure
) -> None:
    lille = create_structure(db_session, "Mairie de Lille", "urbain", "59")
    db_session.commit()  # the test is the caller: operations never commit
    theirs = add_staff(database, Role.STRUCTURE_ADMIN, lille, email="admin@lille.example")
    ours = add_staff(database, Role.STRUCTURE_ADMIN, structure, email="admin@reze.example")
    code = printed(db_session, lille)
    url = screen_url(signed_in(app, theirs), code)
    visitor = signed_in(app, ours)
    # A code of another structure: exactly the unknown-code answer.
    other, unknown = open_code(visitor, code), open_code(visitor, unknown_code(1))
    assert other.status_code == unknown.status_code == 422
    assert error_summary(text_of(other)) == error_summary(text_of(unknown))
    # An entry of another structure, and one that does not exist: the same 404.
    assert visitor.get(url).status_code == visitor.get(ENTRY + "999999").status_code == 404
    # Settings of another structure, and of none: the same 404.
    assert visitor.get(f"{ENTRY}settings?structure={lille.id}").status_code == 404
    assert visitor.get(f"{ENTRY}settings?structure=999999").status_code == 404
    # The person page and the summary PDF (by id): the same 404 as for an unknown id.
    page = person_url(database, code)
    for path in (page, f"{page}/summary.pdf", "/staff/people/2147483647"):
        assert visitor.get(path).status_code == 404


def test_staff_code_look_ups_are_limited_per_user_and_per_structure(
    make_app: Callable[..., Flask], db_session: Session, structure: Structure
) -> None:
    app = make_app(
        SELFCHECK_RATE_LIMITS={"staff_code_user": (3, 600), "staff_code_structure": (5, 600)}
    )
    database: Database = app.extensions["selfcheck.platform.db"]
    first = add_staff(database, Role.MEDIATOR, structure, email="one@example.org")
    second = add_staff(database, Role.MEDIATOR, structure, email="two@example.org")
    with database.session() as session:
        (person,) = journey.create_codes(session, session.get(Structure, structure.id), 1)
        own = person.code
        session.commit()
    visitor = signed_in(app, first)
    # The user's own codes never count.
    for _ in range(5):
        assert open_code(visitor, own).status_code == 302
    assert [open_code(visitor, unknown_code(n)).status_code for n in range(4)] == [
        422,
        422,
        422,
        429,
    ]
    # A person's page is addressed by id, not code: nothing to guess there, no limit.
    assert visitor.get("/staff/people/2147483647").status_code == 404
    # A colleague has their own allowance, but the structure's is shared: 5 in all.
    colleague = signed_in(app, second)
    assert [open_code(colleague, unknown_code(n)).status_code for n in range(3)] == [
        422,
        422,
        429,
    ]


# --- 6. anonymous resources -------------------------------------------------------------------


def test_summary_pdf_is_limited_cached_and_named_without_the_code(
    make_app: Callable[..., Flask], structure: Structure, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(SELFCHECK_RATE_LIMITS={"summary_pdf_session": (3, 600)})
    paper_views._summary_cache.clear()
    rendered: list[str] = []
    real = paper.PaperRenderer.summary

    def counting(self: paper.PaperRenderer, *args: object, **kwargs: object) -> bytes:
        rendered.append("pdf")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(paper.PaperRenderer, "summary", counting)
    visitor = Visitor(app.test_client())
    code = visitor.complete(structure.slug)
    statuses = [visitor.get("/summary.pdf").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert rendered == ["pdf"]  # rendered once for this person and version of their answers
    first = visitor.get("/summary.pdf?large=1")
    assert first.status_code == 429
    other = Visitor(app.test_client())
    other.complete(structure.slug)
    pdf = other.get("/summary.pdf")
    assert pdf.status_code == 200
    disposition = pdf.headers["Content-Disposition"]
    assert code not in disposition and codes.display(code) not in disposition
    assert "progres-" in disposition


def test_summary_pdf_is_limited_per_address(
    make_app: Callable[..., Flask], structure: Structure
) -> None:
    app = make_app(SELFCHECK_RATE_LIMITS={"summary_pdf_ip": (2, 600)})
    statuses = []
    for _ in range(3):  # a bot dropping its cookies each time
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "203.0.113.20"
        statuses.append(client.get("/summary.pdf").status_code)
    assert statuses == [302, 302, 429]


def test_people_created_from_a_start_link_are_limited(
    make_app: Callable[..., Flask], structure: Structure
) -> None:
    app = make_app(SELFCHECK_RATE_LIMITS={"start_session": (2, 3600), "start_ip": (3, 3600)})
    database: Database = app.extensions["selfcheck.platform.db"]
    visitor = Visitor(app.test_client())
    visitor.get(f"/s/{structure.slug}")
    posted = []
    for n in range(3):
        data = {"form": "before", "token": f"bot-token-{n:02d}-xxxxxxxxxxxxxxx"}
        posted.append(visitor.post(f"/s/{structure.slug}", data).status_code)
    assert posted == [302, 302, 429]
    # A resent form (same token) is not a new person and is not counted.
    again = visitor.post(
        f"/s/{structure.slug}", {"form": "before", "token": "bot-token-00-xxxxxxxxxxxxxxx"}
    )
    assert again.status_code == 302
    with database.session() as session:
        assert len(list(session.scalars(select(Beneficiary)))) == 2
    # Another browser from the same address: the address limit (3) is reached at the 4th.
    fresh = Visitor(app.test_client())
    fresh.get(f"/s/{structure.slug}")
    data = {"form": "before", "token": "other-browser-token-xxxxxxxxxx"}
    assert fresh.post(f"/s/{structure.slug}", data).status_code == 302
    data = {"form": "before", "token": "other-browser-token-yyyyyyyyyy"}
    assert fresh.post(f"/s/{structure.slug}", data).status_code == 429


# --- 8. signing out revokes the session -------------------------------------------------------


def test_a_copied_cookie_is_dead_after_sign_out(app: Flask, mediator: Account) -> None:
    visitor = signed_in(app, mediator)
    assert visitor.get("/staff/").status_code == 200
    cookie = visitor.client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(SESSION_COOKIE, cookie.value)
    assert thief.get("/staff/").status_code == 200
    visitor.get("/staff/")
    assert visitor.post("/staff/logout").status_code == 302
    stolen = thief.get("/staff/")
    assert stolen.status_code == 302 and "/staff/login" in stolen.headers["Location"]
    # The owner signs in again as usual.
    assert sign_in(Visitor(app.test_client()), mediator.email).status_code == 302


def test_password_change_and_sign_out_everywhere_revoke_sessions(
    app: Flask, database: Database, mediator: Account
) -> None:
    laptop, phone = signed_in(app, mediator), signed_in(app, mediator)
    laptop.get("/staff/password")
    new = "une autre phrase assez longue"
    changed = laptop.post("/staff/password", {"current": PASSWORD, "new": new, "confirm": new})
    assert changed.status_code == 302
    assert laptop.get("/staff/").status_code == 200  # stays signed in where it changed
    assert phone.get("/staff/").status_code == 302
    result = app.test_cli_runner().invoke(
        main, ["users", "sign-out-everywhere", "--email", mediator.email]
    )
    assert result.exit_code == 0, result.output
    assert laptop.get("/staff/").status_code == 302
    with database.session() as session:
        user = session.get(StaffUser, mediator.id)
        assert user is not None and user.session_generation >= 2


# --- 10. one print request is bounded; codes exist only with their PDF ------------------------


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_a_coded_batch_is_a_job_and_its_codes_exist_only_with_its_pdf(
    app: Flask, database: Database, mediator: Account
) -> None:
    visitor = signed_in(app, mediator)
    visitor.get("/staff/print")
    data = {"kind": "coded", "form": "before", "language": "fr", "copies": "10", "large": "y"}
    started = visitor.post("/staff/print", data)
    assert started.status_code == 303 and "/staff/jobs/" in started.headers["Location"]
    downloaded = follow_job(visitor, started)
    assert downloaded.status_code == 200 and downloaded.mimetype == "application/pdf"
    with database.session() as session:
        assert len(list(session.scalars(select(Beneficiary)))) == 10


def test_a_print_request_rendered_at_once_is_bounded_in_pages(
    app: Flask, database: Database, mediator: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paper, "MAX_PAGES", 5)
    visitor = signed_in(app, mediator)
    visitor.get("/staff/print")
    data = {"kind": "blank", "form": "before", "language": "fr", "copies": "1", "large": "y"}
    refused = visitor.post("/staff/print", data)
    assert refused.status_code == 422
    assert "au plus 5 pages" in words(refused)
    with database.session() as session:
        assert list(session.scalars(select(Beneficiary))) == []


# --- lows ----------------------------------------------------------------------------------


def test_wrong_current_passwords_are_limited(
    make_app: Callable[..., Flask], structure: Structure
) -> None:
    app = make_app(SELFCHECK_RATE_LIMITS={"password_current": (2, 900)})
    database: Database = app.extensions["selfcheck.platform.db"]
    account = add_staff(database, Role.MEDIATOR, structure)
    visitor = signed_in(app, account)
    visitor.get("/staff/password")
    new = "une autre phrase assez longue"
    statuses = [
        visitor.post(
            "/staff/password", {"current": f"guess {n}", "new": new, "confirm": new}
        ).status_code
        for n in range(3)
    ]
    assert statuses == [422, 422, 429]


def test_backups_and_the_sqlite_database_are_owner_only(database: Database, tmp_path: Path) -> None:
    file = tmp_path / "backup.gz"
    backup.backup(database.engine, file)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    # A new SQLite database, and one made world-readable before (an older install).
    for name, mode in (("new.db", None), ("old.db", 0o644)):
        path = tmp_path / name
        if mode is not None:
            path.touch(mode)
            path.chmod(mode)
        engine = make_engine(f"sqlite:///{path}")
        with engine.connect() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.commit()
        engine.dispose()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
