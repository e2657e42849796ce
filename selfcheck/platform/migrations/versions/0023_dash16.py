"""export_selection.base_id and dashboard_seal.base: a view remembered as its changed lines

Revision ID: 0023_dash16
Revises: 0022_dash4
Create Date: 2026-12-06 20:45:00.000000

After a new answer inside an evaluator's selection, the differencing check
(evaluation/differencing.py, "The changed lines only") builds the selection's lines from the
lines remembered by the last full check plus the responses added since, and remembers only
the lines that changed: `base_id` names the row they replace lines of (NULL: the row holds
all its lines, as every row kept before); `dashboard_seal.base` says where that check's lines
are remembered (NULL: nowhere known, the full check runs). Two nullable columns, no rows
rewritten: instant on PostgreSQL at any size.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_dash16"
down_revision = "0022_dash4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_selection") as batch:
        batch.add_column(sa.Column("base_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("dashboard_seal") as batch:
        batch.add_column(sa.Column("base", sa.Text(), nullable=True))


def downgrade() -> None:
    # A row of changed lines cannot be read by the code before: its whole lines are written
    # in its place first (its base's lines with its own replacing theirs), oldest first.
    connection = op.get_bind()
    table = sa.table(
        "export_selection",
        sa.column("id", sa.Integer()),
        sa.column("lines", sa.LargeBinary()),
        sa.column("base_id", sa.Integer()),
    )
    found = connection.execute(
        sa.select(table.c.id, table.c.lines, table.c.base_id)
        .where(table.c.base_id.is_not(None))
        .order_by(table.c.id)
    ).all()
    for row_id, lines, base_id in found:
        base = connection.execute(sa.select(table.c.lines).where(table.c.id == base_id)).scalar()
        whole = _replaced(bytes(base or b""), bytes(lines or b""))
        connection.execute(
            table.update().where(table.c.id == row_id).values(lines=whole, base_id=None)
        )
    with op.batch_alter_table("dashboard_seal") as batch:
        batch.drop_column("base")
    with op.batch_alter_table("export_selection") as batch:
        batch.drop_column("base_id")


def _replaced(base: bytes, changed: bytes) -> bytes:
    """The records (20 bytes: 12 of person hash, 8 of responses' hash, sorted) of `base`
    with those of `changed` in place of the same person's, or added; written out here so that
    the migration does not change with the code."""
    width = 20
    records = {base[i : i + 12]: base[i : i + width] for i in range(0, len(base), width)}
    for i in range(0, len(changed), width):
        records[changed[i : i + 12]] = changed[i : i + width]
    return b"".join(records[person] for person in sorted(records))
