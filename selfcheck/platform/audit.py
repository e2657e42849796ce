"""Append-only audit trail of the back office: who changed what, when, old and new values.

There is deliberately no function to edit or delete an event. `record` adds the event to the
caller's transaction, so the change and its trace are committed together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.platform.models import AuditEvent, StaffUser

Values = Mapping[str, Sequence[str]]


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
    entity: str,
    entity_id: int | None,
    structure_id: int | None,
    changes: Mapping[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        user_id=user.id if user is not None else None,
        action=action,
        entity=entity,
        entity_id=entity_id,
        structure_id=structure_id,
        changes=json.dumps(changes or {}, ensure_ascii=False, sort_keys=True),
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class EventView:
    event: AuditEvent
    who: str
    changes: dict[str, Any]


def events(
    session: Session, structure_ids: Sequence[int] | None, limit: int = 200, offset: int = 0
) -> list[EventView]:
    """Newest first; `structure_ids` None means every structure (platform administrators)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
    if structure_ids is not None:
        query = query.where(AuditEvent.structure_id.in_(structure_ids))
    return [
        EventView(e, e.user.email if e.user else "—", json.loads(e.changes))
        for e in session.scalars(query)
    ]
