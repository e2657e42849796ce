"""export_selection.lines: a remembered selection's lines as binary records

Revision ID: 0021_dash4
Revises: 0020_dash2
Create Date: 2026-12-06 17:40:00.000000

The differencing check (evaluation/differencing.py) remembers each view and export as one
line per person, their keyed hash and that of their responses. Kept as hexadecimal text
(`<24 digits>:<16 digits>`, 41 characters and a newline), a view of 1,000,000 people wrote
about 260 MB of text (issue 18); as bytes (12 + 8) it is half that, written and read in one
piece. Rows kept before keep their text (`people`) and no `lines`: they are read as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_dash4"
down_revision = "0021_dash3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_selection") as batch:
        batch.add_column(sa.Column("lines", sa.LargeBinary(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # Keyed hashes do not compress: stored out of line without trying (EXTERNAL), as
        # PostgreSQL would otherwise try its compression on every value written.
        op.execute("ALTER TABLE export_selection ALTER COLUMN lines SET STORAGE EXTERNAL")


def downgrade() -> None:
    # Rows kept as binary records only are written back as text lines first: the code before
    # reads `people` alone.
    connection = op.get_bind()
    table = sa.table(
        "export_selection",
        sa.column("id", sa.Integer()),
        sa.column("people", sa.Text()),
        sa.column("lines", sa.LargeBinary()),
    )
    found = connection.execute(
        sa.select(table.c.id, table.c.people, table.c.lines).where(table.c.lines.is_not(None))
    ).all()
    for row_id, people, lines in found:
        connection.execute(
            table.update()
            .where(table.c.id == row_id)
            .values(people="\n".join(_text_lines(people, bytes(lines))))
        )
    with op.batch_alter_table("export_selection") as batch:
        batch.drop_column("lines")


def _text_lines(people: str, lines: bytes) -> list[str]:
    """The records (12 bytes of person hash, 8 of responses' hash) as the text lines kept
    before, each after the group's name (`people`, when it names one); written out here so
    that the migration does not change with the code."""
    prefix = people if people.endswith("|") else ""
    return [
        f"{prefix}{lines[at : at + 12].hex()}:{lines[at + 12 : at + 20].hex()}"
        for at in range(0, len(lines), 20)
    ]
