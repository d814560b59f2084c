"""contact records and debrief requests for answered calls: a call_id beside the chat's

Revision ID: 0009_i21c
Revises: 0006_i19a
Create Date: 2026-12-03 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_i21c"
down_revision = "0006_i19a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("contact_records") as batch:
        batch.alter_column("conversation_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("call_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_contact_records_call_id_calls", "calls", ["call_id"], ["id"])
        batch.create_unique_constraint("uq_contact_records_call_id", ["call_id"])
        batch.create_check_constraint(
            "one_conversation_or_call",
            "(conversation_id IS NULL) <> (call_id IS NULL)",
        )
    with op.batch_alter_table("debrief_requests") as batch:
        batch.add_column(sa.Column("call_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_debrief_requests_call_id_calls", "calls", ["call_id"], ["id"])


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("debrief_requests") as batch:
        batch.drop_constraint("fk_debrief_requests_call_id_calls", type_="foreignkey")
        batch.drop_column("call_id")
    op.execute("DELETE FROM contact_records WHERE conversation_id IS NULL")
    with op.batch_alter_table("contact_records") as batch:
        batch.drop_constraint("one_conversation_or_call", type_="check")
        batch.drop_constraint("uq_contact_records_call_id", type_="unique")
        batch.drop_constraint("fk_contact_records_call_id_calls", type_="foreignkey")
        batch.drop_column("call_id")
        batch.alter_column("conversation_id", existing_type=sa.Integer(), nullable=False)
