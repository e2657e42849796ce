"""The differencing check's fast path (differencing.sealed_view, issue 18): a view whose
responses are those of a view already fully checked (same `fact_cell` sums) takes that
check's sealed verdict instead of reading every response again. On random sequences of
views (several filters) and writes (new forms, edits, deletions, erasures, moves), whenever
a seal is found valid, the full check run on the same state gives the same verdict: the same
refusal or the same sub-groups withheld, and nothing new to remember.

The same for the follow-up figures' check (figures_seal.sealed, branch dash3): views of the
figures on random days (today, or once every follow-up has opened), whenever a seal is found
valid, the full check (differencing.guard_figures on the people read one by one) passes on the
same state and remembers nothing new.

And the changed lines only (differencing.patched_view, branch dash16): whenever a view's lines
are patched from those of the last full check and the responses added since, they are those
of a full read (the selection's and every group's, the people, the paper people), the checks
on them give the full check's verdict and remember the same lines (read back through the
rows of changed lines they write), with the same reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from flask import current_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from selfcheck.evaluation import bundle, differencing, facts, figures_seal, headline, retention
from selfcheck.evaluation.guard_views import GROUPS
from selfcheck.evaluation.scope import EvaluationFilters, ScopeError
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    DashboardSeal,
    ExportLog,
    ExportSelection,
    FiguresSeal,
    Role,
    StaffUser,
)
from selfcheck.questionnaire.model import Definition
from tests.services.evaluation.test_facts import LATER, OPERATIONS, PARIS, World
from tests.staff import add_staff

SECRET = "un secret de test"
K = 3


def group_forms(forms: tuple[str, ...]) -> frozenset[int]:
    """A group's forms as `Hashed.lines` takes them."""
    return frozenset(differencing.FORM_CODES.index(form) for form in forms)


