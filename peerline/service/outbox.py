"""The outbox: send what the database says is pending, in order, once; apply statuses."""

from __future__ import annotations

import contextvars
import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from threading import Event
from typing import Any

from redis.exceptions import LockError
from redis.lock import Lock
from sqlalchemy import Connection, bindparam, or_, select, update
from sqlalchemy.orm import Session

from peerline.service import lanes, metrics, redis_connect, segments
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
# A message's sender, lane and status, to queue it for its sender's budget.
_TARGETS = select(
    OutboundMessage.id, OutboundMessage.from_number, OutboundMessage.lane, OutboundMessage.status
).where(OutboundMessage.id.in_(bindparam("ids", expanding=True)))
# A message's person and sender, for the pump.
_TARGET = select(
    OutboundMessage.to_hash, OutboundMessage.from_number, OutboundMessage.status
).where(OutboundMessage.id == bindparam("message_id"))
# The person's oldest message not yet sent from the same sender, up to the one the pump
# picked, locked: a person's texts go in the order they were written. Whether the recipient
# opted out, as a texter or as a supporter, comes in the same statement.
_UNSENT = (
    select(
        OutboundMessage.id,
        OutboundMessage.status,
        OutboundMessage.to_enc,
        OutboundMessage.body_enc,
        OutboundMessage.from_number,
        OutboundMessage.lane,
        OutboundMessage.attempts,
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
        OutboundMessage.from_number == bindparam("from_number"),
        OutboundMessage.status.in_(UNSENT),
        OutboundMessage.id <= bindparam("up_to"),
    )
    .order_by(OutboundMessage.id)
    .limit(1)
    .with_for_update(of=OutboundMessage)
)
_MARK_SENDING = (
    update(OutboundMessage)
    .where(OutboundMessage.id == bindparam("message_id"), OutboundMessage.status.in_(UNSENT))
    .values(status=OUT_SENDING, updated_at=bindparam("now"), attempts=OutboundMessage.attempts + 1)
    # The body as it is now: a relay may have had a text joined to it since it was read.
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
# Back to pending when the slot turned out to be taken: not an attempt after all.
_UNCLAIM = (
    update(OutboundMessage)
    .where(OutboundMessage.id == bindparam("message_id"), OutboundMessage.status == OUT_SENDING)
    .values(status=OUT_PENDING, attempts=OutboundMessage.attempts - 1)
)
_MARK_SENT = (
    update(OutboundMessage)
    .where(OutboundMessage.id == bindparam("message_id"), OutboundMessage.status == OUT_SENDING)
    .values(status=OUT_SENT, provider_sid=bindparam("sid"), sent_at=bindparam("now"))
)

# A pump hands its sender back to the queue after this long, so that one busy sender does not
# keep a worker from the rest of the sends queue.
PUMP_SECONDS = 1.0
# A slot this close is waited for (a few milliseconds of a fast sender); any later one is
# left to the sender loop.
SPIN_SECONDS = 0.01
# A chat text that waited this long for the carrier alerts the on-call coordinator, once until
# chat texts go within RELAY_CALM_SECONDS again.
RELAY_LATE_SECONDS = 30.0
RELAY_CALM_SECONDS = 10.0
RELAY_EPISODE_KEY = "peerline:relay-late-episode"
# How early the sender loop stops waiting on Redis for a due sender (see `pace`).
NEWS_MARGIN = 0.15
# A fast sender (this many segments a second or more) has its next text read and claimed while
# its slot comes, when the slot is this close, and up to IN_FLIGHT calls to the provider going
# at once, each to a different person: one pump then keeps up with the sender's rate instead of
# spending the slot's interval on the database and the call in turn. A slower sender's slot is
# left to the sender loop (at most SPIN_SECONDS is waited for), one call at a time.
FAST_RATE = 10.0
PREPARE_SECONDS = 0.05
IN_FLIGHT = 4
_calls = ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="send")


def sender_for(line: LineServices, from_number: str) -> str:
    """Return whose budget a text from this number spends (see `lanes.sender_for`)."""
    return lanes.sender_for(line.settings, from_number)


def send(line: LineServices, outbound_id: int) -> None:
    """Queue a pending message for its sender's budget and spend what the budget allows now."""
    send_many(line, [outbound_id])


def send_many(line: LineServices, outbound_ids: list[int]) -> int:
    """Queue pending messages by lane for their senders, then pump each sender once."""
    senders, count = _rank(line, outbound_ids)
    for sender in sorted(senders):
        pump(line, sender)
    return count


