"""Engines and per-request sessions."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session

from selfcheck.platform.db import (
    Database,
    commit_or_rollback,
    get_db,
    get_session,
    make_engine,
    unit_of_work,
)
from tests.conftest import is_postgres

sqlite_only = pytest.mark.skipif(is_postgres(), reason="SQLite pragmas")


@sqlite_only
def test_sqlite_engine_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'deep' / 'folder' / 'x.db'}", "FULL")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 15000
        assert (tmp_path / "deep" / "folder" / "x.db").exists()
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(database: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    with database.session() as session, pytest.raises(IntegrityError):
        session.execute(
            text("INSERT INTO answer (response_id, variable, value) VALUES (12345, 'X', 'y')")
        )
        session.commit()


def test_memory_database_engine() -> None:
    engine = make_engine("sqlite://")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_one_session_per_request_closed_at_teardown(app: Flask) -> None:
    with app.test_request_context():
        session = get_session()
        assert get_session() is session
        assert get_db() is app.extensions["selfcheck.platform.db"]
        session.execute(text("SELECT 1"))
        assert session.in_transaction()
    assert not session.in_transaction()


# --- the unit of work ------------------------------------------------------------------------


def _names(database: Database) -> list[str]:
    with database.engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT name FROM structure"))]


def _add(session: Session, name: str) -> None:
    session.execute(
        text(
            "INSERT INTO structure (slug, name, territory_type, department, created_at,"
            " double_entry_percent, after_due_weeks)"
            " VALUES (:slug, :name, 'rural', '44', '2026-01-01', 0, 6)"
        ),
        {"slug": name.lower(), "name": name},
    )


def test_a_savepoint_first_in_a_request_stays_inside_its_unit_of_work(database: Database) -> None:
    """On SQLite too: releasing a savepoint commits nothing, only the caller's commit does."""
    with database.session() as session:
        session.execute(text("SELECT 1"))  # no transaction opened yet (pysqlite)
        with session.begin_nested():
            _add(session, "Savepoint")
        _add(session, "After")
        # closed without a commit: everything goes
    assert _names(database) == []
    with database.session() as session, unit_of_work(session):
        with session.begin_nested():
            _add(session, "Savepoint")
        _add(session, "After")
    assert sorted(_names(database)) == ["After", "Savepoint"]


def test_unit_of_work_rolls_back_when_the_block_raises(database: Database) -> None:
    with pytest.raises(RuntimeError), database.session() as session, unit_of_work(session):
        _add(session, "Lost")
        raise RuntimeError("the view failed")
    assert _names(database) == []


def test_commit_or_rollback_commits(database: Database) -> None:
    with database.session() as session:
        _add(session, "Kept")
        commit_or_rollback(session)
    assert _names(database) == ["Kept"]
