"""GDPR by design: the retention period (`selfcheck purge`) and erasure of one person's answers.

A person is known only by a random code (no name, e-mail, phone or address is ever asked),
so "one person's data" is everything reached from their code: their responses, the answers,
and the blind second entries of their paper forms. See docs/PRIVACY.md.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Delete,
    Select,
    delete,
    exists,
    func,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from selfcheck.evaluation import forgetting, joins
from selfcheck.platform import audit, codes
from selfcheck.platform.models import (
    Answer,
    AuditEvent,
    Beneficiary,
    EntryDiscrepancy,
    FollowupReminder,
    Job,
    RateLimitHit,
    Response,
    SecondEntry,
    SecondEntryAnswer,
    StaffUser,
    utcnow,
)

# Rate-limit counters are only needed for the length of their window (an hour at most).
RATE_LIMIT_KEEP = timedelta(days=1)


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the 31st -> the month's last day)."""
    total = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(total, 12)
    month += 1
    next_month = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=moment.tzinfo)
    last_day = (next_month - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    people: int
    responses: int
    answers: int
    second_entries: int
    audit_events: int
    rate_limit_rows: int
    done: bool  # False for a dry run


def _expired_people(cutoff: datetime) -> Select[int]:
    """People whose code was made, and whose every response last changed, before `cutoff`."""
    recent = exists(
        select(Response.id).where(
            Response.beneficiary_id == Beneficiary.id, Response.updated_at >= cutoff
        )
    )
    return select(Beneficiary.id).where(Beneficiary.created_at < cutoff, ~recent)


def _delete(session: Session, statement: Delete) -> int:
    """How many rows went. Plain SQL deletes: the objects this session may hold are expired
    afterwards."""
    done = session.execute(statement, execution_options={"synchronize_session": False})
    return int(getattr(done, "rowcount", 0) or 0)


def _lock_responses(session: Session, where: ColumnElement[bool]) -> None:
    """Lock the rows of the responses about to be deleted, before their answers (the order of
    every writer of answers: `journey.lock_state`, `journey.save_read_page`)."""
    session.execute(select(Response.id).where(where).with_for_update())


def _count(session: Session, model: type[object], *where: ColumnElement[bool]) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def purge(
    session: Session,
    retention_months: int,
    *,
    dry_run: bool = True,
    now: datetime | None = None,
    secret: str | bytes | None = None,
) -> PurgeReport:
    """Delete (or, in a dry run, only count) what is older than the retention period.

    A person goes as a whole, once nothing of theirs changed for `retention_months`: a
    'before' form is kept as long as its 'after' is recent. Audit events older than the
    period go too (a deletion's event holds the deleted answers); the purge itself is
    recorded. The export log has no answers and is kept; what the exports remember of the
    people who go (evaluation/joins.py) goes with them (`secret`: the app's by default).
    """
    now = now or utcnow()
    cutoff = months_before(now, retention_months)
    people = _expired_people(cutoff).scalar_subquery()
    responses = select(Response.id).where(Response.beneficiary_id.in_(people)).scalar_subquery()
    entries = select(SecondEntry.id).where(SecondEntry.response_id.in_(responses)).scalar_subquery()
    old_events = AuditEvent.at < cutoff
    old_windows = ratelimit_window_before(now)
    report = PurgeReport(
        cutoff=cutoff,
        people=_count(session, Beneficiary, Beneficiary.id.in_(people)),
        responses=_count(session, Response, Response.id.in_(responses)),
        answers=_count(session, Answer, Answer.response_id.in_(responses)),
        second_entries=_count(session, SecondEntry, SecondEntry.id.in_(entries)),
        audit_events=_count(session, AuditEvent, old_events),
        rate_limit_rows=_count(session, RateLimitHit, old_windows),
        done=not dry_run,
    )
    if dry_run:
        return report  # counted now, nothing locked: what a purge run now would delete
    # Exactly the people forgotten are deleted (attack9 A9-2): the expired people and their
    # responses are locked first (the evaluators' memories held before, as forget_people
    # does, so that no export waits for these rows while this waits for it), then read
    # again: nobody can answer again, nor lose a recent response, until this commits.
    forgetting.hold_memories(session)
    expired = _locked_expired(session, cutoff)
    forget_people(session, expired, secret)
    deleted: Counter[str] = Counter()
    for start in range(0, len(expired), PURGE_CHUNK):
        deleted += _delete_people(session, expired[start : start + PURGE_CHUNK])
    # The report says what was deleted (the rows' counts of the deletions themselves), not
    # the counts read above before the locks (round 18: a person who answered again in
    # between was counted and kept).
    report = dataclasses.replace(
        report,
        people=deleted["people"],
        responses=deleted["responses"],
        answers=deleted["answers"],
        second_entries=deleted["second_entries"],
        audit_events=_delete(session, delete(AuditEvent).where(old_events)),
        rate_limit_rows=_delete(session, delete(RateLimitHit).where(old_windows)),
    )
    audit.record(
        session,
        None,
        "purge",
        audit.Entity.RETENTION,
        None,
        None,
        {
            "retention_months": {"old": [], "new": [str(retention_months)]},
            "cutoff": {"old": [], "new": [cutoff.isoformat()]},
            "people": {"old": [str(report.people)], "new": []},
            "responses": {"old": [str(report.responses)], "new": []},
            "audit_events": {"old": [str(report.audit_events)], "new": []},
        },
    )
    session.flush()
    session.expire_all()
    return report


# People deleted per statement by a purge (each id is a bound parameter).
PURGE_CHUNK = 5000


def _locked_expired(session: Session, cutoff: datetime) -> list[int]:
    """The people expired at `cutoff`, locked with their responses until the transaction
    ends (PostgreSQL: FOR UPDATE, which also makes a new response of theirs wait; SQLite has
    one writer, whose lock the caller's writes hold), read again once locked."""
    candidates = sorted(int(person) for person in session.scalars(_expired_people(cutoff)))
    if candidates and session.connection().dialect.name == "sqlite":
        # SQLite's one write lock, taken now (a write that changes nothing), kept to the end.
        session.execute(
            update(Beneficiary).where(Beneficiary.id == candidates[0]).values(id=Beneficiary.id),
            execution_options={"synchronize_session": False},
        )
    elif session.connection().dialect.name == "postgresql":
        for start in range(0, len(candidates), PURGE_CHUNK):
            chunk = candidates[start : start + PURGE_CHUNK]
            session.execute(
                select(Beneficiary.id)
                .where(Beneficiary.id.in_(chunk))
                .order_by(Beneficiary.id)
                .with_for_update()
            ).all()
            session.execute(
                select(Response.id)
                .where(Response.beneficiary_id.in_(chunk))
                .order_by(Response.id)
                .with_for_update()
            ).all()
    expired: list[int] = []
    for start in range(0, len(candidates), PURGE_CHUNK):
        chunk = candidates[start : start + PURGE_CHUNK]
        expired.extend(
            int(person)
            for person in session.scalars(_expired_people(cutoff).where(Beneficiary.id.in_(chunk)))
        )
    return sorted(expired)


def _delete_people(session: Session, people: list[int]) -> Counter[str]:
    """Delete these people (ids) and everything of theirs; children first: no reliance on
    ON DELETE CASCADE being switched on. How many people, responses, answers and second
    entries went."""
    responses = select(Response.id).where(Response.beneficiary_id.in_(people)).scalar_subquery()
    entries = select(SecondEntry.id).where(SecondEntry.response_id.in_(responses)).scalar_subquery()
    _delete(session, delete(EntryDiscrepancy).where(EntryDiscrepancy.second_entry_id.in_(entries)))
    _delete(
        session, delete(SecondEntryAnswer).where(SecondEntryAnswer.second_entry_id.in_(entries))
    )
    deleted: Counter[str] = Counter()
    deleted["second_entries"] = _delete(
        session, delete(SecondEntry).where(SecondEntry.id.in_(entries))
    )
    deleted["answers"] = _delete(session, delete(Answer).where(Answer.response_id.in_(responses)))
    deleted["responses"] = _delete(session, delete(Response).where(Response.id.in_(responses)))
    _delete(session, delete(FollowupReminder).where(FollowupReminder.beneficiary_id.in_(people)))
    deleted["people"] = _delete(session, delete(Beneficiary).where(Beneficiary.id.in_(people)))
    return deleted


def ratelimit_window_before(now: datetime) -> ColumnElement[bool]:
    return RateLimitHit.window_start < now - RATE_LIMIT_KEEP


# --- erasure ---------------------------------------------------------------------------------


class UnknownPerson(LookupError):
    """No person has this code (said the same way as any unknown code)."""


def forget_people(
    session: Session, people: list[int], secret: str | bytes | None = None
) -> forgetting.Forgotten:
    """What the evaluators' memory keeps of these people (ids) goes: their join rows
    (evaluation/joins.py) and, in every remembered selection, their keyed hash, replaced by
    a stranger's (evaluation/forgetting.py: the differencing check is unchanged). Holds
    every evaluator's memory until the caller commits: call it before deleting anything of
    the people."""
    if not people:
        return forgetting.Forgotten()
    forgetting.hold_memories(session)
    joins.forget(session, people, secret)
    _forget_codes_in_jobs(session, people)
    return forgetting.forget(session, people, secret)


def _forget_codes_in_jobs(session: Session, people: list[int]) -> int:
    """Print batches of forms for people who already had a code (the follow-up forms of
    those due, paper/batch.py `existing_params`) keep each copy's code in their job's
    parameters, and the job rows are kept: the people's codes leave them (a retry prints
    the others). How many jobs changed. (The batch's PDF, which shows the codes, is deleted
    with its job's result files, SELFCHECK_JOBS_KEEP_MINUTES after it was made.)"""
    gone: set[str] = set()
    for start in range(0, len(people), 500):
        chunk = people[start : start + 500]
        gone.update(session.scalars(select(Beneficiary.code).where(Beneficiary.id.in_(chunk))))
    if not gone:
        return 0
    changed = 0
    for job_id, params in session.execute(
        select(Job.id, Job.params).where(Job.params.like('%"existing"%'))
    ):
        try:
            chosen = json.loads(params)
            copies = chosen["existing"]
            kept = [copy for copy in copies if str(copy[0]) not in gone]
        except (ValueError, TypeError, KeyError, IndexError):
            continue
        if len(kept) == len(copies):
            continue
        chosen["existing"] = kept
        chosen["count"] = len(kept)
        session.execute(
            update(Job).where(Job.id == job_id).values(params=json.dumps(chosen)),
            execution_options={"synchronize_session": False},
        )
        changed += 1
    return changed


def _delete_person(session: Session, person: Beneficiary, secret: str | bytes | None) -> int:
    responses = select(Response.id).where(Response.beneficiary_id == person.id).scalar_subquery()
    entries = select(SecondEntry.id).where(SecondEntry.response_id.in_(responses)).scalar_subquery()
    # The responses' rows locked first, as every writer of their answers does (a page save, a
    # sending): deleting the answers first, then the responses, deadlocked with a page save in
    # flight, which the database then killed (attack10, round 17). SQLite: a no-op.
    # The evaluators' memories held before the responses are locked, in the order purge
    # takes them too, so that an erasure and a purge never wait for each other in turn.
    forgetting.hold_memories(session)
    _lock_responses(session, Response.beneficiary_id == person.id)
    count = _count(session, Response, Response.beneficiary_id == person.id)
    # What the exports and views remember of the person, keyed hashes only: first, with
    # the evaluators' memories held (forget_people).
    forget_people(session, [person.id], secret)
    _delete(session, delete(EntryDiscrepancy).where(EntryDiscrepancy.second_entry_id.in_(entries)))
    _delete(
        session, delete(SecondEntryAnswer).where(SecondEntryAnswer.second_entry_id.in_(entries))
    )
    _delete(session, delete(SecondEntry).where(SecondEntry.id.in_(entries)))
    _delete(session, delete(Answer).where(Answer.response_id.in_(responses)))
    _delete(session, delete(Response).where(Response.beneficiary_id == person.id))
    # The consented reminder address (journey/reminders.py) goes with the person.
    _delete(session, delete(FollowupReminder).where(FollowupReminder.beneficiary_id == person.id))
    _delete(session, delete(Beneficiary).where(Beneficiary.id == person.id))
    return count


class ErasureReason(enum.StrEnum):
    """Why a person was erased: recorded with who and when, never whom."""

    PERSON_ONLINE = "person_online"  # the person, with their code, on /privacy/erase
    PERSON_ASKED = "person_asked"  # the person asked a staff member (GDPR article 17)
    CONSENT_WITHDRAWN = "consent_withdrawn"  # the person no longer wants to take part
    CREATED_BY_MISTAKE = "created_by_mistake"  # a code made or typed by mistake


def erase_by_code(
    session: Session,
    raw_code: str,
    by: StaffUser | None = None,
    reason: ErasureReason | None = None,
    secret: str | bytes | None = None,
) -> int:
    """Erase everything of the person with this code; returns how many responses went.

    `secret`: the app's secret key (that of the running app by default), which finds what
    the exports remember of the person (evaluation/joins.py).
    Raises codes.InvalidCode for a mistyped code and UnknownPerson for a code of nobody.
    Every audit event about the person is redacted (who did what and when stays; the code,
    the values and the record ids go). The erasure's own event says when, by whom (None: by
    themselves) and why, in which structure, and nothing that leads to the person.
    """
    code = codes.normalise(raw_code)
    person = session.scalar(select(Beneficiary).where(Beneficiary.code == code))
    if person is None:
        raise UnknownPerson(code)
    person_id, structure_id = person.id, person.structure_id
    count = _delete_person(session, person, secret)
    audit.redact_person(session, person_id, code)
    why = reason or (ErasureReason.PERSON_ONLINE if by is None else ErasureReason.PERSON_ASKED)
    audit.record(
        session,
        by,
        "erase",
        audit.Entity.BENEFICIARY,
        None,
        structure_id,
        {"reason": {"old": [], "new": [why.value]}},
    )
    session.flush()
    return count


def scrub_storage(session: Session) -> None:
    """After the erasure is committed (by the caller): on SQLite the old pages wait in the
    write-ahead log until a checkpoint; copy them over (zeroed: secure_delete) and empty the
    log, so the file holds nothing of the person."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    session.expire_all()
