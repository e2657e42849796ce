"""answers: index (variable, response_id, value) replaces (variable, value), for the dashboard

The evaluator dashboard reads the answers of a few variables of the responses in scope and
counts them by value: with the response id and the value in the index, it reads the index
alone (an index-only scan on PostgreSQL, a covering index on SQLite) instead of one table
row per answer. Replaces ix_answer_variable_value: a search by variable (and value) still
finds its rows in this index, the value being read from the index entries.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 23:15:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_answer_variable_response_value", "answer", ["variable", "response_id", "value"]
    )
    op.drop_index("ix_answer_variable_value", table_name="answer")


def downgrade() -> None:
    op.create_index("ix_answer_variable_value", "answer", ["variable", "value"])
    op.drop_index("ix_answer_variable_response_value", table_name="answer")
