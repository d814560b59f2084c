"""The outbox: send what the database says is pending, in order, once; apply statuses."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import LockError
from redis.lock import Lock
from sqlalchemy import Connection, bindparam, or_, select, update
from sqlalchemy.orm import Session

from peerline.service import metrics, redis_connect, segments
from peerline.service.context import Context, resolve_offer
from peerline.service.models import (
    OUT_DELIVERED,
    OUT_DROPPED,
    OUT_FAILED,
    OUT_PENDING,
    OUT_SENDING,
    OUT_SENT,
    OUT_UNDELIVERED,
    PENDING,
    Contact,
    Offer,
    OutboundMessage,
    Supporter,
    utcnow,
)
from peerline.service.services import LineServices
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
# The statuses of a message that has not gone out yet.
UNSENT = (OUT_PENDING, OUT_SENDING)
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


# The statements of every send, built once (with bound parameters) rather than per message.
# A message's person and status, for the send lock.
_TARGET = select(OutboundMessage.to_hash, OutboundMessage.status).where(
    OutboundMessage.id == bindparam("message_id")
)
# The person's two oldest messages not yet sent, up to the job's, locked: the first is the one
# to send, a second says more are waiting after it. Whether the recipient opted out, as a
# texter or as a supporter, comes in the same statement.
_UNSENT = (
    select(
        OutboundMessage.id,
        OutboundMessage.status,
        OutboundMessage.to_enc,
        OutboundMessage.body_enc,
        OutboundMessage.from_number,
        OutboundMessage.created_at,
        OutboundMessage.valid_until,
        or_(
            select(Contact.id)
            .where(Contact.phone_hash == OutboundMessage.to_hash, Contact.opted_out.is_(True))
            .exists(),
            select(Supporter.id)
            .where(Supporter.phone_hash == OutboundMessage.to_hash, Supporter.opted_out.is_(True))
            .exists(),
        ).label("opted_out"),
    )
    .where(
        OutboundMessage.to_hash == bindparam("to_hash"),
        OutboundMessage.status.in_(UNSENT),
        OutboundMessage.id <= bindparam("up_to"),
    )
    .order_by(OutboundMessage.id)
    .limit(2)
    .with_for_update(of=OutboundMessage)
)
_MARK_SENDING = (
    update(OutboundMessage)
    .where(OutboundMessage.id == bindparam("message_id"), OutboundMessage.status.in_(UNSENT))
    .values(status=OUT_SENDING, updated_at=bindparam("now"), attempts=OutboundMessage.attempts + 1)
    # The body as it is now: a relay may have had a text joined to it during the rate wait.
    .returning(OutboundMessage.body_enc)
)
# Whether the recipient opted out, read with their row share-locked: a STOP being recorded
# now is waited for and seen, and one recorded later waits until this text is `sending`.
_CONTACT_OPTED_OUT = (
    select(Contact.opted_out)
    .where(Contact.phone_hash == bindparam("to_hash"))
    .with_for_update(read=True)
)
_SUPPORTER_OPTED_OUT = (
    select(Supporter.opted_out)
    .where(Supporter.phone_hash == bindparam("to_hash"))
    .with_for_update(read=True)
)
_MARK_SENT = (
    update(OutboundMessage)
    .where(OutboundMessage.id == bindparam("message_id"), OutboundMessage.status == OUT_SENDING)
    .values(status=OUT_SENT, provider_sid=bindparam("sid"), sent_at=bindparam("now"))
)


def send(line: LineServices, outbound_id: int) -> None:
    """Send a pending message, after any earlier ones still pending for the same person.

    One worker at a time holds a person's send lock (in Redis, with a time-out longer than the
    API client's), and marks each message `sending` in the database before calling the API. So
    a message found `sending` by the lock holder was left by a worker that died mid-call: the
    provider is asked whether it went out before it is sent again, and it is sent once.

    This runs for every text a fan-out sends, so it keeps its round trips few: one database
    connection for the whole job (one check-out, one ping) and, for a message sent, four short
    transactions: read the message; take the next one locked with its checks and its
    rate-limit slot; after waiting for the slot, check the opt-out again and mark it
    `sending` in one transaction; record the provider's id.
    """
    with line.db.engine.connect() as connection:
        with connection.begin():
            target = connection.execute(_TARGET, {"message_id": outbound_id}).first()
        if target is None or target.status not in UNSENT:
            return
        to_hash: str = target.to_hash
        seconds = line.settings.send_lock_seconds
        lock = line.redis.lock(
            f"peerline:send-lock:{to_hash}", timeout=seconds, blocking_timeout=seconds
        )
        if not lock.acquire():
            raise RetryLater(f"message {outbound_id}: another worker holds the recipient's lock")
        try:
            while _send_next(line, connection, to_hash, outbound_id, lock):
                pass
        finally:
            try:
                redis_connect.release(lock)
            except LockError:
                log.warning("send lock for message %s expired before release", outbound_id)


def _send_next(
    line: LineServices, connection: Connection, to_hash: str, up_to: int, lock: Lock
) -> bool:
    """Send this person's oldest unsent message up to `up_to`; say whether more are waiting."""
    later: float | None = None
    with connection.begin():
        rows = connection.execute(_UNSENT, {"to_hash": to_hash, "up_to": up_to}).all()
        if not rows:
            return False
        message, more = rows[0], len(rows) > 1
        message_id: int = message.id
        now = utcnow()
        to = line.vault.decrypt(message.to_enc)
        body = line.vault.decrypt(message.body_enc)
        if message.status == OUT_SENDING:
            sid = line.transport.find_sent(
                to=to, from_=message.from_number, body=body, since=message.created_at
            )
            if sid is not None:
                _set(connection, message_id, status=OUT_SENT, provider_sid=sid, sent_at=now)
                return more
        if message.opted_out:
            _set(connection, message_id, status=OUT_FAILED, error_code=OPTED_OUT, updated_at=now)
            return more
        valid_until: datetime | None = message.valid_until
        left = (valid_until - now).total_seconds() if valid_until is not None else None
        if left is not None and left <= 0:
            _set(connection, message_id, status=OUT_DROPPED, updated_at=now)
            return more
        # Every worker shares the sender's budget of segments per second (in Redis). The slot
        # is reserved with the row locked and waited for after the commit, outside any
        # transaction; this person's send lock keeps other workers off meanwhile.
        slot = line.limiter.reserve_text(
            message.from_number, body, max_wait=min(left or MAX_WAIT, MAX_WAIT)
        )
        if not slot.reserved:
            if left is not None and slot.wait >= left:
                # A time-sensitive message that could only arrive too late.
                _set(connection, message_id, status=OUT_DROPPED, updated_at=now)
                return more
            if message.status == OUT_SENDING:
                _set(connection, message_id, status=OUT_PENDING)
            later = slot.wait
    if later is not None:
        # Too long to hold a worker: come back when the budget allows.
        line.job_queue.send_later(message_id, later)
        return False
    line.limiter.sleep_until(slot)
    try:
        # Renewed (and checked) before the call: a lock that lapsed during the wait may be
        # another worker's, who may have found this row `sending` and asked the provider.
        lock.reacquire()
    except LockError as exc:
        raise RetryLater(f"message {message_id}: the recipient's send lock lapsed") from exc
    claimed = _claim(connection, message_id, to_hash)
    if claimed is None:
        return more
    if claimed != message.body_enc:
        # Texts joined while this one waited for its slot go with it, and their segments
        # are paced too: the joined text is sent once, and the rate still holds.
        grown = line.vault.decrypt(claimed)
        extra = segments.count(grown) - segments.count(body)
        if extra > 0:
            line.limiter.sleep_until(
                line.limiter.reserve(message.from_number, extra, max_wait=None)
            )
        body = grown
    # The call itself holds no database lock.
    try:
        sid = line.transport.send_sms(
            to=to, from_=message.from_number, body=body, status_callback=line.status_callback_url()
        )
    except TransportError as exc:
        metrics.send_error(exc.code)
        _failed(line, message_id, exc)
        if exc.permanent:
            return more
        raise RetryLater(f"message {message_id}: {exc}") from exc
    with connection.begin():
        connection.execute(_MARK_SENT, {"message_id": message_id, "sid": sid, "now": utcnow()})
    metrics.TEXTS_SENT.inc()
    return more


