"""Matching: offer waiting texters to free supporters, crisis first, ranked fairly."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Integer,
    String,
    Table,
    bindparam,
    case,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql import Insert, Select

from peerline.service.availability import Rotas
from peerline.service.call_states import STALE_AFTER, TERMINAL
from peerline.service.grouped import grouped
from peerline.service.models import (
    PENDING,
    ContactRecord,
    Conversation,
    Offer,
    Supporter,
    UTCDateTime,
)
from peerline.service.routing.queue import (
    _ACTIVE,
    _PENDING,
    NewOffer,
    Offered,
    Policy,
    _count_of_supporter,
    _one_of,
    _Waiting,
    _waiting,
    sms_capacity_for,
)
from peerline.service.voice.models import CALLBACK, ENDED, FAILED, Call, CallLeg

log = logging.getLogger(__name__)


# How long a #pass holds at least: the texter passed is not offered again to whoever let them
# go for this long (other texters are). Three minutes: more than an offer's own time (two, by
# default), so that whoever passed has had the time the offer gave them; short enough that on a
# one-person shift the texter is offered again within one more offer's time.
PASS_HOLD = timedelta(minutes=3)


def pass_hold(offer_timeout: int) -> timedelta:
    """Return how long a #pass holds with offers of `offer_timeout` seconds: PASS_HOLD, or a
    minute more than an offer's time when offers give longer (a fixed 3 minutes gave the
    texter back before a 4-minute offer's time was up)."""
    return max(PASS_HOLD, timedelta(seconds=offer_timeout, minutes=1))


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


def _resting() -> Any:
    """Return "the supporter is resting after a crisis chat at :now" as SQL."""
    return func.coalesce(Supporter.paused_until > bindparam("now", type_=UTCDateTime()), False)


