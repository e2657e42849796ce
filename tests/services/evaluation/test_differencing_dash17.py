"""Branch dash17: a view after new answers inside the selection reads only the records of the
people who answered (`differencing._looked_up`: windows of the remembered value around each
person's expected place, the rows of changed lines of its chain) and updates the set digest
(`Hasher.mark`) instead of reading every remembered line and hashing them all.

Checked here: the set digest is a sum (a change of a few records updates it); the windows
find exactly the records a whole read finds, or give way (None) at a window's edge, never a
wrong answer; with windows so small that both happen often, patched views after random
writes are still a full read's (lines, verdicts, what they remember and its reports:
`Evaluated.same_as_full` of test_differencing_sealed.py); and a patched view with a
memory of views of the same filters only reads no remembered lines whole."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.evaluation import differencing, facts
from selfcheck.evaluation.guard_views import GROUPS
from selfcheck.platform.db import Database
from selfcheck.platform.models import ExportLog, ExportSelection, Role, StaffUser
from selfcheck.questionnaire.model import Definition
from tests.services.evaluation.test_differencing_sealed import (
    PATCH_STEPS,
    SECRET,
    Evaluated,
    K,
)
from tests.staff import add_staff


@pytest.fixture
def user(database: Database, db_session: Session) -> StaffUser:
    account = add_staff(database, Role.EVALUATOR, departments=("44",))
    found = db_session.get(StaffUser, account.id)
    assert found is not None
    return found


@pytest.fixture
def evaluated(
    db_session: Session, database: Database, definition: Definition, request_context: None
) -> Evaluated:
    return Evaluated(db_session, database, definition)


def _random_records(rng: np.random.Generator, count: int) -> np.ndarray:  # type: ignore[type-arg]
    raw = rng.integers(0, 256, size=(count, differencing.RECORD_BYTES), dtype=np.uint8)
    records = np.unique(raw.view(differencing.RECORD).ravel())
    return records


def test_the_set_digest_is_a_sum_of_the_records() -> None:
    hasher = differencing.Hasher(SECRET, 7)
    rng = np.random.default_rng(3)
    records = _random_records(rng, 500)
    whole = hasher.mark(records)
    part = hasher.mark(records[::3])
    rest = hasher.mark(np.setdiff1d(records, records[::3]))
    assert (part + rest) % 2**128 == whole
    assert hasher.mark(records[:0]) == 0
    # Another record, another evaluator: another digest.
    changed = np.array(records, copy=True)
    grid = changed.view(np.uint8).reshape(changed.size, differencing.RECORD_BYTES)
    grid[10, -1] ^= 1
    assert hasher.mark(changed) != whole
    assert differencing.Hasher(SECRET, 8).mark(records) != whole
    kept = differencing.marked(records.size, whole)
    assert differencing._mark_of(kept, records.size) == whole
    assert differencing._mark_of(kept, records.size + 1) is None  # another count
    assert differencing._mark_of("0" * 64, records.size) is None  # a SHA-256 digest


@pytest.mark.parametrize("extra", [0, 1, 3, 40])
def test_windows_find_a_whole_reads_records_or_give_way(
    db_session: Session, user: StaffUser, monkeypatch: pytest.MonkeyPatch, extra: int
) -> None:
    monkeypatch.setattr(differencing, "WINDOW_SCALE", 0)
    monkeypatch.setattr(differencing, "WINDOW_EXTRA", extra)
    monkeypatch.setattr(differencing, "WINDOW_SHARE", 0)  # never the whole row instead
    rng = np.random.default_rng(extra)
    stored = _random_records(rng, 300)
    row = differencing._record(
        db_session, user, differencing.KIND, "{}", stored, rows=stored.size, count=stored.size, k=K
    )
    found = given_up = 0
    for seed in range(40):
        pick = random.Random(seed)
        keys = _random_records(rng, pick.randint(1, 6))  # people not there
        there = stored[sorted(pick.sample(range(stored.size), pick.randint(0, 4)))]
        grid = np.array(there, copy=True).view(np.uint8).reshape(-1, differencing.RECORD_BYTES)
        grid[:, differencing.PERSON_BYTES :] = 0  # the same people, other responses
        keys = np.unique(np.concatenate([keys, grid.view(differencing.RECORD).ravel()]))
        # All at once (one window given way and all are read whole), and one by one.
        for wanted in (keys, *(keys[index : index + 1] for index in range(keys.size))):
            looked = differencing._looked_up(
                db_session, row, stored.size * differencing.RECORD_BYTES, wanted
            )
            if looked is None:
                given_up += 1
                continue
            records, hit = looked
            at, expected = differencing._located(stored, wanted)
            assert np.array_equal(hit, expected)
            assert np.array_equal(records[hit], stored[at[expected]])
            found += int(hit.sum())
    if extra >= 40:
        assert given_up == 0  # 4.6 times the spread either side: never at an edge here
    else:
        assert given_up > 0
    if extra:
        assert found > 0


@pytest.mark.slow  # about 30 s each at load 15: each patched view checked against a full one
@pytest.mark.parametrize("extra", [0, 2])
def test_patched_lines_from_small_windows_are_a_full_reads_after_random_writes(
    evaluated: Evaluated, monkeypatch: pytest.MonkeyPatch, extra: int
) -> None:
    """The random writes of test_patched_lines_are_a_full_reads_after_random_writes, with
    windows of a few records (the records found in them, or at their edge: the row is then
    read whole): every patched view's lines, verdicts and remembered rows and reports are a
    full read's."""
    monkeypatch.setattr(differencing, "WINDOW_SCALE", 0)
    monkeypatch.setattr(differencing, "WINDOW_EXTRA", extra)
    monkeypatch.setattr(differencing, "WINDOW_SHARE", 0)
    outcomes: list[bool] = []
    patched_group = differencing._patched_group

    def counted(*args: object, **kwargs: object) -> object:
        found = patched_group(*args, **kwargs)  # type: ignore[arg-type]
        outcomes.append(found is not None)
        return found

    monkeypatch.setattr(differencing, "_patched_group", counted)
    for seed in range(8):
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
            evaluated.view(0 if view > 2 else view)

    run()
    assert evaluated.patched >= 3
    if extra:
        assert any(outcomes)  # groups patched from the records of the people only
    else:
        assert not all(outcomes)  # one record either side: often read whole instead


