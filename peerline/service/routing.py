"""Match waiting texters with free supporters: crisis first, then oldest; ranked fairly."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, any_, bindparam, case, func, literal, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from peerline.service.availability import Rotas
from peerline.service.models import (
    ACTIVE,
    PENDING,
    QUEUED,
    Conversation,
    Offer,
    Supporter,
)

log = logging.getLogger(__name__)


def sms_capacity(supporter: Supporter, relay_numbers: Sequence[str]) -> int:
    """Return how many SMS chats a supporter's phone can keep apart."""
    # With one line number, a phone can only tell chats apart by who texts it: one at a time.
    # A pool of relay numbers gives each chat its own thread on the supporter's phone.
    if not relay_numbers:
        return 1
    return max(1, min(supporter.capacity, len(relay_numbers)))


def _chats_of(supporter_id: int) -> Any:
    """Count a supporter's active chats (a scalar subquery)."""
    return (
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.supporter_id == supporter_id, Conversation.state == ACTIVE)
        .scalar_subquery()
    )


def _offers_to(supporter_id: int) -> Any:
    """Count a supporter's pending offers (a scalar subquery)."""
    return (
        select(func.count())
        .select_from(Offer)
        .where(Offer.supporter_id == supporter_id, Offer.status == PENDING)
        .scalar_subquery()
    )


def load_of(session: Session, supporter_id: int) -> int:
    """Return a supporter's active chats plus pending offers."""
    # One round trip: this runs under the supporter's row lock, once per offer and #take.
    return int(session.scalar(select(_chats_of(supporter_id) + _offers_to(supporter_id))) or 0)


def loads(session: Session, supporter_ids: Sequence[int]) -> Counter[int]:
    """Return active chats plus pending offers for each of several supporters."""
    counts: Counter[int] = Counter()
    if not supporter_ids:
        return counts
    chats = session.execute(
        select(Conversation.supporter_id, func.count())
        .where(Conversation.supporter_id.in_(supporter_ids), Conversation.state == ACTIVE)
        .group_by(Conversation.supporter_id)
    )
    offers = session.execute(
        select(Offer.supporter_id, func.count())
        .where(Offer.supporter_id.in_(supporter_ids), Offer.status == PENDING)
        .group_by(Offer.supporter_id)
    )
    for supporter_id, count in [*chats, *offers]:
        if supporter_id is not None:
            counts[supporter_id] += count
    return counts


def busy_numbers(session: Session, supporter_id: int) -> set[str]:
    """Return the relay numbers a supporter's chats and offers already use."""
    chats = session.scalars(
        select(Conversation.relay_number).where(
            Conversation.supporter_id == supporter_id, Conversation.state == ACTIVE
        )
    )
    offers = session.scalars(
        select(Offer.relay_number).where(
            Offer.supporter_id == supporter_id, Offer.status == PENDING
        )
    )
    return {n for n in [*chats, *offers] if n}


def free_relay_number(
    session: Session, supporter_id: int, relay_numbers: Sequence[str]
) -> str | None:
    """Return a relay number this supporter is not using, or None without a pool."""
    busy = busy_numbers(session, supporter_id)
    return next((n for n in relay_numbers if n not in busy), None)


def queue_position(session: Session, conversation: Conversation) -> int:
    """Return the conversation's place in the queue, counting from 1."""
    queued_at = conversation.queued_at
    if queued_at is None:
        return 1
    ahead = session.scalar(
        select(func.count())
        .select_from(Conversation)
        .where(
            Conversation.state == QUEUED,
            Conversation.id != conversation.id,
            or_(
                Conversation.priority > conversation.priority,
                (Conversation.priority == conversation.priority)
                & (Conversation.queued_at < queued_at),
            ),
        )
    )
    return int(ahead or 0) + 1


def queue_length(session: Session) -> int:
    """Return how many conversations are waiting."""
    return int(
        session.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.state == QUEUED)
        )
        or 0
    )


@dataclass(frozen=True)
class NewOffer:
    """An offer just made, for the caller to announce and time out."""

    offer_id: int
    conversation_id: int
    supporter_id: int
    relay_number: str | None
    language_matched: bool


@dataclass(frozen=True)
class Policy:
    """How offers are made: strategy, time-out, relay pool and the per-shift cap."""

    offer_timeout: int
    relay_numbers: Sequence[str] = ()
    strategy: str = "single"
    fanout: int = 3
    shift_chat_cap: int = 8


