"""Attack10 (round 17): races around the page save of pg17 on PostgreSQL.

`lock_state` reads the response and its answers in one `SELECT … FOR UPDATE OF response`
(journey/operations.py). Under READ COMMITTED, when that statement has to wait for another
transaction holding the response's row (a page save from another tab, the fast save's
autocommitted statement, a paper entry), PostgreSQL re-checks only the locked row
(EvalPlanQual): the joined answers are those of the statement's snapshot, taken before the
other writer committed. The state was then "locked" but its answers stale, although the
code says "the answers are read under the lock"; the locked save (pg17's fallback when the
row changed) and the sending (`submit_locked`: hidden answers removed, `missing_required`)
decided from it. Fixed in `lock_state`: the row's version as locked and as in the snapshot
are compared, and the state read again when they differ.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from selfcheck.followup import operations as followup
from selfcheck.journey import operations as journey
from selfcheck.platform.db import Database
from selfcheck.platform.models import Response, Role, StaffUser, Structure
from selfcheck.privacy import operations as privacy
from selfcheck.questionnaire.model import Definition, FormKind
from tests.staff import add_staff
from tests.views.test_save_round_trips import _postgres, _save, _save_read, _started, _stored


def test_a_locked_state_read_that_waited_for_a_writer_sees_its_answers(
    database: Database, definition: Definition, structure: Structure
) -> None:
    if not _postgres(database):
        pytest.skip("PostgreSQL only: SQLite serialises writers")
    response_id = _started(database, definition, structure)
    page = definition.screen(FormKind.BEFORE, "p_devices")
    assert page is not None
    seen: list[journey.ResponseState | None] = []
    with database.session() as holder:
        state = journey.lock_state(holder, response_id)
        assert state is not None
        journey.save_locked_page(holder, definition, state, page, {"DEVICES": ("fixe",)})

        def read_locked() -> None:
            with database.session() as session:
                seen.append(journey.lock_state(session, response_id))
                session.rollback()

        waiting = threading.Thread(target=read_locked)
        waiting.start()
        time.sleep(0.5)
        assert waiting.is_alive()  # waiting for the row's lock
        holder.commit()
    waiting.join(timeout=10)
    assert _stored(database, response_id) == {"DEVICES": ["fixe"]}
    assert seen and seen[0] is not None
    # Read with the row locked, after the holder committed: its answer must be there.
    assert seen[0].answers == {"DEVICES": ("fixe",)}


def test_a_fast_save_read_before_a_locked_save_is_not_lost_nor_duplicated(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """Tab A reads, tab B saves the same page (locked), tab A's save finds the row changed:
    nothing of B's lost, no duplicate rows."""
    if not _postgres(database):
        pytest.skip("PostgreSQL only: SQLite serialises writers")
    response_id = _started(database, definition, structure)
    with database.reader.connect() as connection:
        stale = journey.read_state_to_save(connection, response_id)
    assert stale is not None
    page = definition.screen(FormKind.BEFORE, "p_devices")
    assert page is not None
    with database.session() as session:
        state = journey.lock_state(session, response_id)
        assert state is not None
        journey.save_locked_page(session, definition, state, page, {"DEVICES": ("fixe",)})
        session.commit()
    assert _save_read(database, definition, stale, "p_devices", {"DEVICES": ("portable",)}) is None
    assert _stored(database, response_id) == {"DEVICES": ["fixe"]}


def test_an_erasure_racing_a_page_save_neither_deadlocks(
    database: Database,
    definition: Definition,
    structure: Structure,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The person erases themselves (`privacy.erase_by_code`) while a page of theirs is
    being saved from another tab (the response's row first, then the page's answers): both
    end without an error (the save writes nothing). The erasure deleted the answers before the
    response, the other order: PostgreSQL's deadlock detector killed the save (a 500)."""
    if not _postgres(database):
        pytest.skip("PostgreSQL only: SQLite serialises writers")
    response_id = _started(database, definition, structure)
    _save(database, definition, response_id, "p_devices", {"DEVICES": ("fixe",)})
    with database.reader.connect() as connection:
        state = journey.read_state_to_save(connection, response_id)
    assert state is not None
    saving, outcome = _saving_from_another_tab(database, definition, state)
    delete_rows = privacy._delete

    def delete_then_race(session: Session, statement: Any) -> None:
        delete_rows(session, statement)
        if statement.table.name == "answer" and not saving.is_alive() and not outcome:
            saving.start()  # the page saved from another tab, now
            time.sleep(0.3)

    monkeypatch.setattr(privacy, "_delete", delete_then_race)
    with database.session() as eraser:
        privacy.erase_by_code(eraser, state.code, secret="test")
        eraser.commit()
    saving.join(timeout=10)
    assert outcome == [None], outcome
    assert _stored(database, response_id) == {}


def test_a_staff_deletion_racing_a_page_save_neither_deadlocks(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """As the erasure: a mediator deletes the response (`followup.delete_response`, the ORM
    deleting its answers first) while a page of it is being saved."""
    if not _postgres(database):
        pytest.skip("PostgreSQL only: SQLite serialises writers")
    mediator = add_staff(database, Role.MEDIATOR, structure)
    response_id = _started(database, definition, structure)
    _save(database, definition, response_id, "p_devices", {"DEVICES": ("fixe",)})
    with database.reader.connect() as connection:
        state = journey.read_state_to_save(connection, response_id)
    assert state is not None
    saving, outcome = _saving_from_another_tab(database, definition, state)
    deleter = threading.current_thread()

    def after(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        first = not saving.is_alive() and not outcome
        if first and threading.current_thread() is deleter and sql.startswith("DELETE FROM answer"):
            saving.start()  # the page saved from another tab, now
            time.sleep(0.3)

    event.listen(database.engine, "after_cursor_execute", after)
    try:
        with database.session() as session:
            user = session.get(StaffUser, mediator.id)
            response = session.get(Response, response_id)
            assert user is not None and response is not None
            followup.delete_response(session, user, response)
            session.commit()
    finally:
        event.remove(database.engine, "after_cursor_execute", after)
    saving.join(timeout=10)
    assert outcome == [None], outcome
    assert _stored(database, response_id) == {}


def _saving_from_another_tab(
    database: Database, definition: Definition, state: journey.ResponseState
) -> tuple[threading.Thread, list[object]]:
    """A thread (not started) saving a page from `state` read earlier, and what it ended with
    (None, or the error it raised)."""
    outcome: list[object] = []

    def save() -> None:
        try:
            outcome.append(
                _save_read(database, definition, state, "p_devices", {"DEVICES": ("portable",)})
            )
        except Exception as error:  # reported by the test
            outcome.append(error)

    return threading.Thread(target=save), outcome
