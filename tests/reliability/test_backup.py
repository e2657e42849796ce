"""`selfcheck backup` / `restore`: a round trip gives identical rows, on SQLite, PostgreSQL
and across them; bad files, other revisions and non-empty databases are refused."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, select, text

from selfcheck.cli import main
from selfcheck.demo import create_demo_staff, demo_structure, generate_demo
from selfcheck.platform import backup, migrate
from selfcheck.platform.db import Database, make_engine
from selfcheck.platform.models import (
    AuditEvent,
    ExportLog,
    ExportSelection,
    RateLimitHit,
    Role,
    Structure,
)
from selfcheck.questionnaire import Definition
from tests.conftest import POSTGRES_URL
from tests.reliability.scratch import scratch_engine, scratch_url
from tests.staff import add_staff


def head_revision(database: Database) -> str:
    """The revision the test database is at (the migrations' head)."""
    with database.engine.connect() as connection:
        revision = backup.current_revision(connection)
    assert revision is not None
    return revision


Rows = dict[str, list[tuple[Any, ...]]]


def populate(database: Database, definition: Definition, respondents: int = 12) -> None:
    """Demo people and staff, plus a row in every other table a backup must carry."""
    with database.session() as session:
        generate_demo(session, definition, respondents=respondents, seed=7)
        session.commit()
        structure = demo_structure(session)
        create_demo_staff(session, structure)
        session.commit()
        log = ExportLog(kind="csv-wide", filters="{}", row_count=3, k=5, report="{}")
        session.add_all(
            [
                AuditEvent(action="create", entity="response", entity_id=1, changes='{"é": 1}'),
                log,
                RateLimitHit(key="h" * 64, window_start=datetime(2026, 1, 2, tzinfo=UTC), count=2),
            ]
        )
        session.flush()
        # Binary lines (differencing.RECORD), and a row kept as text before them.
        session.add_all(
            [
                ExportSelection(export_id=log.id, count=2, lines=bytes(range(236, 256)) * 2),
                ExportSelection(export_id=log.id, count=1, people="ab:cd", lines=None),
            ]
        )
        session.commit()
        other = Structure(slug="autre", name="Autre lieu", territory_type="rural", department="2A")
        session.add(other)
        session.commit()
    add_staff(database, Role.EVALUATOR, departments=("44",), email="eval@example.org")


def rows_of(engine: Engine) -> Rows:
    """Every row of every table, in primary key order, datetimes in UTC."""
    found: Rows = {}
    with engine.connect() as connection:
        for table in backup.tables():
            result = connection.execute(select(table).order_by(*table.primary_key.columns))
            found[table.name] = [tuple(_utc(v) for v in row) for row in result]
    return found


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def test_round_trip_gives_identical_rows(
    database: Database, definition: Definition, tmp_path: Path
) -> None:
    populate(database, definition)
    file = tmp_path / "selfcheck.backup.jsonl.gz"
    report = backup.backup(database.engine, file)
    original = rows_of(database.engine)
    assert report.rows == {name: len(rows) for name, rows in original.items()}
    assert report.rows["answer"] > 200 and report.rows["staff_user"] >= 3
    with scratch_engine(tmp_path, "restored") as target:
        restored = backup.restore(target, file)
        assert restored.rows == report.rows
        assert rows_of(target) == original
        # ids continue after the restored ones (PostgreSQL sequences were moved on)
        with target.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO structure (slug, name, territory_type, department, created_at,"
                    " double_entry_percent, after_due_weeks) VALUES ('new', 'Nouveau', 'rural',"
                    " '44', CURRENT_TIMESTAMP, 0, 6)"
                )
            )
        with target.connect() as connection:
            ids = connection.execute(text("SELECT id FROM structure ORDER BY id")).scalars().all()
        assert ids[-1] == max(ids[:-1]) + 1


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs SELFCHECK_TEST_DATABASE_URL (PostgreSQL)")
def test_sqlite_backup_restores_into_postgresql_and_back(
    definition: Definition, tmp_path: Path
) -> None:
    with scratch_engine(tmp_path, "source", postgres=False) as source:
        migrate.upgrade(source)
        source_db = _database_on(source)
        populate(source_db, definition)
        original = rows_of(source)
        backup.backup(source, tmp_path / "from-sqlite.gz")
    with scratch_engine(tmp_path, "pg", postgres=True) as pg:
        backup.restore(pg, tmp_path / "from-sqlite.gz")
        assert rows_of(pg) == original
        backup.backup(pg, tmp_path / "from-postgresql.gz")
    with scratch_engine(tmp_path, "back", postgres=False) as back:
        backup.restore(back, tmp_path / "from-postgresql.gz")
        assert rows_of(back) == original


