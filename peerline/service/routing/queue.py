"""The queue: who waits and in what order, and what each supporter can carry."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    any_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Select

from peerline.service.crisis_detection import priority_of
from peerline.service.models import (
    ACTIVE,
    DECLINED,
    PENDING,
    QUEUED,
    WITHDRAWN,
    Contact,
    Conversation,
    InboundMessage,
    Offer,
    SafetyEvent,
    Supporter,
    UTCDateTime,
)
from peerline.service.settings import Settings

log = logging.getLogger(__name__)


def sms_capacity(supporter: Supporter, relay_numbers: Sequence[str]) -> int:
    """Return how many SMS chats a supporter's phone can keep apart."""
    return sms_capacity_for(supporter.capacity, relay_numbers)


def sms_capacity_for(capacity: int, relay_numbers: Sequence[str]) -> int:
    """Return how many SMS chats a supporter of this capacity can keep apart on their phone."""
    # With one line number, a phone can only tell chats apart by who texts it: one at a time.
    # A pool of relay numbers gives each chat its own thread on the supporter's phone.
    if not relay_numbers:
        return 1
    return max(1, min(capacity, len(relay_numbers)))


def _count_of_supporter(owner: Any, *where: Any, supporter: Any = Supporter.id) -> Any:
    """Count the rows of `owner`'s table (`owner` its supporter_id column) that name the
    supporter and match `where`, as a scalar subquery: of the outer query's supporter row,
    or of the supporter whose id is given."""
    return (
        select(func.count())
        .select_from(owner.class_)
        .where(owner == supporter, *where)
        .correlate(Supporter)
        .scalar_subquery()
    )


def _chats_of(supporter_id: int) -> Any:
    """Count a supporter's active chats (a scalar subquery)."""
    return _count_of_supporter(
        Conversation.supporter_id, Conversation.state == ACTIVE, supporter=supporter_id
    )


def _offers_to(supporter_id: int) -> Any:
    """Count a supporter's pending offers (a scalar subquery)."""
    return _count_of_supporter(Offer.supporter_id, Offer.status == PENDING, supporter=supporter_id)


def load_of(session: Session, supporter_id: int) -> int:
    """Return a supporter's active chats plus pending offers."""
    # One round trip: this runs under the supporter's row lock, once per offer and #take.
    return int(session.scalar(select(_chats_of(supporter_id) + _offers_to(supporter_id))) or 0)


def queue_position(
    session: Session, conversation: Conversation, priority: int | None = None
) -> int:
    """Return the conversation's place in the queue, counting from 1 (at `priority`, when
    given: the place crisis words just raised it to, before the raise is written)."""
    queued_at = conversation.queued_at
    if queued_at is None:
        return 1
    if priority is None:
        priority = conversation.priority
    ahead = session.scalar(
        select(func.count())
        .select_from(Conversation)
        .where(
            Conversation.state == QUEUED,
            Conversation.id != conversation.id,
            # Ahead is who matching reads first: higher priority, then earlier, then lower id
            # (several texters can join within the same instant).
            or_(
                Conversation.priority > priority,
                (Conversation.priority == priority)
                & (
                    (Conversation.queued_at < queued_at)
                    | ((Conversation.queued_at == queued_at) & (Conversation.id < conversation.id))
                ),
            ),
        )
    )
    return int(ahead or 0) + 1


def queue_length(session: Session, at_least: int = 0) -> int:
    """Return how many conversations are waiting (at priority `at_least` or higher: those
    ahead of someone joining at that priority)."""
    query = select(func.count()).select_from(Conversation).where(Conversation.state == QUEUED)
    if at_least:
        query = query.where(Conversation.priority >= at_least)
    return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class NewOffer:
    """An offer just made, with what the caller needs to announce it and time it out."""

    offer_id: int
    conversation_id: int
    supporter_id: int
    relay_number: str | None
    language_matched: bool
    # Read while matching, so that announcing the offer reads nothing again.
    supporter: Offered
    alias: str
    language: str
    priority: int
    # What the offer's text tells the supporter about the texter and the offer.
    queued_at: datetime | None = None
    returning: bool = False
    # When the texter last talked with this supporter, only when they asked for them again.
    last_talked: datetime | None = None
    # The supporter had been offered this texter before: nobody else who could take it was free.
    again: bool = False
    # Offered alongside a pending offer to someone else (the first #take wins).
    alongside: bool = False
    # Offered while the supporter rests after a crisis chat: a texter who may be in crisis,
    # with nobody else free who could take them first.
    resting: bool = False
    # No offer of it was made before, withdrawn ones included: its first (`offers.announce`
    # counts it once a chat).
    first: bool = False
    # The most urgent crisis category raised for the texter, and whether only for someone
    # else's danger (`crises_of`): read once for all a round's offers, not once an offer.
    crisis: str | None = None
    someone_else: bool = False
    # Resting, and the contact they rest after was a call (read with the candidates).
    after_call: bool = False


