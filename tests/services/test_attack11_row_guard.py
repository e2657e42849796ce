"""attack11: writers of answers that escape `journey/row_guard.py` (guard18), each a test that
fails when the rule is broken without the hook seeing it. See the report of attack11."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, Response, Structure
from selfcheck.questionnaire.model import Definition
from tests.services.test_row_guard import _answered, _version, refused_commit
from tests.views.test_save_round_trips import _stored


def test_a_core_delete_on_the_sessions_connection_is_refused(
    database: Database, definition: Definition, structure: Structure
) -> None:
    response_id = _answered(database, definition, structure)
    before = _version(database, response_id)
    with database.session() as session:
        session.connection().execute(
            delete(Answer).where(Answer.response_id == response_id, Answer.variable == "DEVICES")
        )
        refused_commit(session)
    assert _stored(database, response_id) == {"ASSIST": ["seul"], "DEVICES": ["portable"]}
    assert _version(database, response_id) == before


def test_legacy_bulk_insert_mappings_of_answers_is_refused(
    database: Database, definition: Definition, structure: Structure
) -> None:
    response_id = _answered(database, definition, structure)
    with database.session() as session:
        session.bulk_insert_mappings(
            Answer,  # type: ignore[arg-type]
            [{"response_id": response_id, "variable": "DEVICES", "value": "fixe"}],
        )
        refused_commit(session)
    assert _stored(database, response_id)["DEVICES"] == ["portable"]


def test_a_row_update_rolled_back_with_its_savepoint_does_not_count(
    database: Database, definition: Definition, structure: Structure
) -> None:
    response_id = _answered(database, definition, structure)
    with database.session() as session:
        session.execute(
            delete(Answer).where(Answer.response_id == response_id, Answer.variable == "DEVICES")
        )
        nested = session.begin_nested()
        session.execute(
            update(Response)
            .where(Response.id == response_id)
            .values(updated_at=Response.updated_at)
        )
        nested.rollback()
        refused_commit(session)
    assert _stored(database, response_id) == {"ASSIST": ["seul"], "DEVICES": ["portable"]}


def test_the_legacy_bulk_update_of_answers_by_key_is_refused(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """guard19: a statement that names the answers by their key only (an executemany of
    `bulk_update_mappings`) is seen too: their responses are read first, in the same
    transaction. (It replaced attack11's source check that kept the bulk methods and
    `session.connection().execute` out of the package: the hook now sees both.)"""
    response_id = _answered(database, definition, structure)
    with database.session() as session:
        keys = session.scalars(select(Answer.id).where(Answer.response_id == response_id))
        session.bulk_update_mappings(
            Answer,  # type: ignore[arg-type]
            [{"id": key, "value": "fixe"} for key in keys],
        )
        refused_commit(session, naming=response_id)
    assert _stored(database, response_id)["DEVICES"] == ["portable"]


def test_writers_on_the_connection_and_in_savepoints_that_update_the_row_are_accepted(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """guard19: the same writers, keeping the rule, commit: answers deleted on the session's
    Connection and the row updated by a legacy bulk method; answers and row written in a
    savepoint that is released; a savepoint rolled back takes its answers with it."""
    response_id = _answered(database, definition, structure)
    with database.session() as session:
        session.connection().execute(
            delete(Answer).where(Answer.response_id == response_id, Answer.variable == "DEVICES")
        )
        session.bulk_update_mappings(
            Response,  # type: ignore[arg-type]
            [{"id": response_id, "locale": "en"}],
        )
        session.commit()
    assert _stored(database, response_id) == {"ASSIST": ["seul"]}
    with database.session() as session:
        with session.begin_nested():
            session.add(Answer(response_id=response_id, variable="DEVICES", value="fixe"))
            session.execute(update(Response).where(Response.id == response_id).values(locale="fr"))
        nested = session.begin_nested()
        session.execute(delete(Answer).where(Answer.response_id == response_id))
        nested.rollback()
        session.commit()
    assert _stored(database, response_id) == {"ASSIST": ["seul"], "DEVICES": ["fixe"]}
