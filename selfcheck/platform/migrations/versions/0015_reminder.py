"""reminder: an optional, consented follow-up reminder (issue 15)

A structure may offer it (`structure.followup_reminder`, off by default); a person who
consents leaves one e-mail address in `followup_reminder`, apart from the answers, deleted
once used.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 05:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("structure", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("followup_reminder", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "followup_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_followup_reminder_beneficiary_id_beneficiary"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_reminder")),
        sa.UniqueConstraint("beneficiary_id", name=op.f("uq_followup_reminder_beneficiary_id")),
    )


def downgrade() -> None:
    op.drop_table("followup_reminder")
    with op.batch_alter_table("structure", schema=None) as batch_op:
        batch_op.drop_column("followup_reminder")
