"""export log, rate limits, account lockout, free-text right, easy-read wording

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 22:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("filters", sa.Text(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["staff_user.id"],
            name=op.f("fk_export_log_user_id_staff_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_log")),
    )
    op.create_index(op.f("ix_export_log_at"), "export_log", ["at"], unique=False)
    op.create_table(
        "rate_limit_hit",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name=op.f("pk_rate_limit_hit")),
    )
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("can_read_free_text", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("wording", sa.String(length=16), server_default="standard", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.drop_column("wording")
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.drop_column("can_read_free_text")
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_logins")
    op.drop_table("rate_limit_hit")
    op.drop_index(op.f("ix_export_log_at"), table_name="export_log")
    op.drop_table("export_log")
