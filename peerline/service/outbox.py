"""The outbox: send what the database says is pending, in order, once; apply statuses."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerline.service.line import Line
from peerline.service.models import (
    OUT_DELIVERED,
    OUT_FAILED,
    OUT_PENDING,
    OUT_SENDING,
    OUT_SENT,
    OUT_UNDELIVERED,
    Contact,
    OutboundMessage,
    Supporter,
    utcnow,
)
from peerline.service.transport import OPTED_OUT, TransportError

log = logging.getLogger(__name__)

# How far each status has come; a callback may only move a message forward.
RANK = {
    OUT_PENDING: 0,
    OUT_SENDING: 1,
    OUT_SENT: 2,
    OUT_DELIVERED: 3,
    OUT_UNDELIVERED: 3,
    OUT_FAILED: 3,
}
# Twilio's message statuses, as ours.
TWILIO_STATUS = {
    "accepted": OUT_SENT,
    "scheduled": OUT_SENT,
    "queued": OUT_SENT,
    "sending": OUT_SENT,
    "sent": OUT_SENT,
    "delivered": OUT_DELIVERED,
    "read": OUT_DELIVERED,
    "undelivered": OUT_UNDELIVERED,
    "failed": OUT_FAILED,
    "canceled": OUT_FAILED,
}


class RetryLater(Exception):
    """A send failed for a reason that may pass; RQ retries the job."""


def mark_opted_out(session: Session, to_hash: str, now: datetime) -> None:
    """Record an opt-out the provider told us about, for whoever owns the number."""
    contact = session.scalar(select(Contact).where(Contact.phone_hash == to_hash))
    if contact is not None and not contact.opted_out:
        contact.opted_out, contact.opted_out_at = True, now
    supporter = session.scalar(select(Supporter).where(Supporter.phone_hash == to_hash))
    if supporter is not None:
        supporter.opted_out, supporter.away = True, True


def _recipient_opted_out(session: Session, to_hash: str) -> bool:
    contact = session.scalar(select(Contact.opted_out).where(Contact.phone_hash == to_hash))
    supporter = session.scalar(select(Supporter.opted_out).where(Supporter.phone_hash == to_hash))
    return bool(contact) or bool(supporter)


def _send_one(line: Line, session: Session, message: OutboundMessage, now: datetime) -> None:
    if _recipient_opted_out(session, message.to_hash):
        message.status, message.error_code, message.updated_at = OUT_FAILED, OPTED_OUT, now
        return
    message.attempts += 1
    message.status, message.updated_at = OUT_SENDING, now
    try:
        sid = line.transport.send_sms(
            to=line.vault.decrypt(message.to_enc),
            from_=message.from_number,
            body=line.vault.decrypt(message.body_enc),
            status_callback=line.status_callback_url(),
        )
    except TransportError as exc:
        message.error_code, message.updated_at = exc.code, now
        if exc.permanent:
            message.status = OUT_FAILED
            log.warning("message %s failed for good: error %s", message.id, exc.code)
            if exc.code == OPTED_OUT:
                mark_opted_out(session, message.to_hash, now)
            return
        message.status = OUT_PENDING
        raise RetryLater(f"message {message.id}: {exc}") from exc
    message.status, message.provider_sid, message.sent_at = OUT_SENT, sid, now


def send(line: Line, outbound_id: int) -> None:
    """Send a pending message, after any earlier ones still pending for the same person."""
    with line.db.session() as session:
        now = utcnow()
        target = session.get(OutboundMessage, outbound_id)
        if target is None or target.status != OUT_PENDING:
            return
        # Lock this person's pending messages up to this one, oldest first: a second worker
        # with a later message waits here, so the person reads them in the order written.
        batch = session.scalars(
            select(OutboundMessage)
            .where(
                OutboundMessage.to_hash == target.to_hash,
                OutboundMessage.status == OUT_PENDING,
                OutboundMessage.id <= outbound_id,
            )
            .order_by(OutboundMessage.id)
            .with_for_update()
        ).all()
        for message in batch:
            try:
                _send_one(line, session, message, now)
            except RetryLater:
                # Keep what was sent; later messages wait behind the one that failed.
                session.commit()
                raise


def apply_status(
    session: Session, sid: str, twilio_status: str, error_code: int | None, now: datetime
) -> bool:
    """Apply a status callback; return False when it names no message of ours."""
    message = session.scalar(
        select(OutboundMessage).where(OutboundMessage.provider_sid == sid).with_for_update()
    )
    if message is None:
        return False
    status = TWILIO_STATUS.get(twilio_status)
    if status is None:
        return True
    # Callbacks arrive late, twice or out of order: only ever move forward.
    if RANK[status] > RANK[message.status]:
        message.status, message.updated_at = status, now
        if error_code:
            message.error_code = error_code
            if error_code == OPTED_OUT:
                mark_opted_out(session, message.to_hash, now)
    return True


def stale_pending(session: Session, older_than: timedelta, now: datetime) -> list[int]:
    """Return ids of messages pending for longer than a while: their job may be lost."""
    return list(
        session.scalars(
            select(OutboundMessage.id)
            .where(
                OutboundMessage.status == OUT_PENDING,
                OutboundMessage.created_at < now - older_than,
            )
            .order_by(OutboundMessage.id)
            .limit(1000)
        )
    )
