"""The purge's report counts what it deleted (round 18): its counts were read before its locks,
so a person who answered again in between was counted as purged and kept (note17)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from selfcheck.platform.models import Answer, AuditEvent, Beneficiary, Response, utcnow
from selfcheck.privacy import operations as privacy


def _count(db: Session, model: type[Any]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_the_purge_reports_what_it_deleted_not_what_it_counted_first(
    populated: Session,
) -> None:
    people = list(populated.scalars(select(Beneficiary.id).order_by(Beneficiary.id).limit(3)))
    long_ago = privacy.months_before(utcnow(), 40)
    populated.execute(
        update(Response).where(Response.beneficiary_id.in_(people)).values(updated_at=long_ago)
    )
    populated.execute(
        update(Beneficiary).where(Beneficiary.id.in_(people)).values(created_at=long_ago)
    )
    populated.commit()
    assert privacy.purge(populated, 24).people == 3  # the dry run: counted, nothing locked
    before = {model: _count(populated, model) for model in (Beneficiary, Response, Answer)}
    locked = privacy._locked_expired

    def answered_again_before_the_locks(session: Session, cutoff: Any) -> list[int]:
        # Another request commits after the purge counted and before it locked: the first
        # person changes a form, and is no longer expired.
        session.execute(
            update(Response).where(Response.beneficiary_id == people[0]).values(updated_at=utcnow())
        )
        return locked(session, cutoff)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(privacy, "_locked_expired", answered_again_before_the_locks)
        report = privacy.purge(populated, 24, dry_run=False, secret="s")
    populated.commit()
    gone = {model: before[model] - _count(populated, model) for model in before}
    assert populated.get(Beneficiary, people[0]) is not None
    assert (report.people, report.responses, report.answers) == (
        gone[Beneficiary],
        gone[Response],
        gone[Answer],
    )
    assert report.people == 2 and report.answers > 0
    # The purge's own audit event says the same.
    event = populated.scalars(
        select(AuditEvent).where(AuditEvent.action == "purge").order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None
    assert json.loads(event.changes)["people"]["old"] == [str(report.people)]
