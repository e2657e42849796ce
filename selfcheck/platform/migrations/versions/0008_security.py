"""security review (issue 13): session generation, audit events tied to a person

- staff_user.session_generation: a number kept in the staff session cookie and checked on
  every request; signing out, changing the password and "sign out everywhere" raise it, so
  a copied cookie stops working at once.
- audit_event.beneficiary_id: the person an event is about (no foreign key: the person may
  be deleted, the event stays). Erasure redacts every event of the person: who did what and
  when stays, the code, the values and the link go. Filled in here for older events.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 01:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_user") as batch:
        batch.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(sa.Column("beneficiary_id", sa.Integer(), nullable=True))
        batch.create_index("ix_audit_event_beneficiary_id", ["beneficiary_id"])
    # Older events: responses and second entries still present lead to their person.
    op.execute(
        "UPDATE audit_event SET beneficiary_id = (SELECT response.beneficiary_id FROM response "
        "WHERE response.id = audit_event.entity_id) WHERE entity = 'response'"
    )
    op.execute(
        "UPDATE audit_event SET beneficiary_id = (SELECT response.beneficiary_id FROM response "
        "JOIN second_entry ON second_entry.response_id = response.id "
        "WHERE second_entry.id = audit_event.entity_id) WHERE entity = 'second_entry'"
    )
    op.execute(
        "UPDATE audit_event SET beneficiary_id = entity_id "
        "WHERE entity = 'beneficiary' AND entity_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_index("ix_audit_event_beneficiary_id")
        batch.drop_column("beneficiary_id")
    with op.batch_alter_table("staff_user") as batch:
        batch.drop_column("session_generation")
