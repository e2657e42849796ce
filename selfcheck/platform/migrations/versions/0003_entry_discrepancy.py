"""blind double entry: the fields on which a second entry differed, and their resolution

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 21:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entry_discrepancy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("second_entry_id", sa.Integer(), nullable=False),
        sa.Column("variable", sa.String(length=40), nullable=False),
        sa.Column("first_value", sa.Text(), nullable=False),
        sa.Column("second_value", sa.Text(), nullable=False),
        sa.Column("resolved_value", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["staff_user.id"],
            name=op.f("fk_entry_discrepancy_resolved_by_id_staff_user"),
        ),
        sa.ForeignKeyConstraint(
            ["second_entry_id"],
            ["second_entry.id"],
            name=op.f("fk_entry_discrepancy_second_entry_id_second_entry"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entry_discrepancy")),
        sa.UniqueConstraint("second_entry_id", "variable", name="uq_entry_discrepancy_field"),
    )


def downgrade() -> None:
    op.drop_table("entry_discrepancy")