def requeue(line: LineServices, outbound_ids: list[int]) -> int:
    """Rank messages whose place in Redis may be lost, and enqueue a pump of each sender.

    For the sweep: a text already waiting is ranked again in place (the same score), and one
    job is made per sender, not per text, however many wait during a rush.
    """
    senders, count = _rank(line, outbound_ids)
    for sender in sorted(senders):
        line.job_queue.pump(sender)
    return count


def _rank(line: LineServices, outbound_ids: list[int]) -> tuple[set[str], int]:
    """Put unsent messages in their senders' lanes; return the senders and how many."""
    if not outbound_ids:
        return set(), 0
    with line.db.engine.connect() as connection, connection.begin():
        rows = connection.execute(_TARGETS, {"ids": list(outbound_ids)}).all()
    senders = line.lanes.add(
        (sender_for(line, row.from_number), row.id, row.lane)
        for row in rows
        if row.status in UNSENT
    )
    return senders, len(rows)


def pump(line: LineServices, sender: str) -> int:
    """Send the sender's most urgent waiting texts while its budget allows; return how many.

    One pump at a time per sender (a lock in Redis, longer than the API client's time-out).
    Each round takes the best text in the sender's queue (lane, then age) and sends the oldest
    unsent text of the same person from the same sender up to it, so a person's texts keep
    their order and the most urgent one pulls the earlier ones along. A text of a higher lane
    therefore waits behind at most the one text already taking its slot. When the next slot
    is in the future, the pump marks the sender due then and ends: the sender loop (`pace`)
    takes it up at that moment; no worker sleeps for it.
    """
    sent = 0
    while True:
        lock = line.redis.lock(
            f"peerline:pump-lock:{sender}", timeout=line.settings.send_lock_seconds
        )
        if not lock.acquire(blocking=False):
            # The pump running now re-reads the queue after it lets go (below).
            return sent
        try:
            count, due, finished = _pump_locked(line, sender, lock)
            sent += count
        finally:
            try:
                redis_connect.release(lock)
            except LockError:
                log.warning("pump lock of a sender expired before release")
        # Handed on only once the lock is free: a pump taking the sender up while this one
        # still held it (its calls ending) would find it taken and leave the texts to nobody.
        if due is not None:
            line.lanes.set_due(sender, due)
        elif not finished:
            line.job_queue.pump(sender)
        # A text queued while the lock was held was left to this pump: look again.
        if not finished or not line.lanes.waiting(sender):
            return sent


def _pump_locked(line: LineServices, sender: str, lock: Lock) -> tuple[int, float | None, bool]:
    """Pump under the sender's lock; return how many went, when the sender is due again
    (Redis time; None when the queue ran dry or the pump ran its time) and whether the queue
    ran dry."""
    sent = 0
    deadline = time.monotonic() + PUMP_SECONDS
    fast = line.limiter.rate_of(sender) >= FAST_RATE
    ahead = PREPARE_SECONDS if fast else SPIN_SECONDS
    # Calls still going hold the pump (and so the sender's lock) until they end: a row left
    # `sending` is then only ever a dead pump's.
    with line.db.engine.connect() as connection, _InFlight(IN_FLIGHT if fast else 1) as flight:
        while True:
            best = line.lanes.best(sender)
            if best is None:
                return sent, None, True
            if time.monotonic() > deadline:
                return sent, None, False  # handed to a pump job
            # Nothing to read in the database while the sender's next slot is still ahead.
            free_at = line.limiter.free_at(sender, within=ahead)
            if free_at is not None:
                if line.lanes.lane_of_best(sender) == lanes.CHAT:
                    _chat_waits(line, connection, best)
                return sent, free_at, False
            try:
                outcome = _send_best(line, connection, sender, best, lock, flight, ahead)
            except _Busy as busy:
                # The person's text still going first (waited for outside any transaction:
                # SQLite's write lock would keep its call from recording it).
                flight.wait_for(busy.to_hash)
                continue
            if outcome is None:
                continue
            if outcome is True:
                sent += 1
                continue
            # Too early for the next slot: come back for it then.
            return sent, outcome, False


