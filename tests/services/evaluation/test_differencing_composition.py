"""Differencing by composition and over time (issue 17 part 2): selections whose sums and
differences isolate fewer than k people, though each pair differs by k or more."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from selfcheck.evaluation import bundle, differencing
from selfcheck.evaluation.export import Shape
from selfcheck.evaluation.scope import ScopeError, parse_filters
from selfcheck.platform.models import Beneficiary, ExportLog, Response, StaffUser, Status
from selfcheck.questionnaire.model import Definition

K = 5


def _people(db: Session) -> list[int]:
    return list(db.scalars(select(Beneficiary.id).order_by(Beneficiary.id)))


def _set(db: Session, ids: list[int], **values: object) -> None:
    db.execute(update(Response).where(Response.beneficiary_id.in_(ids)).values(**values))
    db.commit()


def _export(
    db: Session, definition: Definition, user: StaffUser, args: dict[str, str], out: Path
) -> bundle.ExportResult:
    out.mkdir()
    filters = parse_filters(db, user, args)
    request = bundle.ExportRequest("csv", Shape.WIDE)
    return bundle.run_export(db, definition, user, filters, request, K, out, secret="s")


@pytest.mark.slow  # three exports
@pytest.mark.usefixtures("request_context")
def test_two_overlapping_exports_and_their_union_are_not_all_released(
    populated: Session, admin: StaffUser, definition: Definition, tmp_path: Path
) -> None:
    # 10 people answered in January 2025, 3 in February, 10 in March. January-February,
    # February-March and January-March each differ from the others by 10 or more, but the
    # first two minus the third is the 3 people of February.
    ids = _people(populated)
    for month, chosen in ((1, ids[:10]), (2, ids[10:13]), (3, ids[13:23])):
        _set(populated, chosen, submitted_at=datetime(2025, month, 15, tzinfo=UTC))
    _export(populated, definition, admin, {"to": "2025-02"}, tmp_path / "a")
    _export(populated, definition, admin, {"from": "2025-02", "to": "2025-03"}, tmp_path / "b")
    with pytest.raises(ScopeError) as refused:
        _export(populated, definition, admin, {"to": "2025-03"}, tmp_path / "c")
    assert refused.value.status == 422
    assert not list((tmp_path / "c").iterdir())  # nothing written
    assert populated.scalar(select(func.count()).select_from(ExportLog)) == 2
    # Disjoint parts and their union isolate nobody: January, then March, then both...
    # would still be refused here (both overlap February's earlier exports); a fresh
    # evaluator's disjoint months are checked in tests/evaluation/test_isolates.py.


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
@pytest.mark.usefixtures("request_context")
def test_the_same_selection_after_a_few_new_answers_is_refused_after_an_export(
    populated: Session, admin: StaffUser, definition: Definition, tmp_path: Path
) -> None:
    ids = _people(populated)
    # Five people have not sent their forms yet.
    _set(populated, ids[:5], status=Status.IN_PROGRESS.value)
    _export(populated, definition, admin, {}, tmp_path / "a")
    _set(populated, ids[:2], status=Status.SUBMITTED.value)  # ... now two of them have
    filters = parse_filters(populated, admin, {})
    # The export again: its rows minus the first export's would be these two.
    people = sorted(
        {
            differencing.person_of(line)
            for line in differencing.selection_lines(populated, filters, admin, "s")
        }
    )
    with pytest.raises(ScopeError) as refused:
        bundle.check_differencing(populated, admin, people, K)
    assert refused.value.status == 422
    # Nor the dashboard (or export page) with the same filters: a view of the same filters
    # is let through as the data grows, but not against an export of those filters.
    with pytest.raises(ScopeError) as hidden:
        differencing.guard_view(populated, admin, filters, K, "s")
    assert hidden.value.status == 422
    # With k new people since the export, both are fine again.
    _set(populated, ids[2:5], status=Status.SUBMITTED.value)
    more = parse_filters(populated, admin, {})
    differencing.guard_view(populated, admin, more, K, "s")


@pytest.mark.usefixtures("request_context")
def test_a_dashboard_viewed_again_as_the_data_grows_is_still_shown(
    populated: Session, admin: StaffUser
) -> None:
    # The documented limit: without an export of these filters, the same dashboard is shown
    # again after new answers (refusing it would leave the evaluator without it).
    ids = _people(populated)
    _set(populated, ids[:2], status=Status.IN_PROGRESS.value)
    first = differencing.guard_view(populated, admin, parse_filters(populated, admin, {}), K, "s")
    _set(populated, ids[:2], status=Status.SUBMITTED.value)
    again = differencing.guard_view(populated, admin, parse_filters(populated, admin, {}), K, "s")
    # Shown both times (no ScopeError), and the grown selection remembered as one of its own.
    assert first is not None
    assert again is not None and again != first


@pytest.mark.usefixtures("request_context")
def test_a_selection_kept_in_the_earlier_format_is_still_compared(
    populated: Session, admin: StaffUser
) -> None:
    """Lines kept before `differencing.Hasher` (an HMAC per person, "<person>.<responses>")
    cannot be compared with today's lines: this selection's lines in that format are computed
    for them, so a view one person away from such an earlier view is still refused."""
    ids = _people(populated)
    everyone = parse_filters(populated, admin, {})
    legacy = differencing._legacy_lines(populated, everyone, admin, "s")
    assert legacy and all("." in line and ":" not in line for line in legacy)
    differencing._record(
        populated, admin, differencing.KIND, '{"before": 1}', legacy,
        rows=len(legacy), count=len(legacy), k=K,
    )  # fmt: skip
    _set(populated, ids[:1], status=Status.IN_PROGRESS.value)  # one person less
    with pytest.raises(ScopeError):
        differencing.guard_view(populated, admin, parse_filters(populated, admin, {}), K, "s")
    # The same people as that earlier view: the same selection, allowed and not kept again.
    _set(populated, ids[:1], status=Status.SUBMITTED.value)
    differencing.guard_view(populated, admin, everyone, K, "s")
    assert populated.scalar(select(func.count()).select_from(ExportLog)) == 1


@pytest.mark.usefixtures("request_context")
def test_the_selection_is_read_as_the_responses_are(populated: Session, admin: StaffUser) -> None:
    """read_selection packs each response's id, form and channel into one integer (two
    values a row for PostgreSQL to pack): unpacked, they are the responses' own."""
    ids = _people(populated)
    _set(populated, ids[:4], channel="paper")
    filters = parse_filters(populated, admin, {})
    found = differencing.read_selection(populated, filters)
    rows = populated.execute(
        select(Response.beneficiary_id, Response.id, Response.form, Response.channel).where(
            Response.status == Status.SUBMITTED.value
        )
    ).all()
    expected = sorted(
        (person, response, differencing.FORM_CODES.index(form), channel == "paper")
        for person, response, form, channel in rows
    )
    assert found.paper is not None
    read = sorted(
        zip(
            found.person.tolist(),
            found.response.tolist(),
            found.form.tolist(),
            found.paper.tolist(),
            strict=True,
        )
    )
    assert read == expected and any(paper for *_rest, paper in read)
    assert found.paper_people == len({person for person, *_rest, paper in read if paper})
