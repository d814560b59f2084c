"""supporters ready for SMS: a partial index for matching

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 23:58:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

READY = "active IS true AND away IS false AND opted_out IS false AND takes_sms IS true"


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        "ix_supporters_sms_ready",
        "supporters",
        ["id"],
        unique=False,
        postgresql_where=sa.text(READY),
        sqlite_where=sa.text(READY),
    )


def downgrade() -> None:
    """Undo this revision."""
    op.drop_index(
        "ix_supporters_sms_ready",
        table_name="supporters",
        postgresql_where=sa.text(READY),
        sqlite_where=sa.text(READY),
    )
