"""The optional, consented follow-up reminder (issue 15), against a local SMTP server started
by the test (aiosmtpd), with a fixed clock: one address left with consent at the end of the
after form, one message when the follow-up opens, and the address is then gone. It is never
in the logs, the audit trail, the exports, the codebook or the backups, and it goes when the
follow-up is done, when the person is erased, or when the structure stops offering it."""

from __future__ import annotations

import gzip
import io
import logging
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.cli import main
from selfcheck.journey import reminders
from selfcheck.platform import backup, clock
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    AuditEvent,
    Beneficiary,
    FollowupReminder,
    Role,
    Structure,
)
from selfcheck.privacy import operations as privacy
from selfcheck.questionnaire.model import Definition
from tests.services.evaluation.support import populate
from tests.staff import add_staff, signed_in
from tests.support import AFTER, Visitor, count, follow_job, path_of, words
from tests.views.test_admin_mail import Inbox, inbox  # noqa: F401 (a fixture)
from tests.views.test_followup_journey import FOLLOWUP

START = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
ADDRESS = "camille.rappel@exemple.org"
OPENS = datetime(2027, 6, 6, 22, 0, tzinfo=UTC)  # 7 June 2027, midnight in Paris


@pytest.fixture
def fixed() -> Iterator[clock.FixedClock]:
    with clock.fixed(START) as fixed_clock:
        yield fixed_clock


@pytest.fixture
def mailing_app(make_app: Any, inbox: tuple[Inbox, int]) -> Flask:  # noqa: F811
    _handler, port = inbox
    smtp = {
        "host": "127.0.0.1",
        "port": port,
        "from": "selfcheck@example.org",
        "user": "",
        "password": "",
        "starttls": False,
    }
    app: Flask = make_app(SELFCHECK_SMTP=smtp)
    return app


@pytest.fixture
def offering(db_session: Session, structure: Structure) -> Structure:
    structure.followup_reminder = True
    db_session.commit()
    return structure


def _ended(app: Flask, structure: Structure, fixed: clock.FixedClock) -> tuple[Visitor, str]:
    """A person who sent the before form, then the after form 8 weeks later: on /done."""
    person = Visitor(app.test_client())
    code = person.complete(structure.slug)
    fixed.advance(timedelta(weeks=8))  # the after form on 7 March 2027: opens 7 June
    end = Visitor(app.test_client())
    end.follow(end.enter_code(code))
    end.fill(AFTER, end.post("/welcome-back"))
    end.follow(end.submit())
    assert end.url == "/done"
    return end, code


def _stored(database: Database) -> list[FollowupReminder]:
    with database.session() as session:
        found = list(session.scalars(select(FollowupReminder)))
        session.expunge_all()
        return found


def _app_logs(caplog: pytest.LogCaptureFixture) -> str:
    # The message and every extra field (the request log's path, status...).
    return "\n".join(
        f"{record.getMessage()} {record.__dict__}"
        for record in caplog.records
        if not record.name.startswith("mail.")
    )


