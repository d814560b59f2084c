"""supporters' pause after a crisis chat; contact records and debrief requests (issue 21)

Revision ID: 0006_i21a
Revises: 0006_i21b
Create Date: 2026-12-03 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import peerline.service.models

revision = "0006_i21a"
down_revision = "0006_i21b"
branch_labels = None
depends_on = None

Moment = peerline.service.models.UTCDateTime


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("supporters") as batch:
        batch.add_column(sa.Column("paused_until", Moment(timezone=True), nullable=True))
    op.create_table(
        "contact_records",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "conversation_id",
            sa.Integer(),
            sa.ForeignKey(
                "conversations.id", name="fk_contact_records_conversation_id_conversations"
            ),
            nullable=False,
        ),
        sa.Column(
            "supporter_id",
            sa.Integer(),
            sa.ForeignKey("supporters.id", name="fk_contact_records_supporter_id_supporters"),
            nullable=True,
        ),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("waited_seconds", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("crisis_category", sa.String(32), nullable=True),
        sa.Column("topics", sa.String(400), nullable=False),
        sa.Column("supporter_score", sa.Integer(), nullable=True),
        sa.Column("texter_rating", sa.Integer(), nullable=True),
        sa.Column("referred", sa.Boolean(), nullable=False),
        sa.Column("returning_texter", sa.Boolean(), nullable=False),
        sa.Column("note_enc", sa.Text(), nullable=True),
        sa.Column("ended_at", Moment(timezone=True), nullable=True),
        sa.Column("noted_at", Moment(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_contact_records"),
        sa.UniqueConstraint("conversation_id", name="uq_contact_records_conversation_id"),
    )
    op.create_index("ix_contact_records_ended_at", "contact_records", ["ended_at"])
    op.create_table(
        "debrief_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "supporter_id",
            sa.Integer(),
            sa.ForeignKey("supporters.id", name="fk_debrief_requests_supporter_id_supporters"),
            nullable=False,
        ),
        sa.Column(
            "conversation_id",
            sa.Integer(),
            sa.ForeignKey(
                "conversations.id", name="fk_debrief_requests_conversation_id_conversations"
            ),
            nullable=True,
        ),
        sa.Column("created_at", Moment(timezone=True), nullable=False),
        sa.Column("done_at", Moment(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(254), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_debrief_requests"),
    )
    op.create_index("ix_debrief_requests_open", "debrief_requests", ["done_at", "id"])


def downgrade() -> None:
    """Undo this revision."""
    op.drop_index("ix_debrief_requests_open", table_name="debrief_requests")
    op.drop_table("debrief_requests")
    op.drop_index("ix_contact_records_ended_at", table_name="contact_records")
    op.drop_table("contact_records")
    with op.batch_alter_table("supporters") as batch:
        batch.drop_column("paused_until")
