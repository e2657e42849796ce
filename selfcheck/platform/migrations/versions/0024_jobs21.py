"""job.queued_at and job.deferrals: a job whose message was lost is queued again

Revision ID: 0024_jobs21
Revises: 0023_dash16
Create Date: 2026-12-07 12:55:00.000000

`queued_at`: when the job's message was last handed to huey (NULL: at `created_at`), or when
a message put off by `schedule(delay=...)` is due. A queued job whose message is in neither
huey's queue nor its schedule a while after that (a worker killed between putting a deferred
job back and queueing its message again, a web process killed between its commit and its
`dispatch`) is queued again by the worker's sweep (platform/jobs.py, `requeue_lost`).
`deferrals`: how many times the job was put back in the queue by its runner (`JobDeferred`);
past `jobs.MAX_DEFERRALS` it fails in plain words instead of waiting again. Two columns, one
nullable, one with a server default: instant on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_jobs21"
down_revision = "0023_dash16"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deferrals", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("deferrals")
        batch.drop_column("queued_at")
