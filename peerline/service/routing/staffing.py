"""Staffing: who can take a chat now, as the texters and the dashboard are told."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.orm import Session

from peerline.service.availability import Rotas
from peerline.service.call_states import STALE_AFTER
from peerline.service.models import (
    ACTIVE,
    DECLINED,
    EXPIRED,
    PENDING,
    Conversation,
    Offer,
    Supporter,
)
from peerline.service.routing.matching import (
    _on_a_call,
)
from peerline.service.routing.queue import (
    Policy,
    _count_of_supporter,
    sms_capacity_for,
)

log = logging.getLogger(__name__)

# -- who can take a chat now, as the texters and the dashboard are told ----------------------

# How many offer time-outs a missed offer says someone is not answering (6 minutes by default).
# A miss is news of a supporter only until an offer could have asked them again: with texters
# waiting they are offered again at once (and then hold an offer), so a miss with no offer since
# for a few time-outs says nothing of now. (One miss hours ago made a one-person shift tell
# every new texter "nobody is available".) A few, not one: someone who missed an offer and
# whose texter then left is still likely away from their phone a few minutes on.
MISSES_RECENT = 3


@dataclass(frozen=True)
class OnShift:
    """A supporter on shift (or in a chat), and whether they can take a chat now."""

    id: int
    chats: int
    offers: int
    capacity: int  # sms_capacity
    chats_this_shift: int
    on_shift: bool
    away: bool
    opted_out: bool
    takes_sms: bool
    on_a_call: bool
    shift_chat_cap: int
    # Resting after a chat flagged for safety (until the pause ends or they text #ready).
    paused: bool = False
    paused_until: datetime | None = None
    # Offers missed in a row lately (auto-away counts them): their last offer went unanswered
    # within MISSES_RECENT offer time-outs. Older misses are not counted here.
    missed: int = 0

    @property
    def answering(self) -> bool:
        """Say whether they answer offers, as far as the line can tell: not when their last
        offers went unanswered lately, unless a chat of theirs is going or they hold an offer
        now (the line is asking them: a texter told "nobody is available" was being offered to
        them)."""
        return self.missed == 0 or self.chats > 0 or self.offers > 0

    @property
    def at_cap(self) -> bool:
        """Say whether they have had the per-shift number of chats."""
        return self.chats_this_shift >= self.shift_chat_cap

    @property
    def taking_chats(self) -> bool:
        """Say whether they take chats this shift at all: on shift, not away, opted out of
        texts, on calls only or at their per-shift cap (busy in a chat still counts)."""
        return (
            self.on_shift
            and not self.away
            and not self.opted_out
            and self.takes_sms
            and not self.at_cap
        )

    @property
    def has_room(self) -> bool:
        """Say whether they take chats and have room for one now, resting or not."""
        return self.taking_chats and not self.on_a_call and self.chats + self.offers < self.capacity

    @property
    def free(self) -> bool:
        """Say whether matching would offer them a chat now."""
        return self.has_room and not self.paused


@dataclass(frozen=True)
class Staffing:
    """Who is on shift now and who of them can take a chat: what matching would find."""

    supporters: dict[int, OnShift]

    @property
    def on_shift(self) -> int:
        """Return how many supporters are on shift."""
        return sum(s.on_shift for s in self.supporters.values())

    @property
    def free(self) -> int:
        """Return how many could take a chat now."""
        return sum(s.free for s in self.supporters.values())

    @property
    def taking_chats(self) -> int:
        """Return how many on shift take chats (free now or once their chat ends)."""
        return sum(s.taking_chats for s in self.supporters.values())

    @property
    def away(self) -> int:
        """Return how many on shift are away."""
        return sum(s.on_shift and s.away for s in self.supporters.values())

    @property
    def ready(self) -> int:
        """Return how many could take a chat now and answer offers (not missing them)."""
        return sum(s.free and s.answering for s in self.supporters.values())

    @property
    def answering(self) -> int:
        """Return how many on shift take chats and answer offers: whom a texter can count on,
        now or once a chat or a rest ends (not those whose last offers went unanswered)."""
        return sum(s.taking_chats and s.answering for s in self.supporters.values())

    def for_texter_held_by(self, held: dict[int, datetime]) -> Staffing:
        """Return the staffing as a texter whose #pass holds sees it: each supporter in `held`
        (id -> when their hold of this texter ends) takes them only once it ends, as if
        resting until then."""
        supporters = dict(self.supporters)
        for sid, until in held.items():
            s = supporters.get(sid)
            if s is None:
                continue
            end = max(until, s.paused_until) if s.paused and s.paused_until else until
            supporters[sid] = replace(s, paused=True, paused_until=end)
        return Staffing(supporters)

    def rests(self, now: datetime) -> list[float]:
        """Return the minutes left, soonest first, of each supporter resting after a crisis
        chat (or whose #pass of this texter holds, `for_texter_held_by`) who is otherwise free
        to take a chat and answers offers."""
        return sorted(
            (s.paused_until - now).total_seconds() / 60
            for s in self.supporters.values()
            if s.paused and s.paused_until is not None and s.has_room and s.answering
        )


def offered_until(session: Session, conversation_id: int, now: datetime) -> datetime | None:
    """Return when the last of the pending offers of a waiting conversation times out, if a
    supporter is being asked to take it now."""
    until = session.scalar(
        select(func.max(Offer.expires_at)).where(
            Offer.conversation_id == conversation_id, Offer.status == PENDING
        )
    )
    return until if until is not None and until > now else None


def holds_of(
    session: Session,
    conversation_id: int,
    crisis_at: datetime | None,
    now: datetime,
    hold: timedelta,
) -> dict[int, datetime]:
    """Return who let the waiting conversation go within `hold` (#pass, #away, a chat handed
    back), each with when their hold ends: as matching reads it (`_Waiting.held_by`), none
    whose #pass came before crisis words raised the texter (they are asked at once)."""
    held: dict[int, datetime] = {}
    for sid, at in session.execute(
        select(Offer.supporter_id, func.max(Offer.resolved_at))
        .where(
            Offer.conversation_id == conversation_id,
            Offer.status == DECLINED,
            Offer.resolved_at > now - hold,
        )
        .group_by(Offer.supporter_id)
    ):
        if at is not None and not (crisis_at is not None and crisis_at > at):
            held[sid] = at + hold
    return held


def staffing(
    session: Session,
    rotas: Rotas,
    now: datetime,
    policy: Policy,
    also: Iterable[int] = (),
) -> Staffing:
    """Return the supporters on shift (and those in `also`, such as anyone still in a chat),
    each with whether matching would offer them a chat now.

    The same rules as a matching round (`_pool`, `_has_room`), read for everyone on shift
    rather than only those with room: for the wait texters are told, the dashboard and the
    coordinator's alert, never for matching itself.
    """

    on = set(rotas.on_shift(now))
    wanted = sorted(on | set(also))
    if not wanted:
        return Staffing({})
    chats = _count_of_supporter(Conversation.supporter_id, Conversation.state == ACTIVE)
    offers = _count_of_supporter(Offer.supporter_id, Offer.status == PENDING)
    last_missed = (
        select(func.max(Offer.resolved_at))
        .where(Offer.supporter_id == Supporter.id, Offer.status == EXPIRED)
        .scalar_subquery()
    )
    missed_since = now - timedelta(seconds=policy.offer_timeout * MISSES_RECENT)
    rows = session.execute(
        select(
            Supporter.id,
            Supporter.capacity,
            Supporter.away,
            Supporter.opted_out,
            Supporter.takes_sms,
            chats,
            offers,
            _on_a_call(),
            Supporter.paused_until,
            Supporter.expired_in_row,
            last_missed,
        ).where(Supporter.id.in_(wanted), Supporter.active.is_(True)),
        {"calls_since": now - STALE_AFTER},
    ).all()
    this_shift: Counter[int] = Counter()
    starts = {sid: rotas.shift_start(sid, now) for sid in on if sid in rotas.by_supporter}
    for sid, matched_at in session.execute(
        select(Conversation.supporter_id, Conversation.matched_at).where(
            Conversation.supporter_id.in_([sid for sid, start in starts.items() if start]),
            Conversation.matched_at >= now - timedelta(days=2),
        )
    ):
        start = starts.get(sid) if sid is not None else None
        if sid is not None and start is not None and matched_at is not None and matched_at >= start:
            this_shift[sid] += 1
    relay_numbers = policy.relay_numbers
    return Staffing(
        {
            sid: OnShift(
                sid,
                int(n_chats or 0),
                int(n_offers or 0),
                sms_capacity_for(capacity, relay_numbers),
                this_shift[sid],
                sid in on,
                bool(away),
                bool(opted_out),
                bool(takes_sms),
                bool(on_a_call),
                policy.shift_chat_cap,
                paused_until is not None and paused_until > now,
                paused_until,
                int(missed or 0) if missed_at is not None and missed_at > missed_since else 0,
            )
            for (
                sid,
                capacity,
                away,
                opted_out,
                takes_sms,
                n_chats,
                n_offers,
                on_a_call,
                paused_until,
                missed,
                missed_at,
            ) in rows
        }
    )