def _waiting(session: Session, limit: int, locking: bool) -> list[Conversation]:
    """Return up to `limit` waiting conversations without a pending offer, crisis first then
    oldest (locked, skipping those another matcher holds, when `locking`)."""
    has_offer = (
        select(Offer.id)
        .where(Offer.conversation_id == Conversation.id, Offer.status == PENDING)
        .exists()
    )
    queued = Conversation.state == QUEUED
    found: list[Conversation] = []
    # One priority level at a time, highest first: within a level the queue index (state,
    # priority, queued_at) hands rows over oldest first, so a long queue is never sorted whole
    # (ORDER BY priority DESC, queued_at would run against the index's direction and sort it).
    level: Any = select(func.max(Conversation.priority)).where(queued).scalar_subquery()
    while len(found) < limit:
        query = (
            select(Conversation)
            .where(queued, Conversation.priority == level, ~has_offer)
            .order_by(Conversation.queued_at, Conversation.id)
            .limit(limit - len(found))
        )
        if locking:
            # Two matchers never look at the same conversation; each takes the next one free.
            query = query.with_for_update(skip_locked=True, of=Conversation)
        rows = list(session.scalars(query))
        found += rows
        if len(found) == limit:
            break
        this_level = rows[-1].priority if rows else session.scalar(select(level))
        if this_level is None:
            break  # nobody waits at all
        level = (
            select(func.max(Conversation.priority))
            .where(queued, Conversation.priority < this_level)
            .scalar_subquery()
        )
    return found


@dataclass
class _Pool:
    """The supporters who could take a chat in this round, with what ranks them."""

    supporters: dict[int, Supporter]
    load: Counter[int]
    chats_this_shift: Counter[int]


def _capacity_sql(relay_numbers: Sequence[str]) -> Any:
    """Return `sms_capacity` as an SQL expression over the supporters table."""
    if not relay_numbers:
        return literal(1)
    pool = len(relay_numbers)
    return case(
        (Supporter.capacity < 1, 1), (Supporter.capacity > pool, pool), else_=Supporter.capacity
    )