class Evaluated(World):
    def __init__(self, db: Session, database: Database, definition: Definition) -> None:
        super().__init__(db, database, definition)
        # The app's secret is the memory's: the erasures and purges among the random writes
        # then make the erased people's lines strangers' (evaluation/forgetting.py), and every
        # check after them is compared with the full check on that memory too (fix17).
        current_app.secret_key = SECRET
        account = add_staff(database, Role.EVALUATOR, departments=("44", "59"))
        user = db.get(StaffUser, account.id)
        assert user is not None
        self.user = user
        self.fast = 0
        self.fast_figures = 0
        self.patched = 0  # views whose lines were patched (patched_view)
        self.deltas = 0  # rows of changed lines they remembered

    def full(
        self,
        filters: EvaluationFilters,
        seal: differencing.Seal | None,
        found: differencing.Hashed | None = None,
    ) -> object:
        """The full check's verdict (the refusal, or the groups withheld), as guard_views
        runs it; its rows kept only when `seal` is given (else rolled back). `found`: the
        lines to check (`differencing.Patched`, or a full read's) instead of a full read."""
        paper: int | None = None
        newest: int | None = None
        if found is None:
            selection = differencing.read_selection(self.db, filters)
            found = differencing.Hashed(differencing.Hasher(SECRET, self.user.id), selection)
            paper = selection.paper_people
            newest = int(selection.response.max()) if selection.response.size else 0
            if (
                seal is not None
                and differencing.selection_sums(selection, facts.session_cell_key(self.db))
                != seal.sums
            ):
                seal = None
        elif isinstance(found, differencing.Patched):
            paper, newest = found.paper, found.newest
        try:
            row = differencing.guard_view(self.db, self.user, filters, K, SECRET, found)
            if seal is not None:
                seal = differencing.Seal(
                    seal.sums, seal.groups, paper=paper, newest=newest, row=row
                )
            return differencing.guard_tables(
                self.db, self.user, filters, GROUPS, K, SECRET, found, seal=seal
            )
        except ScopeError:
            return "refused"

    def remembered(self) -> int:
        return int(
            self.db.scalar(
                select(func.count())
                .select_from(ExportSelection)
                .join(ExportLog)
                .where(ExportSelection.user_id == self.user.id)
            )
            or 0
        )

    def view(self, index: int) -> None:
        filters = self.selections()[index % len(self.selections())]
        sums = differencing.cell_sums_of(self.db, filters)
        selection = differencing.read_selection(self.db, filters)
        assert sums == differencing.selection_sums(selection, facts.session_cell_key(self.db))
        counted = headline.counts(self.db, self.definition, filters, 0)["paper"]
        assert counted == (selection.paper_people, 0)
        seal = differencing.Seal(sums, GROUPS) if sums is not None else None
        sealed = (
            differencing.sealed_view(self.db, self.user, filters, K, SECRET, seal)
            if seal is not None
            else None
        )
        if sealed is not None:
            self.fast += 1
            before = self.remembered()
            nested = self.db.begin_nested()
            verdict = self.full(filters, None)
            assert verdict == sealed.refused  # never a refusal turned into an answer
            assert self.remembered() == before  # the full check would remember nothing new
            nested.rollback()
            assert sealed.people == differencing.read_selection(self.db, filters).people
            # The paper figure kept with the verdict is the headline's own count, now.
            counted = headline.counts(self.db, self.definition, filters, 0)["paper"]
            assert counted == (sealed.paper, 0)
            return
        patched = (
            differencing.patched_view(
                self.db,
                self.user,
                filters,
                SECRET,
                seal.sums,
                GROUPS,
                facts.session_cell_key(self.db),
            )
            if seal is not None
            else None
        )
        if patched is not None:
            self.patched += 1
            self.same_as_full(filters, patched)
        nested = self.db.begin_nested()
        if self.full(filters, seal, patched) == "refused":
            nested.rollback()
        else:
            nested.commit()
        self.db.commit()

    def records(self, row_id: int) -> np.ndarray:  # type: ignore[type-arg]
        """A remembered row's whole lines, read back (whole or changed lines)."""
        records, _depth = differencing.remembered_records(self.db, row_id)
        assert records is not None
        return records

    def same_as_full(self, filters: EvaluationFilters, patched: differencing.Patched) -> None:
        """Patched lines are a full read's, and the checks on them give the full check's
        verdict and remember the same lines (each check run in a transaction rolled back)."""
        selection = differencing.read_selection(self.db, filters)
        full = differencing.Hashed(differencing.Hasher(SECRET, self.user.id), selection)
        assert patched.people == full.people
        assert patched.paper == selection.paper_people
        assert patched.newest >= (int(selection.response.max()) if selection.response.size else 0)
        for forms in (None, *(group_forms(forms) for forms in GROUPS.values())):
            assert np.array_equal(patched.lines(forms), full.lines(forms))
        outcomes = []
        for found in (full, patched):
            nested = self.db.begin_nested()
            last = self.db.scalar(select(func.max(ExportSelection.id))) or 0
            verdict = self.full(filters, None, found)
            rows = self.db.execute(
                select(ExportSelection.id, ExportSelection.people, ExportSelection.count)
                .add_columns(ExportLog.kind, ExportLog.report, ExportSelection.base_id)
                .join(ExportLog)
                .where(ExportSelection.id > last)
                .order_by(ExportSelection.id)
            ).all()
            if found is patched:
                self.deltas += sum(1 for row in rows if row.base_id is not None)
            remembered = [
                (row.kind, row.people, row.count, row.report, self.records(row.id).tobytes())
                for row in rows
            ]
            nested.rollback()
            outcomes.append((verdict, remembered))
        assert outcomes[0] == outcomes[1]

    def figures(self, index: int, later: bool = False) -> bool | None:
        """A view of the follow-up figures as guard_views runs it (None: no figures), today
        or once every follow-up has opened: a sealed verdict checked against the full one."""
        filters = self.selections()[index % len(self.selections())]
        now = datetime.now(UTC) + (LATER if later else timedelta(0))
        key = facts.session_cell_key(self.db)
        counted = retention.count(self.db, self.definition, filters, now=now, zone=PARIS, key=key)
        if counted is None:
            return None
        followed = retention.load(
            self.db, self.definition, filters, now=now, zone=PARIS
        ) or retention.Followed({}, {}, frozenset(), frozenset())
        assert counted.digests == retention.digests_of(followed, self.definition, key)
        groups = retention.figure_groups(followed, self.definition)
        if figures_seal.sealed(self.db, self.user, filters, K, SECRET, counted.digests):
            self.fast_figures += 1
            before = self.remembered()
            nested = self.db.begin_nested()
            # Never withheld figures shown, and nothing the full check would remember.
            assert differencing.guard_figures(self.db, self.user, filters, groups, K, SECRET)
            assert self.remembered() == before
            nested.rollback()
            return True
        nested = self.db.begin_nested()
        before = figures_seal.snapshot(self.db, self.user)
        shown = differencing.guard_figures(self.db, self.user, filters, groups, K, SECRET)
        if shown:
            figures_seal.seal(self.db, self.user, filters, K, SECRET, counted.digests, before)
            nested.commit()
        else:
            nested.rollback()
        self.db.commit()
        return shown


