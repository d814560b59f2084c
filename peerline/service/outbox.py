"""The outbox: send what the database says is pending, in order, once; apply statuses."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from redis.exceptions import LockError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from peerline.service.line import Line
from peerline.service.models import (
    OUT_DELIVERED,
    OUT_DROPPED,
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
from peerline.service.ratelimit import RateLimited
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
    OUT_DROPPED: 3,
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


OFFER_PURPOSES = ("offer", "offer_priority")
# The longest a worker sleeps for the rate limiter before handing the send back to the queue.
MAX_WAIT = 20.0


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


def send(line: Line, outbound_id: int) -> None:
    """Send a pending message, after any earlier ones still pending for the same person.

    One worker at a time holds a person's send lock (in Redis, with a time-out longer than the
    API client's), and marks each message `sending` in the database before calling the API. So
    a message found `sending` by the lock holder was left by a worker that died mid-call: the
    provider is asked whether it went out before it is sent again, and it is sent once.
    """
    with line.db.session() as session:
        target = session.get(OutboundMessage, outbound_id)
        if target is None or target.status not in (OUT_PENDING, OUT_SENDING):
            return
        to_hash = target.to_hash
    seconds = line.settings.send_lock_seconds
    lock = line.redis.lock(
        f"peerline:send-lock:{to_hash}", timeout=seconds, blocking_timeout=seconds
    )
    if not lock.acquire():
        raise RetryLater(f"message {outbound_id}: another worker holds the recipient's lock")
    try:
        while _send_next(line, to_hash, outbound_id):
            pass
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("send lock for message %s expired before release", outbound_id)


def _send_next(line: Line, to_hash: str, up_to: int) -> bool:
    """Send this person's oldest unsent message up to `up_to`; say whether to go on."""
    with line.db.session() as session:
        now = utcnow()
        message = _oldest_unsent(session, to_hash, up_to)
        if message is None:
            return False
        to = line.vault.decrypt(message.to_enc)
        body = line.vault.decrypt(message.body_enc)
        if message.status == OUT_SENDING:
            sid = line.transport.find_sent(
                to=to, from_=message.from_number, body=body, since=message.created_at
            )
            if sid is not None:
                message.status, message.provider_sid, message.sent_at = OUT_SENT, sid, now
                return True
            message.status = OUT_PENDING
        if _recipient_opted_out(session, message.to_hash):
            message.status, message.error_code, message.updated_at = OUT_FAILED, OPTED_OUT, now
            return True
        if message.valid_until is not None and now >= message.valid_until:
            message.status, message.updated_at = OUT_DROPPED, now
            return True
        message_id, from_number, valid_until = message.id, message.from_number, message.valid_until
    # Every worker shares the sender's budget of segments per second (in Redis). The wait
    # happens outside any transaction; this person's send lock keeps others off meanwhile.
    left = (valid_until - utcnow()).total_seconds() if valid_until else None
    try:
        line.limiter.acquire_text(from_number, body, max_wait=min(left or MAX_WAIT, MAX_WAIT))
    except RateLimited as exc:
        if left is not None and exc.retry_after >= left:
            _drop(line, message_id)
            return True
        # Too long to hold a worker: come back when the budget allows.
        line.tasks.send_later(message_id, exc.retry_after)
        return False
    with line.db.session() as session:
        message = session.get(OutboundMessage, message_id, with_for_update=True)
        if message is None or message.status != OUT_PENDING:
            return True
        message.status, message.updated_at = OUT_SENDING, utcnow()
        message.attempts += 1
    # The intent to send is committed; the call itself holds no database lock.
    try:
        sid = line.transport.send_sms(
            to=to, from_=from_number, body=body, status_callback=line.status_callback_url()
        )
    except TransportError as exc:
        _failed(line, message_id, exc)
        if exc.permanent:
            return True
        raise RetryLater(f"message {message_id}: {exc}") from exc
    with line.db.session() as session:
        sent = session.get(OutboundMessage, message_id)
        if sent is not None and sent.status == OUT_SENDING:
            sent.status, sent.provider_sid, sent.sent_at = OUT_SENT, sid, utcnow()
    return True


def _oldest_unsent(session: Session, to_hash: str, up_to: int) -> OutboundMessage | None:
    """Return, locked, the person's oldest message not yet sent, up to a given one."""
    return session.scalars(
        select(OutboundMessage)
        .where(
            OutboundMessage.to_hash == to_hash,
            OutboundMessage.status.in_((OUT_PENDING, OUT_SENDING)),
            OutboundMessage.id <= up_to,
        )
        .order_by(OutboundMessage.id)
        .limit(1)
        .with_for_update()
    ).first()


def _drop(line: Line, message_id: int) -> None:
    """Give up on a time-sensitive message that could only arrive too late."""
    with line.db.session() as session:
        message = session.get(OutboundMessage, message_id)
        if message is not None and message.status == OUT_PENDING:
            message.status, message.updated_at = OUT_DROPPED, utcnow()


def _failed(line: Line, message_id: int, exc: TransportError) -> None:
    """Record a failed attempt: permanent failures are final, others go back to pending."""
    with line.db.session() as session:
        now = utcnow()
        message = session.get(OutboundMessage, message_id)
        if message is None:
            return
        message.error_code, message.updated_at = exc.code, now
        if not exc.permanent:
            message.status = OUT_PENDING
            return
        message.status = OUT_FAILED
        log.warning("message %s failed for good: error %s", message.id, exc.code)
        if exc.code == OPTED_OUT:
            mark_opted_out(session, message.to_hash, now)
        undeliverable(line, session, message)


def undeliverable(line: Line, session: Session, message: OutboundMessage) -> None:
    """Act on a message that will never arrive: an offer nobody got goes to someone else."""
    if message.purpose not in OFFER_PURPOSES or message.conversation_id is None:
        return
    from peerline.service.models import PENDING, Offer
    from peerline.service.runtime import Runtime

    supporter_id = session.scalar(
        select(Supporter.id).where(Supporter.phone_hash == message.to_hash)
    )
    offer_id = session.scalar(
        select(Offer.id).where(
            Offer.conversation_id == message.conversation_id,
            Offer.supporter_id == supporter_id,
            Offer.status == PENDING,
        )
    )
    if offer_id is None:
        return
    runtime = Runtime(line, session)
    runtime.resolve_offer(offer_id, "expired")
    # Dispatch after the caller commits would be cleaner; matching is idempotent, so the
    # round enqueued here simply finds the offer resolved once the commit lands.
    session.flush()
    session.commit()
    runtime.unit.dispatch(line)


def apply_status(
    session: Session,
    sid: str,
    twilio_status: str,
    error_code: int | None,
    now: datetime,
    line: Line | None = None,
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
        if status in (OUT_UNDELIVERED, OUT_FAILED) and line is not None:
            undeliverable(line, session, message)
    return True


def stale_pending(
    session: Session, older_than: timedelta, now: datetime, lock_seconds: int = 60
) -> list[int]:
    """Return ids of messages whose job may be lost: pending a while, or left mid-send."""
    return list(
        session.scalars(
            select(OutboundMessage.id)
            .where(
                or_(
                    (OutboundMessage.status == OUT_PENDING)
                    & (OutboundMessage.created_at < now - older_than),
                    # A worker killed mid-call leaves `sending`; its lock has lapsed by now.
                    (OutboundMessage.status == OUT_SENDING)
                    & (OutboundMessage.updated_at < now - timedelta(seconds=lock_seconds)),
                )
            )
            .order_by(OutboundMessage.id)
            .limit(1000)
        )
    )
