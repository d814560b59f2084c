"""Match waiting texters with free supporters: crisis first, then oldest; ranked fairly."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Integer,
    String,
    Table,
    any_,
    bindparam,
    case,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Insert, Select

from peerline.service.availability import Rotas
from peerline.service.call_models import CALLBACK, ENDED, FAILED, Call, CallLeg
from peerline.service.call_states import STALE_AFTER, TERMINAL
from peerline.service.models import (
    ACTIVE,
    PENDING,
    QUEUED,
    Contact,
    Conversation,
    Offer,
    Supporter,
    UTCDateTime,
)
from peerline.service.settings import Settings

log = logging.getLogger(__name__)


def sms_capacity(supporter: Supporter, relay_numbers: Sequence[str]) -> int:
    """Return how many SMS chats a supporter's phone can keep apart."""
    return _sms_capacity(supporter.capacity, relay_numbers)


def _sms_capacity(capacity: int, relay_numbers: Sequence[str]) -> int:
    # With one line number, a phone can only tell chats apart by who texts it: one at a time.
    # A pool of relay numbers gives each chat its own thread on the supporter's phone.
    if not relay_numbers:
        return 1
    return max(1, min(capacity, len(relay_numbers)))


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
            # Ahead is who matching reads first: higher priority, then earlier, then lower id
            # (several texters can join within the same instant).
            or_(
                Conversation.priority > conversation.priority,
                (Conversation.priority == conversation.priority)
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


@dataclass(frozen=True)
class Offered:
    """The supporter an offer went to, as far as its text needs them."""

    id: int
    name: str
    capacity: int
    phone_enc: str
    opted_out: bool


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
            talked.label("talked_at"),
            talked_with_preferred.label("talked_with_preferred_at"),
        )
        .join(Contact, Contact.id == batch.c.contact_id)
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
        for row in rows:
            offered_before = read.setdefault(row.id, (row, {}))[1]
            if row.supporter_id is not None:
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


def _capacity_sql(pool: int) -> Any:
    """Return `sms_capacity` with `pool` relay numbers as SQL over the supporters table."""
    return case(
        (Supporter.capacity < 1, 1), (Supporter.capacity > pool, pool), else_=Supporter.capacity
    )


def _on_a_call() -> Any:
    """Return, as SQL over the supporters table, `calls.supporters_on_calls` at :calls_since
    (`now - STALE_AFTER`): being rung or talking on a call (index lookups by supporter)."""

    since = bindparam("calls_since", type_=UTCDateTime())
    ringing_or_talking = (
        select(CallLeg.id)
        .join(Call, Call.id == CallLeg.call_id)
        .where(
            CallLeg.supporter_id == Supporter.id,
            CallLeg.ended_at.is_(None),
            or_(CallLeg.status.is_(None), CallLeg.status.not_in(_fixed(TERMINAL))),
            Call.ended_at.is_(None),
            CallLeg.created_at >= since,
        )
        .exists()
    )
    calling_back = (
        select(Call.id)
        .where(
            Call.supporter_id == Supporter.id,
            Call.direction == CALLBACK,
            Call.ended_at.is_(None),
            Call.state.not_in(_fixed((FAILED, ENDED))),
            Call.created_at >= since,
        )
        .exists()
    )
    return or_(ringing_or_talking, calling_back)


def _fixed(values: Iterable[str]) -> list[Any]:
    """Return an IN list of one bound value per item, fixed when the statement is built: not an
    expanding parameter, which SQLAlchemy re-renders at every execution."""
    return [literal(value, String) for value in sorted(values)]


def _matched_since() -> Any:
    """Return "the conversation was matched since :since" (at most two days ago) as SQL."""
    return Conversation.matched_at >= bindparam("since", type_=UTCDateTime())


@cache
def _recent_sql() -> Select[int | None, datetime | None]:
    """Return (supporter, when) of the conversations matched to supporters :ids since :since."""
    return select(Conversation.supporter_id, Conversation.matched_at).where(
        _one_of(Conversation.supporter_id, postgres=False), _matched_since()
    )