def _one_of(session: Session, column: Any, ids: Sequence[int]) -> Any:
    """Return `column IN ids`: on PostgreSQL as one array parameter, not one per id."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("ids", list(ids), type_=postgresql.ARRAY(Integer)))
    return column.in_(ids)


def _pool(session: Session, rotas: Rotas, now: datetime, policy: Policy) -> _Pool:
    on_shift = rotas.on_shift(now)
    if not on_shift:
        return _Pool({}, Counter(), Counter())
    # Only supporters with room for another chat can be ranked at all, so the database leaves
    # out the others (on a busy line, nearly everyone). Active chats are counted in one pass
    # (the queue index leads with state); pending offers, which only the (supporter, status)
    # index finds, are looked up just for supporters whose chats leave room.
    chats = (
        select(Conversation.supporter_id, func.count().label("n"))
        .where(Conversation.state == ACTIVE)
        .group_by(Conversation.supporter_id)
        .subquery()
    )
    active_chats = func.coalesce(chats.c.n, 0)
    pending_offers = (
        select(func.count())
        .select_from(Offer)
        .where(Offer.supporter_id == Supporter.id, Offer.status == PENDING)
        .correlate(Supporter)
        .scalar_subquery()
    )
    capacity = _capacity_sql(policy.relay_numbers)
    query = (
        select(Supporter, active_chats, pending_offers)
        .outerjoin(chats, chats.c.supporter_id == Supporter.id)
        .where(
            Supporter.active.is_(True),
            Supporter.away.is_(False),
            Supporter.opted_out.is_(False),
            Supporter.takes_sms.is_(True),
            active_chats < capacity,
            active_chats + pending_offers < capacity,
        )
    )
    # Name whichever list is shorter, those on shift or those off; Python checks the rest.
    off_shift = rotas.off_shift(now)
    if len(on_shift) <= len(off_shift):
        query = query.where(_one_of(session, Supporter.id, on_shift))
    elif off_shift:
        query = query.where(~_one_of(session, Supporter.id, off_shift))
    from peerline.service.calls import supporters_on_calls

    # Someone on a phone call with a caller is not offered a text chat meanwhile.
    wanted = set(on_shift) - supporters_on_calls(session, now)
    supporters: dict[int, Supporter] = {}
    load: Counter[int] = Counter()
    for supporter, chat_count, offer_count in session.execute(query):
        if supporter.id not in wanted:
            continue
        supporters[supporter.id] = supporter
        if chat_count + offer_count:
            load[supporter.id] = chat_count + offer_count
    if not supporters:
        return _Pool({}, Counter(), Counter())
    recent = session.execute(
        select(Conversation.supporter_id, Conversation.matched_at).where(
            _one_of(session, Conversation.supporter_id, list(supporters)),
            Conversation.matched_at >= now - timedelta(days=2),
        )
    ).all()
    starts: dict[int, datetime | None] = {}
    this_shift: Counter[int] = Counter()
    for sid, matched in recent:
        if not sid or not matched:
            continue
        if sid not in starts:
            # Where the supporter's stretch on shift began: only for those matched lately.
            starts[sid] = rotas.shift_start(sid, now)
        start = starts[sid]
        if start and matched >= start:
            this_shift[sid] += 1
    return _Pool(supporters, load, this_shift)


def _has_room(supporter: Supporter, pool: _Pool, policy: Policy) -> bool:
    return (
        pool.load[supporter.id] < sms_capacity(supporter, policy.relay_numbers)
        and pool.chats_this_shift[supporter.id] < policy.shift_chat_cap
    )


def _ranked(
    session: Session,
    conversation: Conversation,
    pool: _Pool,
    policy: Policy,
    candidates: Sequence[Supporter],
) -> list[Supporter]:
    offered_before = set(
        session.scalars(select(Offer.supporter_id).where(Offer.conversation_id == conversation.id))
    )
    free = [s for s in candidates if s.id not in offered_before and _has_room(s, pool, policy)]

    def rank(s: Supporter) -> tuple[int, int, int, float, int]:
        speaks = conversation.language in s.language_list
        preferred = conversation.preferred_supporter_id == s.id
        idle_since = s.last_chat_ended_at.timestamp() if s.last_chat_ended_at else 0.0
        # Language, then continuity, then fairness: fewest chats this shift, longest idle.
        return (
            0 if speaks else 1,
            0 if preferred else 1,
            pool.chats_this_shift[s.id],
            idle_since,
            s.id,
        )

    return sorted(free, key=rank)


def match(
    session: Session,
    rotas: Rotas,
    now: datetime,
    policy: Policy,
    *,
    locking: bool = False,
    limit: int = 50,
) -> list[NewOffer]:
    """Offer waiting conversations, crisis first then oldest, to free supporters on shift."""
    pool = _pool(session, rotas, now, policy)
    if not pool.supporters:
        return []
    per_conversation = policy.fanout if policy.strategy == "several" else 1
    made: list[NewOffer] = []
    # Who still has room; once nobody has, the rest of the queue can get no offer this round.
    candidates = [s for s in pool.supporters.values() if _has_room(s, pool, policy)]
    for conversation in _waiting(session, limit, locking):
        candidates = [s for s in candidates if _has_room(s, pool, policy)]
        if not candidates:
            break
        ranked = _ranked(session, conversation, pool, policy, candidates)
        offered = 0
        for supporter in ranked:
            if offered == per_conversation:
                break
            if locking:
                # Lock the supporter and count again: another matcher may have just offered.
                locked = session.scalar(
                    select(Supporter.id)
                    .where(Supporter.id == supporter.id)
                    .with_for_update(skip_locked=True)
                )
                if locked is None or load_of(session, supporter.id) >= sms_capacity(
                    supporter, policy.relay_numbers
                ):
                    continue
            relay = None
            if policy.relay_numbers:
                relay = free_relay_number(session, supporter.id, policy.relay_numbers)
                if relay is None:
                    continue
            offer = Offer(
                conversation_id=conversation.id,
                supporter_id=supporter.id,
                created_at=now,
                expires_at=now + timedelta(seconds=policy.offer_timeout),
                relay_number=relay,
            )
            session.add(offer)
            session.flush()
            pool.load[supporter.id] += 1
            speaks = conversation.language in supporter.language_list
            made.append(NewOffer(offer.id, conversation.id, supporter.id, relay, speaks))
            offered += 1
    return made
