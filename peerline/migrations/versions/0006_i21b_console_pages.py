"""alerts: an outcome note when resolved; time off: part of a day (from/to times)

Revision ID: 0006_i21b
Revises: 0005
Create Date: 2026-12-03 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_i21b"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("outcome_enc", sa.Text(), nullable=True))
    with op.batch_alter_table("time_off") as batch:
        batch.add_column(sa.Column("start_minute", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("end_minute", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Undo this revision."""
    with op.batch_alter_table("time_off") as batch:
        batch.drop_column("end_minute")
        batch.drop_column("start_minute")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("outcome_enc")
