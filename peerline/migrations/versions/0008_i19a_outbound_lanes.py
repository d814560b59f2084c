"""outbound messages: a lane (their place in the sender's budget) and a segment count

Revision ID: 0006_i19a
Revises: 0006_i21a
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_i19a"
down_revision = "0006_i21a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("outbound_messages") as batch:
        # Texts written before lanes count as replies (lane 3) of one segment.
        batch.add_column(sa.Column("lane", sa.SmallInteger(), nullable=False, server_default="3"))
        batch.add_column(
            sa.Column("segments", sa.SmallInteger(), nullable=False, server_default="1")
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("segments")
        batch.drop_column("lane")
