"""inbound_messages: a sender's texts newest first (the crisis check reads a texter's burst)

Revision ID: 0010_s14
Revises: 0009_i21c
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0010_s14"
down_revision = "0009_i21c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_inbound_sender", "inbound_messages", ["from_hash", "id"], unique=False)


def downgrade() -> None:
    """Undo this revision."""
    op.drop_index("ix_inbound_sender", table_name="inbound_messages")
