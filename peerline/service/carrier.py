"""What waits for the carrier: texts not yet sent, by lane, and the time to clear them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from peerline.service import lanes
from peerline.service.models import OutboundMessage
from peerline.service.outbox import UNSENT, sender_for
from peerline.service.services import LineServices


@dataclass(frozen=True)
class LaneBacklog:
    """One lane's texts waiting for the carrier, and when the last of them should go."""

    lane: str
    texts: int
    segments: int
    # Seconds until this lane and every lane before it have gone, at the senders' rates
    # (the slowest sender's figure): later lanes wait for earlier ones.
    clear_seconds: float


def carrier_backlog(session: Session, line: LineServices) -> list[LaneBacklog]:
    """Return every lane's waiting texts and the time to clear them, most urgent lane first."""
    rows = session.execute(
        select(
            OutboundMessage.from_number,
            OutboundMessage.lane,
            func.count(),
            func.coalesce(func.sum(OutboundMessage.segments), 0),
        )
        .where(OutboundMessage.status.in_(UNSENT))
        .group_by(OutboundMessage.from_number, OutboundMessage.lane)
    ).all()
    texts: dict[int, int] = defaultdict(int)
    sizes: dict[int, int] = defaultdict(int)
    by_sender: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for from_number, lane, count, size in rows:
        texts[lane] += int(count)
        sizes[lane] += int(size)
        by_sender[sender_for(line, from_number)][lane] += int(size)
    clear: dict[int, float] = defaultdict(float)
    limiter = line.limiter
    for sender, per_lane in by_sender.items():
        # The limiter's long-run pace: its rate less the margin it keeps.
        pace = limiter.rate_of(sender) / (1 + limiter.jitter)
        ahead = 0
        for lane in range(len(lanes.NAMES)):
            ahead += per_lane.get(lane, 0)
            if per_lane.get(lane):
                clear[lane] = max(clear[lane], ahead / pace)
    return [
        LaneBacklog(name, texts[lane], sizes[lane], clear[lane])
        for lane, name in enumerate(lanes.NAMES)
    ]
