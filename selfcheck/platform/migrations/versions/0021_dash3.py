"""fact_followup: the follow-up figures' cells (people and digests of each figure's group, per
cell and UTC day of the first end form), filled from response_fact; figures_seal: the sealed
verdicts of the follow-up figures' differencing check; an index on response_fact.ended_at

Revision ID: 0021_dash3
Revises: 0020_dash2
Create Date: 2026-12-06 17:30:00.000000

The dashboard's follow-up figures read one row per person followed (900,000 rows at
1,000,000 people) and their check hashed them all on every first view (issue 18). They are
now sums over `fact_followup` (evaluation/retention.py, `count`), and the check's verdict is
sealed under the groups' digests (evaluation/figures_seal.py). The backfill reads
response_fact's end forms and follow-ups once (`facts.rebuild_followup`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_dash3"
down_revision = "0020_dash2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fact_followup",
        sa.Column("structure_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("ended_on", sa.String(length=10), nullable=False),
        sa.Column("followed", sa.Boolean(), nullable=False),
        sa.Column("kept", sa.String(length=200), nullable=False),
        sa.Column("person", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("d0", sa.BigInteger(), nullable=False),
        sa.Column("d1", sa.BigInteger(), nullable=False),
        sa.Column("d2", sa.BigInteger(), nullable=False),
        sa.Column("d3", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "structure_id",
            "month",
            "form",
            "channel",
            "ended_on",
            "followed",
            "kept",
            "person",
            name=op.f("pk_fact_followup"),
        ),
    )
    op.create_table(
        "figures_seal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("filters", sa.Text(), nullable=False),
        sa.Column("seal", sa.String(length=64), nullable=False),
        sa.Column("last_log", sa.Integer(), nullable=False),
        sa.Column("remembered", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["staff_user.id"],
            name=op.f("fk_figures_seal_user_id_staff_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_figures_seal")),
    )
    op.create_index(op.f("ix_figures_seal_user_id"), "figures_seal", ["user_id"], unique=False)
    op.create_index("ix_response_fact_ended_at", "response_fact", ["ended_at"], unique=False)
    from flask import current_app, has_app_context

    from selfcheck.evaluation import facts

    # The figures are read from these cells: their numbers are filled in any case. Their
    # digests are keyed by the app's secret: without the app (a bare `alembic upgrade`) they
    # stay zero, no figures' check is sealed and each one runs in full until
    # `selfcheck facts cells` makes them.
    key = facts.cell_key(str(current_app.secret_key)) if has_app_context() else None
    facts.rebuild_followup(op.get_bind(), key)


def downgrade() -> None:
    op.drop_index("ix_response_fact_ended_at", table_name="response_fact")
    op.drop_index(op.f("ix_figures_seal_user_id"), table_name="figures_seal")
    op.drop_table("figures_seal")
    op.drop_table("fact_followup")