def _database_on(engine: Engine) -> Database:
    database = Database.__new__(Database)
    database.url = str(engine.url)
    database.engine = engine
    from sqlalchemy.orm import sessionmaker

    database.sessions = sessionmaker(engine, expire_on_commit=False)
    return database


def test_restore_refuses_a_database_that_holds_rows_unless_forced(
    database: Database, definition: Definition, tmp_path: Path
) -> None:
    populate(database, definition, respondents=2)
    file = tmp_path / "b.gz"
    backup.backup(database.engine, file)
    original = rows_of(database.engine)
    with database.session() as session:
        session.add(Structure(slug="ajout", name="Ajout", territory_type="rural", department="44"))
        session.commit()
    with pytest.raises(backup.BackupError, match="not empty"):
        backup.restore(database.engine, file)
    assert len(rows_of(database.engine)["structure"]) == len(original["structure"]) + 1
    backup.restore(database.engine, file, force=True)
    assert rows_of(database.engine) == original


def test_restore_refuses_another_schema_revision(
    database: Database, definition: Definition, tmp_path: Path
) -> None:
    populate(database, definition, respondents=2)
    file = tmp_path / "b.gz"
    backup.backup(database.engine, file)
    with scratch_engine(tmp_path, "older") as target:
        migrate.upgrade(target, "0004")
        expected = f"revision {head_revision(database)} and the database at 0004"
        with pytest.raises(backup.BackupError, match=expected):
            backup.restore(target, file)


def test_a_truncated_or_foreign_file_is_refused_and_nothing_is_written(
    database: Database, definition: Definition, tmp_path: Path
) -> None:
    populate(database, definition, respondents=2)
    file = tmp_path / "b.gz"
    backup.backup(database.engine, file)
    with gzip.open(file, "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    truncated = tmp_path / "truncated.gz"
    with gzip.open(truncated, "wt", encoding="utf-8") as handle:
        handle.writelines(lines[: len(lines) // 2])
    bad_row = tmp_path / "bad-row.gz"
    with gzip.open(bad_row, "wt", encoding="utf-8") as handle:
        handle.writelines([lines[0], json.dumps({"table": "structure", "row": [1]}) + "\n"])
    plain = tmp_path / "plain.txt"
    plain.write_text("not a backup", encoding="utf-8")
    wrong = tmp_path / "wrong.gz"
    with gzip.open(wrong, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"format": "other"}) + "\n")
    with scratch_engine(tmp_path, "target") as target:
        for broken, message in [
            (truncated, "truncated"),
            (bad_row, "wrong number of values"),
            (plain, "not a readable selfcheck backup"),
            (wrong, "not a selfcheck backup"),
        ]:
            with pytest.raises(backup.BackupError, match=message):
                backup.restore(target, broken)
        # the one transaction was rolled back: the schema is there, no row is
        assert all(not rows for rows in rows_of(target).values())


def test_backup_of_a_database_without_schema_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(backup.BackupError, match="no schema"):
            backup.backup(engine, tmp_path / "b.gz")
    finally:
        engine.dispose()
    assert not (tmp_path / "b.gz").exists()


def test_backup_and_restore_commands(
    app: Flask, database: Database, definition: Definition, tmp_path: Path
) -> None:
    populate(database, definition)
    file = tmp_path / "cli.gz"
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["backup", str(file)])
    assert result.exit_code == 0, result.output
    total = sum(len(rows) for rows in rows_of(database.engine).values())
    assert f"backup of {total} rows (schema {head_revision(database)})" in result.output
    result = runner.invoke(main, ["restore", str(file)])
    assert result.exit_code == 1
    assert "not empty: restore with --force" in result.output
    result = runner.invoke(main, ["restore", "--force", str(file)])
    assert result.exit_code == 0, result.output
    assert f"restored {total} rows" in result.output
    with scratch_url(tmp_path, "cli-target") as url:
        from selfcheck import create_app

        other = create_app({"DATABASE_URL": url, "INSTANCE_PATH": tmp_path / "i2", "TESTING": True})
        try:
            result = other.test_cli_runner().invoke(main, ["restore", str(file)])
            assert result.exit_code == 0, result.output
            assert rows_of(other.extensions["selfcheck.platform.db"].engine) == rows_of(
                database.engine
            )
        finally:
            other.extensions["selfcheck.platform.db"].dispose()