def _send(app: Flask) -> str:
    result = app.test_cli_runner().invoke(main, ["reminders", "send"])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_reminder_reaches_the_server_once_and_the_address_is_then_gone(
    mailing_app: Flask,
    database: Database,
    offering: Structure,
    inbox: tuple[Inbox, int],  # noqa: F811
    fixed: clock.FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    handler, _port = inbox
    end, code = _ended(mailing_app, offering, fixed)
    assert "Un rappel par e-mail, si vous le souhaitez" in end.text
    assert (
        'id="reminder-consent"' in end.html
        and "checked" not in end.html.split('id="reminder-consent"')[1].split(">")[0]
    )  # the consent box is not ticked beforehand
    left = end.post("/reminder", {"email": f"  {ADDRESS} ", "consent": "y"})
    assert left.headers["Location"].endswith("/come-back?reminder=kept")
    end.follow(left)
    assert "nous vous écrirons une seule fois" in end.text
    (kept,) = _stored(database)
    assert kept.locale == "fr"
    assert kept.email.startswith("v1:") and ADDRESS not in kept.email  # sealed (attack15)
    with mailing_app.app_context():
        assert reminders.address_of(kept) == ADDRESS
    assert kept.link.endswith("/code")

    fixed.set(OPENS - timedelta(minutes=1))  # the day before, 23:59 in Paris: not yet
    _send(mailing_app)
    assert handler.messages == []
    assert len(_stored(database)) == 1

    fixed.set(OPENS + timedelta(hours=9))
    assert "reminders sent" in _send(mailing_app)
    (message,) = handler.messages
    assert message["To"] == ADDRESS
    assert message["Subject"] == "Votre questionnaire de suivi est ouvert"
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    assert "7 juin 2027" in text and "/code" in text
    assert code not in text and code[:3] + "-" not in text  # never the code
    assert _stored(database) == []  # gone once sent

    _send(mailing_app)  # again: nothing more to send
    assert len(handler.messages) == 1
    # Never in the application's logs (the test SMTP server's own debug log, "mail.log",
    # is the receiving server's), nor in the audit trail.
    assert ADDRESS not in _app_logs(caplog)
    with database.session() as session:
        for event in session.scalars(select(AuditEvent)):
            assert ADDRESS not in (event.changes or "")


def test_a_failed_sending_keeps_the_address_for_the_next_run(
    make_app: Any,
    mailing_app: Flask,
    database: Database,
    offering: Structure,
    inbox: tuple[Inbox, int],  # noqa: F811
    fixed: clock.FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, port = inbox
    end, _code = _ended(mailing_app, offering, fixed)
    end.post("/reminder", {"email": ADDRESS, "consent": "y"})
    fixed.set(OPENS + timedelta(hours=1))
    unreachable = {**mailing_app.config["SELFCHECK_SMTP"], "port": port + 1 if port < 65535 else 1}
    down = make_app(SELFCHECK_SMTP=unreachable)
    with down.app_context():
        report = reminders.send_due(down.extensions["selfcheck.platform.db"])
    assert report.failed == 1 and report.sent == 0
    assert len(_stored(database)) == 1  # kept: tried again at the next run
    assert ADDRESS not in _app_logs(caplog)
    _send(mailing_app)
    assert len(handler.messages) == 1 and _stored(database) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "camille.exemple.org", "consent": "y"}, "n'est pas valable"),
        ({"email": "a@b", "consent": "y"}, "n'est pas valable"),
        ({"email": "a@exemple.org, b@exemple.org", "consent": "y"}, "n'est pas valable"),
        ({"email": "Camille <a@exemple.org>", "consent": "y"}, "n'est pas valable"),
        ({"email": "", "consent": "y"}, "n'est pas valable"),
        ({"email": "x" * 250 + "@exemple.org", "consent": "y"}, "n'est pas valable"),
        ({"email": ADDRESS}, "cochez la case"),
        ({"email": ADDRESS, "consent": ""}, "cochez la case"),
    ],
)
def test_bad_input_is_said_and_nothing_is_stored(
    mailing_app: Flask,
    database: Database,
    offering: Structure,
    fixed: clock.FixedClock,
    data: dict[str, str],
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    end, _code = _ended(mailing_app, offering, fixed)
    page = end.post("/reminder", data)
    assert page.status_code == 422
    shown = words(page)
    assert message in shown.lower()
    assert "Il y a un problème" in shown
    assert 'aria-invalid="true"' in page.get_data(as_text=True)
    assert _stored(database) == []
    assert ADDRESS not in _app_logs(caplog)


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_not_offered_by_default_nor_without_smtp(
    app: Flask,
    mailing_app: Flask,
    database: Database,
    structure: Structure,
    db_session: Session,
    fixed: clock.FixedClock,
) -> None:
    end, _code = _ended(mailing_app, structure, fixed)  # the setting is off by default
    assert "Un rappel par e-mail" not in end.text
    refused = end.post("/reminder", {"email": ADDRESS, "consent": "y"})
    assert path_of(refused.headers["Location"]) == "/come-back"
    assert _stored(database) == []
    structure.followup_reminder = True
    db_session.commit()
    other, _other_code = _ended(app, structure, fixed)  # no SMTP on this platform
    assert "Un rappel par e-mail" not in other.text
    other.post("/reminder", {"email": ADDRESS, "consent": "y"})
    assert _stored(database) == []


def test_the_address_goes_when_the_follow_up_is_done(
    mailing_app: Flask,
    database: Database,
    offering: Structure,
    inbox: tuple[Inbox, int],  # noqa: F811
    fixed: clock.FixedClock,
) -> None:
    handler, _port = inbox
    _end, code = _ended(mailing_app, offering, fixed)
    # From the come-back page too, with the code.
    back = Visitor(mailing_app.test_client())
    page = back.follow(back.enter_code(code))
    assert page.status_code == 200 and "Un rappel par e-mail" in back.text
    back.post("/reminder", {"email": ADDRESS, "consent": "y"})
    assert len(_stored(database)) == 1
    fixed.set(OPENS + timedelta(hours=1))
    later = Visitor(mailing_app.test_client())
    later.fill(FOLLOWUP, later.enter_code(code))
    later.submit()
    assert _stored(database) == []  # the follow-up is done: no reminder any more
    _send(mailing_app)
    assert handler.messages == []


def test_the_address_goes_when_the_person_is_erased(
    mailing_app: Flask, database: Database, offering: Structure, fixed: clock.FixedClock
) -> None:
    end, code = _ended(mailing_app, offering, fixed)
    end.post("/reminder", {"email": ADDRESS, "consent": "y"})
    assert len(_stored(database)) == 1
    with database.session() as session:
        privacy.erase_by_code(session, code)
        session.commit()
    assert _stored(database) == []
    assert count(database, Beneficiary) == 0


def test_the_address_goes_with_a_purged_person(
    mailing_app: Flask, database: Database, offering: Structure, fixed: clock.FixedClock
) -> None:
    end, _code = _ended(mailing_app, offering, fixed)
    end.post("/reminder", {"email": ADDRESS, "consent": "y"})
    with database.session() as session:
        report = privacy.purge(session, 1, dry_run=False, now=START + timedelta(days=400))
        session.commit()
    assert report.people == 1
    assert _stored(database) == []


def test_the_setting_is_audited_and_turning_it_off_deletes_the_addresses(
    mailing_app: Flask,
    database: Database,
    structure: Structure,
    fixed: clock.FixedClock,
) -> None:
    admin = signed_in(mailing_app, add_staff(database, Role.STRUCTURE_ADMIN, structure=structure))
    admin.get("/staff/entry/settings")
    assert 'id="followup_reminder"' in admin.html
    form = {
        "structure": str(structure.id),
        "double_entry_percent": "0",
        "after_due_weeks": "6",
        "followup_months": "3",
        "second_followup_months": "0",
    }
    saved = admin.post("/staff/entry/settings", {**form, "followup_reminder": "1"})
    assert saved.status_code in (302, 303)
    with database.session() as session:
        assert session.get(Structure, structure.id).followup_reminder  # type: ignore[union-attr]
    end, _code = _ended(mailing_app, structure, fixed)
    end.post("/reminder", {"email": ADDRESS, "consent": "y"})
    assert len(_stored(database)) == 1
    admin.post("/staff/entry/settings", form)  # unticked: off
    assert _stored(database) == []
    with database.session() as session:
        events = [
            e.changes or ""
            for e in session.scalars(select(AuditEvent).where(AuditEvent.entity == "structure"))
        ]
    assert any("followup_reminder" in changes for changes in events)
    assert all(ADDRESS not in changes for changes in events)


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
def test_exports_codebook_and_backups_never_hold_an_address(
    app: Flask,
    db_session: Session,
    definition: Definition,
    database: Database,
    tmp_path: Path,
) -> None:
    populate(db_session, definition, people=14, moved=5)
    for number, person in enumerate(db_session.scalars(select(Beneficiary))):
        db_session.add(
            FollowupReminder(
                beneficiary_id=person.id,
                email=f"personne{number}@rappel.invalid",
                locale="fr",
                link="http://localhost/code",
            )
        )
    db_session.commit()
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    for query in ("format=csv&shape=wide", "format=csv&shape=long", "format=xlsx&shape=wide"):
        response = follow_job(evaluator, evaluator.get(f"/evaluate/exports/download?{query}"))
        assert response.status_code == 200, evaluator.html
        with zipfile.ZipFile(io.BytesIO(response.data)) as bundle:
            for name in bundle.namelist():
                content = bundle.read(name)
                if name.endswith(".xlsx"):
                    with zipfile.ZipFile(io.BytesIO(content)) as sheet:
                        content = b"".join(sheet.read(inner) for inner in sheet.namelist())
                assert b"rappel.invalid" not in content, name
                assert b"followup_reminder" not in content, name
        response.close()
    codebook = evaluator.get("/evaluate/exports/codebook")
    assert codebook.status_code == 200
    assert "rappel.invalid" not in evaluator.html and "followup_reminder" not in evaluator.html
    path = tmp_path / "backup.jsonl.gz"
    backup.backup(database.engine, path)
    with gzip.open(path, "rt", encoding="utf-8") as dump:
        dumped = dump.read()
    assert "rappel.invalid" not in dumped
    assert '"table":"followup_reminder"' not in dumped.replace(" ", "")
    assert '"beneficiary"' in dumped  # the rest is there
