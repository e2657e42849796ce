"""Alembic migrations: head matches the models exactly, and everything can be undone.

On SQLite and on PostgreSQL (SELFCHECK_TEST_DATABASE_URL): there each test works in a schema
of its own, so the tables the rest of the suite shares are never dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from selfcheck.accounts.structures import create_structure
from selfcheck.platform import migrate
from selfcheck.platform.db import make_engine
from selfcheck.platform.models import Base, StaffUser
from tests.reliability.scratch import scratch_engine

pytestmark = pytest.mark.slow  # scripts/test --fast leaves it out (docs/testing.md)

TABLES = {"structure", "beneficiary", "response", "answer"}


@pytest.fixture
def empty_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database (PostgreSQL: an empty schema, dropped at the end)."""
    with scratch_engine(tmp_path, "migrations") as engine:
        yield engine


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
    with pytest.raises(RuntimeError, match=r"run migrations through selfcheck\.platform\.migrate"):
        command.upgrade(config, "head")


NOW = "2026-01-15 10:00:00+00:00"


def _rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def _execute(engine: Engine, *statements: str) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def test_upgrade_from_the_first_revision_keeps_the_data(empty_engine: Engine) -> None:
    """Rows written under 0001 survive every later migration, with sensible new values."""
    migrate.upgrade(empty_engine, "0001")
    _execute(
        empty_engine,
        "INSERT INTO structure (id, slug, name, territory_type, department, created_at)"
        f" VALUES (1, 'lieu', 'Lieu', 'rural', '44', '{NOW}')",
        f"INSERT INTO beneficiary (id, code, structure_id, created_at) VALUES (1, 'K7M2QX9RT', 1,"
        f" '{NOW}')",
        "INSERT INTO response (id, beneficiary_id, structure_id, form, definition_id,"
        " definition_version, channel, locale, status, start_token, furthest_page, created_at,"
        " updated_at, submitted_at) VALUES (1, 1, 1, 'before', 'selfcheck-core', '0.9.0',"
        f" 'online', 'fr', 'submitted', 'tok', 'p_help', '{NOW}', '{NOW}', '{NOW}')",
        # the same value twice: a double click before 0004 made rows unique
        "INSERT INTO answer (id, response_id, variable, value) VALUES (1, 1, 'ASSIST', 'seul'),"
        " (2, 1, 'ASSIST', 'seul'), (3, 1, 'DEVICES', 'smartphone'), (4, 1, 'DEVICES', 'fixe')",
    )
    migrate.upgrade(empty_engine)
    assert current_revision(empty_engine) == head()
    assert _rows(empty_engine, "SELECT id, slug, double_entry_percent FROM structure") == [
        (1, "lieu", 0)
    ]
    assert _rows(empty_engine, "SELECT code FROM beneficiary") == [("K7M2QX9RT",)]
    assert _rows(empty_engine, "SELECT status, channel, wording FROM response") == [
        ("submitted", "online", "standard")
    ]
    assert _rows(
        empty_engine, "SELECT id, variable, value, definition_version FROM answer ORDER BY id"
    ) == [
        (1, "ASSIST", "seul", "0.9.0"),
        (3, "DEVICES", "smartphone", "0.9.0"),
        (4, "DEVICES", "fixe", "0.9.0"),
    ]


def test_0004_to_0005_and_back_keeps_the_rows(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, "0004")
    _execute(
        empty_engine,
        "INSERT INTO structure (id, slug, name, territory_type, department, created_at)"
        f" VALUES (1, 'lieu', 'Lieu', 'urbain', '2A', '{NOW}')",
        "INSERT INTO staff_user (id, email, password_hash, role, structure_id, active,"
        f" created_at, password_changed_at) VALUES (1, 'm@example.org', 'x', 'mediator', 1,"
        f" true, '{NOW}', '{NOW}')",
        f"INSERT INTO beneficiary (id, code, structure_id, created_at) VALUES (1, 'AAAA2222B', 1,"
        f" '{NOW}')",
        "INSERT INTO response (id, beneficiary_id, structure_id, form, definition_id,"
        " definition_version, channel, locale, status, created_at, updated_at,"
        " double_entry_wanted) VALUES (1, 1, 1, 'after', 'selfcheck-core', '1.0.0', 'paper',"
        f" 'fr', 'in_progress', '{NOW}', '{NOW}', false)",
        "INSERT INTO answer (id, response_id, variable, value, definition_version)"
        " VALUES (1, 1, 'COMFORT', '3', '1.0.0')",
    )
    migrate.upgrade(empty_engine, "0005")
    assert _rows(
        empty_engine,
        "SELECT email, failed_logins, locked_until, can_read_free_text FROM staff_user",
    ) == [("m@example.org", 0, None, False)]
    assert _rows(empty_engine, "SELECT form, wording FROM response") == [("after", "standard")]
    _execute(
        empty_engine,
        "UPDATE response SET wording = 'easy'",
        "INSERT INTO export_log (at, user_id, kind, filters, row_count, k, report)"
        f" VALUES ('{NOW}', 1, 'csv-wide', '{{}}', 1, 5, '{{}}')",
    )
    migrate.downgrade(empty_engine, "0004")
    assert _rows(empty_engine, "SELECT email, role FROM staff_user") == [
        ("m@example.org", "mediator")
    ]
    assert _rows(empty_engine, "SELECT form, status FROM response") == [("after", "in_progress")]
    assert _rows(empty_engine, "SELECT variable, value FROM answer") == [("COMFORT", "3")]
    migrate.upgrade(empty_engine)
    assert differences(empty_engine) == []
    assert _rows(empty_engine, "SELECT wording FROM response") == [("standard",)]


