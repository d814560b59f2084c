"""inbound_messages: whether a text was shown live to the chat's supporter, so a supporter
who takes back a chat they handed back is replayed only what they were not shown

Revision ID: 0013_s26
Revises: 0012_s26
Create Date: 2026-12-06 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_s26"
down_revision = "0012_s26"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("inbound_messages") as batch:
        # Texts taken in before this read as not shown: a re-take replays them once more
        # rather than leaving one out.
        batch.add_column(
            sa.Column("relayed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("relayed")
