"""Alembic migrations: head matches the models exactly, and everything can be undone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from selfcheck import migrate
from selfcheck.db import make_engine
from selfcheck.models import Base
from tests.conftest import POSTGRES_URL, reset_postgres

TABLES = {"structure", "beneficiary", "response", "answer"}


@pytest.fixture
def empty_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database (PostgreSQL: the test database, restored at the end)."""
    if POSTGRES_URL is None:
        engine = make_engine(f"sqlite:///{tmp_path / 'migrations.db'}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    engine = make_engine(POSTGRES_URL)
    try:
        reset_postgres(engine)
        yield engine
    finally:
        reset_postgres(engine)
        migrate.upgrade(engine)  # leave the shared test database as the suite expects it
        engine.dispose()


def differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str | None:
    script = ScriptDirectory.from_config(migrate.alembic_config(make_engine("sqlite://")))
    return script.get_current_head()


def test_upgrade_to_head_matches_the_models(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    assert current_revision(empty_engine) == head()
    assert set(inspect(empty_engine).get_table_names()) >= TABLES
    assert differences(empty_engine) == []


def test_upgrade_twice_is_harmless(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    migrate.upgrade(empty_engine)
    assert current_revision(empty_engine) == head()


def test_downgrade_to_base_removes_everything_and_upgrade_again(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    migrate.downgrade(empty_engine, "base")
    assert current_revision(empty_engine) is None
    assert not TABLES & set(inspect(empty_engine).get_table_names())
    migrate.upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_single_linear_history() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config(make_engine("sqlite://")))
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert revisions[-1].down_revision is None
    for revision in revisions:
        assert revision.doc, f"migration {revision.revision} has no description"


def test_schema_constraints_and_indexes(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    inspector = inspect(empty_engine)
    uniques = {tuple(c["column_names"]) for c in inspector.get_unique_constraints("response")}
    assert ("beneficiary_id", "form") in uniques
    assert ("start_token",) in uniques
    indexes = {index["name"] for index in inspector.get_indexes("answer")}
    assert "ix_answer_variable_response_value" in indexes
    answer_uniques = {tuple(c["column_names"]) for c in inspector.get_unique_constraints("answer")}
    assert ("response_id", "variable", "value") in answer_uniques
    [answer_fk] = inspector.get_foreign_keys("answer")
    assert answer_fk["referred_table"] == "response"
    assert answer_fk["options"].get("ondelete") == "CASCADE"


def test_migrations_need_a_connection_from_selfcheck() -> None:
    from alembic import command

    config = migrate.alembic_config(make_engine("sqlite://"))
    with pytest.raises(RuntimeError, match=r"run migrations through selfcheck\.migrate"):
        command.upgrade(config, "head")