@pytest.fixture
def evaluated(
    db_session: Session, database: Database, definition: Definition, request_context: None
) -> Evaluated:
    return Evaluated(db_session, database, definition)


@pytest.mark.slow  # every view and its figures checked twice: about 50 s at load 15
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(
    st.lists(
        st.tuples(st.sampled_from((*OPERATIONS, "view", "view", "view")), st.integers(0, 10**6)),
        min_size=4,
        max_size=14,
    )
)
def test_a_sealed_verdict_is_the_full_checks(
    evaluated: Evaluated, steps: list[tuple[str, int]]
) -> None:
    for _ in range(6):  # people enough for views of k
        evaluated.run("new", 7)
    for operation, seed in steps:
        if operation == "view":
            evaluated.view(seed)
            evaluated.view(seed)  # the same again: its seal is found, unless refused
            later = seed % 3 == 0  # another day: other groups, unless nobody's opened since
            evaluated.figures(seed, later)
            evaluated.figures(seed, later)
        else:
            evaluated.run(operation, seed)


@pytest.mark.slow  # about 2 s: a dozen people written through the journey
def test_a_view_of_unchanged_responses_is_sealed_and_any_other_memory_breaks_it(
    evaluated: Evaluated,
) -> None:
    for seed in range(8):
        evaluated.run("new", seed)
    whole = evaluated.selections()[0]
    evaluated.view(0)
    assert evaluated.db.scalar(select(func.count()).select_from(DashboardSeal)) == 1
    evaluated.view(0)
    assert evaluated.fast == 1
    sums = differencing.cell_sums_of(evaluated.db, whole)
    assert sums is not None
    seal = differencing.Seal(sums, GROUPS)
    user = evaluated.user
    # Another k, another secret: no seal.
    assert differencing.sealed_view(evaluated.db, user, whole, K + 1, SECRET, seal) is None
    assert differencing.sealed_view(evaluated.db, user, whole, K, "autre", seal) is None
    # A new answer inside the selection: other sums, no seal.
    evaluated.run("new", 99)
    moved = differencing.cell_sums_of(evaluated.db, whole)
    assert moved is not None and moved != sums
    assert (
        differencing.sealed_view(
            evaluated.db, user, whole, K, SECRET, differencing.Seal(moved, GROUPS)
        )
        is None
    )
    # A view of other filters remembered since: the seal is no longer enough.
    evaluated.view(0)
    now = differencing.cell_sums_of(evaluated.db, whole)
    assert now is not None
    assert (
        differencing.sealed_view(
            evaluated.db, user, whole, K, SECRET, differencing.Seal(now, GROUPS)
        )
        is not None
    )
    log = ExportLog(user_id=user.id, kind="export", filters="{}", row_count=1, k=K, report="{}")
    evaluated.db.add(log)
    evaluated.db.flush()
    evaluated.db.add(ExportSelection(export_id=log.id, user_id=user.id, count=0, people=""))
    evaluated.db.commit()
    assert (
        differencing.sealed_view(
            evaluated.db, user, whole, K, SECRET, differencing.Seal(now, GROUPS)
        )
        is None
    )


@pytest.mark.slow  # about 2-3 s: a dozen people followed up through the journey
def test_a_figures_check_is_sealed_and_any_other_figures_memory_breaks_it(
    evaluated: Evaluated,
) -> None:
    for seed in range(8):
        evaluated.run("new", seed)
        evaluated.run("after", seed)
    for seed in range(8):
        evaluated.run("followup", seed)
    assert evaluated.figures(0, later=True) is True
    assert evaluated.db.scalar(select(func.count()).select_from(FiguresSeal)) == 1
    assert evaluated.figures(0, later=True) is True
    assert evaluated.fast_figures == 1
    whole = evaluated.selections()[0]
    db, user = evaluated.db, evaluated.user
    later = datetime.now(UTC) + LATER
    key = facts.session_cell_key(db)
    counted = retention.count(db, evaluated.definition, whole, now=later, zone=PARIS, key=key)
    assert counted is not None
    assert figures_seal.sealed(db, user, whole, K, SECRET, counted.digests)
    # Another k, another secret: no seal.
    assert not figures_seal.sealed(db, user, whole, K + 1, SECRET, counted.digests)
    assert not figures_seal.sealed(db, user, whole, K, "autre", counted.digests)
    # Today, before the follow-ups open: other groups, other digests, no seal.
    today = retention.count(
        db, evaluated.definition, whole, now=datetime.now(UTC), zone=PARIS, key=key
    )
    assert today is not None and today.digests["response"] != counted.digests["response"]
    assert not figures_seal.sealed(db, user, whole, K, SECRET, today.digests)
    # A dashboard view of other filters since: not read by the figures' check, still sealed.
    evaluated.view(1)
    assert figures_seal.sealed(db, user, whole, K, SECRET, counted.digests)
    # Figures of other filters remembered since: the seal is no longer enough.
    log = ExportLog(
        user_id=user.id,
        kind=differencing.FIGURES_KIND,
        filters='{"structure_ids": [-1]}',
        row_count=1,
        k=K,
        report="{}",
    )
    db.add(log)
    db.flush()
    db.add(ExportSelection(export_id=log.id, user_id=user.id, count=0, people=""))
    db.commit()
    assert not figures_seal.sealed(db, user, whole, K, SECRET, counted.digests)