class _InFlight:
    """A pump's calls to the provider still going, at most one per person."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.calls: dict[str, Future[None]] = {}

    def __enter__(self) -> _InFlight:
        return self

    def __exit__(self, *_: object) -> None:
        wait(list(self.calls.values()))
        self.calls.clear()

    def wait_for(self, to_hash: str) -> None:
        """Wait for the person's call still going, so their next text follows it."""
        call = self.calls.pop(to_hash, None)
        if call is not None:
            call.result()

    def make_room(self) -> None:
        """Wait until fewer than the most calls are going."""
        while len(self.calls) >= self.most:
            wait(list(self.calls.values()), return_when=FIRST_COMPLETED)
            self.calls = {who: call for who, call in self.calls.items() if not call.done()}

    def start(self, to_hash: str, call: Future[None]) -> None:
        """Remember a call just started."""
        self.calls[to_hash] = call


class _Busy(Exception):
    """The person a text is for has a call going: it waits for that call."""

    def __init__(self, to_hash: str) -> None:
        super().__init__("a call to this person is going")
        self.to_hash = to_hash


def _send_best(
    line: LineServices,
    connection: Connection,
    sender: str,
    best: int,
    lock: Lock,
    flight: _InFlight,
    ahead: float = SPIN_SECONDS,
) -> bool | float | None:
    """Send the text `best` calls for; True when one went, None when the queue changed
    without a send, else the Redis time at which the sender's next slot comes (raises _Busy
    when the person has a call going)."""
    queues = line.lanes
    with connection.begin():
        target = connection.execute(_TARGET, {"message_id": best}).first()
        if target is None or target.status not in UNSENT:
            queues.remove(sender, best)
            return None
        if target.to_hash in flight.calls:
            raise _Busy(target.to_hash)  # rolls the read back
        message = connection.execute(
            _UNSENT,
            {"to_hash": target.to_hash, "from_number": target.from_number, "up_to": best},
        ).first()
        if message is None:
            queues.remove(sender, best)
            return None
        message_id: int = message.id
        now = utcnow()
        to = line.vault.decrypt(message.to_enc)
        body = line.vault.decrypt(message.body_enc)
        from_ = sender_for(line, message.from_number)
        if message.status == OUT_SENDING:
            sid = line.transport.find_sent(to=to, from_=from_, body=body, since=message.created_at)
            if sid is not None:
                _set(connection, message_id, status=OUT_SENT, provider_sid=sid, sent_at=now)
                queues.remove(sender, message_id)
                return None
        if message.opted_out:
            _set(connection, message_id, status=OUT_FAILED, error_code=OPTED_OUT, updated_at=now)
            queues.remove(sender, message_id)
            return None
        valid_until: datetime | None = message.valid_until
        left = (valid_until - now).total_seconds() if valid_until is not None else None
        if left is not None and left <= 0:
            _set(connection, message_id, status=OUT_DROPPED, updated_at=now)
            queues.remove(sender, message_id)
            return None
    try:
        # The pump's lock is renewed (and checked) before the claim: a lock that lapsed may be
        # another pump's, who may have found this row `sending` and asked the provider.
        lock.reacquire()
    except LockError as exc:
        raise RetryLater(f"message {message_id}: the sender's pump lock lapsed") from exc
    claimed = _claim(connection, message_id, target.to_hash)
    if claimed is None:
        queues.remove(sender, message_id)
        return None
    if claimed != message.body_enc:
        # A text joined since the body was read goes with it (once), and its slot below is
        # reserved for the grown body's segments.
        body = line.vault.decrypt(claimed)
    # The slot is taken last, immediately before the call: the time from the slot to the
    # provider is then one Redis round trip, not the claim's transaction as well, and varies
    # less than the limiter's margin allows for even on a loaded machine.
    flight.make_room()
    slot = line.limiter.reserve_text(sender, body, max_wait=ahead)
    if not slot.reserved:
        with connection.begin():
            if left is not None and slot.wait >= left:
                # A time-sensitive message that could only arrive too late.
                _set(connection, message_id, status=OUT_DROPPED, updated_at=now)
                queues.remove(sender, message_id)
                return None
            connection.execute(_UNCLAIM, {"message_id": message_id})
        if message.lane == lanes.CHAT:
            _relay_waited(line, (now - _aware(message.created_at)).total_seconds())
        return slot.at
    line.limiter.sleep_until(slot)  # at most `ahead`
    # Out of the queue as it goes: the pump's next round reads the next text meanwhile.
    queues.remove(sender, message_id)
    call = _Call(sender, message_id, to, from_, body, message.lane, message.attempts)
    # The call runs on the pool's thread with this thread's context: the slot just granted
    # travels with it (a compatible endpoint is told it, see twilio_http).
    context = contextvars.copy_context()
    flight.start(
        target.to_hash,
        _calls.submit(context.run, _call, line, call, slot.due, message.created_at),
    )
    return True


