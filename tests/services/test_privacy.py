"""Retention (purge) and erasure by code: what goes, what stays, what the audit trail keeps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from selfcheck.accounts import auth
from selfcheck.evaluation import joins
from selfcheck.journey import operations as journey
from selfcheck.platform import codes, ratelimit
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    Answer,
    AuditEvent,
    Beneficiary,
    EntryDiscrepancy,
    ExportLog,
    JoinMemory,
    RateLimitHit,
    Response,
    Role,
    SecondEntry,
    SecondEntryAnswer,
    Structure,
    utcnow,
)
from selfcheck.privacy import operations as privacy
from selfcheck.questionnaire.model import Definition, FormKind
from tests.support import AFTER, count, fill_response, submitted

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2026, 11, 23, tzinfo=UTC), 36, datetime(2023, 11, 23, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), 1, datetime(2025, 12, 15, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), 13, datetime(2024, 12, 15, tzinfo=UTC)),
        (datetime(2028, 3, 31, tzinfo=UTC), 1, datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_months_before(moment: datetime, months: int, expected: datetime) -> None:
    assert privacy.months_before(moment, months) == expected


def age(session: Session, response: Response, when: datetime) -> None:
    """Pretend a response, its person and their answers date from `when`."""
    session.execute(
        update(Response)
        .where(Response.id == response.id)
        .values(created_at=when, updated_at=when, submitted_at=when)
    )
    session.execute(
        update(Beneficiary).where(Beneficiary.id == response.beneficiary_id).values(created_at=when)
    )
    session.commit()


def with_second_entry(session: Session, response: Response) -> None:
    typist = auth.create_user(
        session,
        auth.NewUser(f"typist{response.id}@example.org", Role.MEDIATOR, response.structure_id),
        "une phrase assez longue",
    )
    session.commit()
    entry = SecondEntry(response_id=response.id, entered_by_id=typist.id, compared_fields=1)
    entry.answers.append(SecondEntryAnswer(variable="COMFORT", value="2"))
    entry.discrepancies.append(
        EntryDiscrepancy(variable="COMFORT", first_value='["1"]', second_value='["2"]')
    )
    session.add(entry)
    session.commit()


@pytest.fixture
def people(
    db_session: Session, definition: Definition, structure: Structure
) -> dict[str, Response]:
    old = submitted(db_session, definition, structure, FormKind.BEFORE)
    age(db_session, old, NOW - timedelta(days=3 * 365 + 30))
    # An old 'before' whose 'after' is recent: the person stays whole.
    pair = submitted(db_session, definition, structure, FormKind.BEFORE)
    age(db_session, pair, NOW - timedelta(days=4 * 365))
    after = journey.start_after(db_session, definition, pair.beneficiary, "fr")
    db_session.commit()
    fill_response(db_session, definition, after, AFTER)
    db_session.commit()
    recent = submitted(db_session, definition, structure, FormKind.RETRO)
    return {"old": old, "pair": pair, "after": after, "recent": recent}


def test_dry_run_counts_and_deletes_nothing(
    db_session: Session, database: Database, people: dict[str, Response]
) -> None:
    answers = count(database, Answer)
    report = privacy.purge(db_session, 36, now=NOW)
    db_session.commit()
    assert not report.done
    assert report.cutoff == datetime(2023, 11, 23, 12, 0, tzinfo=UTC)
    assert (report.people, report.responses) == (1, 1)
    assert report.answers == count(database, Answer, Answer.response_id == people["old"].id) > 0
    assert count(database, Answer) == answers
    assert count(database, Response) == 4


def test_purge_deletes_expired_people_whole_and_records_it(
    db_session: Session, database: Database, people: dict[str, Response]
) -> None:
    old = people["old"]
    with_second_entry(db_session, old)
    old_id, old_person = old.id, old.beneficiary_id
    db_session.add(ratelimit_row(NOW - timedelta(days=2)))
    db_session.add(ratelimit_row(NOW))
    db_session.add(ExportLog(kind="csv-wide", at=NOW - timedelta(days=5 * 365)))
    db_session.add(AuditEvent(action="delete", entity="response", at=NOW - timedelta(days=1200)))
    db_session.commit()

    report = privacy.purge(db_session, 36, now=NOW, dry_run=False)
    db_session.commit()
    assert report.done
    assert (report.people, report.responses, report.second_entries) == (1, 1, 1)
    assert (report.audit_events, report.rate_limit_rows) == (1, 1)
    assert count(database, Response, Response.id == old_id) == 0
    assert count(database, Answer, Answer.response_id == old_id) == 0
    assert count(database, Beneficiary, Beneficiary.id == old_person) == 0
    assert count(database, SecondEntry) == count(database, SecondEntryAnswer) == 0
    assert count(database, EntryDiscrepancy) == 0
    assert count(database, Response) == 3  # the pair and the recent retro stay
    assert count(database, RateLimitHit) == 1
    assert count(database, ExportLog) == 1  # the export log is kept
    (event,) = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "purge"))
    changes = json.loads(event.changes)
    assert changes["people"]["old"] == ["1"] and changes["retention_months"]["new"] == ["36"]
    # Nothing left to do the second time.
    again = privacy.purge(db_session, 36, now=NOW, dry_run=False)
    db_session.commit()
    assert (again.people, again.responses, again.answers) == (0, 0, 0)


def ratelimit_row(when: datetime) -> RateLimitHit:
    limit = ratelimit.Limit("x", 1, 60)
    return RateLimitHit(
        key=f"k{when.timestamp()}", window_start=ratelimit.window_start(limit, when)
    )


def test_a_shorter_retention_takes_more(db_session: Session, people: dict[str, Response]) -> None:
    report = privacy.purge(db_session, 1, now=NOW + timedelta(days=62))
    db_session.commit()
    assert report.people == 3 and report.responses == 4


def test_erase_by_code(
    db_session: Session, database: Database, people: dict[str, Response]
) -> None:
    pair = people["pair"]
    with_second_entry(db_session, pair)
    code, person_id, pair_id = pair.beneficiary.code, pair.beneficiary_id, pair.id
    assert privacy.erase_by_code(db_session, codes.display(code).lower()) == 2
    db_session.commit()
    assert count(database, Beneficiary, Beneficiary.id == person_id) == 0
    assert count(database, Response, Response.beneficiary_id == person_id) == 0
    assert count(database, Answer, Answer.response_id == pair_id) == 0
    assert count(database, SecondEntry) == 0
    assert count(database, Response) == 2
    (event,) = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "erase"))
    # Who (None: the person themselves), when and why; never whom.
    assert event.user_id is None and event.entity_id is None and event.beneficiary_id is None
    assert code not in event.changes  # erased means erased: neither code nor answers kept
    assert json.loads(event.changes) == {"reason": {"old": [], "new": ["person_online"]}}


def test_erase_refuses_unknown_and_mistyped_codes(
    db_session: Session, database: Database, people: dict[str, Response]
) -> None:
    unknown = "ZZZZZZZZ" + codes.check_character("ZZZZZZZZ")
    with pytest.raises(privacy.UnknownPerson):
        privacy.erase_by_code(db_session, unknown)
    with pytest.raises(codes.InvalidCode):
        privacy.erase_by_code(db_session, "ZZZZZZZZ0")
    assert count(database, Response) == 4
    assert count(database, AuditEvent) == 0


def test_nothing_expires_right_away(db_session: Session, people: dict[str, Response]) -> None:
    assert privacy.purge(db_session, 36, now=utcnow()).people == 1  # only the aged one
    db_session.commit()


def test_purge_and_erasure_forget_what_exports_remember(
    db_session: Session, database: Database, people: dict[str, Response]
) -> None:
    # What an evaluator's exports remember of a person (evaluation/joins.py) goes with them.
    evaluator = auth.create_user(
        db_session, auth.NewUser("eval@example.org", Role.EVALUATOR), "une phrase assez longue"
    )
    db_session.commit()
    persons = {name: r.beneficiary_id for name, r in people.items() if name != "after"}
    joins.record(db_session, evaluator, {p: f"{p:032x}" for p in persons.values()}, "s")
    db_session.commit()
    assert count(database, JoinMemory) == 3
    privacy.purge(db_session, 36, now=NOW, dry_run=False, secret="s")
    db_session.commit()
    left = set(db_session.scalars(select(JoinMemory.person)))
    hashes = joins.person_hashes("s", evaluator.id, persons.values())
    assert left == {hashes[persons["pair"]], hashes[persons["recent"]]}
    code = people["recent"].beneficiary.code
    privacy.erase_by_code(db_session, code, secret="s")
    db_session.commit()
    assert set(db_session.scalars(select(JoinMemory.person))) == {hashes[persons["pair"]]}
