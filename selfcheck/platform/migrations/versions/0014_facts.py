"""response_fact, fact_tally: the dashboard's facts, filled from the existing answers

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 04:30:00.000000

The backfill reads the answers with the default questionnaire definition; `selfcheck facts
rebuild` does the same with the app's definition, after a change of the definition or of the
typology rule.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "response_fact",
        sa.Column("response_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=False),
        sa.Column("structure_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("age", sa.String(length=40), nullable=True),
        sa.Column("gender", sa.String(length=40), nullable=True),
        sa.Column("diploma", sa.String(length=40), nullable=True),
        sa.Column("internet_home", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=True),
        sa.Column("prescribed", sa.String(length=40), nullable=True),
        sa.Column("comfort_then", sa.Integer(), nullable=True),
        sa.Column("comfort_now", sa.Integer(), nullable=True),
        sa.Column("tasks_then", sa.Integer(), nullable=True),
        sa.Column("tasks_now", sa.Integer(), nullable=True),
        sa.Column("tasks_ranked", sa.Integer(), nullable=True),
        sa.Column("paired", sa.Boolean(), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=True),
        sa.Column("compared_fields", sa.Integer(), nullable=True),
        sa.Column("differing_fields", sa.Integer(), nullable=True),
        sa.Column("tally", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("response_id", name=op.f("pk_response_fact")),
    )
    with op.batch_alter_table("response_fact", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_response_fact_beneficiary_id"), ["beneficiary_id"], unique=False
        )
        batch_op.create_index(
            "ix_response_fact_scope",
            ["structure_id", "month", "form", "channel", "beneficiary_id"],
            unique=False,
        )
    op.create_table(
        "fact_tally",
        sa.Column("structure_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "structure_id", "month", "form", "channel", "key", "value", name=op.f("pk_fact_tally")
        ),
    )
    backfill()


def backfill() -> None:
    from selfcheck.evaluation import facts
    from selfcheck.questionnaire import load_definition
    from selfcheck.questionnaire.loader import DEFAULT_DEFINITION

    definition = load_definition(DEFAULT_DEFINITION)
    session = Session(bind=op.get_bind())
    facts.rebuild(session, definition)
    session.flush()


def downgrade() -> None:
    op.drop_table("fact_tally")
    with op.batch_alter_table("response_fact", schema=None) as batch_op:
        batch_op.drop_index("ix_response_fact_scope")
        batch_op.drop_index(batch_op.f("ix_response_fact_beneficiary_id"))
    op.drop_table("response_fact")
