"""Views of one evaluator at once (branch race15): the recording of what a check let through is
held per evaluator (`joins.hold`) and checked again when the memory moved meanwhile
(`differencing.hold_unchanged`); attack6's two tests cover `guard_view` and `guard_figures`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from selfcheck.evaluation import bundle, differencing, joins
from selfcheck.evaluation.export import Shape
from selfcheck.evaluation.guard_views import GROUPS
from selfcheck.evaluation.scope import EvaluationFilters, ScopeError, parse_filters
from selfcheck.platform.db import Database
from selfcheck.platform.models import ExportLog, ExportSelection, StaffUser, Structure
from selfcheck.questionnaire.model import Definition
from tests.conftest import is_postgres

SECRET = "un secret de test"
# 40 people, 15 of them in the second structure (conftest.populated): "everyone" and "the
# first structure" are 15 apart, fewer than this k, and so are some of their tables' groups.
K = 20


def _filters(db: Session, user: StaffUser) -> tuple[EvaluationFilters, EvaluationFilters]:
    slug = db.scalars(select(Structure.slug).order_by(Structure.id)).first()
    return parse_filters(db, user, {}), parse_filters(db, user, {"structure": str(slug)})


def _tables(db: Session, user: StaffUser, filters: EvaluationFilters) -> frozenset[str]:
    return differencing.guard_tables(db, user, filters, GROUPS, K, SECRET)


@pytest.mark.usefixtures("request_context")
def test_tables_of_two_views_at_once_are_withheld_as_one_after_the_other(
    populated: Session, admin: StaffUser, database: Database
) -> None:
    everyone, narrower = _filters(populated, admin)
    # The control: in sequence, some of the narrower view's tables are withheld.
    with database.session() as control:
        user = control.get(StaffUser, admin.id)
        assert user is not None
        assert not _tables(control, user, everyone)
        control.commit()
        expected = _tables(control, user, narrower)
        control.rollback()
        _forget(control, user.id)  # the same evaluator's memory, emptied for the race
    assert expected  # something is withheld in sequence
    started: list[str] = []
    hold_unchanged = differencing.hold_unchanged

    def the_other_request_meanwhile(
        db: Session, user: StaffUser, stamp: Any, forgotten: int | None = None
    ) -> None:
        # The first view has checked its groups against the memory and is about to remember
        # them: the other view runs whole and commits first (its own session).
        if not started:
            started.append("the other request")
            with database.session() as other:
                them = other.get(StaffUser, admin.id)
                assert them is not None
                assert not _tables(other, them, parse_filters(other, them, {}))
                other.commit()
        hold_unchanged(db, user, stamp, forgotten)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(differencing, "hold_unchanged", the_other_request_meanwhile)
        mine = _tables(populated, admin, narrower)
    populated.commit()
    assert started
    assert mine == expected  # checked again against the other view's groups


def _forget(db: Session, user_id: int) -> None:
    db.execute(delete(ExportSelection).where(ExportSelection.user_id == user_id))
    db.commit()


def _view(database: Database, user_id: int, args: dict[str, str], ready: threading.Barrier) -> str:
    with database.session() as db:
        user = db.get(StaffUser, user_id)
        assert user is not None
        filters = parse_filters(db, user, args)
        ready.wait(timeout=30)
        try:
            differencing.guard_view(db, user, filters, K, SECRET)
        except ScopeError:
            db.rollback()
            return "refused"
        db.commit()
        return "shown"


def _at_once(
    database: Database, user_id: int, views: list[dict[str, str]]
) -> tuple[list[str], list[BaseException]]:
    """The views run at once, one thread and one connection each: their verdicts, errors."""
    ready = threading.Barrier(len(views))
    verdicts: list[str] = []
    errors: list[BaseException] = []

    def run(args: dict[str, str]) -> None:
        try:
            verdicts.append(_view(database, user_id, args, ready))
        except BaseException as error:  # reported by the caller's assertion
            errors.append(error)

    threads = [threading.Thread(target=run, args=(args,)) for args in views]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return verdicts, errors


@pytest.mark.parametrize("rounds", [3])
def test_two_views_in_two_threads_never_both_shown_and_never_fail(
    populated: Session, admin: StaffUser, database: Database, rounds: int
) -> None:
    # Real concurrency (two threads, two connections): whatever the interleaving, a lock
    # wait and never an error (no deadlock, no "database is locked"), and of two selections
    # 15 people apart at most one is shown.
    slug = str(populated.scalars(select(Structure.slug).order_by(Structure.id)).first())
    for _round in range(rounds):
        _forget(populated, admin.id)
        verdicts, errors = _at_once(database, admin.id, [{}, {"structure": slug}])
        assert not errors, errors
        assert sorted(verdicts) == ["refused", "shown"]


@pytest.mark.slow  # one export of 40 people: 3 to 5 s on 2 busy cores
@pytest.mark.usefixtures("request_context")
def test_a_view_while_an_export_runs_is_compared_with_it(
    populated: Session,
    admin: StaffUser,
    definition: Definition,
    database: Database,
    tmp_path: Path,
) -> None:
    # An export of everyone, and meanwhile a dashboard view of the first structure (15
    # people fewer than k apart): in sequence the second is refused; at once each compared
    # itself with a memory without the other.
    everyone, _narrower = _filters(populated, admin)
    slug = str(populated.scalars(select(Structure.slug).order_by(Structure.id)).first())
    check = bundle.check_differencing
    outcomes: list[str] = []

    def a_view_meanwhile(*args: Any, **kwargs: Any) -> None:
        check(*args, **kwargs)  # the export has compared its selection with the memory
        with database.session() as other:
            user = other.get(StaffUser, admin.id)
            assert user is not None
            narrower = parse_filters(other, user, {"structure": slug})
            if is_postgres():
                # The export holds the evaluator's memory (joins.hold): the view waits for it
                # VIEW_WAIT_SECONDS at most, then is withheld with a "try again" (503).
                with pytest.raises(ScopeError) as withheld:
                    differencing.guard_view(other, user, narrower, K, SECRET)
                assert withheld.value.status == 503
                outcomes.append("view held")
                return
            differencing.guard_view(other, user, narrower, K, SECRET)
            other.commit()
            outcomes.append("view shown")

    request = bundle.ExportRequest("csv", Shape.WIDE)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(bundle, "check_differencing", a_view_meanwhile)
        patched.setattr(differencing, "VIEW_WAIT_SECONDS", 0.5)
        try:
            bundle.run_export(populated, definition, admin, everyone, request, K, tmp_path, SECRET)
            populated.commit()
            outcomes.append("export done")
        except joins.MemoryChanged:
            populated.rollback()
            outcomes.append("export failed")
    exports = select(func.count()).select_from(ExportLog).where(ExportLog.kind == "csv-wide")
    if is_postgres():
        assert outcomes == ["view held", "export done"]
        assert populated.scalar(exports) == 1
        return
    # SQLite: the view committed first; the export, written after it without comparing
    # with it, fails (its job fails, nothing released nor remembered), as for two exports.
    assert outcomes == ["view shown", "export failed"]
    assert populated.scalar(exports) == 0
