"""fact_cell: per structure, month, form and channel, the number of submitted responses and a
128-bit order-independent digest of them, filled from response_fact

Revision ID: 0019_dash1m
Revises: 0018_perfdash
Create Date: 2026-12-06 14:30:00.000000

The dashboard's differencing check recognises a selection whose responses have not changed
since the evaluator's last view by these sums (a few hundred rows) instead of reading every
response id of the selection (issue 18; evaluation/differencing.py). The backfill reads
response_fact once (`facts.rebuild_cells`): about 1.7 million rows at 1,000,000 people.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_dash1m"
down_revision = "0018_perfdash"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fact_cell",
        sa.Column("structure_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("d0", sa.BigInteger(), nullable=False),
        sa.Column("d1", sa.BigInteger(), nullable=False),
        sa.Column("d2", sa.BigInteger(), nullable=False),
        sa.Column("d3", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "structure_id", "month", "form", "channel", name=op.f("pk_fact_cell")
        ),
    )
    op.create_table(
        "dashboard_seal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("filters", sa.Text(), nullable=False),
        sa.Column("seal", sa.String(length=64), nullable=False),
        sa.Column("refused", sa.Text(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("last_log", sa.Integer(), nullable=False),
        sa.Column("remembered", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["staff_user.id"],
            name=op.f("fk_dashboard_seal_user_id_staff_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_seal")),
    )
    op.create_index(op.f("ix_dashboard_seal_user_id"), "dashboard_seal", ["user_id"], unique=False)
    from flask import current_app, has_app_context

    from selfcheck.evaluation import facts

    # The digests are keyed by the app's secret: without the app (a bare `alembic upgrade`)
    # fact_cell stays empty, no view is sealed and every check runs in full until
    # `selfcheck facts cells` fills it.
    if has_app_context():
        facts.rebuild_cells(op.get_bind(), facts.cell_key(str(current_app.secret_key)))


def downgrade() -> None:
    op.drop_index(op.f("ix_dashboard_seal_user_id"), table_name="dashboard_seal")
    op.drop_table("dashboard_seal")
    op.drop_table("fact_cell")
