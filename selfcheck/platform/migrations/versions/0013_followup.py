"""follow-up: the follow-up form kinds and the structure's follow-up delays (issue 15)

The response's form may now be `followup` (months after the end form) or `followup_late`
(the optional second follow-up): the CHECK constraint of migration 0007 is recreated with
them. Each structure sets when the follow-up opens: `followup_months` after the end form
(3 by default), and `second_followup_months` for a second one (NULL: none).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 04:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OLD_FORMS = ("before", "after", "retro")
NEW_FORMS = (*OLD_FORMS, "followup", "followup_late")


def _condition(values: tuple[str, ...]) -> str:
    return f"form IN ({', '.join(repr(value) for value in values)})"


def _form_check(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_response_form_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_response_form_kind"), _condition(values))


def upgrade() -> None:
    _form_check(NEW_FORMS)
    with op.batch_alter_table("structure", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("followup_months", sa.Integer(), nullable=False, server_default="3")
        )
        batch_op.add_column(sa.Column("second_followup_months", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Follow-up responses cannot stay under the old constraint: they go (with their answers).
    followups = "SELECT id FROM response WHERE form IN ('followup', 'followup_late')"
    entries = f"SELECT id FROM second_entry WHERE response_id IN ({followups})"
    for table in ("second_entry_answer", "entry_discrepancy"):
        op.execute(f"DELETE FROM {table} WHERE second_entry_id IN ({entries})")
    op.execute(f"DELETE FROM second_entry WHERE response_id IN ({followups})")
    op.execute(f"DELETE FROM answer WHERE response_id IN ({followups})")
    op.execute("DELETE FROM response WHERE form IN ('followup', 'followup_late')")
    with op.batch_alter_table("structure", schema=None) as batch_op:
        batch_op.drop_column("second_followup_months")
        batch_op.drop_column("followup_months")
    _form_check(OLD_FORMS)
