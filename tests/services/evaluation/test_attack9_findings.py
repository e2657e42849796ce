"""Findings of an attack on the forgetting of erased, purged and deleted people in the
evaluators' differencing memory (branch fix17, evaluation/forgetting.py; round 17)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from selfcheck.evaluation import differencing, forgetting
from selfcheck.evaluation.scope import EvaluationFilters, ScopeError, parse_filters
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    Beneficiary,
    ExportLog,
    ExportSelection,
    Response,
    StaffUser,
    Structure,
    utcnow,
)
from selfcheck.privacy import operations as privacy

SECRET = "un secret de test"
# conftest.populated: 40 people, the last 15 in a second structure. "Everyone" and "the first
# structure" are 15 apart: refused in sequence under this k; 17 apart when one person of the
# first structure is remembered under their own hash on one side and a stranger's on the
# other, which is no longer refused.
K = 17


def _filters(db: Session, user: StaffUser) -> tuple[EvaluationFilters, EvaluationFilters]:
    slug = db.scalars(select(Structure.slug).order_by(Structure.id)).first()
    return parse_filters(db, user, {}), parse_filters(db, user, {"structure": str(slug)})


def _someone_of_the_first_structure(db: Session) -> Beneficiary:
    first = db.scalars(select(Structure.id).order_by(Structure.id)).first()
    for person in db.scalars(
        select(Beneficiary).where(Beneficiary.structure_id == first).order_by(Beneficiary.id)
    ):
        if any(response.is_submitted for response in person.responses):
            return person
    raise AssertionError("nobody answered in the first structure")


@pytest.mark.usefixtures("request_context")
def test_an_erasure_between_a_views_read_and_its_check_opens_no_difference(
    populated: Session, admin: StaffUser, database: Database
) -> None:
    everyone, first = _filters(populated, admin)
    differencing.guard_view(populated, admin, first, K, SECRET)
    populated.commit()
    # The control, in sequence: everyone is 15 people from the first structure, refused,
    # before the erasure and after it.
    nested = populated.begin_nested()
    with pytest.raises(ScopeError):
        differencing.guard_view(populated, admin, everyone, K, SECRET)
    nested.rollback()
    populated.commit()  # a request's reads hold no snapshot (pysqlite; READ COMMITTED)
    person = _someone_of_the_first_structure(populated)
    code = person.code
    read = differencing._hashed
    erased: list[str] = []

    def erased_meanwhile(*args: Any, **kwargs: Any) -> Any:
        # The view has read its selection; the erasure (another request) commits now.
        found = read(*args, **kwargs)
        if not erased:
            erased.append(code)
            with database.session() as other:
                privacy.erase_by_code(other, code, secret=SECRET)
                other.commit()
        return found

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(differencing, "_hashed", erased_meanwhile)
        with pytest.raises(ScopeError) as refused:
            differencing.guard_view(populated, admin, everyone, K, SECRET)
    assert erased
    # Withheld as stale (the memory was forgotten after the selection was read: try again),
    # not let through; then, in sequence, refused as before the erasure.
    assert refused.value.status == 503
    populated.rollback()
    with pytest.raises(ScopeError) as again:
        differencing.guard_view(populated, admin, everyone, K, SECRET)
    assert again.value.status == 422


@pytest.mark.usefixtures("request_context")
def test_purge_deletes_exactly_the_people_it_forgot(populated: Session, admin: StaffUser) -> None:
    everyone, _first = _filters(populated, admin)
    differencing.guard_view(populated, admin, everyone, 5, SECRET)
    populated.commit()
    people = list(populated.scalars(select(Beneficiary.id).order_by(Beneficiary.id).limit(3)))
    long_ago = privacy.months_before(utcnow(), 40)
    populated.execute(
        update(Response).where(Response.beneficiary_id.in_(people)).values(updated_at=long_ago)
    )
    populated.execute(
        update(Beneficiary).where(Beneficiary.id.in_(people)).values(created_at=long_ago)
    )
    populated.commit()
    forget = privacy.forget_people
    forgotten: list[int] = []

    def answered_again_meanwhile(
        session: Session, ids: list[int], secret: str | bytes | None = None
    ) -> forgetting.Forgotten:
        done = forget(session, ids, secret)
        forgotten.extend(ids)
        # Another request, committed while the purge forgot: the first person answers again.
        session.execute(
            update(Response).where(Response.beneficiary_id == people[0]).values(updated_at=utcnow())
        )
        return done

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(privacy, "forget_people", answered_again_meanwhile)
        privacy.purge(populated, 24, dry_run=False, secret=SECRET)
    populated.commit()
    assert sorted(forgotten) == sorted(people)
    still_there = set(populated.scalars(select(Beneficiary.id).where(Beneficiary.id.in_(people))))
    assert not still_there & set(forgotten), "forgotten by the memory, yet kept"


@pytest.mark.usefixtures("request_context")
def test_forgetting_keeps_the_kind_of_each_digest(populated: Session, admin: StaffUser) -> None:
    # A guard for the merge with dash17: the views there keep a set digest ("set1:...",
    # differencing.MARK_PREFIX), which a patched view updates from a few records; forgetting
    # computes the digests of the rows it rewrote again, and must write them in the kind the
    # views write (a SHA-256 digest there makes every patched view of those rows read them
    # whole, and test_forgetting.assert_consistent compares SHA-256 digests only).
    everyone, first = _filters(populated, admin)
    differencing.guard_view(populated, admin, everyone, 5, SECRET)
    differencing.guard_view(populated, admin, first, 5, SECRET)
    populated.commit()

    def kinds() -> dict[int, str]:
        found = {}
        for row_id, report in populated.execute(
            select(ExportSelection.id, ExportLog.report).join(ExportLog)
        ):
            digest = json.loads(report).get(differencing.DIGEST)
            assert isinstance(digest, str)
            found[row_id] = digest.partition(":")[0] if ":" in digest else "sha256"
        return found

    before = kinds()
    person = _someone_of_the_first_structure(populated)
    privacy.erase_by_code(populated, person.code, secret=SECRET)
    populated.commit()
    assert kinds() == before


@pytest.mark.usefixtures("request_context")
def test_a_forgetting_raises_the_mark_of_the_evaluators_it_rewrote(
    populated: Session, admin: StaffUser
) -> None:
    # What A9-1's fix rests on: the mark a view reads before its selection moves with every
    # forgetting that rewrote the evaluator's memory, and only then.
    everyone, _first = _filters(populated, admin)
    assert differencing.forgetting_mark(populated, admin.id) == 0
    person = _someone_of_the_first_structure(populated)
    privacy.erase_by_code(populated, person.code, secret=SECRET)  # nothing remembered yet
    populated.commit()
    assert differencing.forgetting_mark(populated, admin.id) == 0
    differencing.guard_view(populated, admin, everyone, 5, SECRET)
    populated.commit()
    person = _someone_of_the_first_structure(populated)
    privacy.erase_by_code(populated, person.code, secret=SECRET)
    populated.commit()
    assert differencing.forgetting_mark(populated, admin.id) == 1


@pytest.mark.usefixtures("request_context")
def test_figures_read_before_a_forgetting_are_withheld_and_not_remembered(
    populated: Session, admin: StaffUser
) -> None:
    # The figures' groups are read before the check (guard_views.guard_figures_here reads the
    # mark first): with a mark that moved since, nothing is remembered, 503 (try again).
    everyone, _first = _filters(populated, admin)
    groups = {"response": frozenset(range(1, 11)), "kept": frozenset(range(1, 11))}
    stale = differencing.forgetting_mark(populated, admin.id)
    forgetting.mark_forgotten(populated, admin.id)  # as an erasure committed meanwhile
    populated.commit()
    with pytest.raises(ScopeError) as withheld:
        differencing.guard_figures(populated, admin, everyone, groups, 3, SECRET, stale)
    assert withheld.value.status == 503
    populated.rollback()
    assert not populated.scalar(
        select(ExportSelection.id).where(ExportSelection.user_id == admin.id)
    )
    # Read again with the mark as it is: checked and remembered as ever.
    mark = differencing.forgetting_mark(populated, admin.id)
    assert differencing.guard_figures(populated, admin, everyone, groups, 3, SECRET, mark)