@dataclass(frozen=True)
class Offered:
    """The supporter an offer went to, as far as its text needs them."""

    id: int
    name: str
    capacity: int
    phone_enc: str
    opted_out: bool
    languages: str = "en"

    @property
    def language_list(self) -> list[str]:
        """Return the languages the supporter speaks, the offer's text in the first."""
        return [part for part in self.languages.split(",") if part]


@dataclass(frozen=True)
class Policy:
    """How offers are made: strategy, time-out, relay pool and the per-shift cap."""

    offer_timeout: int
    relay_numbers: Sequence[str] = ()
    strategy: str = "single"
    fanout: int = 3
    shift_chat_cap: int = 8


def policy_of(settings: Settings) -> Policy:
    """Return how offers are made, from the line's settings."""
    return Policy(
        offer_timeout=settings.offer_timeout_seconds,
        relay_numbers=settings.twilio_relay_numbers,
        strategy=settings.offer_strategy,
        fanout=settings.offer_fanout,
        shift_chat_cap=settings.shift_chat_cap,
    )


# The statements of a round are built once per shape and bound to each round's values: building
# and keying them anew cost a round more than PostgreSQL takes to run them.


def _constant(value: str) -> Any:
    """Return a state as SQL text, not a parameter: a generic (prepared) plan can then use the
    partial indexes that hold only the rows in that state."""
    assert value.isalpha()  # our own state names, never input
    return literal_column(f"'{value}'", String)


_ACTIVE, _PENDING, _QUEUED = _constant(ACTIVE), _constant(PENDING), _constant(QUEUED)


def _one_of(column: Any, postgres: bool) -> Any:
    """Return `column IN :ids`: on PostgreSQL as one array parameter, not one per id."""
    if postgres:
        return column == any_(bindparam("ids", type_=postgresql.ARRAY(Integer)))
    return column.in_(bindparam("ids", expanding=True))


@cache
def _level_sql(top: bool) -> Select[Any]:
    """Return the highest priority anyone waits at (`top`), or the highest below :below."""
    level = select(func.max(Conversation.priority)).where(Conversation.state == _QUEUED)
    if not top:
        level = level.where(Conversation.priority < bindparam("below", type_=Integer))
    return level


