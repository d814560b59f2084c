"""Forget transcripts after the retention period, keeping only anonymous counts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from peerline.service.models import (
    CLOSED,
    OUT_PENDING,
    OUT_SENDING,
    RATING,
    Alert,
    ContactRecord,
    Conversation,
    InboundMessage,
    OutboundMessage,
)


def purge(session: Session, now: datetime, days: int, batch: int = 500) -> int:
    """Delete the messages of conversations closed more than `days` ago; return how many."""
    cutoff = now - timedelta(days=days)
    conversations = session.scalars(
        select(Conversation)
        .where(
            Conversation.state.in_((CLOSED, RATING)),
            Conversation.purged_at.is_(None),
            func.coalesce(Conversation.closed_at, Conversation.created_at) < cutoff,
        )
        .order_by(Conversation.id)
        .limit(batch)
    ).all()
    for conversation in conversations:
        counts = {
            model: int(
                session.scalar(
                    select(func.count())
                    .select_from(model)
                    .where(model.conversation_id == conversation.id)
                )
                or 0
            )
            for model in (InboundMessage, OutboundMessage)
        }
        conversation.messages_in += counts[InboundMessage]
        conversation.messages_out += counts[OutboundMessage]
        conversation.purged_at = now
        session.execute(
            delete(InboundMessage).where(InboundMessage.conversation_id == conversation.id)
        )
        # A coordinator's note on an alert can hold what the texter said: it goes too.
        session.execute(
            update(Alert).where(Alert.conversation_id == conversation.id).values(outcome_enc=None)
        )
        # A supporter's few words about the chat are kept as long as its transcript.
        session.execute(
            update(ContactRecord)
            .where(ContactRecord.conversation_id == conversation.id)
            .values(note_enc=None)
        )
        session.execute(
            delete(OutboundMessage).where(
                OutboundMessage.conversation_id == conversation.id,
                # A message still on its way is left until it has gone.
                OutboundMessage.status.not_in((OUT_PENDING, OUT_SENDING)),
            )
        )
    # A supporter's few words about a call are kept as long as a chat's would be.
    session.execute(
        update(ContactRecord)
        .where(
            ContactRecord.call_id.is_not(None),
            ContactRecord.note_enc.is_not(None),
            ContactRecord.ended_at < cutoff,
        )
        .values(note_enc=None)
    )
    # Messages that never joined a conversation (blocked numbers, floods, stray texts).
    stray = session.execute(
        delete(InboundMessage).where(
            InboundMessage.conversation_id.is_(None), InboundMessage.received_at < cutoff
        )
    )
    stray_out = session.execute(
        delete(OutboundMessage).where(
            OutboundMessage.conversation_id.is_(None),
            OutboundMessage.created_at < cutoff,
            OutboundMessage.status.not_in((OUT_PENDING, OUT_SENDING)),
        )
    )
    return len(conversations) + int(stray.rowcount or 0) + int(stray_out.rowcount or 0)  # type: ignore[attr-defined]