@cache
def _candidates_sql(pool: int, naming: str, postgres: bool, cap: int) -> Select[Any]:
    """Return the supporters with room for another chat, their load and whether they are on a
    call; on PostgreSQL also their latest matches (as many as the per-shift `cap`). `pool` is
    the number of relay numbers; `naming` says what :ids lists: those on shift ("on"), those
    off ("off") or nobody.
    """
    # Only supporters with room for another chat can be ranked at all, so the database leaves
    # out the others (on a busy line, nearly everyone). What the select list asks (calls,
    # recent matches) is asked only of those who have room.
    has_room: list[Any]
    if pool:
        # Active chats are counted in one pass (the queue index leads with state); pending
        # offers, which only the (supporter, status) index finds, are looked up just for
        # supporters whose chats leave room.
        chats = (
            select(Conversation.supporter_id, func.count().label("n"))
            .where(Conversation.state == _ACTIVE)
            .group_by(Conversation.supporter_id)
            .subquery()
        )
        active_chats = func.coalesce(chats.c.n, 0)
        pending_offers = (
            select(func.count())
            .select_from(Offer)
            .where(Offer.supporter_id == Supporter.id, Offer.status == _PENDING)
            .correlate(Supporter)
            .scalar_subquery()
        )
        capacity = _capacity_sql(pool)
        load: Any = active_chats + pending_offers
        has_room = [active_chats < capacity, load < capacity]
    else:
        # One chat at a time: room is having no chat going and no offer waiting, which the
        # database answers by anti-joins instead of counting everyone's chats.
        chatting = (
            select(Conversation.id)
            .where(Conversation.supporter_id == Supporter.id, Conversation.state == _ACTIVE)
            .exists()
        )
        offered = (
            select(Offer.id)
            .where(Offer.supporter_id == Supporter.id, Offer.status == _PENDING)
            .exists()
        )
        load = literal(0)
        has_room = [~chatting, ~offered]
    recent: Any = null()
    if postgres:
        # The latest matches as an array, as many as the per-shift cap (no more can count):
        # one statement fewer per round, and with no time in it the prepared plan is reused.
        latest = (
            select(Conversation.matched_at)
            .where(Conversation.supporter_id == Supporter.id, Conversation.matched_at.is_not(None))
            .order_by(Conversation.matched_at.desc())
            .limit(literal_column(str(int(cap)), Integer))
            .correlate(Supporter)
            .scalar_subquery()
        )
        recent = func.array(latest, type_=postgresql.ARRAY(UTCDateTime()))
    query = select(
        Supporter.id,
        Supporter.capacity,
        Supporter.languages,
        Supporter.last_chat_ended_at,
        load,
        _on_a_call(),
        recent,
    ).where(
        Supporter.active.is_(True),
        Supporter.away.is_(False),
        Supporter.opted_out.is_(False),
        Supporter.takes_sms.is_(True),
        *has_room,
    )
    if pool:
        query = query.outerjoin(chats, chats.c.supporter_id == Supporter.id)
    if naming == "on":
        query = query.where(_one_of(Supporter.id, postgres))
    elif naming == "off":
        query = query.where(~_one_of(Supporter.id, postgres))
    return query


@dataclass(frozen=True)
class _Candidate:
    """A supporter who could take a chat in this round, with what ranks them."""

    id: int
    capacity: int  # sms_capacity
    languages: tuple[str, ...]
    idle_since: float


@dataclass
class _Pool:
    """The supporters who could take a chat in this round, with what ranks them."""

    supporters: dict[int, _Candidate]
    load: Counter[int]
    chats_this_shift: Counter[int]


