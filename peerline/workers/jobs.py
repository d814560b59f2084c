"""RQ jobs: each takes ids, re-fetches, tolerates a missing row and may run twice."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from threading import Event
from typing import Any

from redis.exceptions import RedisError

from peerline.service import calls, inbound, outbox, reminders, retention, runtime
from peerline.service.models import Conversation, utcnow
from peerline.workers.context import get_line

log = logging.getLogger(__name__)

# While jobs are queued, a fan-out's pending text is taken for lost only after this long.
BACKLOG_STALE_SECONDS = 600
# A drain scheduled this long ago that never started was lost with its job: schedule another.
DRAIN_STALE_SECONDS = 10


def send_message(outbound_id: int) -> None:
    """Send one outbound message (and any earlier ones to the same person)."""
    outbox.send(get_line(), outbound_id)


def send_messages(outbound_ids: list[int]) -> int:
    """Queue a fan-out's messages for their senders' budgets and send what goes now."""
    return outbox.send_many(get_line(), outbound_ids)


def pump_sender(sender: str) -> int:
    """Send a sender's most urgent waiting texts while its budget allows; return how many."""
    return outbox.pump(get_line(), sender)


def sender_loop(stopping: Event) -> None:
    """Take up each sender at its next slot until `stopping` is set (a worker's thread)."""
    outbox.pace(get_line(), stopping)


def drain_inbound(shard: int) -> int:
    """Step the inbound texts waiting in one shard, in order; return how many were stepped."""
    line = get_line()

    def handle(fields: dict[str, Any]) -> None:
        received = fields.pop("received_at", None)
        message = runtime.Inbound(
            **fields, received_at=datetime.fromisoformat(received) if received else None
        )
        if not runtime.receive_sms(line, message):
            log.info("duplicate webhook for message %s ignored", fields["message_sid"])

    return line.inbound.drain(shard, handle)


def match_queue() -> int:
    """Offer waiting conversations to free supporters; return how many offers were made."""
    return len(runtime.run_matching(get_line()))


def expire_offer(offer_id: int) -> None:
    """Time out an offer that nobody took."""
    runtime.expire_offer(get_line(), offer_id)


def queue_tick(conversation_id: int) -> None:
    """Send a due wait update or unmatched alert, then schedule the next tick."""
    with runtime.transaction(get_line()) as rt:
        if rt.queue_tick(conversation_id):
            conversation = rt.session.get(Conversation, conversation_id)
            assert conversation is not None
            rt.after_commit.ticks.append((conversation_id, rt._next_tick_delay(conversation)))


def chat_tick(conversation_id: int) -> None:
    """Nudge a supporter who has not answered, or close a chat gone quiet."""
    with runtime.transaction(get_line()) as rt:
        following = rt.chat_tick(conversation_id)
        if following is not None:
            rt.after_commit.chat_ticks.append((conversation_id, following))


def group_reminder(group_id: int, starts: int) -> int:
    """Text the group's subscribers before a meeting (once, however often it runs)."""
    with runtime.transaction(get_line()) as rt:
        return rt.group_reminder(group_id, datetime.fromtimestamp(starts, UTC))


def shift_reminder(supporter_id: int, start: int, end: int) -> bool:
    """Remind a supporter of their shift (once)."""
    with runtime.transaction(get_line()) as rt:
        return rt.shift_reminder(
            supporter_id, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        )


def checkin(conversation_id: int) -> bool:
    """Send a texter the check-in they asked for (once)."""
    with runtime.transaction(get_line()) as rt:
        return rt.checkin(conversation_id)


def notify_open(conversation_id: int) -> None:
    """Text a texter who asked to hear when the line opens."""
    with runtime.transaction(get_line()) as rt:
        rt.notify_open(conversation_id)


def sweep() -> dict[str, int]:
    """Rebuild work that Redis lost from the database: sends, offer time-outs, matching."""
    line = get_line()
    now = utcnow()
    replayed = runtime.replay_spooled(line)
    # Shards whose drain was lost (a worker killed, an enqueue refused) get one again.
    draining = sum(
        line.inbound.ensure_draining(shard, stale_after=DRAIN_STALE_SECONDS)
        for shard in range(inbound.SHARDS)
    )
    settings = line.settings
    # While jobs wait, a fan-out's texts are most likely among them (thousands take minutes),
    # and re-enqueueing each would only slow the workers down; one whose job was really lost
    # is still found, later, or once the queue is empty. Every other text: after the usual.
    fanout_after = timedelta(seconds=BACKLOG_STALE_SECONDS) if line.job_queue.backlog() else None
    with line.db.session() as session:
        stale = outbox.stale_pending(
            session,
            timedelta(seconds=settings.sweep_stale_seconds),
            now,
            settings.send_lock_seconds,
            fanout_after,
        )
        overdue = runtime.overdue_offers(session, now)
    try:
        outbox.requeue(line, stale)
    except RedisError as exc:
        log.warning("unsent texts not ranked again this time: %s", exc)
    for offer_id in overdue:
        runtime.expire_offer(line, offer_id)
    ticked = runtime.catch_up_timers(line, now)
    with line.db.session() as session:
        purged = retention.purge(session, now, line.settings.retention_days)
    # Texts kept aside in Redis are transcripts too: they go when the period is over.
    try:
        purged += line.inbound.purge_failed(now - timedelta(days=line.settings.retention_days))
    except RedisError as exc:
        log.warning("texts kept aside not purged this time: %s", exc)
    calls.catch_up(line, now)
    # Reminders due soon get their jobs; ones Redis lost are made again, never twice.
    planned = reminders.ensure_scheduled(line, reminders.plan(line, now))
    line.job_queue.match()
    return {
        "replayed": replayed,
        "draining": draining,
        "resent": len(stale),
        "expired": len(overdue),
        "timers": ticked,
        "purged": purged,
        "planned": planned,
    }
