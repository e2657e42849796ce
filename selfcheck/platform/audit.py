"""Append-only audit trail of the back office: who changed what, when, old and new values.

There is deliberately no function to edit an event. `record` adds the event to the caller's
transaction, so the change and its trace are committed together or not at all. The one
exception is erasure (GDPR): `redact_person` strips every event about the erased person down
to who did what, and when: no code, no value, nothing that leads back to the person.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from selfcheck.platform import codes
from selfcheck.platform.models import AuditEvent, Response, SecondEntry, StaffUser

Values = Mapping[str, Sequence[str]]


class Entity(enum.StrEnum):
    """What an event is about (AuditEvent.entity: a plain string column, these values)."""

    RESPONSE = "response"
    BENEFICIARY = "beneficiary"
    SECOND_ENTRY = "second_entry"
    USER = "user"
    STRUCTURE = "structure"
    RETENTION = "retention"  # a purge of what outlived the retention period


def answer_changes(old: Values, new: Values) -> dict[str, dict[str, list[str]]]:
    """Variables whose values differ: {"T01": {"old": ["2"], "new": ["3"]}}."""
    changed = {}
    for variable in sorted(set(old) | set(new)):
        before, after = list(old.get(variable, ())), list(new.get(variable, ()))
        if sorted(before) != sorted(after):
            changed[variable] = {"old": before, "new": after}
    return changed


def record(
    session: Session,
    user: StaffUser | None,
    action: str,
    entity: Entity,
    entity_id: int | None,
    structure_id: int | None,
    changes: Mapping[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        user_id=user.id if user is not None else None,
        action=action,
        entity=entity.value,
        entity_id=entity_id,
        structure_id=structure_id,
        changes=json.dumps(changes or {}, ensure_ascii=False, sort_keys=True),
        beneficiary_id=_person_of(session, entity, entity_id),
    )
    session.add(event)
    return event


# The query of the person a record belongs to, by the kind of record (beneficiary: itself).
PERSON_OF: Mapping[Entity, Callable[[int], Select[int]]] = {
    Entity.RESPONSE: lambda id_: select(Response.beneficiary_id).where(Response.id == id_),
    Entity.SECOND_ENTRY: lambda id_: (
        select(Response.beneficiary_id)
        .join(SecondEntry, SecondEntry.response_id == Response.id)
        .where(SecondEntry.id == id_)
    ),
}


def _person_of(session: Session, entity: Entity, entity_id: int | None) -> int | None:
    """The person an event is about, so that erasing them can find it (None: nobody)."""
    if entity_id is None:
        return None
    if entity is Entity.BENEFICIARY:
        return entity_id
    query = PERSON_OF.get(entity)
    return None if query is None else session.scalar(query(entity_id))


REDACTED = "{}"


def redact_person(session: Session, person_id: int, code: str) -> int:
    """Erase a person from the trail: their events keep who, what action on what kind of
    record, when and in which structure; they lose the code, every value, and the ids that
    tied them together. Events found by link, and any event whose text holds the code."""
    spellings = {code, codes.display(code)}
    statement = (
        update(AuditEvent)
        .where(
            or_(
                AuditEvent.beneficiary_id == person_id,
                *(AuditEvent.changes.contains(spelling) for spelling in spellings),
            )
        )
        .values(changes=REDACTED, entity_id=None, beneficiary_id=None)
    )
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class EventView:
    event: AuditEvent
    who: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class EventFilter:
    """What the audit trail page asks for; None: no condition on that."""

    person_id: int | None = None
    user_id: int | None = None
    action: str | None = None
    since: datetime | None = None  # included
    before: datetime | None = None  # excluded (the day after the last day asked for)


def _where(structure_ids: Sequence[int] | None, chosen: EventFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if structure_ids is not None:
        conditions.append(AuditEvent.structure_id.in_(structure_ids))
    if chosen.person_id is not None:
        conditions.append(AuditEvent.beneficiary_id == chosen.person_id)
    if chosen.user_id is not None:
        conditions.append(AuditEvent.user_id == chosen.user_id)
    if chosen.action is not None:
        conditions.append(AuditEvent.action == chosen.action)
    if chosen.since is not None:
        conditions.append(AuditEvent.at >= chosen.since)
    if chosen.before is not None:
        conditions.append(AuditEvent.at < chosen.before)
    return conditions


def events(
    session: Session,
    structure_ids: Sequence[int] | None,
    limit: int = 200,
    offset: int = 0,
    chosen: EventFilter | None = None,
) -> list[EventView]:
    """Newest first; `structure_ids` None means every structure (platform administrators)."""
    query = (
        select(AuditEvent)
        .where(*_where(structure_ids, chosen or EventFilter()))
        .order_by(AuditEvent.id.desc())
        .limit(limit)
        .offset(offset)
        .options(selectinload(AuditEvent.user))
    )
    return [
        EventView(e, e.user.email if e.user else "—", json.loads(e.changes))
        for e in session.scalars(query)
    ]


def count(
    session: Session, structure_ids: Sequence[int] | None, chosen: EventFilter | None = None
) -> int:
    query = (
        select(func.count())
        .select_from(AuditEvent)
        .where(*_where(structure_ids, chosen or EventFilter()))
    )
    return session.scalar(query) or 0


def authors(session: Session, structure_ids: Sequence[int] | None) -> list[StaffUser]:
    """The staff members with at least one event in these structures, by e-mail."""
    having = select(AuditEvent.user_id).where(*_where(structure_ids, EventFilter()))
    return list(
        session.scalars(select(StaffUser).where(StaffUser.id.in_(having)).order_by(StaffUser.email))
    )