def _pool(session: Session, rotas: Rotas, now: datetime, policy: Policy) -> _Pool:

    on_shift = rotas.on_shift(now)
    if not on_shift:
        return _Pool({}, Counter(), Counter())
    postgres = session.get_bind().dialect.name == "postgresql"
    since = now - timedelta(days=2)
    params: dict[str, Any] = {"calls_since": now - STALE_AFTER}
    # Name whichever list is shorter, those on shift or those off; Python checks the rest.
    off_shift = rotas.off_shift(now)
    naming = "on" if len(on_shift) <= len(off_shift) else "off" if off_shift else ""
    if naming:
        params["ids"] = on_shift if naming == "on" else off_shift
    query = _candidates_sql(len(policy.relay_numbers), naming, postgres, policy.shift_chat_cap)
    wanted = set(on_shift)
    supporters: dict[int, _Candidate] = {}
    load: Counter[int] = Counter()
    recent: list[tuple[int | None, datetime | None]] = []
    rows = session.connection().execute(query, params)
    for sid, capacity, languages, idle, held, on_a_call, matched in rows:
        # Someone on a phone call with a caller is not offered a text chat meanwhile.
        if sid not in wanted or on_a_call:
            continue
        supporters[sid] = _Candidate(
            sid,
            _sms_capacity(capacity, policy.relay_numbers),
            tuple(part for part in languages.split(",") if part),
            idle.timestamp() if idle else 0.0,
        )
        if held:
            load[sid] = held
        recent += ((sid, at) for at in matched or ())
    if not supporters:
        return _Pool({}, Counter(), Counter())
    if not postgres:
        params = {"ids": list(supporters), "since": since}
        recent = [(sid, at) for sid, at in session.connection().execute(_recent_sql(), params)]
    starts: dict[int, datetime | None] = {}
    this_shift: Counter[int] = Counter()
    for sid, matched_at in recent:
        if not sid or not matched_at:
            continue
        if sid not in starts:
            # Where the supporter's stretch on shift began: only for those matched before.
            starts[sid] = rotas.shift_start(sid, now)
        start = starts[sid]
        if start and matched_at >= start:
            this_shift[sid] += 1
    return _Pool(supporters, load, this_shift)


def _has_room(candidate: _Candidate, pool: _Pool, policy: Policy) -> bool:
    return (
        pool.load[candidate.id] < candidate.capacity
        and pool.chats_this_shift[candidate.id] < policy.shift_chat_cap
    )


def _ranked(
    conversation: _Waiting,
    pool: _Pool,
    policy: Policy,
    candidates: Sequence[_Candidate],
    fresh_only: bool = False,
) -> list[_Candidate]:
    """Return who to offer the conversation to, best first.

    Someone who missed or passed it is skipped while anyone else with room could take it
    (or holds an offer of it, when `fresh_only`); once everyone with room has had their
    chance, it goes round again, to whoever had it longest ago first. (A supporter who is
    really gone is protected by auto-away, not by leaving the texter waiting.)
    """
    offered_before = conversation.offered_before
    free = [c for c in candidates if _has_room(c, pool, policy)]
    fresh = [c for c in free if c.id not in offered_before]
    if fresh_only:
        free = []

    def rank(c: _Candidate) -> tuple[int, int, int, int, float, int]:
        speaks = conversation.language in c.languages
        preferred = conversation.preferred_supporter_id == c.id
        # Round robin among those offered it before; then language, continuity, and
        # fairness: fewest chats this shift, longest idle.
        return (
            offered_before.get(c.id, 0),
            0 if speaks else 1,
            0 if preferred else 1,
            pool.chats_this_shift[c.id],
            c.idle_since,
            c.id,
        )

    return sorted(fresh or free, key=rank)


@cache
def _claim_sql(locking: bool) -> Select[int, str, int, str, bool]:
    """Return what the offer needs of supporter :sid (locked, unless another matcher holds
    them, when `locking`)."""
    claim = select(
        Supporter.id, Supporter.name, Supporter.capacity, Supporter.phone_enc, Supporter.opted_out
    ).where(Supporter.id == bindparam("sid", type_=Integer))
    if locking:
        # Another matcher may be offering them a chat at this moment.
        claim = claim.with_for_update(skip_locked=True)
    return claim


