"""The voice line as the console sees it: calls under way and calls answered.

The voice line keeps its calls in tables of their own (`voice/models.py`); a database migrated
before they existed simply has no calls to show, so each reader checks for the table first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, selectinload

from peerline.service.voice.models import (
    BRIDGING,
    CALLING_SUPPORTER,
    CONNECTED,
    DIALING,
    ENDED,
    FAILED,
    INBOUND,
    MENU,
    OFFERED,
    PLACING,
    RINGING,
    TRANSFERRED,
    VOICEMAIL,
    Call,
)

# Every state a call under way can be in (all but ENDED and FAILED), in words.
STATE_LABELS = {
    MENU: "at the menu",
    OFFERED: "hearing the crisis offer",
    RINGING: "ringing supporters",
    CONNECTED: "connected",
    VOICEMAIL: "leaving a message",
    TRANSFERRED: "sent to the crisis line",
    PLACING: "call-back being placed",
    DIALING: "call-back dialling",
    CALLING_SUPPORTER: "call-back ringing the supporter",
    BRIDGING: "call-back ringing the caller",
}


def voice_tables(session: Session) -> bool:
    """Say whether this database has the voice line's tables."""
    return bool(inspect(session.connection()).has_table(Call.__tablename__))


@dataclass(frozen=True)
class CallRow:
    """A call under way."""

    call_id: int
    kind: str
    state: str
    supporter: str
    age: float  # seconds since it connected, or since it came in


def calls_under_way(session: Session, moment: datetime) -> list[CallRow]:
    """Return the calls that have not ended, oldest first."""
    if not voice_tables(session):
        return []
    calls = session.scalars(
        select(Call)
        .where(Call.ended_at.is_(None), Call.state.not_in((ENDED, FAILED)))
        .options(selectinload(Call.supporter))
        .order_by(Call.id)
    ).all()
    return [
        CallRow(
            c.id,
            "call" if c.direction == INBOUND else "call-back",
            STATE_LABELS.get(c.state, c.state.replace("_", " ")),
            c.supporter.name if c.supporter else "",
            (moment - (c.connected_at or c.created_at)).total_seconds(),
        )
        for c in calls
    ]


def inbound_calls(session: Session, start: datetime, end: datetime) -> list[tuple[datetime, bool]]:
    """Return (started, answered) for each call to the line in [start, end)."""
    if not voice_tables(session):
        return []
    rows = session.execute(
        select(Call.created_at, Call.connected_at).where(
            Call.direction == INBOUND, Call.created_at >= start, Call.created_at < end
        )
    )
    return [(created, connected is not None) for created, connected in rows]
