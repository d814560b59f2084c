"""coordinators: roles and the transcript permission; console sessions ended server-side

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import peerline.service.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Moment = peerline.service.models.UTCDateTime


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("coordinators") as batch:
        batch.add_column(
            sa.Column("role", sa.String(16), nullable=False, server_default="coordinator")
        )
        batch.add_column(
            sa.Column("transcripts", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Accounts made before roles could do everything: they stay able to, until an admin says.
    op.execute("UPDATE coordinators SET role = 'admin', transcripts = true")
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "coordinator_id",
            sa.Integer(),
            sa.ForeignKey("coordinators.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", Moment(timezone=True), nullable=False),
        sa.Column("last_seen_at", Moment(timezone=True), nullable=False),
        sa.Column("ended_at", Moment(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
    )
    op.create_index("ix_console_sessions_coordinator_id", "console_sessions", ["coordinator_id"])


def downgrade() -> None:
    """Undo this revision."""
    op.drop_index("ix_console_sessions_coordinator_id", table_name="console_sessions")
    op.drop_table("console_sessions")
    with op.batch_alter_table("coordinators") as batch:
        batch.drop_column("transcripts")
        batch.drop_column("role")
