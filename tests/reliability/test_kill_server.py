"""No data lost: SIGKILL the real server (gunicorn, 2 sync workers) while many people send
their questionnaires, restart it, and check every acknowledged submission is stored whole.

Runs on the suite's database: a SQLite file (WAL, synchronous=NORMAL, the default) or
PostgreSQL with SELFCHECK_TEST_DATABASE_URL. Bounded: about 20-30 s (60 s at worst).
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from selfcheck.accounts.structures import create_structure
from selfcheck.journey import operations as journey
from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, Beneficiary, Response, Status
from selfcheck.questionnaire import Definition
from selfcheck.questionnaire.model import FormKind
from tests.reliability.server import Browser, Server
from tests.support import ANSWERS

CLIENTS = 8
KILL_AFTER_ACKNOWLEDGED = 12  # kill once this many are confirmed...
KILL_AFTER_SECONDS = 10.0  # ...or after this many seconds of load, once at least
AT_LEAST_ACKNOWLEDGED = 3  # this many are confirmed (a loaded CI machine is slow)
GIVE_UP_AFTER_SECONDS = 60.0
ANSWERS_BEFORE = ANSWERS[FormKind.BEFORE]


@dataclass
class Load:
    """What the clients saw: each acknowledged code with the answers it posted."""

    acknowledged: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    interrupted: int = 0
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    killed: threading.Event = field(default_factory=threading.Event)


def person(port: int, slug: str, load: Load) -> None:
    while not load.killed.is_set():
        browser = Browser(port)
        try:
            code = browser.journey(slug, ANSWERS_BEFORE)
        except Exception as exc:  # every failure is reported below
            with load.lock:
                if load.killed.is_set() and isinstance(exc, OSError | http.client.HTTPException):
                    load.interrupted += 1  # in flight when the server died: not acknowledged
                else:
                    load.refused.append(repr(exc))
            return
        with load.lock:
            load.acknowledged[code] = dict(browser.posted)


def test_acknowledged_submissions_survive_a_server_kill(
    database: Database, definition: Definition, tmp_path: Path
) -> None:
    with database.session() as session:
        slug = create_structure(session, "Lieu du test de panne", "rural", "44").slug
        session.commit()
    server = Server(tmp_path, database.url, workers=2)
    load = Load()
    try:
        server.start()
        clients = [
            threading.Thread(target=person, args=(server.port, slug, load), daemon=True)
            for _ in range(CLIENTS)
        ]
        began = time.monotonic()
        for client in clients:
            client.start()
        while time.monotonic() - began < GIVE_UP_AFTER_SECONDS:
            with load.lock:
                done = len(load.acknowledged)
                if load.refused or done >= KILL_AFTER_ACKNOWLEDGED:
                    break
            if done >= AT_LEAST_ACKNOWLEDGED and time.monotonic() - began > KILL_AFTER_SECONDS:
                break
            time.sleep(0.05)
        load.killed.set()
        server.kill()  # mid-load: every client has a request in flight or about to start
        for client in clients:
            client.join(timeout=30)
        acknowledged = dict(load.acknowledged)
        print(
            f"\nkill test ({database.engine.dialect.name}): {len(acknowledged)} acknowledged, "
            f"{load.interrupted} interrupted by the kill, after {time.monotonic() - began:.1f} s"
        )
        assert load.refused == []
        assert len(acknowledged) >= AT_LEAST_ACKNOWLEDGED, server.log()

        server.start()  # the same database, after the crash
        again = Browser(server.port)
        code = again.journey(slug, ANSWERS_BEFORE)
        acknowledged[code] = dict(again.posted)
    finally:
        server.stop()

    with database.session() as session:
        check_acknowledged(session, acknowledged)
        check_nothing_half_written(session, definition)
    check_database_integrity(database)


def check_acknowledged(
    session: Session, acknowledged: dict[str, dict[str, tuple[str, ...]]]
) -> None:
    for code, posted in acknowledged.items():
        beneficiary = session.scalar(select(Beneficiary).where(Beneficiary.code == code))
        assert beneficiary is not None, f"acknowledged code {code} lost"
        [response] = beneficiary.responses
        assert response.status == Status.SUBMITTED.value, code
        assert response.submitted_at is not None
        assert journey.answers_of(response) == posted, code


def check_nothing_half_written(session: Session, definition: Definition) -> None:
    """Submitted: complete. In progress: every saved page holds its whole answer."""
    for response in session.scalars(select(Response)):
        form = FormKind(response.form)
        answers = journey.answers_of(response)
        if response.status == Status.SUBMITTED.value:
            assert journey.missing_required(definition, form, answers) == []
            assert answers == {k: tuple(v) for k, v in ANSWERS_BEFORE.items()}
            continue
        for page in journey.visible_pages(definition, form, answers):
            variables = journey.page_variables(page, form, answers)
            saved = [v.code for v in variables if v.code in answers]
            if saved:  # a page is saved in one transaction: all of it or none of it
                assert saved == [v.code for v in variables if v.code in ANSWERS_BEFORE]
                assert all(answers[c] == tuple(ANSWERS_BEFORE[c]) for c in saved)
    orphans = session.scalar(
        select(func.count())
        .select_from(Answer)
        .outerjoin(Response, Response.id == Answer.response_id)
        .where(Response.id.is_(None))
    )
    assert orphans == 0
    lonely = session.scalar(
        select(func.count())
        .select_from(Beneficiary)
        .where(~select(Response.id).where(Response.beneficiary_id == Beneficiary.id).exists())
    )
    assert lonely == 0  # a person and their first response are created together


def check_database_integrity(database: Database) -> None:
    with database.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
        else:  # PostgreSQL enforces constraints on commit; check none is left unvalidated
            invalid = connection.execute(
                text(
                    "SELECT conname FROM pg_constraint c JOIN pg_namespace n "
                    "ON n.oid = c.connamespace WHERE n.nspname = current_schema() "
                    "AND NOT c.convalidated"
                )
            ).all()
            assert invalid == []
