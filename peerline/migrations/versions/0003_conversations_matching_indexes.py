"""conversations: chats going on by supporter, and matches by supporter and time

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ACTIVE = "state = 'active'"


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        "ix_conversations_active_supporter",
        "conversations",
        ["supporter_id"],
        unique=False,
        postgresql_where=sa.text(ACTIVE),
        sqlite_where=sa.text(ACTIVE),
    )
    op.create_index(
        "ix_conversations_supporter_matched",
        "conversations",
        ["supporter_id", "matched_at"],
        unique=False,
    )


def downgrade() -> None:
    """Undo this revision."""
    op.drop_index("ix_conversations_supporter_matched", table_name="conversations")
    op.drop_index(
        "ix_conversations_active_supporter",
        table_name="conversations",
        postgresql_where=sa.text(ACTIVE),
        sqlite_where=sa.text(ACTIVE),
    )