@cache
def _queue_sql(top: bool, after: bool, locking: bool, offered: bool = False) -> Select[Any]:
    """Return the oldest :n waiting conversations without a pending offer (with one, when
    `offered`) at one priority
    level (the highest, or the highest below :below), after (:after_at, :after_id) when `after`,
    locked when `locking` (skipping those another matcher holds); each with its alias, who
    was offered it before (a row per earlier offer) and when the texter last talked with a peer
    (and with the one they asked for)."""
    has_offer = (
        select(Offer.id)
        .where(Offer.conversation_id == Conversation.id, Offer.status == _PENDING)
        .exists()
    )
    oldest = (
        select(
            Conversation.id,
            Conversation.contact_id,
            Conversation.language,
            Conversation.priority,
            Conversation.preferred_supporter_id,
            Conversation.queued_at,
            Conversation.crisis_at,
        )
        .where(
            Conversation.state == _QUEUED,
            Conversation.priority == _level_sql(top).scalar_subquery(),
            has_offer if offered else ~has_offer,
        )
        .order_by(Conversation.queued_at, Conversation.id)
        # The limit is written into the statement (one text per size, each prepared on its
        # own): with it a parameter, PostgreSQL's generic plan cannot see how few rows are
        # wanted and hash-joins whole tables, so every execution was planned anew.
        .limit(bindparam("n", type_=Integer, literal_execute=True))
    )
    if after:
        oldest = oldest.where(
            tuple_(Conversation.queued_at, Conversation.id)
            > tuple_(
                bindparam("after_at", type_=UTCDateTime()), bindparam("after_id", type_=Integer)
            )
        )
    if locking:
        # Two matchers never look at the same conversation; each takes the next one free.
        oldest = oldest.with_for_update(skip_locked=True, of=Conversation)
    batch = oldest.subquery()
    # The texter's earlier chats, for the offer's text: whether they talked with a peer before,
    # and when with the one they asked for again (SAME), only ever looked up by contact.
    earlier = aliased(Conversation)
    talked = (
        select(func.max(earlier.matched_at))
        .where(
            earlier.contact_id == batch.c.contact_id,
            earlier.id != batch.c.id,
            earlier.supporter_id.is_not(None),
        )
        .scalar_subquery()
    )
    talked_with_preferred = (
        select(func.max(earlier.matched_at))
        .where(
            earlier.contact_id == batch.c.contact_id,
            earlier.id != batch.c.id,
            earlier.supporter_id == batch.c.preferred_supporter_id,
        )
        .scalar_subquery()
    )
    return (
        select(
            batch.c.id,
            batch.c.language,
            batch.c.priority,
            batch.c.preferred_supporter_id,
            batch.c.queued_at,
            Contact.alias,
            Offer.supporter_id,
            Offer.id.label("offer_id"),
            Offer.status.label("offer_status"),
            Offer.created_at.label("offered_at"),
            Offer.resolved_at.label("resolved_at"),
            batch.c.crisis_at,
            talked.label("talked_at"),
            talked_with_preferred.label("talked_with_preferred_at"),
        )
        .join(Contact, Contact.id == batch.c.contact_id)
        # An offer withdrawn (the texter left, another took it, an urgent chat took its
        # place) says nothing of the supporter: it is not an offer they had (`_waiting` reads
        # it only as an offer of the chat made before).
        .outerjoin(Offer, Offer.conversation_id == batch.c.id)
        .order_by(batch.c.queued_at, batch.c.id)
    )


@dataclass(frozen=True)
class _Waiting:
    """A waiting conversation, as ranking and the offer's text need it."""

    id: int
    language: str
    priority: int
    preferred_supporter_id: int | None
    alias: str
    # Who was offered it before, each with their latest offer's id (which orders offers in time).
    offered_before: dict[int, int]
    queued_at: datetime | None = None
    talked_at: datetime | None = None
    talked_with_preferred_at: datetime | None = None
    # When its newest pending offer was made (None without one).
    pending_since: datetime | None = None
    # An offer of it was withdrawn before (it is no offer a supporter had, but it was offered).
    withdrawn_before: bool = False
    # Who let an offer of it go (#pass, #away), each with when they last did.
    passed: dict[int, datetime] = field(default_factory=dict)
    # When crisis words last raised it (None: never).
    crisis_at: datetime | None = None

    def held_by(self, since: datetime) -> frozenset[int]:
        """Return who let an offer of it go since `since`: their #pass still holds."""
        return frozenset(sid for sid, at in self.passed.items() if at > since)

    def passed_in_crisis(self, supporter_id: int) -> bool:
        """Say whether the supporter let it go after crisis words had raised it: what they
        passed was already a texter who may be in crisis."""
        at = self.passed.get(supporter_id)
        return at is not None and self.crisis_at is not None and self.crisis_at <= at


