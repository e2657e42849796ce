"""The reader (`Database.reader`): on PostgreSQL an engine of its own, its connections in
autocommit from their start, in a pool of their own (issue 18, part 6, round 21); on SQLite
the engine itself. Run on both databases (SELFCHECK_TEST_DATABASE_URL for PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, select, text, update

from selfcheck.journey import operations as journey
from selfcheck.platform import db
from selfcheck.platform.models import Structure
from selfcheck.questionnaire.model import FormKind
from tests.conftest import is_postgres
from tests.support import ANSWERS, Visitor

postgres_only = pytest.mark.skipif(not is_postgres(), reason="PostgreSQL's reader")


def _autocommit(engine: Engine) -> bool:
    with engine.connect() as connection:
        return getattr(connection.connection.dbapi_connection, "autocommit", None) is True


def test_the_reader_is_an_engine_of_its_own_in_autocommit_on_postgresql(
    database: db.Database,
) -> None:
    if not is_postgres():
        assert database.reader is database.engine
        assert database.engines() == (database.engine,)
        return
    assert database.reader is not database.engine
    assert database.reader.pool is not database.engine.pool
    assert database.engines() == (database.engine, database.reader)
    assert database.reader.url == database.engine.url
    assert database.reader.pool.size() == db.READER_POOL_SIZE
    assert _autocommit(database.reader) is True
    assert _autocommit(database.engine) is False  # the engine's units of work: transactions
    # The read-only sessions are on the reader (its guard, `_refuse_sql_write`, included).
    session = database.read_sessions()
    try:
        bind = session.get_bind()
        assert isinstance(bind, Engine) and bind.pool is database.reader.pool
    finally:
        session.close()


@postgres_only
def test_no_read_switches_the_isolation_level(
    app: Flask, database: db.Database, structure: Structure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before round 21 the reader was the engine with an AUTOCOMMIT execution option: every
    checkout switched the pooled connection to autocommit and every checkin back (40 % of a
    question page's read on the worker's side). Now no read sets an isolation level, on
    either engine, once the connections are open."""
    structure_id = structure.id
    # Connections opened first (a new connection is set to autocommit once, at its start).
    with database.reader.connect() as connection:
        connection.execute(text("SELECT 1"))
    switched: list[Any] = []
    for engine in database.engines():
        real = engine.dialect.set_isolation_level

        def counting(dbapi_connection: Any, level: Any, real: Any = real) -> None:
            switched.append(level)
            real(dbapi_connection, level)

        monkeypatch.setattr(engine.dialect, "set_isolation_level", counting)
    for _ in range(3):
        assert journey.read_state(database.reader, 12345) is None
        with app.test_request_context("/"), db.read_connection() as connection:
            assert connection.scalar(text("SELECT 1")) == 1
        with app.test_request_context("/done"):
            found = db.read_only_session().get(Structure, structure_id)
            assert found is not None and found.name == structure.name
    assert switched == []


def test_a_read_sees_what_another_request_committed_and_nothing_uncommitted(
    app: Flask, database: db.Database, structure: Structure
) -> None:
    """A read on the reader after another request's commit sees it (no pooled reader
    connection keeps an old snapshot or a transaction between requests), and never sees what
    an open transaction has not committed yet."""
    structure_id = structure.id
    names = select(Structure.name).where(Structure.id == structure_id)

    def read() -> tuple[str | None, str | None, str | None]:
        with app.test_request_context("/"), db.read_connection() as connection:
            bare = connection.scalar(names)
        with app.test_request_context("/done"):
            orm = db.read_only_session().scalar(names)
        with database.reader.connect() as connection:
            reader = connection.scalar(names)
        return bare, orm, reader

    before = structure.name
    assert read() == (before, before, before)
    for name in ("first", "second"):
        with database.session() as writer:
            writer.execute(update(Structure).where(Structure.id == structure_id).values(name=name))
            writer.flush()
            if not is_postgres():
                # SQLite: one writer at a time, and the reader shares its pool; what matters
                # is the commit's visibility below.
                writer.commit()
            else:
                assert read() != (name, name, name)  # not committed yet: not seen
                assert set(read()) == {before if name == "first" else "first"}
                writer.commit()
        assert read() == (name, name, name)


@postgres_only
def test_a_reader_connection_left_in_a_transaction_is_rolled_back_on_its_return(
    database: db.Database, structure: Structure
) -> None:
    """A reader's connection is in autocommit, but an explicit BEGIN would still open a
    transaction: its return to the pool rolls it back (the lock taken in it is released,
    the next checkout gets an idle connection), so no request inherits another's."""
    structure_id = structure.id
    with database.reader.connect() as connection:
        connection.exec_driver_sql("BEGIN")
        connection.execute(
            text("SELECT id FROM structure WHERE id = :id FOR UPDATE"), {"id": structure_id}
        )
        held = connection.connection.dbapi_connection
        assert held is not None and held.info.transaction_status != 0  # in a transaction
    with database.engine.connect() as other:
        other.execute(text("SET LOCAL lock_timeout = '2s'"))
        locked = other.execute(
            text("SELECT id FROM structure WHERE id = :id FOR UPDATE NOWAIT"), {"id": structure_id}
        ).scalar()
        assert locked == structure_id  # the reader's lock is gone
        other.rollback()
    with database.reader.connect() as connection:
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        assert dbapi_connection.info.transaction_status == 0  # IDLE
        assert dbapi_connection.autocommit is True


def test_a_whole_journey_holds_one_connection_of_each_pool(
    visitor: Visitor, database: db.Database, structure: Structure
) -> None:
    """A sync gunicorn worker serves one request at a time: on PostgreSQL each of its pools
    then keeps one connection (docs/DEPLOYMENT.md: workers x 2 connections, the engine's and
    the reader's; the start's rate-limit counters take the reader's, not a second one of the
    engine's pool). SQLite: one pool, two connections (the counters' beside the session's)."""
    database.dispose()
    visitor.fill(ANSWERS[FormKind.BEFORE], visitor.start(structure.slug))
    sent = visitor.submit()
    assert sent.status_code == 302
    assert visitor.follow(sent).status_code == 200
    assert visitor.get("/summary").status_code == 200
    kept = 1 if is_postgres() else 2
    for engine in database.engines():
        assert engine.pool.checkedout() == 0
        assert engine.pool.checkedin() == kept, engine  # type: ignore[attr-defined]
    database.dispose()
    for engine in database.engines():
        assert engine.pool.checkedin() == 0  # type: ignore[attr-defined]
