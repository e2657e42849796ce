"""attack24: the read-only sessions enforced by the database itself, not only by keyword
(`db._hold_read_only`), and nothing they set or lock outlives the request on a pooled
connection (`db._release_read_only`). Both databases."""

from __future__ import annotations

import sqlite3

import pytest
from flask import Flask
from sqlalchemy import exc, text

from selfcheck.platform import db
from selfcheck.platform.models import Structure
from tests.conftest import is_postgres

postgres_only = pytest.mark.skipif(not is_postgres(), reason="PostgreSQL's functions")
REFUSED = (db.ReadOnlyError, exc.DBAPIError)


def _next_value(database: db.Database) -> int:
    with database.engine.connect() as connection:
        value = connection.scalar(
            text("SELECT last_value FROM structure_id_seq")  # no nextval: reads only
        )
    return int(value)


@postgres_only
def test_attack24_a_select_that_writes_is_refused_by_postgresql(
    app: Flask, database: db.Database, structure: Structure
) -> None:
    """`SELECT nextval(...)` passes the keyword check; the database refuses it now."""
    before = _next_value(database)
    with app.test_request_context("/done"):
        session = db.read_only_session()
        with pytest.raises(REFUSED):
            session.execute(text("SELECT nextval('structure_id_seq')"))
    assert _next_value(database) == before


@postgres_only
def test_attack24_a_session_lock_or_setting_does_not_outlive_the_request(
    app: Flask, database: db.Database, structure: Structure
) -> None:
    """An advisory lock and a session-wide setting taken by a read-only request are gone
    when its connection returns to the pool: the next request on it starts clean."""
    with app.test_request_context("/summary"):
        session = db.read_only_session()
        assert session.scalar(text("SELECT pg_advisory_lock(424242)")) is not None
        session.scalar(text("SELECT set_config('search_path', 'nowhere', false)"))
        held = session.connection().connection.dbapi_connection
    # The same pooled connection, handed to the next request:
    with database.reader.connect() as connection:
        assert connection.connection.dbapi_connection is held
        assert connection.scalar(text("SHOW search_path")) != "nowhere"
        assert connection.scalar(text("SHOW default_transaction_read_only")) == "off"
    with database.engine.connect() as other:
        assert other.scalar(text("SELECT pg_try_advisory_lock(424242)")) is True
        other.scalar(text("SELECT pg_advisory_unlock(424242)"))
        other.rollback()


def test_attack24_a_raw_cursor_of_a_read_only_session_cannot_write(
    app: Flask, database: db.Database, structure: Structure
) -> None:
    """The keyword check does not see a DBAPI cursor taken from the connection; the
    database's read-only mode (PostgreSQL) or `query_only` (SQLite) does."""
    structure_id = structure.id
    with app.test_request_context("/done"):
        session = db.read_only_session()
        raw = session.connection().connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        marker = "%s" if is_postgres() else "?"
        with pytest.raises(Exception) as refused:
            cursor.execute(
                f"UPDATE structure SET name = 'changed' WHERE id = {marker}",
                (structure_id,),
            )
        assert "read" in str(refused.value).lower()
        if isinstance(raw, sqlite3.Connection):
            raw.rollback()
    with database.engine.connect() as connection:
        assert (
            connection.scalar(
                text("SELECT name FROM structure WHERE id = :id"), {"id": structure_id}
            )
            == structure.name
        )


def test_attack24_the_reader_writes_again_after_a_read_only_request(
    app: Flask, database: db.Database, structure: Structure
) -> None:
    """The reader also sends the page save and the rate-limit counters: the read-only mode
    ends with the request that asked for it."""
    structure_id = structure.id
    with app.test_request_context("/done"):
        assert db.read_only_session().get(Structure, structure_id) is not None
    for _ in range(3):  # whichever pooled connection comes next
        with database.reader.connect() as connection:
            connection.execute(
                text("UPDATE structure SET name = 'renamed' WHERE id = :id"), {"id": structure_id}
            )
            connection.commit()


def test_attack24_a_connection_lost_at_the_read_only_hold_is_a_503(
    app: Flask, database: db.Database, structure: Structure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hold is sent on the DBAPI connection: its error is given SQLAlchemy's class, so a
    server gone at that moment is the usual 503 (errors.py), not a 500 taken for a bug."""
    dbapi = database.reader.dialect.loaded_dbapi

    def lost(_dbapi_connection: object, _statement: str) -> None:
        raise dbapi.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(db, "_run", lost)
    with app.test_request_context("/done"), pytest.raises(exc.OperationalError):
        db.read_only_session().get(Structure, structure.id)
    monkeypatch.undo()
    with app.test_request_context("/done"):
        assert db.read_only_session().get(Structure, structure.id) is not None
