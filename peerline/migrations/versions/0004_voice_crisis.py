"""calls and call-back requests: crisis category, answering machine, voicemail transcript

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import peerline.service.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("crisis", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("answered_by", sa.String(length=24), nullable=True))
    with op.batch_alter_table("callback_requests") as batch:
        batch.add_column(sa.Column("crisis", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("transcript_enc", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column(
                "transcribed_at",
                peerline.service.models.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    """Undo this revision."""
    with op.batch_alter_table("callback_requests") as batch:
        batch.drop_column("transcribed_at")
        batch.drop_column("transcript_enc")
        batch.drop_column("crisis")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("answered_by")
        batch.drop_column("crisis")