def test_sqlite_foreign_keys_are_back_on_after_a_migration(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fk.db'}")
    try:
        migrate.upgrade(engine)
        migrate.downgrade(engine, "0004")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()


# --- 0007: typed enumerations ------------------------------------------------------------

CHECKED = {
    ("response", "ck_response_form_kind"),
    ("response", "ck_response_channel"),
    ("response", "ck_response_status"),
    ("response", "ck_response_wording"),
    ("staff_user", "ck_staff_user_role"),
}


def _checks(engine: Engine) -> set[tuple[str, str]]:
    inspector = inspect(engine)
    return {
        (table, str(check["name"]))
        for table in ("response", "staff_user")
        for check in inspector.get_check_constraints(table)
    }


def _fill_0006(engine: Engine) -> None:
    _execute(
        engine,
        "INSERT INTO structure (id, slug, name, territory_type, department, created_at)"
        f" VALUES (1, 'lieu', 'Lieu', 'rural', '44', '{NOW}')",
        "INSERT INTO staff_user (id, email, password_hash, role, structure_id, active,"
        f" created_at, password_changed_at) VALUES (1, 'm@example.org', 'x', 'mediator', 1,"
        f" true, '{NOW}', '{NOW}')",
        f"INSERT INTO beneficiary (id, code, structure_id, created_at) VALUES (1, 'AAAA2222B', 1,"
        f" '{NOW}')",
        "INSERT INTO response (id, beneficiary_id, structure_id, form, definition_id,"
        " definition_version, channel, locale, status, created_at, updated_at,"
        " double_entry_wanted, wording) VALUES (1, 1, 1, 'retro', 'selfcheck-core', '1.0.0',"
        f" 'phone', 'fr', 'submitted', '{NOW}', '{NOW}', false, 'easy')",
        "INSERT INTO answer (id, response_id, variable, value, definition_version)"
        " VALUES (1, 1, 'COMFORT', '3', '1.0.0')",
    )


BAD_VALUES = [
    "UPDATE response SET form = 'during'",
    "UPDATE response SET channel = 'fax'",
    "UPDATE response SET status = 'deleted'",
    "UPDATE response SET wording = 'FALC'",
    "UPDATE staff_user SET role = 'superuser'",
]


@pytest.mark.parametrize("statement", BAD_VALUES)
def test_0007_the_database_refuses_a_value_outside_the_enumeration(
    empty_engine: Engine, statement: str
) -> None:
    migrate.upgrade(empty_engine)
    _fill_0006(empty_engine)
    with pytest.raises(IntegrityError, match=r"(?i)check"):
        _execute(empty_engine, statement)
    assert _rows(empty_engine, "SELECT form, channel, status, wording FROM response") == [
        ("retro", "phone", "submitted", "easy")
    ]


def test_0007_up_and_down_keeps_the_rows(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, "0006")
    _fill_0006(empty_engine)
    assert not _checks(empty_engine) & CHECKED
    migrate.upgrade(empty_engine, "0007")
    assert _checks(empty_engine) >= CHECKED
    assert _rows(empty_engine, "SELECT form, channel, status, wording FROM response") == [
        ("retro", "phone", "submitted", "easy")
    ]
    # SQLite copied the response table: its answers (ON DELETE CASCADE) are still there.
    assert _rows(empty_engine, "SELECT variable, value FROM answer") == [("COMFORT", "3")]
    assert _rows(empty_engine, "SELECT role FROM staff_user") == [("mediator",)]
    migrate.downgrade(empty_engine, "0006")
    assert not _checks(empty_engine) & CHECKED
    _execute(empty_engine, "UPDATE response SET channel = 'fax'")  # no longer checked
    assert _rows(empty_engine, "SELECT variable, value FROM answer") == [("COMFORT", "3")]
    _execute(empty_engine, "UPDATE response SET channel = 'phone'")
    migrate.upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_0007_refuses_to_upgrade_over_a_stray_value(empty_engine: Engine) -> None:
    """A value no enumeration knows stops the upgrade, which then changes nothing."""
    migrate.upgrade(empty_engine, "0006")
    _fill_0006(empty_engine)
    _execute(empty_engine, "UPDATE response SET channel = 'fax'")
    with pytest.raises(IntegrityError):
        migrate.upgrade(empty_engine)
    assert current_revision(empty_engine) == "0006"
    assert not _checks(empty_engine) & CHECKED


def test_the_models_refuse_a_value_outside_the_enumeration(db_session: Session) -> None:
    """SQLAlchemy checks the value before it writes (validate_strings)."""
    structure = create_structure(db_session, "Lieu", "rural", "44")
    db_session.commit()
    db_session.add(
        StaffUser(email="x@example.org", password_hash="x", role="superuser", structure=structure)
    )
    with pytest.raises(StatementError, match="superuser"):
        db_session.flush()


def test_0022_down_writes_binary_lines_back_as_text(empty_engine: Engine) -> None:
    """export_selection.lines (binary records, branch dash4): a downgrade writes them back
    as the text lines the code before reads, a table group's name before each."""
    migrate.upgrade(empty_engine)
    person, responses = bytes(range(1, 13)), bytes(range(200, 208))
    with empty_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO export_log (id, at, kind, filters, row_count, k, report)"
                f" VALUES (1, '{NOW}', 'dashboard', '{{}}', 2, 5, '{{}}')"
            )
        )
        for row_id, people, lines in (
            (1, "", person + responses + bytes(20)),
            (2, "after|", person + responses),
            (3, "0123:abcd", None),  # kept as text: left as it is
        ):
            connection.execute(
                text(
                    "INSERT INTO export_selection (id, export_id, at, count, people, lines)"
                    f" VALUES ({row_id}, 1, '{NOW}', 1, :people, :lines)"
                ),
                {"people": people, "lines": lines},
            )
    migrate.downgrade(empty_engine, "0021_dash3")
    line = f"{person.hex()}:{responses.hex()}"
    assert _rows(empty_engine, "SELECT people FROM export_selection ORDER BY id") == [
        (f"{line}\n{'0' * 24}:{'0' * 16}",),
        (f"after|{line}",),
        ("0123:abcd",),
    ]
    migrate.upgrade(empty_engine)
    assert differences(empty_engine) == []


