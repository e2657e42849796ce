"""answers: the definition version of each answer, and one row per (response, variable, value)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 20:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Duplicates could exist from concurrent saves before this revision: keep the first.
    op.execute(
        "DELETE FROM answer WHERE id NOT IN ("
        " SELECT MIN(id) FROM answer GROUP BY response_id, variable, value)"
    )
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("definition_version", sa.String(length=32), nullable=True))
        batch_op.drop_index("ix_answer_response_variable")
        batch_op.create_unique_constraint("uq_answer_value", ["response_id", "variable", "value"])
    op.execute(
        "UPDATE answer SET definition_version = ("
        " SELECT response.definition_version FROM response WHERE response.id = answer.response_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.drop_constraint("uq_answer_value", type_="unique")
        batch_op.create_index("ix_answer_response_variable", ["response_id", "variable"])
        batch_op.drop_column("definition_version")