@cache
def _offer_sql(relay_numbers: tuple[str, ...]) -> Insert:
    """Return the insert of an offer of conversation :cid to supporter :sid, which writes
    nothing when the supporter's chats and pending offers already reach :capacity or, with a
    pool, every relay number is in use; it returns the offer's id and relay number."""
    sid = bindparam("sid", type_=Integer)
    load = (
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.supporter_id == sid, Conversation.state == _ACTIVE)
        .scalar_subquery()
    ) + (
        select(func.count())
        .select_from(Offer)
        .where(Offer.supporter_id == sid, Offer.status == _PENDING)
        .scalar_subquery()
    )
    values = select(
        bindparam("cid", type_=Integer),
        sid,
        literal(PENDING, String),
        bindparam("now", type_=UTCDateTime()),
        bindparam("expires_at", type_=UTCDateTime()),
    ).where(load < bindparam("capacity", type_=Integer))
    if relay_numbers:
        # free_relay_number: the pool's first number none of the supporter's chats and pending
        # offers use.
        def in_use(number: str) -> Any:
            return or_(
                select(Conversation.id)
                .where(
                    Conversation.supporter_id == sid,
                    Conversation.state == _ACTIVE,
                    Conversation.relay_number == number,
                )
                .exists(),
                select(Offer.id)
                .where(
                    Offer.supporter_id == sid,
                    Offer.status == _PENDING,
                    Offer.relay_number == number,
                )
                .exists(),
            )

        first_free = case(*((~in_use(n), literal(n)) for n in relay_numbers), else_=null())
        free = select(first_free.label("number")).subquery()
        values = values.add_columns(free.c.number)
        values = values.select_from(free).where(free.c.number.is_not(None))
    else:
        values = values.add_columns(null())
    # Into the table, not the mapped class: the ORM would take the parameters for rows.
    offers = cast(Table, Offer.__table__)
    columns = ["conversation_id", "supporter_id", "status", "created_at", "expires_at"]
    return (
        insert(offers)
        .from_select([*columns, "relay_number"], values)
        .returning(offers.c.id, offers.c.relay_number)
    )


def _offer(
    session: Session,
    conversation: _Waiting,
    candidate: _Candidate,
    now: datetime,
    policy: Policy,
    locking: bool,
) -> NewOffer | None:
    """Write an offer if the supporter still has room (and a relay number, with a pool)."""
    # The statements of a round are plain SQL: through the connection, not the ORM's layers.
    connection = session.connection()
    claimed = connection.execute(_claim_sql(locking), {"sid": candidate.id}).one_or_none()
    if claimed is None:
        return None
    supporter = Offered(*claimed)
    # Counted again after the lock, so that an offer another matcher has just made them is
    # seen, by the statement that writes the offer (and picks its relay number).
    written = connection.execute(
        _offer_sql(tuple(policy.relay_numbers)),
        {
            "cid": conversation.id,
            "sid": supporter.id,
            "now": now,
            "expires_at": now + timedelta(seconds=policy.offer_timeout),
            "capacity": _sms_capacity(supporter.capacity, policy.relay_numbers),
        },
    ).one_or_none()
    if written is None:
        return None
    offer_id, relay_number = written
    preferred = conversation.preferred_supporter_id == supporter.id
    return NewOffer(
        offer_id,
        conversation.id,
        supporter.id,
        relay_number,
        conversation.language in candidate.languages,
        supporter,
        conversation.alias,
        conversation.language,
        conversation.priority,
        queued_at=conversation.queued_at,
        returning=conversation.talked_at is not None,
        last_talked=conversation.talked_with_preferred_at if preferred else None,
        again=supporter.id in conversation.offered_before,
    )


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
    per_conversation = policy.fanout if policy.strategy == "several" else 1
    made: list[NewOffer] = []
    # Who still has room; once nobody has, the rest of the queue can get no offer this round
    # (and is not read).
    candidates = [c for c in pool.supporters.values() if _has_room(c, pool, policy)]

    def room() -> int:
        """Return how many more offers the supporters with room could take."""
        return sum(c.capacity - pool.load[c.id] for c in candidates)

    for conversation in _waiting(session, limit, locking, room):
        offered = 0
        for candidate in _ranked(conversation, pool, policy, candidates):
            if offered == per_conversation:
                break
            offer = _offer(session, conversation, candidate, now, policy, locking)
            if offer is None:
                continue
            pool.load[candidate.id] += 1
            made.append(offer)
            offered += 1
        candidates = [c for c in candidates if _has_room(c, pool, policy)]
        if not candidates:
            break
    if candidates and len(made) < limit:
        free_since = _free_since(session, rotas, now, candidates)
        made += _alongside(
            session, pool, policy, candidates, free_since, now, locking, limit - len(made)
        )
    return made