def _claim(connection: Connection, message_id: int, to_hash: str) -> str | None:
    """Mark a message `sending` unless its recipient opted out; return its body (encrypted)
    to send, or None.

    The opt-out is read in the same transaction that marks the text `sending`, after the
    rate-limit wait, immediately before the call: a STOP that arrived while the text waited
    for its slot stops it. The intent to send is committed before the call: a worker that
    dies from here on leaves `sending`, which the next one checks with the provider.
    """
    with connection.begin():
        now = utcnow()
        params = {"to_hash": to_hash}
        opted = [*connection.scalars(_CONTACT_OPTED_OUT, params)]
        opted += connection.scalars(_SUPPORTER_OPTED_OUT, params)
        if any(opted):
            _set(
                connection,
                message_id,
                status=OUT_FAILED,
                error_code=OPTED_OUT,
                updated_at=now,
                _only_unsent=True,
            )
            return None
        marked = connection.execute(_MARK_SENDING, {"message_id": message_id, "now": now})
        # Nothing marked: the text was erased or settled meanwhile.
        body: str | None = marked.scalar()
        return body


def _set(connection: Connection, message_id: int, **values: Any) -> None:
    """Update one message's columns (with `_only_unsent`, only while it is unsent)."""
    statement = update(OutboundMessage).where(OutboundMessage.id == message_id)
    if values.pop("_only_unsent", False):
        statement = statement.where(OutboundMessage.status.in_(UNSENT))
    connection.execute(statement.values(**values))


