"""response_fact: the follow-up figures' facts (ended_at, followed, kept), filled from the answers

Revision ID: 0018_perfdash
Revises: 0017_join
Create Date: 2026-12-06 11:00:00.000000

The dashboard's follow-up figures (evaluation/retention.py: gains kept months later, the
follow-up response rate) read these columns through a covering index instead of every
response and the task answers of the people followed up (issue 18). The backfill computes
every fact again (as 0014 and 0016, with the default questionnaire definition; `selfcheck
facts rebuild` does the same with the app's definition).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0018_perfdash"
down_revision = "0017_join"
branch_labels = None
depends_on = None

INDEX_COLUMNS = [
    "form",
    "structure_id",
    "month",
    "channel",
    "ended_at",
    "beneficiary_id",
    "followed",
    "kept",
]


def upgrade() -> None:
    with op.batch_alter_table("response_fact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("followed", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("kept", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_response_fact_followup", INDEX_COLUMNS, unique=False)
    from selfcheck.evaluation import facts
    from selfcheck.questionnaire import load_definition
    from selfcheck.questionnaire.loader import DEFAULT_DEFINITION

    definition = load_definition(DEFAULT_DEFINITION)
    session = Session(bind=op.get_bind())
    facts.rebuild(session, definition)
    session.flush()


def downgrade() -> None:
    with op.batch_alter_table("response_fact", schema=None) as batch_op:
        batch_op.drop_index("ix_response_fact_followup")
        batch_op.drop_column("kept")
        batch_op.drop_column("followed")
        batch_op.drop_column("ended_at")
