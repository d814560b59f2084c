"""calls: how many times a caller was put through to the crisis line, so each transfer's
<Dial> action names its own attempt and a late end of an earlier one is known

Revision ID: 0012_s26
Revises: 0011_s17
Create Date: 2026-12-06 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_s26"
down_revision = "0011_s17"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("calls") as batch:
        # A call transferred before the count was kept answers on the URL without an attempt.
        batch.add_column(
            sa.Column("crisis_transfers", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("crisis_transfers")
