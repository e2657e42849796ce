"""join_memory: per evaluator and person, keyed hashes of what their exports released

Two exports of one evaluator that share people can be joined on the answers those people
share; each file is k-anonymous, but their different generalisations and masked cells
combine. Each export now remembers, per person it released, a keyed hash of the person and
an HMAC chain of the quasi-identifier vectors released about them (never ids, codes nor
values), so that a later export keeps the join of all of them k-anonymous
(selfcheck/evaluation/joins.py).

Revision ID: 0017_join
Revises: 0016
Create Date: 2026-12-06 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_join"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "join_memory",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["staff_user.id"],
            name=op.f("fk_join_memory_user_id_staff_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_join_memory")),
        sa.UniqueConstraint("user_id", "person", name="uq_join_memory_person"),
    )


def downgrade() -> None:
    op.drop_table("join_memory")
