"""The rule the PostgreSQL page save relies on, enforced (journey/row_guard.py): every writer
of a response's answers updates the response's row in the same transaction. A writer that
forgets the row is caught at commit (tests and debug: an error, nothing committed;
production: the row updated there and then, and an error logged)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

import selfcheck
from selfcheck.journey import operations as journey
from selfcheck.journey import row_guard
from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, Response, Structure
from selfcheck.questionnaire.model import Definition
from tests.views.test_save_round_trips import _save, _started, _stored


def _answered(database: Database, definition: Definition, structure: Structure) -> int:
    response_id = _started(database, definition, structure)
    _save(database, definition, response_id, "p_help", {"ASSIST": ("seul",)})
    _save(database, definition, response_id, "p_devices", {"DEVICES": ("portable",)})
    return response_id


def _version(database: Database, response_id: int) -> object:
    """What the optimistic save compares: the row's xmin (PostgreSQL), else its time."""
    with database.session() as session:
        column = "xmin::text" if database.engine.dialect.name == "postgresql" else "updated_at"
        found = text(f"SELECT {column} FROM response WHERE id = :id")
        return session.scalar(found, {"id": response_id})


def refused_commit(session: Session, naming: int | None = None) -> None:
    """The commit refused by the guard (the message naming the response `naming`, if
    given), then the transaction rolled back."""
    match = None if naming is None else str(naming)
    with pytest.raises(row_guard.AnswersWithoutTheirRow, match=match):
        session.commit()
    session.rollback()


def test_a_core_delete_of_answers_without_the_row_is_refused(
    database: Database, definition: Definition, structure: Structure
) -> None:
    response_id = _answered(database, definition, structure)
    before = _version(database, response_id)
    with database.session() as session:
        session.execute(
            delete(Answer).where(Answer.response_id == response_id, Answer.variable == "DEVICES")
        )
        refused_commit(session, naming=response_id)
    assert _stored(database, response_id) == {"ASSIST": ["seul"], "DEVICES": ["portable"]}
    assert _version(database, response_id) == before


def test_orm_answers_added_without_the_row_are_refused(
    database: Database, definition: Definition, structure: Structure
) -> None:
    response_id = _answered(database, definition, structure)
    with database.session() as session:
        session.add(Answer(response_id=response_id, variable="DEVICES", value="fixe"))
        refused_commit(session)
    assert _stored(database, response_id)["DEVICES"] == ["portable"]


def test_an_orm_answer_changed_without_the_row_is_refused(
    database: Database, definition: Definition, structure: Structure
) -> None:
    response_id = _answered(database, definition, structure)
    with database.session() as session:
        found = session.scalar(select(Answer).where(Answer.variable == "DEVICES"))
        assert found is not None
        found.value = "fixe"
        refused_commit(session)
    assert _stored(database, response_id)["DEVICES"] == ["portable"]


def test_a_writer_that_updates_the_row_too_is_accepted(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """Core or ORM, the row written before or after the answers, in one transaction."""
    response_id = _answered(database, definition, structure)
    with database.session() as session:
        session.execute(
            delete(Answer).where(Answer.response_id == response_id, Answer.variable == "DEVICES")
        )
        session.execute(update(Response).where(Response.id == response_id).values(locale="en"))
        session.commit()
    with database.session() as session:
        response = session.get(Response, response_id)
        assert response is not None
        response.locale = "fr"
        session.add(Answer(response_id=response_id, variable="DEVICES", value="fixe"))
        session.commit()
    assert _stored(database, response_id)["DEVICES"] == ["fixe"]


def test_only_the_answers_of_the_row_written_count(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """Another response's row updated does not cover this one's answers; a row changed
    only in its collection of answers (no UPDATE) does not count either."""
    first = _answered(database, definition, structure)
    other = _started(database, definition, structure)
    with database.session() as session:
        session.execute(update(Response).where(Response.id == other).values(locale="en"))
        session.execute(delete(Answer).where(Answer.response_id == first))
        refused_commit(session)
    with database.session() as session:
        response = session.get(Response, first)
        assert response is not None
        response.answers.append(Answer(variable="DEVICES", value="fixe"))
        refused_commit(session)
    assert _stored(database, first) == {"ASSIST": ["seul"], "DEVICES": ["portable"]}


def test_outside_strict_mode_the_row_is_updated_and_an_error_logged(
    database: Database,
    definition: Definition,
    structure: Structure,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Production: the answers are kept, and the row gets a new version (PostgreSQL: a new
    xmin, so a page save read before finds it changed and writes nothing)."""
    response_id = _answered(database, definition, structure)
    before = _version(database, response_id)
    with database.session() as session, caplog.at_level(logging.ERROR, row_guard.__name__):
        session.execute(
            delete(Answer).where(Answer.response_id == response_id, Answer.variable == "DEVICES")
        )
        assert row_guard.check(session, strict=False) == {response_id}
        session.commit()  # the strict check at commit finds the row written now
    assert "written without updating their row" in caplog.text
    assert _stored(database, response_id) == {"ASSIST": ["seul"]}
    if database.engine.dialect.name == "postgresql":
        assert _version(database, response_id) != before


def test_no_raw_sql_writes_answers_around_the_session() -> None:
    """The hook sees the session's statements only. SQL written as text that inserts,
    updates or deletes answers must update the response's row in the same statement: the
    one such writer is the optimistic save's (`_SAVE_READ_PAGE_SQL`, its `touched`). A new
    one fails here, to be checked by hand and listed."""
    package = Path(selfcheck.__file__).parent
    writes = re.compile(r"\b(INSERT\s+INTO|DELETE\s+FROM|UPDATE)\s+\"?answer\"?\b", re.IGNORECASE)
    found: list[tuple[str, str]] = []
    for source in sorted(package.rglob("*.py")):
        if "migrations" in source.parts:
            continue  # run before the app serves anything
        for line in source.read_text(encoding="utf-8").splitlines():
            if writes.search(line) and not line.strip().startswith("#"):
                found.append((str(source.relative_to(package)), line.strip()))
    known = journey._SAVE_READ_PAGE_SQL
    assert found, "the optimistic save's SQL is no longer found: update this test"
    for where, line in found:
        assert where == "journey/operations.py" and line in known, (where, line)
    assert "UPDATE response SET" in known and "EXISTS (SELECT FROM touched)" in known
