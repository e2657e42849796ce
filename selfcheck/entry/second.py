"""The blind second entry: its queue, typing it, and comparing it with the first."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from selfcheck.entry.lookup import EntryError, load_response
from selfcheck.entry.saving import SaveResult, codes_of_form
from selfcheck.entry.values import Answers, Values, applicable_values, untyped
from selfcheck.journey import operations as journey
from selfcheck.platform import audit
from selfcheck.platform.models import (
    AuditEvent,
    Channel,
    EntryDiscrepancy,
    Response,
    SecondEntry,
    SecondEntryAnswer,
    StaffUser,
    Status,
    utcnow,
)
from selfcheck.questionnaire.model import (
    Definition,
    FormKind,
)

# --- blind second entry ------------------------------------------------------------------------


def first_entry_typists(session: Session, response_ids: Sequence[int]) -> dict[int, set[int]]:
    """Who typed or edited each first entry (they may not do its blind second entry)."""
    typists: dict[int, set[int]] = {response_id: set() for response_id in response_ids}
    if not response_ids:
        return typists
    rows = session.execute(
        select(Response.id, Response.entered_by_id).where(Response.id.in_(response_ids))
    )
    for response_id, user_id in rows:
        if user_id is not None:
            typists[response_id].add(user_id)
    events = session.execute(
        select(AuditEvent.entity_id, AuditEvent.user_id).where(
            AuditEvent.entity == audit.Entity.RESPONSE,
            AuditEvent.entity_id.in_(response_ids),
            AuditEvent.action.in_(("create", "edit")),
        )
    )
    for event_response, event_user in events:
        if event_response is not None and event_user is not None:
            typists[event_response].add(event_user)
    return typists


class QueueState:
    AVAILABLE = "available"
    OWN_ENTRY = "own_entry"  # this user typed the first entry: someone else must
    STARTED_BY_YOU = "started_by_you"
    STARTED_BY_OTHER = "started_by_other"


@dataclass(frozen=True)
class QueueLine:
    response: Response
    state: str
    first_by: str
    second_by: str | None

    @property
    def code(self) -> str:
        return self.response.beneficiary.code

    @property
    def form(self) -> FormKind:
        return FormKind(self.response.form)


def emails_of(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    users = session.scalars(select(StaffUser).where(StaffUser.id.in_(wanted)))
    return {user.id: user.email for user in users}


def second_entry_queue(
    session: Session, user: StaffUser, structure_ids: Sequence[int]
) -> list[QueueLine]:
    """Finished paper forms drawn for a second entry that is not complete yet, oldest first."""
    rows = session.execute(
        select(Response, SecondEntry)
        .outerjoin(SecondEntry, SecondEntry.response_id == Response.id)
        .where(
            Response.double_entry_wanted.is_(True),
            Response.status == Status.SUBMITTED.value,
            Response.channel == Channel.PAPER.value,
            Response.structure_id.in_(structure_ids),
            SecondEntry.completed_at.is_(None),
        )
        .order_by(Response.submitted_at, Response.id)
        .options(joinedload(Response.beneficiary))
    ).all()
    typists = first_entry_typists(session, [response.id for response, _entry in rows])
    emails = emails_of(
        session,
        [r.entered_by_id for r, _e in rows] + [e.entered_by_id for _r, e in rows if e],
    )
    lines = []
    for response, entry in rows:
        if entry is not None:
            state = (
                QueueState.STARTED_BY_YOU
                if entry.entered_by_id == user.id
                else QueueState.STARTED_BY_OTHER
            )
        elif user.id in typists[response.id]:
            state = QueueState.OWN_ENTRY
        else:
            state = QueueState.AVAILABLE
        lines.append(
            QueueLine(
                response=response,
                state=state,
                first_by=emails.get(response.entered_by_id or 0, "—"),
                second_by=emails.get(entry.entered_by_id) if entry else None,
            )
        )
    return lines


def start_second_entry(session: Session, user: StaffUser, response_id: int) -> SecondEntry:
    """Begin (or go back to one's own) blind second entry of a finished paper form."""
    response = load_response(session, user, response_id)
    if not (
        response.is_submitted
        and response.channel == Channel.PAPER.value
        and response.double_entry_wanted
    ):
        raise EntryError("second_entry_not_wanted", response)
    if user.id in first_entry_typists(session, [response.id])[response.id]:
        raise EntryError("own_entry", response)
    entry = session.scalar(select(SecondEntry).where(SecondEntry.response_id == response.id))
    if entry is None:
        entry = SecondEntry(response_id=response.id, entered_by_id=user.id)
        try:
            with session.begin_nested():  # a savepoint: only this insert is undone on conflict
                session.add(entry)
        except IntegrityError:  # someone else began at the same moment
            entry = session.scalar(
                select(SecondEntry).where(SecondEntry.response_id == response.id)
            )
            assert entry is not None
        else:
            audit.record(
                session, user, "create", audit.Entity.SECOND_ENTRY, entry.id, response.structure_id
            )
            return entry
    if entry.completed_at is not None:
        raise EntryError("second_entry_done", response)
    if entry.entered_by_id != user.id:
        raise EntryError("second_entry_taken", response)
    return entry


def load_second_entry(
    session: Session, user: StaffUser, response_id: int
) -> tuple[Response, SecondEntry]:
    """A second entry the user began and has not finished, with its response."""
    response = load_response(session, user, response_id)
    entry = session.scalar(
        select(SecondEntry)
        .where(SecondEntry.response_id == response.id)
        .options(selectinload(SecondEntry.answers))
    )
    if entry is None:
        raise EntryError("second_entry_not_started", response)
    if entry.entered_by_id != user.id:
        raise EntryError("second_entry_taken", response)
    if entry.completed_at is not None:
        raise EntryError("second_entry_done", response)
    return response, entry


def second_entry_values(entry: SecondEntry) -> Answers:
    collected: dict[str, list[str]] = {}
    for answer in entry.answers:
        collected.setdefault(answer.variable, []).append(answer.value)
    return {variable: tuple(values) for variable, values in collected.items()}


Difference = tuple[str, tuple[str, ...], tuple[str, ...]]


def compare(
    definition: Definition, form: FormKind, first: Values, second: Values
) -> list[Difference]:
    """(variable, first values, second values) of every field of the form that differs."""
    differences = []
    for variable in definition.variables(form):
        one, two = tuple(first.get(variable.code, ())), tuple(second.get(variable.code, ()))
        if sorted(one) != sorted(two):
            differences.append((variable.code, one, two))
    return differences


def save_second_entry(
    session: Session,
    definition: Definition,
    user: StaffUser,
    response: Response,
    entry: SecondEntry,
    values: Values,
    finish: bool = False,
) -> SaveResult:
    """Store the second entry; when finished and complete, compare it with the first."""
    form = FormKind(response.form)
    kept = applicable_values(definition, form, values)
    missing = tuple(untyped(definition, form, kept))
    form_codes = codes_of_form(definition, form)
    completed_at = session.execute(
        select(SecondEntry.completed_at).where(SecondEntry.id == entry.id).with_for_update()
    ).scalar_one()
    if completed_at is not None:  # finished meanwhile (a double click): nothing to change
        raise EntryError("second_entry_done", response)
    session.expire(entry, ["answers"])
    changes: dict[str, dict[str, list[str]]] = audit.answer_changes(
        second_entry_values(entry), kept
    )
    session.execute(delete(SecondEntryAnswer).where(SecondEntryAnswer.second_entry_id == entry.id))
    session.add_all(
        SecondEntryAnswer(second_entry_id=entry.id, variable=code, value=value)
        for code in form_codes
        for value in kept.get(code, ())
    )
    completed = False
    if finish and not missing:
        first = {k: v for k, v in journey.answers_of(response).items() if k in form_codes}
        differences = compare(definition, form, first, kept)
        now = utcnow()
        session.flush()
        result = session.execute(
            update(SecondEntry)
            .where(SecondEntry.id == entry.id, SecondEntry.completed_at.is_(None))
            .values(
                completed_at=now,
                compared_fields=len(form_codes),
                differing_fields=len(differences),
                resolved_at=None if differences else now,
            )
        )
        completed = bool(getattr(result, "rowcount", 0))
        if completed:
            session.add_all(
                EntryDiscrepancy(
                    second_entry_id=entry.id,
                    variable=code,
                    first_value=json.dumps(list(one)),
                    second_value=json.dumps(list(two)),
                )
                for code, one, two in differences
            )
            changes["status"] = {"old": ["in_progress"], "new": ["completed"]}
            changes["differing_fields"] = {"old": [], "new": [str(len(differences))]}
    if changes:
        audit.record(
            session,
            user,
            "edit",
            audit.Entity.SECOND_ENTRY,
            entry.id,
            response.structure_id,
            changes,
        )
    session.flush()
    session.refresh(entry)
    return SaveResult(saved=True, submitted_now=completed, missing=missing)
