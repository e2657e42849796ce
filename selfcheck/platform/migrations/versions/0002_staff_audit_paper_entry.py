"""staff accounts, grants, audit trail, paper entry and blind second entry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:42:06.210158
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "staff_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("structure_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["structure_id"], ["structure.id"], name=op.f("fk_staff_user_structure_id_structure")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_user")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_user_email")),
    )
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_staff_user_structure_id"), ["structure_id"], unique=False
        )

    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("structure_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["structure_id"], ["structure.id"], name=op.f("fk_audit_event_structure_id_structure")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_user.id"], name=op.f("fk_audit_event_user_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_event_structure_id"), ["structure_id"], unique=False
        )

    op.create_table(
        "evaluator_grant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("structure_id", sa.Integer(), nullable=True),
        sa.Column("department", sa.String(length=3), nullable=True),
        sa.ForeignKeyConstraint(
            ["structure_id"],
            ["structure.id"],
            name=op.f("fk_evaluator_grant_structure_id_structure"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["staff_user.id"],
            name=op.f("fk_evaluator_grant_user_id_staff_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluator_grant")),
        sa.UniqueConstraint("user_id", "structure_id", "department", name="uq_grant_scope"),
    )
    op.create_table(
        "second_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("entered_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("compared_fields", sa.Integer(), nullable=False),
        sa.Column("differing_fields", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entered_by_id"],
            ["staff_user.id"],
            name=op.f("fk_second_entry_entered_by_id_staff_user"),
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["staff_user.id"],
            name=op.f("fk_second_entry_resolved_by_id_staff_user"),
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["response.id"],
            name=op.f("fk_second_entry_response_id_response"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_second_entry")),
        sa.UniqueConstraint("response_id", name=op.f("uq_second_entry_response_id")),
    )
    op.create_table(
        "second_entry_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("second_entry_id", sa.Integer(), nullable=False),
        sa.Column("variable", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["second_entry_id"],
            ["second_entry.id"],
            name=op.f("fk_second_entry_answer_second_entry_id_second_entry"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_second_entry_answer")),
    )
    with op.batch_alter_table("second_entry_answer", schema=None) as batch_op:
        batch_op.create_index(
            "ix_second_entry_answer_entry", ["second_entry_id", "variable"], unique=False
        )

    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entered_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("entered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column(
                "double_entry_wanted", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_response_entered_by_id_staff_user"),
            "staff_user",
            ["entered_by_id"],
            ["id"],
        )

    with op.batch_alter_table("structure", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("double_entry_percent", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("after_due_weeks", sa.Integer(), nullable=False, server_default="6")
        )


def downgrade() -> None:

    with op.batch_alter_table("structure", schema=None) as batch_op:
        batch_op.drop_column("after_due_weeks")
        batch_op.drop_column("double_entry_percent")

    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_response_entered_by_id_staff_user"), type_="foreignkey"
        )
        batch_op.drop_column("double_entry_wanted")
        batch_op.drop_column("entered_at")
        batch_op.drop_column("entered_by_id")

    with op.batch_alter_table("second_entry_answer", schema=None) as batch_op:
        batch_op.drop_index("ix_second_entry_answer_entry")

    op.drop_table("second_entry_answer")
    op.drop_table("second_entry")
    op.drop_table("evaluator_grant")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_structure_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_at"))

    op.drop_table("audit_event")
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_user_structure_id"))

    op.drop_table("staff_user")
