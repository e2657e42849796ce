"""fact_tally: the paired matrices' lines (facts.PAIR, facts.RANK_SUM), filled from the answers

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 07:45:00.000000

The dashboard's first page, its task table and its change page read the before x after
matrices from the facts instead of the answers (issue 18): every fact is computed again
(the backfill of 0014, with the default questionnaire definition; `selfcheck facts rebuild`
does the same with the app's definition). No table changes.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.orm import Session

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from selfcheck.evaluation import facts
    from selfcheck.questionnaire import load_definition
    from selfcheck.questionnaire.loader import DEFAULT_DEFINITION

    definition = load_definition(DEFAULT_DEFINITION)
    session = Session(bind=op.get_bind())
    facts.rebuild(session, definition)
    session.flush()


def downgrade() -> None:
    """Nothing to undo: the earlier code reads the facts' other lines and ignores these."""