@pytest.mark.slow  # about 5 s: a dozen people written through the journey, a dozen views
def test_a_view_after_new_answers_inside_is_patched_and_remembers_changed_lines(
    evaluated: Evaluated,
) -> None:
    for seed in range(12):
        evaluated.run("new", seed)
    whole = evaluated.selections()[0]
    evaluated.view(0)  # the full check: sealed, with where its lines are remembered
    assert evaluated.patched == 0
    assert evaluated.db.scalar(select(DashboardSeal.base)) is not None
    rounds = differencing.DELTA_DEPTH + 4
    for seed in range(rounds):
        evaluated.run("new", 100 + seed)  # a new person inside the whole selection
        evaluated.view(0)  # patched (and checked against the full check: same_as_full)
    # Each view patched, or sealed (a form the journey left unsubmitted: the same responses).
    assert evaluated.patched + evaluated.fast == rounds
    assert evaluated.patched > differencing.DELTA_DEPTH
    assert evaluated.deltas > 0
    user = evaluated.user
    mine = select(ExportSelection.id, ExportSelection.base_id).where(
        ExportSelection.user_id == user.id
    )
    rows = evaluated.db.execute(mine).all()
    assert any(base is not None for _id, base in rows)
    # Never more than DELTA_DEPTH rows of changed lines on a whole row: then whole again.
    depths = [differencing.remembered_records(evaluated.db, row_id)[1] for row_id, _base in rows]
    assert max(depths) == differencing.DELTA_DEPTH
    # The newest view's lines, read back from its row of changed lines, are a full read's now.
    newest = evaluated.db.scalars(
        select(ExportSelection)
        .join(ExportLog)
        .where(ExportSelection.user_id == user.id, ExportLog.kind == differencing.KIND)
        .order_by(ExportSelection.id.desc())
    ).first()
    assert newest is not None
    assert newest.base_id is not None
    lines = differencing.selection_lines(evaluated.db, whole, user, SECRET)
    assert differencing.remembered_lines(evaluated.db, newest) == lines
    # An export compares with it as with whole lines: the same people but one, refused.
    with pytest.raises(ScopeError):
        bundle.check_differencing(evaluated.db, user, lines[1:], K)


# Writes that keep the responses read by the last full check (new forms) more often than
# those that change them (the patch then gives way to a full read), and views of every filter.
PATCH_STEPS = ("new", "new", "new", "after", "followup", "edit", "move", "erase", "purge")


@pytest.mark.slow  # about a minute at load 15: each patched view checked against a full one
def test_patched_lines_are_a_full_reads_after_random_writes(evaluated: Evaluated) -> None:
    for seed in range(8):  # people enough for views of k
        evaluated.run("new", seed)

    @settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=True,
    )
    @given(
        st.lists(
            st.tuples(st.sampled_from(PATCH_STEPS), st.integers(0, 99), st.integers(0, 5)),
            min_size=3,
            max_size=10,
        )
    )
    def run(steps: list[tuple[str, int, int]]) -> None:
        for operation, seed, view in steps:
            evaluated.run(operation, seed)
            # Mostly the whole selection; else one structure, or two forms.
            evaluated.view(0 if view > 2 else view)

    run()
    # Every patched view was checked against the full read and check (Evaluated.same_as_full).
    assert evaluated.patched >= 3
    assert evaluated.deltas > 0