def _waiting(
    session: Session, limit: int, locking: bool, room: Callable[[], int], offered: bool = False
) -> Iterator[_Waiting]:
    """Yield up to `limit` waiting conversations without a pending offer (with one, when
    `offered`), crisis first then oldest (locked, skipping those another matcher holds, when
    `locking`).

    They are read as they are asked for, each time as many as could still get an offer
    (`room()`): a busy line reads and locks only the conversations it offers.
    """
    connection = session.connection()
    found = 0
    below: int | None = None  # the priority level being read: None for the highest
    after: tuple[datetime, int] | None = None  # the last conversation read at that level
    # One priority level at a time, highest first: within a level the queue index (state,
    # priority, queued_at) hands rows over oldest first, so a long queue is never sorted whole
    # (ORDER BY priority DESC, queued_at would run against the index's direction and sort it).
    while found < limit:
        wanted = min(limit - found, room())
        if wanted <= 0:
            break
        level: dict[str, Any] = {} if below is None else {"below": below}
        params = {**level, "n": wanted}
        if after is not None:
            params["after_at"], params["after_id"] = after
        rows = connection.execute(
            _queue_sql(below is None, after is not None, locking, offered), params
        ).all()
        read: dict[int, tuple[Any, dict[int, int]]] = {}
        pending_since: dict[int, datetime] = {}
        withdrawn: set[int] = set()
        passed: dict[int, dict[int, datetime]] = {}
        for row in rows:
            offered_before = read.setdefault(row.id, (row, {}))[1]
            if row.offer_status == WITHDRAWN:
                withdrawn.add(row.id)
            elif row.supporter_id is not None:
                if row.offer_status == DECLINED and row.resolved_at is not None:
                    mine = passed.setdefault(row.id, {})
                    since = mine.get(row.supporter_id)
                    mine[row.supporter_id] = max(since or row.resolved_at, row.resolved_at)
                latest = offered_before.get(row.supporter_id, 0)
                offered_before[row.supporter_id] = max(latest, row.offer_id)
                if row.offer_status == PENDING:
                    since = pending_since.get(row.id)
                    pending_since[row.id] = max(since or row.offered_at, row.offered_at)
        for row, offered_before in read.values():
            yield _Waiting(
                row.id,
                row.language,
                row.priority,
                row.preferred_supporter_id,
                row.alias,
                offered_before,
                row.queued_at,
                row.talked_at,
                row.talked_with_preferred_at,
                pending_since.get(row.id),
                row.id in withdrawn,
                passed.get(row.id, {}),
                row.crisis_at,
            )
        found += len(read)
        if len(read) == wanted:
            after = (rows[-1].queued_at, rows[-1].id)  # this level may hold more
            continue
        # Nobody else waits at this level: on to the next one down.
        below = rows[-1].priority if rows else connection.scalar(_level_sql(below is None), level)
        if below is None:
            break  # nobody waits at all
        after = None


def crises_of(
    session: Session, conversation_ids: Sequence[int], since: datetime
) -> dict[int, tuple[str | None, bool]]:
    """Return, for each conversation, the most urgent crisis category raised for its texter
    (in it, by their words or a supporter's #alert, or in their others since `since`: a texter
    flagged lately joins the line again at that priority) and whether it was raised only for
    someone else's danger (no text of the texter's own raised a flag, nor a supporter's
    #alert, in the same reach); one statement for them all, none without any."""
    if not conversation_ids:
        return {}
    offered = aliased(Conversation)
    other = aliased(Conversation)
    spoken = aliased(Conversation)
    own_words = (
        select(InboundMessage.id)
        .join(spoken, spoken.id == InboundMessage.conversation_id)
        .where(
            spoken.contact_id == offered.contact_id,
            InboundMessage.raised_safety.is_(True),
            InboundMessage.someone_else.is_(False),
            or_(InboundMessage.conversation_id == offered.id, InboundMessage.received_at >= since),
        )
        .correlate(offered)
        .exists()
    )
    rows = session.execute(
        select(offered.id, SafetyEvent.category, SafetyEvent.source, own_words)
        .join(other, other.contact_id == offered.contact_id)
        .join(SafetyEvent, SafetyEvent.conversation_id == other.id)
        .where(
            offered.id.in_(list(conversation_ids)),
            or_(SafetyEvent.conversation_id == offered.id, SafetyEvent.created_at >= since),
        )
    ).all()
    raised: dict[int, list[str]] = {}
    own: dict[int, bool] = {}
    for cid, category, source, words in rows:
        raised.setdefault(cid, []).append(category)
        own[cid] = own.get(cid, False) or bool(words) or source == "supporter"
    found: dict[int, tuple[str | None, bool]] = {cid: (None, False) for cid in conversation_ids}
    for cid, categories in raised.items():
        found[cid] = (max(categories, key=priority_of), not own[cid])
    return found


def with_crises(session: Session, offers: Sequence[NewOffer], since: datetime) -> list[NewOffer]:
    """Return the offers with the crisis each priority offer names read, in one statement for
    the round (none without a priority offer)."""
    urgent = sorted({o.conversation_id for o in offers if o.priority > 0})
    found = crises_of(session, urgent, since)
    return [
        replace(o, crisis=found[o.conversation_id][0], someone_else=found[o.conversation_id][1])
        if o.conversation_id in found
        else o
        for o in offers
    ]
