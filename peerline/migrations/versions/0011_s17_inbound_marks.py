"""inbound_messages: what the line did on a text (raised safety, told of someone else), and
whether pictures came with it

Revision ID: 0011_s17
Revises: 0010_s14
Create Date: 2026-12-05 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_s17"
down_revision = "0010_s14"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("inbound_messages") as batch:
        # Texts taken in before the marks were kept are relayed unmarked, as they were.
        batch.add_column(
            sa.Column("raised_safety", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("someone_else", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("picture", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("picture")
        batch.drop_column("someone_else")
        batch.drop_column("raised_safety")
