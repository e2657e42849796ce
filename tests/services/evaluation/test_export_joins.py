"""The memory of an evaluator's exports (joins.py) through the real export: recorded with the
log row, keyed hashes only, the same export again loses nobody, erasure forgets, and a job
that fails records nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from selfcheck.evaluation import bundle, codebook, export, export_job, joins
from selfcheck.evaluation.export import Shape
from selfcheck.evaluation.scope import ScopeError, parse_filters
from selfcheck.platform.db import Database
from selfcheck.platform.jobs import JobError
from selfcheck.platform.models import Beneficiary, ExportLog, Job, JoinMemory, Role, StaffUser
from selfcheck.privacy import operations as privacy
from selfcheck.questionnaire.model import Definition
from tests.services.evaluation.support import populate
from tests.staff import add_staff, signed_in
from tests.support import follow_job, path_of

K = 5
SECRET = "s"


@pytest.fixture(autouse=True)
def _quick_codebook_pdf(monkeypatch: pytest.MonkeyPatch) -> None:
    # The codebook's PDF (WeasyPrint, seconds) is not what these tests are about.
    monkeypatch.setattr(codebook, "pdf", lambda book: b"%PDF-1.7\n")


def _memory_rows(db: Session) -> list[JoinMemory]:
    return list(db.scalars(select(JoinMemory).order_by(JoinMemory.id)))


@pytest.mark.slow  # two exports of 40 people: 5 to 10 s on 2 busy cores
@pytest.mark.usefixtures("request_context")
def test_an_export_remembers_its_people_as_keyed_hashes_and_again_loses_nobody(
    populated: Session, admin: StaffUser, definition: Definition, tmp_path: Path
) -> None:
    filters = parse_filters(populated, admin, {})
    request = bundle.ExportRequest("csv", Shape.WIDE)
    (tmp_path / "a").mkdir()
    first = bundle.run_export(
        populated, definition, admin, filters, request, K, tmp_path / "a", SECRET
    )
    populated.commit()
    rows = _memory_rows(populated)
    assert first.report["people_exported"] > 0
    assert len(rows) == first.report["people_exported"]
    assert first.report["people_left_out_for_earlier_exports"] == 0
    assert any("exports précédents" in line for line in bundle.report_lines(first.report))
    # Keyed hashes only: no id nor code of a person in the table.
    people = populated.execute(select(Beneficiary.id, Beneficiary.code)).all()
    stored = {value for row in rows for value in (row.person, row.digest)}
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in stored)
    for person_id, code in people:
        assert str(person_id) not in stored and code not in stored
        assert not any(code in value for value in stored)
    # The same export again, nothing new: the same people, nobody left out for the join.
    (tmp_path / "b").mkdir()
    again = bundle.run_export(
        populated, definition, admin, filters, request, K, tmp_path / "b", SECRET
    )
    populated.commit()
    assert again.report["people_exported"] == first.report["people_exported"]
    assert again.report["people_left_out_for_earlier_exports"] == 0
    assert len(_memory_rows(populated)) == len(rows)
    # The export log keeps the count.
    logged = populated.scalars(select(ExportLog).order_by(ExportLog.id.desc())).first()
    assert logged is not None and '"people_left_out_for_earlier_exports": 0' in logged.report
    # Erasure forgets the person (and only them).
    exported = set(joins.person_hashes(SECRET, admin.id, [p for p, _ in people]).values())
    person_id, code = next(
        (p, c)
        for p, c in people
        if joins.person_hashes(SECRET, admin.id, [p])[p] in {r.person for r in rows}
    )
    assert exported
    privacy.erase_by_code(populated, code, secret=SECRET)
    populated.commit()
    left = {r.person for r in _memory_rows(populated)}
    assert len(left) == len(rows) - 1
    assert joins.person_hashes(SECRET, admin.id, [person_id])[person_id] not in left


def test_forgetting_without_the_secret_is_refused_not_silent(db_session: Session) -> None:
    account = StaffUser(email="e@example.org", password_hash="x", role=Role.EVALUATOR.value)
    db_session.add(account)
    db_session.flush()
    db_session.add(JoinMemory(user_id=account.id, person="a" * 32, digest="b" * 32))
    db_session.flush()
    assert joins.forget(db_session, []) == 0
    with pytest.raises(RuntimeError, match="secret"):
        joins.forget(db_session, [1])


def _count(database: Database, model: type[Any]) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.slow  # two export jobs through the web app: > 5 s on 2 busy cores
def test_an_export_job_records_its_memory_and_a_failed_one_nothing(
    app: Flask,
    db_session: Session,
    definition: Definition,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    populate(db_session, definition, people=14, moved=5)
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    # The file cannot be stored once written: the job fails and leaves no memory.
    with monkeypatch.context() as patched:
        patched.setattr(export_job.shutil, "move", broken)
        started = evaluator.get("/evaluate/exports/download?format=csv&shape=wide")
    assert started.status_code == 303
    with database.session() as session:
        assert session.scalar(select(Job.status)) == "failed"
    assert _count(database, JoinMemory) == 0 and _count(database, ExportLog) == 0
    started = evaluator.get("/evaluate/exports/download?format=csv&shape=wide")
    response = follow_job(evaluator, started)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    with database.session() as session:
        report = session.scalars(select(ExportLog.report)).one()
    assert _count(database, JoinMemory) == int(report.split('"people_exported": ')[1].split(",")[0])


@pytest.mark.slow  # an export job through the web app: several seconds on 2 busy cores
@pytest.mark.parametrize(
    "moved",
    [joins.MemoryChanged, export.DataChanged, lambda words: ScopeError(words, 503)],
    ids=["memory", "data", "forgotten"],
)
def test_an_export_planned_on_data_that_moved_fails_in_plain_words(
    app: Flask,
    db_session: Session,
    definition: Definition,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    moved: Callable[[str], Exception],
) -> None:
    # Another export of the evaluator recorded meanwhile (joins.MemoryChanged), someone of
    # the plan was erased (export.DataChanged), or the evaluator's memory was rewritten by an
    # erasure after the selection was read (ScopeError 503, `hold_unchanged`: round 18): the
    # job fails, says why and what to do.
    populate(db_session, definition, people=14, moved=5)
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))

    def raced(*args: object, **kwargs: object) -> None:
        raise moved("meanwhile")

    monkeypatch.setattr(export_job.bundle, "run_export", raced)
    started = evaluator.get("/evaluate/exports/download?format=csv&shape=wide")
    assert started.status_code == 303
    with database.session() as session:
        assert session.scalars(select(Job.error)).one() == JobError.CHANGED.value
    page = evaluator.get(path_of(started.headers["Location"]))
    assert "Relancez la préparation" in page.get_data(as_text=True)
    assert _count(database, JoinMemory) == 0 and _count(database, ExportLog) == 0
