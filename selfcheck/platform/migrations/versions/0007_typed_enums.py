"""typed enumerations: CHECK constraints on form kind, channel, status, wording and role

Each of these columns holds one value of a Python enumeration (FormKind, Channel, Status,
Wording, Role): the database now refuses any other value, whatever writes to it. Strings
with a CHECK constraint rather than native PostgreSQL ENUM types, on both databases (see
platform.models.typed). The allowed values are frozen here, as they are at this revision:
a migration that adds a value drops and recreates the constraint.

SQLite cannot add a constraint to a table: batch_alter_table copies each table (foreign keys
are off during migrations, see platform.migrate). PostgreSQL adds and drops them in place.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 01:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# table -> [(constraint name, column, allowed values)], as of this revision.
CHECKS: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "response": [
        ("ck_response_form_kind", "form", ("before", "after", "retro")),
        ("ck_response_channel", "channel", ("online", "paper", "phone")),
        ("ck_response_status", "status", ("in_progress", "submitted")),
        ("ck_response_wording", "wording", ("standard", "easy")),
    ],
    "staff_user": [
        (
            "ck_staff_user_role",
            "role",
            ("mediator", "structure_admin", "evaluator", "platform_admin"),
        ),
    ],
}


def _condition(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, column, values in checks:
                batch_op.create_check_constraint(op.f(name), _condition(column, values))


def downgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _column, _values in checks:
                batch_op.drop_constraint(op.f(name), type_="check")
