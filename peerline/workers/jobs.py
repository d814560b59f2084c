"""RQ jobs: each takes ids, re-fetches, tolerates a missing row and may run twice."""

from __future__ import annotations

import logging
from datetime import timedelta

from peerline.service import outbox, runtime
from peerline.service.models import utcnow
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


def sweep() -> dict[str, int]:
    """Rebuild work that Redis lost from the database: sends, offer time-outs, matching."""
    line = get_line()
    now = utcnow()
    with line.db.session() as session:
        stale = outbox.stale_pending(session, timedelta(seconds=30), now)
        overdue = runtime.overdue_offers(session, now)
    for outbound_id in stale:
        line.tasks.send(outbound_id)
    for offer_id in overdue:
        runtime.expire_offer(line, offer_id)
    line.tasks.match()
    return {"resent": len(stale), "expired": len(overdue)}
