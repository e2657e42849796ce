"""initial schema: structures, beneficiaries, responses, answers

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 18:59:26.058882
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "structure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("territory_type", sa.String(length=16), nullable=False),
        sa.Column("department", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_structure")),
        sa.UniqueConstraint("slug", name=op.f("uq_structure_slug")),
    )
    op.create_table(
        "beneficiary",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("structure_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["structure_id"], ["structure.id"], name=op.f("fk_beneficiary_structure_id_structure")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_beneficiary")),
        sa.UniqueConstraint("code", name=op.f("uq_beneficiary_code")),
    )
    with op.batch_alter_table("beneficiary", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_beneficiary_structure_id"), ["structure_id"], unique=False
        )

    op.create_table(
        "response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=False),
        sa.Column("structure_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("definition_id", sa.String(length=64), nullable=False),
        sa.Column("definition_version", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_token", sa.String(length=64), nullable=True),
        sa.Column("furthest_page", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_response_beneficiary_id_beneficiary"),
        ),
        sa.ForeignKeyConstraint(
            ["structure_id"], ["structure.id"], name=op.f("fk_response_structure_id_structure")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_response")),
        sa.UniqueConstraint("beneficiary_id", "form", name="uq_response_person_form"),
        sa.UniqueConstraint("start_token", name=op.f("uq_response_start_token")),
    )
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_response_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_response_structure_id"), ["structure_id"], unique=False
        )

    op.create_table(
        "answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("variable", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["response.id"],
            name=op.f("fk_answer_response_id_response"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer")),
    )
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.create_index(
            "ix_answer_response_variable", ["response_id", "variable"], unique=False
        )
        batch_op.create_index("ix_answer_variable_value", ["variable", "value"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.drop_index("ix_answer_variable_value")
        batch_op.drop_index("ix_answer_response_variable")

    op.drop_table("answer")
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_response_structure_id"))
        batch_op.drop_index(batch_op.f("ix_response_status"))

    op.drop_table("response")
    with op.batch_alter_table("beneficiary", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_beneficiary_structure_id"))

    op.drop_table("beneficiary")
    op.drop_table("structure")
