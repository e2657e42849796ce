"""dashboard_seal.paper: the people with a paper response, counted by the full differencing
check and kept with its sealed verdict; data_version: a number raised by every write to the
dashboard's facts

Revision ID: 0020_dash2
Revises: 0019_dash1m
Create Date: 2026-12-06 15:20:00.000000

The dashboard's headline counts the people with a paper form in the selection: a
`COUNT(DISTINCT person)` over the facts, 0.75 s at 1,000,000 people on PostgreSQL (issue 18).
The full check reads every response of the selection anyway; it now counts them too and the
seal keeps the number (seals kept before have none: the headline counts them as before).
The data stamp keying the evaluators' in-process memories counted the responses (0.35 s); it
now reads `data_version` (one row), raised by facts.settle in each writing transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_dash2"
down_revision = "0019_dash1m"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dashboard_seal") as batch:
        batch.add_column(sa.Column("paper", sa.Integer(), nullable=True))
    # No row yet: the first write makes it (facts.bump, an upsert), and an empty database stays
    # empty (a backup is restored only into one).
    op.create_table(
        "data_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_version")),
    )


def downgrade() -> None:
    op.drop_table("data_version")
    with op.batch_alter_table("dashboard_seal") as batch:
        batch.drop_column("paper")
