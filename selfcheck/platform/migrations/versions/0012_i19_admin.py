"""structure.totp_required: a structure may require a second factor of all its staff

Platform administrators and anyone who can export data must use one anyway (accounts/totp).

Revision ID: 0012_i19_admin
Revises: 0010
Create Date: 2026-12-06 04:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_i19_admin"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "structure",
        sa.Column("totp_required", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("structure") as batch:
        batch.drop_column("totp_required")