def _failed(line: LineServices, message_id: int, exc: TransportError) -> None:
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


def undeliverable(line: LineServices, session: Session, message: OutboundMessage) -> None:
    """Act on a message that will never arrive: an offer nobody got goes to someone else."""
    if message.purpose not in OFFER_PURPOSES or message.conversation_id is None:
        return
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
    runtime = Context(line, session)
    resolve_offer(runtime, offer_id, "expired")
    # Dispatch after the caller commits would be cleaner; matching is idempotent, so the
    # round enqueued here simply finds the offer resolved once the commit lands.
    session.flush()
    session.commit()
    runtime.after_commit.dispatch(line)


def apply_status(
    session: Session,
    sid: str,
    twilio_status: str,
    error_code: int | None,
    now: datetime,
    line: LineServices | None = None,
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


# What a fan-out sends: thousands at once, queued for minutes in a normal run.
FANOUT_PURPOSES = ("group_reminder",)


def stale_pending(
    session: Session,
    older_than: timedelta,
    now: datetime,
    lock_seconds: int = 60,
    fanout_older_than: timedelta | None = None,
) -> list[int]:
    """Return ids of messages whose job may be lost: pending a while, or left mid-send.

    With `fanout_older_than`, a fan-out's texts count as lost only after that long.
    """
    pending = (OutboundMessage.status == OUT_PENDING) & (
        OutboundMessage.created_at < now - older_than
    )
    if fanout_older_than is not None:
        pending &= OutboundMessage.purpose.not_in(FANOUT_PURPOSES) | (
            OutboundMessage.created_at < now - fanout_older_than
        )
    return list(
        session.scalars(
            select(OutboundMessage.id)
            .where(
                or_(
                    pending,
                    # A worker killed mid-call leaves `sending`; its lock has lapsed by now.
                    (OutboundMessage.status == OUT_SENDING)
                    & (OutboundMessage.updated_at < now - timedelta(seconds=lock_seconds)),
                )
            )
            .order_by(OutboundMessage.id)
            .limit(1000)
        )
    )
