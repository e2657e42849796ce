"""export_selection: keyed hashes of the people of each export, to refuse differencing

An export whose people differ from an earlier export of the same evaluator by fewer than k
people would single those people out by difference: each export keeps the HMACs of its
people (under the app secret, never ids nor codes) so that such a request can be refused.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-06 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_selection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("people", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["export_log.id"],
            name=op.f("fk_export_selection_export_id_export_log"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["staff_user.id"],
            name=op.f("fk_export_selection_user_id_staff_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_selection")),
    )
    op.create_index(
        op.f("ix_export_selection_export_id"), "export_selection", ["export_id"], unique=False
    )
    op.create_index(
        op.f("ix_export_selection_user_id"), "export_selection", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_export_selection_user_id"), table_name="export_selection")
    op.drop_index(op.f("ix_export_selection_export_id"), table_name="export_selection")
    op.drop_table("export_selection")
