"""Engines and per-request sessions."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

from selfcheck.platform.db import Database, get_db, get_session, make_engine
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
