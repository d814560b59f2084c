"""RQ jobs: each takes ids, re-fetches, tolerates a missing row and may run twice."""

from __future__ import annotations

import logging
from datetime import timedelta

from peerline.service import outbox, retention, runtime
from peerline.service.models import Conversation, utcnow
from peerline.workers.context import get_line

log = logging.getLogger(__name__)


def send_message(outbound_id: int) -> None:
    """Send one outbound message (and any earlier ones to the same person)."""
    outbox.send(get_line(), outbound_id)


def match_queue() -> int:
    """Offer waiting conversations to free supporters; return how many offers were made."""
    return len(runtime.run_matching(get_line()))


def expire_offer(offer_id: int) -> None:
    """Time out an offer that nobody took."""
    runtime.expire_offer(get_line(), offer_id)


def queue_tick(conversation_id: int) -> None:
    """Send a due wait update or unmatched alert, then schedule the next tick."""
    line = get_line()
    with line.db.session() as session:
        rt = runtime.Runtime(line, session)
        waiting = rt.queue_tick(conversation_id)
        if waiting:
            conversation = session.get(Conversation, conversation_id)
            assert conversation is not None
            rt.unit.ticks.append((conversation_id, rt._next_tick_delay(conversation)))
    rt.unit.dispatch(line)


def notify_open(conversation_id: int) -> None:
    """Text a texter who asked to hear when the line opens."""
    line = get_line()
    with line.db.session() as session:
        rt = runtime.Runtime(line, session)
        rt.notify_open(conversation_id)
    rt.unit.dispatch(line)


def sweep() -> dict[str, int]:
    """Rebuild work that Redis lost from the database: sends, offer time-outs, matching."""
    line = get_line()
    now = utcnow()
    replayed = runtime.replay_spooled(line)
    with line.db.session() as session:
        settings = line.settings
        stale = outbox.stale_pending(
            session,
            timedelta(seconds=settings.sweep_stale_seconds),
            now,
            settings.send_lock_seconds,
        )
        overdue = runtime.overdue_offers(session, now)
    for outbound_id in stale:
        line.tasks.send(outbound_id)
    for offer_id in overdue:
        runtime.expire_offer(line, offer_id)
    ticked = runtime.catch_up_timers(line, now)
    with line.db.session() as session:
        purged = retention.purge(session, now, line.settings.retention_days)
    line.tasks.match()
    return {
        "replayed": replayed,
        "resent": len(stale),
        "expired": len(overdue),
        "timers": ticked,
        "purged": purged,
    }