def test_0023_down_writes_changed_lines_back_whole(empty_engine: Engine) -> None:
    """export_selection.base_id (rows of changed lines, branch dash16): a downgrade writes
    each such row's whole lines (its base's with its own in place), oldest first, so that
    the code before reads them as ever."""
    migrate.upgrade(empty_engine)

    def record(person: int, responses: int) -> bytes:
        return bytes([person] * 12) + bytes([responses] * 8)

    with empty_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO export_log (id, at, kind, filters, row_count, k, report)"
                f" VALUES (1, '{NOW}', 'dashboard', '{{}}', 2, 5, '{{}}')"
            )
        )
        for row_id, lines, base in (
            (1, record(1, 1) + record(3, 3), None),
            (2, record(2, 2) + record(3, 4), 1),  # one person added, one changed
            (3, record(1, 5), 2),  # a chain: on the row above
        ):
            connection.execute(
                text(
                    "INSERT INTO export_selection (id, export_id, at, count, people, lines,"
                    f" base_id) VALUES ({row_id}, 1, '{NOW}', 1, '', :lines, :base)"
                ),
                {"lines": lines, "base": base},
            )
    migrate.downgrade(empty_engine, "0022_dash4")
    assert _rows(empty_engine, "SELECT lines FROM export_selection ORDER BY id") == [
        (record(1, 1) + record(3, 3),),
        (record(1, 1) + record(2, 2) + record(3, 4),),
        (record(1, 5) + record(2, 2) + record(3, 4),),
    ]
    migrate.upgrade(empty_engine)
    assert differences(empty_engine) == []
