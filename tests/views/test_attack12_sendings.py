"""attack12: round 19's sending (pg19: the facts' writes and the data version's raise in one
`WITH` on PostgreSQL) raced: several people of one structure sending at the same moment
(their tally and cell rows shared), and one person's two tabs sending the same response.
What must hold: no error (no deadlock between the WITH's upserts), the facts those a
recomputation gives, the data version raised once per sending that changed facts."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from selfcheck.evaluation import facts
from selfcheck.journey import operations as journey
from selfcheck.platform.db import Database
from selfcheck.platform.models import DataVersion, Response, Structure
from selfcheck.questionnaire.model import Definition, FormKind
from tests.services.evaluation.test_facts import stored_facts
from tests.support import ANSWERS, fill_response, new_token
from tests.views.test_save_round_trips import _postgres


def _filled(database: Database, definition: Definition, structure: Structure) -> int:
    """A new person's before form, every page answered (the same answers for everyone: the
    same tally and cell rows), not sent yet."""
    with database.session() as session:
        response = journey.start_response(
            session, definition, session.merge(structure), FormKind.BEFORE, "fr", new_token()
        )
        session.commit()
        fill_response(session, definition, response, ANSWERS[FormKind.BEFORE])
        session.commit()
        return response.id


def _version(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(DataVersion.n).where(DataVersion.id == 1)) or 0)


def _send_at_once(database: Database, definition: Definition, response_ids: list[int]) -> list[Any]:
    """Each response sent by a thread of its own, all committing at the same moment."""
    barrier = threading.Barrier(len(response_ids), timeout=30)
    outcome: list[Any] = []

    def send(response_id: int) -> None:
        try:
            with database.session() as session:
                state = journey.lock_state(session, response_id)
                assert state is not None
                sent = journey.submit_locked(session, definition, state)
                barrier.wait()
                session.commit()
                outcome.append(sent)
        except Exception as error:  # the test reports it
            outcome.append(error)
            barrier.abort()

    threads = [threading.Thread(target=send, args=(rid,)) for rid in response_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcome


def _facts_as_recomputed(database: Database, definition: Definition) -> None:
    with database.session() as db:
        rows, tally = stored_facts(db)
        recomputed = facts.compute(db.connection(), definition, Response.id.is_not(None))
        assert set(rows) == {row["response_id"] for row in recomputed}
        assert tally == Counter({k: v for k, v in facts.cells(recomputed).items() if v})
        db.rollback()


def test_people_of_one_structure_sending_at_once(
    database: Database, definition: Definition, structure: Structure
) -> None:
    if not _postgres(database):
        pytest.skip("PostgreSQL only: SQLite serialises writers")
    people = [_filled(database, definition, structure) for _ in range(4)]
    before = _version(database)
    outcome = _send_at_once(database, definition, people)
    assert outcome == [True] * 4, outcome
    assert _version(database) == before + 4
    _facts_as_recomputed(database, definition)


def test_one_response_sent_from_two_tabs_at_once(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """The second tab waits for the first's lock, then finds it sent: one sending, one raise
    of the data version, the person's facts once."""
    if not _postgres(database):
        pytest.skip("PostgreSQL only: SQLite serialises writers")
    response_id = _filled(database, definition, structure)
    before = _version(database)
    barrier_free = _send_once_then_again(database, definition, response_id)
    assert sorted(barrier_free, key=repr) == [False, True], barrier_free
    assert _version(database) == before + 1
    _facts_as_recomputed(database, definition)


def _send_once_then_again(
    database: Database, definition: Definition, response_id: int
) -> list[Any]:
    """Tab A locks and sends; tab B asks the lock meanwhile (waits), then reads it sent."""
    outcome: list[Any] = []
    locked = threading.Event()

    def tab_b() -> None:
        try:
            locked.wait(10)
            with database.session() as session:
                state = journey.lock_state(session, response_id)
                assert state is not None
                outcome.append(journey.submit_locked(session, definition, state))
                session.commit()
        except Exception as error:  # the test reports it
            outcome.append(error)

    other = threading.Thread(target=tab_b)
    other.start()
    with database.session() as session:
        state = journey.lock_state(session, response_id)
        assert state is not None
        locked.set()
        outcome.append(journey.submit_locked(session, definition, state))
        threading.Event().wait(0.5)  # tab B waits for the row meanwhile
        session.commit()
    other.join(timeout=30)
    return outcome


@pytest.mark.parametrize("eraser_first", [False, True])
def test_a_sending_racing_the_persons_erasure(
    database: Database, definition: Definition, structure: Structure, eraser_first: bool
) -> None:
    """The person erases themselves from another tab while their form is being sent (the
    sending holding the response's row; or the erasure holding it first): both end without
    an error, and the facts are those a recomputation gives (none of the person's left)."""
    from selfcheck.privacy import operations as privacy

    if not _postgres(database):
        pytest.skip("PostgreSQL only: SQLite serialises writers")
    other = _filled(database, definition, structure)  # someone else, sent: cells kept
    assert _send_at_once(database, definition, [other]) == [True]
    response_id = _filled(database, definition, structure)
    with database.reader.connect() as connection:
        read = journey.read_state_to_save(connection, response_id)
    assert read is not None
    code = read.code
    outcome: list[Any] = []
    holding = threading.Event()

    def erase() -> None:
        try:
            with database.session() as eraser:
                if eraser_first:
                    privacy.erase_by_code(eraser, code, secret="test")
                    holding.set()
                    threading.Event().wait(0.5)
                else:
                    holding.wait(10)
                    privacy.erase_by_code(eraser, code, secret="test")
                eraser.commit()
                outcome.append("erased")
        except Exception as error:  # the test reports it
            outcome.append(error)

    thread = threading.Thread(target=erase)
    thread.start()
    try:
        if eraser_first:
            holding.wait(10)
        with database.session() as session:
            state = journey.lock_state(session, response_id)
            if state is not None:
                if not eraser_first:
                    holding.set()
                    threading.Event().wait(0.5)  # the erasure waits for the row meanwhile
                outcome.append(journey.submit_locked(session, definition, state))
            else:
                outcome.append("gone")
            session.commit()
    except Exception as error:  # the test reports it
        outcome.append(error)
    thread.join(timeout=30)
    assert not [o for o in outcome if isinstance(o, Exception)], outcome
    assert "erased" in outcome
    _facts_as_recomputed(database, definition)
    with database.session() as session:
        assert session.get(Response, response_id) is None