# How long after a texter joins (or a supporter frees up) a matching round may run: a supporter
# free only this much before a conversation's offer was made was not passed over for it.
MATCHING_DELAY = timedelta(seconds=2)


def _alongside(
    session: Session,
    pool: _Pool,
    policy: Policy,
    candidates: list[_Candidate],
    free_since: dict[int, datetime],
    now: datetime,
    locking: bool,
    limit: int,
) -> list[NewOffer]:
    """Offer conversations that already have a pending offer to supporters still free who
    never had them and were free, while it waited, before that offer was made: the first
    #take wins. Without this, one offer at a time could keep a texter waiting on supporter
    after supporter (each for a time-out) while someone else sat free all along. A texter
    who has just joined still gets one offer at a time.
    """
    free = list(candidates)

    def room() -> int:
        return sum(c.capacity - pool.load[c.id] for c in free)

    waiting = list(_waiting(session, limit, locking, room, offered=True))
    made: list[NewOffer] = []
    progress = True
    while free and progress and len(made) < limit:
        progress = False
        for conversation in waiting:
            since = conversation.pending_since
            passed_over = [
                c
                for c in free
                if since is not None
                and max(free_since[c.id], conversation.queued_at or since) + MATCHING_DELAY
                < since
            ]
            for candidate in _ranked(conversation, pool, policy, passed_over, fresh_only=True):
                offer = _offer(session, conversation, candidate, now, policy, locking)
                if offer is None:
                    continue
                pool.load[candidate.id] += 1
                conversation.offered_before[candidate.id] = offer.offer_id
                made.append(replace(offer, alongside=True))
                progress = True
                break
            free = [c for c in free if _has_room(c, pool, policy)]
            if not free or len(made) >= limit:
                break
    return made


def _free_since(
    session: Session, rotas: Rotas, now: datetime, candidates: Sequence[_Candidate]
) -> dict[int, datetime]:
    """Return, for each candidate, when they last became free as far as the record shows: their
    shift began, a chat ended or an offer was answered. Coming #back or off a call leave no
    trace, so this is never later than the truth (which only makes offers alongside likelier).
    """
    resolved = dict(
        session.execute(
            select(Offer.supporter_id, func.max(Offer.resolved_at))
            .where(Offer.supporter_id.in_([c.id for c in candidates]))
            .group_by(Offer.supporter_id)
        ).all()
    )
    since: dict[int, datetime] = {}
    for c in candidates:
        moments = [datetime.fromtimestamp(c.idle_since, UTC), resolved.get(c.id)]
        moments.append(rotas.shift_start(c.id, now) if c.id in rotas.by_supporter else None)
        since[c.id] = max(moment for moment in moments if moment is not None)
    return since


# -- who can take a chat now, as the texters and the dashboard are told ----------------------


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
    def free(self) -> bool:
        """Say whether matching would offer them a chat now."""
        return (
            self.taking_chats and not self.on_a_call and self.chats + self.offers < self.capacity
        )


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
    chats = (
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.supporter_id == Supporter.id, Conversation.state == ACTIVE)
        .correlate(Supporter)
        .scalar_subquery()
    )
    offers = (
        select(func.count())
        .select_from(Offer)
        .where(Offer.supporter_id == Supporter.id, Offer.status == PENDING)
        .correlate(Supporter)
        .scalar_subquery()
    )
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
                _sms_capacity(capacity, relay_numbers),
                this_shift[sid],
                sid in on,
                bool(away),
                bool(opted_out),
                bool(takes_sms),
                bool(on_a_call),
                policy.shift_chat_cap,
            )
            for sid, capacity, away, opted_out, takes_sms, n_chats, n_offers, on_a_call in rows
        }
    )
