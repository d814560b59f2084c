"""What the senders can carry: live chats at a stated pace, against what the rota plans.

The carrier's rate is the line's physical limit. In a chat, the texter's words reach the
supporter from the supporter's side of the line (a relay number, or the line number when there
are none) and the supporter's words reach the texter from the line number. So at one text each
way every `pace` seconds, a chat costs `segments / pace` segments a second on each side, and the
side with the smaller budget decides how many chats the line can carry. A share of each budget
(`headroom`) is kept for everything else the line sends: welcomes, offers, places in line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerline.service.availability import Rotas
from peerline.service.models import Supporter
from peerline.service.ratelimit import DEFAULT_RATES, SERVICE, sender_type
from peerline.service.routing.queue import sms_capacity_for
from peerline.service.settings import Settings

# The rota is read in steps this long: shifts start and end on the quarter hour or coarser.
STEP = timedelta(minutes=15)


@dataclass(frozen=True)
class Sender:
    """One number the line sends from, with its kind and its rate in segments a second."""

    number: str
    kind: str
    rate: float


@dataclass(frozen=True)
class Budget:
    """The senders on each side of a chat, and how many chats they carry at a pace."""

    to_texters: tuple[Sender, ...]
    to_supporters: tuple[Sender, ...]
    shared: bool  # one number carries both sides (no relay pool)

    def chats(self, pace: float, segments: float, headroom: float) -> int:
        """Return how many live chats fit, at one text of `segments` each way per `pace` s."""
        per_side = segments / pace  # segments a second one chat costs on each side
        usable = 1.0 - headroom
        texter_side = sum(s.rate for s in self.to_texters) * usable
        if self.shared:
            return int(texter_side / (2 * per_side))
        supporter_side = sum(s.rate for s in self.to_supporters) * usable
        return int(min(texter_side, supporter_side) / per_side)


@dataclass(frozen=True)
class Peak:
    """The most chats the rota plans at once, and when."""

    chats: int
    supporters: int
    at: datetime | None


def budget(settings: Settings) -> Budget:
    """Return the senders the settings name, each at its configured or default rate."""
    rates = {**DEFAULT_RATES, **dict(settings.send_rates)}
    if settings.service_rate is not None:
        rates[SERVICE] = settings.service_rate

    def sender(number: str) -> Sender:
        kind = sender_type(number)
        return Sender(number, kind, rates[kind])

    # With a Messaging Service, the line's own texts go through it at its combined rate.
    service = settings.twilio_messaging_service_sid
    line = (
        (Sender(service, SERVICE, rates[SERVICE]),)
        if service
        else (sender(settings.twilio_phone_number),)
    )
    relays = tuple(sender(n) for n in settings.twilio_relay_numbers)
    return Budget(line, relays or line, shared=not relays)


def planned_peak(
    session: Session, rotas: Rotas, relay_numbers: Sequence[str], start: datetime, days: int
) -> Peak:
    """Return the most chats the rota's supporters can hold at once over the coming days."""
    capacity = {
        s.id: sms_capacity_for(s.capacity, relay_numbers)
        for s in session.scalars(select(Supporter).where(Supporter.active.is_(True)))
    }
    best = Peak(0, 0, None)
    # Steps in UTC: a day when the clocks change has 23 or 25 local hours, and each is read.
    at, end = start, start + timedelta(days=days)
    while at < end:
        on = [sid for sid in rotas.on_shift(at) if sid in capacity]
        chats = sum(capacity[sid] for sid in on)
        if chats > best.chats:
            best = Peak(chats, len(on), at)
        at += STEP
    return best