@pytest.mark.slow  # about 10 s: a dozen people written through the journey
def test_a_patched_view_reads_no_remembered_lines_whole(
    evaluated: Evaluated, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only views of the same filters remembered, the check after new answers inside
    compares nothing: it remembers the changed records under the updated set digests, which
    are those of the whole lines (read back after, and digested whole)."""
    # So few people that the windows hold every record: read through them all the same.
    monkeypatch.setattr(differencing, "WINDOW_SHARE", 0)
    for seed in range(12):
        evaluated.run("new", seed)
    whole = evaluated.selections()[0]
    evaluated.view(0)  # the full check, sealed: its rows carry set digests
    db, user = evaluated.db, evaluated.user
    read_whole: list[int] = []
    remembered_records = differencing.remembered_records

    def spied(db: Session, row_id: int) -> object:
        read_whole.append(row_id)
        return remembered_records(db, row_id)

    patched_views = 0
    for seed in range(4):
        evaluated.run("new", 200 + seed)
        sums = differencing.cell_sums_of(db, whole)
        assert sums is not None
        seal = differencing.Seal(sums, GROUPS)
        if differencing.sealed_view(db, user, whole, K, SECRET, seal) is not None:
            continue  # a form left unsubmitted: the same responses
        monkeypatch.setattr(differencing, "remembered_records", spied)
        patched = differencing.patched_view(
            db, user, whole, SECRET, sums, GROUPS, facts.session_cell_key(db)
        )
        assert patched is not None
        row = differencing.guard_view(db, user, whole, K, SECRET, patched)
        seal = differencing.Seal(sums, GROUPS, paper=patched.paper, newest=patched.newest, row=row)
        differencing.guard_tables(db, user, whole, GROUPS, K, SECRET, patched, seal=seal)
        monkeypatch.setattr(differencing, "remembered_records", remembered_records)
        db.commit()
        assert read_whole == []
        patched_views += 1
    assert patched_views >= 2
    hasher = differencing.Hasher(SECRET, user.id)
    rows = db.execute(
        select(ExportSelection.id, ExportSelection.base_id, ExportLog.kind, ExportLog.report)
        .join(ExportLog)
        .where(
            ExportSelection.user_id == user.id,
            ExportLog.kind.in_((differencing.KIND, differencing.TABLES_KIND)),
        )
    ).all()
    assert any(base is not None for _id, base, _kind, _report in rows)
    for row_id, _base, kind, report in rows:
        records, _depth = differencing.remembered_records(db, row_id)
        assert records is not None
        name = db.scalar(select(ExportSelection.people).where(ExportSelection.id == row_id))
        assert name is not None
        stored = (
            differencing._stored_digest(report)
            if kind == differencing.KIND
            else differencing._stored_digests(report)[name.rstrip("|")]
        )
        assert stored == differencing.marked(records.size, hasher.mark(records))
