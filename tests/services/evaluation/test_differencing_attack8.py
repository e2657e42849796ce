"""attack8: patched lines (dash16, `differencing.patched_view`) after the writes the random
test does not make: a response left in progress (an OLD id) sent later, a response deleted,
made untimed, re-dated into or out of a month, and a follow-up's time moved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from selfcheck.journey import operations as journey
from selfcheck.platform.models import Response, Status
from tests.services.evaluation.test_differencing_sealed import (
    Evaluated,
    evaluated,  # noqa: F401 (fixture)
)


def _in_progress(evaluated: Evaluated) -> list[Response]:  # noqa: F811
    return list(
        evaluated.db.scalars(
            select(Response)
            .where(Response.status == Status.IN_PROGRESS.value)
            .order_by(Response.id)
        )
    )


def _late_submit(evaluated: Evaluated, seed: int) -> None:  # noqa: F811
    """A response started long ago (an id below the last check's newest) sent now."""
    waiting = _in_progress(evaluated)
    if not waiting:
        return
    response = waiting[seed % len(waiting)]
    missing = journey.missing_required(
        evaluated.definition, journey.FormKind(response.form), journey.answers_of(response)
    )
    if missing:
        return
    assert journey.submit(evaluated.db, evaluated.definition, response)
    evaluated.db.commit()
    evaluated.db.expire_all()


def _redate(evaluated: Evaluated, seed: int, days: int) -> None:  # noqa: F811
    done = evaluated.submitted()
    if not done:
        return
    response = done[seed % len(done)]
    moved = datetime.now(UTC) + timedelta(days=days)
    evaluated.db.execute(
        update(Response).where(Response.id == response.id).values(submitted_at=moved)
    )
    evaluated.db.commit()
    evaluated.db.expire_all()


@pytest.mark.slow
def test_attack8_patched_lines_after_late_sends_deletions_and_new_dates(
    evaluated: Evaluated,  # noqa: F811
) -> None:
    for seed in range(10):
        evaluated.run("new", seed)
    views = range(len(evaluated.selections()))
    for index in views:
        evaluated.view(index)
    steps = [
        ("new", 11),
        ("late", 0),
        ("new", 12),
        ("untimed", 3),
        ("new", 13),
        ("delete_response", 4),
        ("new", 14),
        ("redate_out", 5),
        ("new", 15),
        ("redate_in", 6),
        ("late", 1),
        ("new", 16),
        ("edit", 7),
        ("new", 17),
    ]
    for operation, seed in steps:
        if operation == "late":
            _late_submit(evaluated, seed)
        elif operation == "redate_out":
            _redate(evaluated, seed, -40)
        elif operation == "redate_in":
            _redate(evaluated, seed, 0)
        else:
            evaluated.run(operation, seed)
        for index in views:
            evaluated.view(index)  # a patched view is compared with the full read and check
    assert evaluated.patched > 0