def _rests_after_call() -> Any:
    """Return "the supporter rests, and their last contact, the one they rest after, was a
    call" as SQL: read with the candidates, so an offer that says so reads nothing again."""
    last = (
        select(ContactRecord.channel)
        .where(ContactRecord.supporter_id == Supporter.id)
        .order_by(ContactRecord.ended_at.desc(), ContactRecord.id.desc())
        .limit(1)
        .correlate(Supporter)
        .scalar_subquery()
    )
    return case((_resting(), func.coalesce(last == "voice", False)), else_=False)


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
        pending_offers = _count_of_supporter(Offer.supporter_id, Offer.status == _PENDING)
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
        # Those resting after a crisis chat are read too: a texter who may be in crisis is
        # offered to them when nobody else could take the chat (`match`).
        _resting(),
        _rests_after_call(),
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
    # Resting after a crisis chat (until :now + the pause, or #ready).
    resting: bool = False
    # Resting, and the contact they rest after was a call.
    after_call: bool = False


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
    params: dict[str, Any] = {"calls_since": now - STALE_AFTER, "now": now}
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
    for sid, capacity, languages, idle, held, on_a_call, matched, resting, after_call in rows:
        # Someone on a phone call with a caller is not offered a text chat meanwhile.
        if sid not in wanted or on_a_call:
            continue
        supporters[sid] = _Candidate(
            sid,
            sms_capacity_for(capacity, policy.relay_numbers),
            tuple(part for part in languages.split(",") if part),
            idle.timestamp() if idle else 0.0,
            bool(resting),
            bool(after_call),
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


def _kept_for_crisis(candidate: _Candidate, pool: _Pool, policy: Policy) -> bool:
    """Say whether a supporter with room for a chat is offered only a texter who may be in
    crisis: resting after a crisis chat, or at the shift's cap on chats."""
    return candidate.resting or pool.chats_this_shift[candidate.id] >= policy.shift_chat_cap


def _ranked(
    conversation: _Waiting,
    pool: _Pool,
    policy: Policy,
    candidates: Sequence[_Candidate],
    fresh_only: bool = False,
    kept: frozenset[int] = frozenset(),
) -> list[_Candidate]:
    """Return who to offer the conversation to, best first.

    Someone who missed or passed it is skipped while anyone else with room could take it
    (or holds an offer of it, when `fresh_only`); once everyone with room has had their
    chance, it goes round again, to whoever had it longest ago first. (A supporter who is
    really gone is protected by auto-away, not by leaving the texter waiting.) Those in `kept`
    (kept for a texter in crisis) come after the others, past the shift's cap, except that a
    texter in crisis is asked in their language first: someone resting who speaks it before
    someone free who does not (session 28: a Spanish texter in crisis was offered to an
    English-only supporter, "no Spanish speaker is free", while a Spanish speaker rested).
    """
    urgent = conversation.priority > 0
    offered_before = conversation.offered_before
    free = [
        c
        for c in candidates
        if _has_room(c, pool, policy) or (c.id in kept and pool.load[c.id] < c.capacity)
    ]
    fresh = [c for c in free if c.id not in offered_before]
    if fresh_only:
        free = []

    def rank(c: _Candidate) -> tuple[int, int, int, int, int, float, int]:
        speaks = conversation.language in c.languages
        preferred = conversation.preferred_supporter_id == c.id
        # Round robin among those offered it before, anyone kept for a crisis (resting, at
        # the cap) last; then language, continuity, and fairness: fewest chats this shift,
        # longest idle.
        rest, language = int(c.id in kept), 0 if speaks else 1
        # For a texter in crisis their language comes before anyone's rest.
        first, second = (language, rest) if urgent else (rest, language)
        return (
            offered_before.get(c.id, 0),
            first,
            second,
            0 if preferred else 1,
            pool.chats_this_shift[c.id],
            c.idle_since,
            c.id,
        )

    return sorted(fresh or free, key=rank)


@cache
def _claim_sql(locking: bool) -> Select[int, str, int, str, bool, str]:
    """Return what the offer needs of supporter :sid (locked, unless another matcher holds
    them, when `locking`)."""
    claim = select(
        Supporter.id,
        Supporter.name,
        Supporter.capacity,
        Supporter.phone_enc,
        Supporter.opted_out,
        Supporter.languages,
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
    # Each supporter starts the pool at a number of their own (their id decides which), so
    # the pool spreads the line's sending over its numbers as well as keeping chats apart.
    pool = tuple(policy.relay_numbers)
    if pool:
        start = supporter.id % len(pool)
        pool = pool[start:] + pool[:start]
    written = connection.execute(
        _offer_sql(pool),
        {
            "cid": conversation.id,
            "sid": supporter.id,
            "now": now,
            "expires_at": now + timedelta(seconds=policy.offer_timeout),
            "capacity": sms_capacity_for(supporter.capacity, policy.relay_numbers),
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
        first=not conversation.offered_before and not conversation.withdrawn_before,
    )


def _asked(candidate: _Candidate, conversation: _Waiting, held: frozenset[int]) -> bool:
    """Say whether someone kept for a crisis (resting, at the shift's cap, or whose #pass of
    this texter holds) is asked for this texter, when nobody else free could take them.

    Someone resting is asked only if they never had an offer of this texter: after a #pass or
    a missed offer, not again until their pause ends (the coordinator has been told). (One
    offered it before the pause, with room for two chats, is not asked either.) A #pass that
    holds is kept by the same rule: a texter let go while already in crisis is not asked of
    them again until the hold ends; crisis words written since are news they have not had.
    """
    if conversation.priority <= 0:
        return False
    if candidate.resting and candidate.id in conversation.offered_before:
        return False
    return not (candidate.id in held and conversation.passed_in_crisis(candidate.id))


def match(
    session: Session,
    rotas: Rotas,
    now: datetime,
    policy: Policy,
    *,
    locking: bool = False,
    limit: int = 50,
) -> list[NewOffer]:
    """Offer waiting conversations, crisis first then oldest, to free supporters on shift.

    A supporter resting after a crisis chat, or at the shift's cap on chats, is offered only a
    texter who may be in crisis, and only when nobody else free could take them first (someone
    resting only if they never had an offer of that texter: the offer says they rest, and
    #pass is theirs). Without this, a texter in crisis waited out a pause, or a whole shift,
    beside the one supporter on it; a crisis call rings them too.
    """
    pool = _pool(session, rotas, now, policy)
    per_conversation = policy.fanout if policy.strategy == "several" else 1
    made: list[NewOffer] = []
    # Who still has room; once nobody has, the rest of the queue can get no offer this round
    # (and is not read).
    with_room = [c for c in pool.supporters.values() if pool.load[c.id] < c.capacity]
    candidates = [c for c in with_room if not _kept_for_crisis(c, pool, policy)]
    kept = [c for c in with_room if _kept_for_crisis(c, pool, policy)]

    def room() -> int:
        """Return how many more offers the supporters with room could take."""
        return sum(c.capacity - pool.load[c.id] for c in (*candidates, *kept))

    for conversation in _waiting(session, limit, locking, room):
        urgent = conversation.priority > 0
        if not candidates and not urgent:
            break  # the crisis texters (read first) are offered; the others wait
        held = conversation.held_by(now - pass_hold(policy.offer_timeout))
        # After #pass, the texter is not offered to whoever let them go for pass_hold (on a
        # one-person shift it came back 30 ms later: #pass was useless); like someone resting,
        # they are asked only for a texter who may be in crisis with nobody else free.
        holding = (c for c in candidates if c.id in held)
        asked = [c for c in (*kept, *holding) if _asked(c, conversation, held)]
        open_ = [c for c in candidates if c.id not in held]
        ids = frozenset(c.id for c in asked)
        ranked = _ranked(conversation, pool, policy, [*open_, *asked], kept=ids)
        if ranked and ranked[0].id not in ids:
            # Someone free for any chat comes first: nobody kept is asked beside them.
            ranked = [c for c in ranked if c.id not in ids]
        offered = 0
        for candidate in ranked:
            if offered == per_conversation:
                break
            offer = _offer(session, conversation, candidate, now, policy, locking)
            if offer is None:
                continue
            pool.load[candidate.id] += 1
            if candidate.resting:
                offer = replace(offer, resting=True, after_call=candidate.after_call)
            made.append(offer)
            offered += 1
        candidates = [c for c in candidates if _has_room(c, pool, policy)]
        kept = [c for c in kept if pool.load[c.id] < c.capacity]
        if not candidates and not kept:
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
                and max(free_since[c.id], conversation.queued_at or since) + MATCHING_DELAY < since
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
    resolved = grouped(
        session,
        Offer.supporter_id,
        func.max(Offer.resolved_at),
        Offer.supporter_id.in_([c.id for c in candidates]),
    )
    since: dict[int, datetime] = {}
    for c in candidates:
        moments = [datetime.fromtimestamp(c.idle_since, UTC), resolved.get(c.id)]
        moments.append(rotas.shift_start(c.id, now) if c.id in rotas.by_supporter else None)
        since[c.id] = max(moment for moment in moments if moment is not None)
    return since
