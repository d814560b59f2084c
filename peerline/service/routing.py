"""Match waiting texters with free supporters: oldest first, one offer at a time."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
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
    if not relay_numbers:
        return 1
    return max(1, min(supporter.capacity, len(relay_numbers)))


def load_of(session: Session, supporter_id: int) -> int:
    """Return a supporter's active chats plus pending offers."""
    chats = session.scalar(
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.supporter_id == supporter_id, Conversation.state == ACTIVE)
    )
    offers = session.scalar(
        select(func.count())
        .select_from(Offer)
        .where(Offer.supporter_id == supporter_id, Offer.status == PENDING)
    )
    return int(chats or 0) + int(offers or 0)


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


def _waiting(session: Session, limit: int, locking: bool) -> list[Conversation]:
    has_offer = (
        select(Offer.id)
        .where(Offer.conversation_id == Conversation.id, Offer.status == PENDING)
        .exists()
    )
    query = (
        select(Conversation)
        .where(Conversation.state == QUEUED, ~has_offer)
        .order_by(Conversation.priority.desc(), Conversation.queued_at, Conversation.id)
        .limit(limit)
    )
    if locking:
        # Two matchers never look at the same conversation; each takes the next one free.
        query = query.with_for_update(skip_locked=True, of=Conversation)
    return list(session.scalars(query))


def _candidates(
    session: Session,
    conversation: Conversation,
    on_shift: Sequence[int],
    relay_numbers: Sequence[str],
) -> list[Supporter]:
    if not on_shift:
        return []
    offered_before = select(Offer.supporter_id).where(Offer.conversation_id == conversation.id)
    supporters = session.scalars(
        select(Supporter).where(
            Supporter.id.in_(on_shift),
            Supporter.active.is_(True),
            Supporter.away.is_(False),
            Supporter.opted_out.is_(False),
            Supporter.id.not_in(offered_before),
        )
    ).all()
    free = [s for s in supporters if load_of(session, s.id) < sms_capacity(s, relay_numbers)]

    def rank(s: Supporter) -> tuple[int, float, int]:
        speaks = conversation.language in s.language_list
        idle_since = s.last_chat_ended_at.timestamp() if s.last_chat_ended_at else 0.0
        return (0 if speaks else 1, idle_since, s.id)

    return sorted(free, key=rank)


def match(
    session: Session,
    rotas: Rotas,
    now: datetime,
    *,
    offer_timeout: int,
    relay_numbers: Sequence[str] = (),
    locking: bool = False,
    limit: int = 50,
) -> list[NewOffer]:
    """Offer waiting conversations, oldest first, to free supporters on shift."""
    on_shift = rotas.on_shift(now)
    made: list[NewOffer] = []
    for conversation in _waiting(session, limit, locking):
        for supporter in _candidates(session, conversation, on_shift, relay_numbers):
            if locking:
                # Lock the supporter and count again: another matcher may have just offered.
                locked = session.scalar(
                    select(Supporter)
                    .where(Supporter.id == supporter.id)
                    .with_for_update(skip_locked=True)
                )
                if locked is None or load_of(session, supporter.id) >= sms_capacity(
                    supporter, relay_numbers
                ):
                    continue
            offer = Offer(
                conversation_id=conversation.id,
                supporter_id=supporter.id,
                created_at=now,
                expires_at=now + timedelta(seconds=offer_timeout),
            )
            session.add(offer)
            session.flush()
            made.append(NewOffer(offer.id, conversation.id, supporter.id))
            break
    return made