@dataclass(frozen=True)
class _Call:
    """One text handed to the provider."""

    sender: str
    message_id: int
    to: str
    from_: str
    body: str
    lane: int
    attempts: int


def _call(line: LineServices, call: _Call, due: float, created_at: datetime) -> None:
    """Hand one claimed text to the provider and record the outcome (a pump's call thread)."""
    try:
        # The call itself holds no database lock.
        try:
            sid = line.transport.send_sms(
                to=call.to,
                from_=call.from_,
                body=call.body,
                status_callback=line.status_callback_url(),
            )
        except TransportError as exc:
            metrics.send_error(exc.code)
            _failed(line, call.message_id, exc)
            if not exc.permanent:
                # Out of the queue until its retry is due, so the pump does not hammer it.
                retries = line.settings.send_retry_seconds or (2,)
                after = retries[min(call.attempts, len(retries) - 1)]
                line.job_queue.send_later(call.message_id, after)
            return
        if time.monotonic() - due > line.limiter.jitter:
            # Later at the provider than the limiter's margin covers: hold the sender for the
            # text's segments from now, so the rate holds at the provider however late it was.
            line.limiter.settle(call.sender, segments.count(call.body))
        with line.db.engine.begin() as connection:
            connection.execute(
                _MARK_SENT, {"message_id": call.message_id, "sid": sid, "now": utcnow()}
            )
        metrics.TEXTS_SENT.inc()
        if call.lane == lanes.CHAT:
            _relay_waited(line, (utcnow() - _aware(created_at)).total_seconds())
    except Exception:
        # Left `sending`: the sweep asks the provider whether it went before sending again.
        log.exception("send of message %s failed after its claim", call.message_id)


def _chat_waits(line: LineServices, connection: Connection, message_id: int) -> None:
    """Check how long the chat text at the head of a busy sender's queue has waited."""
    with connection.begin():
        created = connection.scalar(
            select(OutboundMessage.created_at).where(OutboundMessage.id == message_id)
        )
    if created is not None:
        _relay_waited(line, (utcnow() - _aware(created)).total_seconds())


def _aware(moment: datetime) -> datetime:
    # The database hands back UTC; a naive value can only mean UTC here.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _relay_waited(line: LineServices, waited: float) -> None:
    """Alert the on-call coordinator once when chat texts wait too long for the carrier."""
    if waited < RELAY_CALM_SECONDS:
        line.redis.delete(RELAY_EPISODE_KEY)
        return
    if waited <= RELAY_LATE_SECONDS:
        return
    # One alert an episode: until chat texts go quickly again (or for an hour at most).
    if not line.redis.set(RELAY_EPISODE_KEY, "1", nx=True, ex=3600):
        return
    with line.db.session() as session:
        runtime = Context(line, session)
        runtime.alert(
            "relay_delay",
            None,
            f"relay_delay: chat texts wait {int(waited)} s for the carrier",
            key="relay_delay_alert",
            seconds=int(waited),
        )
    runtime.after_commit.dispatch(line)


def pace(line: LineServices, stopping: Event, idle: float = 1.0) -> None:
    """Take up each sender at its next slot, until `stopping` is set (a worker's thread).

    Every worker process runs one; the loops share the due senders through Redis, and each
    due sender is claimed by one of them. Sending happens here, not in an RQ worker, so the
    workers stay free for matching and inbound texts.
    """
    queues = line.lanes
    while not stopping.is_set():
        try:
            due = queues.next_due()
            if due is None:
                queues.wait_for_news(idle)
                continue
            sender, at = due
            left = at - queues.server_time()
            if left > NEWS_MARGIN:
                # Redis times a blocking wait out only every 100 ms (its `hz`): wake a little
                # early, or when a sender is newly due, and wait out the rest here.
                queues.wait_for_news(min(left - NEWS_MARGIN, idle))
                continue
            if left > 0:
                stopping.wait(left)
                continue
            if queues.take_due(sender):
                pump(line, sender)
        except Exception:  # one failed round must not stop the sender loop
            log.exception("sender loop round failed")
            stopping.wait(0.5)


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
