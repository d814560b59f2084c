"""Offers and matching: the line as a texter hears it, offering chats, #take, time-outs."""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, select
from sqlalchemy.orm import Session

from peerline.flows import texter as texter_flow
from peerline.flows.catalogue import Phrase
from peerline.flows.keywords import Keyword, classify
from peerline.service import metrics, routing
from peerline.service.availability import format_opening
from peerline.service.context import (
    DEFAULT_CHAT_MINUTES,
    Context,
    _lock,
    relay_marks,
    resolve_offer,
    supporter_language,
    transaction,
)
from peerline.service.crisis import priority_of
from peerline.service.groups import upcoming_text
from peerline.service.models import (
    ACCEPTED,
    ACTIVE,
    DECLINED,
    EXPIRED,
    PENDING,
    QUEUED,
    WITHDRAWN,
    Alert,
    Conversation,
    InboundMessage,
    Offer,
    OutboundMessage,
    Supporter,
)
from peerline.service.routing.staffing import offered_until
from peerline.service.services import LineServices

log = logging.getLogger(__name__)


def line_status(
    rt: Context, conversation: Conversation | None, language: str, priority: int = 0
) -> texter_flow.LineStatus:
    """Describe the line as a texter asking for a peer now would hear it (one who would
    join at `priority`, such as a crisis first text, if not queued yet)."""
    session = rt.session
    rotas = rt.rotas()
    tz = rotas.tz
    on_shift = rotas.on_shift(rt.now)
    if conversation is not None and conversation.state == QUEUED:
        # Crisis words in this very text move it up (the raise is carried out after this).
        position = routing.queue_position(
            session, conversation, max(priority, conversation.priority)
        )
    else:
        position = routing.queue_length(session, at_least=priority) + 1
    opening = None if on_shift else rotas.next_opening(rt.now)
    staff = (
        routing.staffing(session, rotas, rt.now, policy(rt)) if on_shift else routing.Staffing({})
    )
    asked_until = None
    if on_shift and conversation is not None and conversation.state == QUEUED:
        # Whoever passed them is not offered them until the hold ends: not free for them now
        # (a one-person shift told "about 1 min" while its one supporter's #pass held).
        hold = routing.pass_hold(rt.line.settings.offer_timeout_seconds)
        crisis_at = rt.now if priority > 0 else conversation.crisis_at
        held = routing.holds_of(session, conversation.id, crisis_at, rt.now, hold)
        if held:
            staff = staff.for_texter_held_by(held)
        asked_until = offered_until(session, conversation.id, rt.now)
    if asked_until is not None:
        # A supporter is being asked now: the wait is at most what is left of their offer (a
        # tester's "hello??" heard "about 3 min" and was connected 2 s later).
        wait: int | None = max(1, math.ceil((asked_until - rt.now).total_seconds() / 60))
    else:
        wait = _expected_wait(rt, position, staff)
    return texter_flow.LineStatus(
        open_now=bool(on_shift),
        next_opening=format_opening(opening, tz, rt.now, language) if opening else None,
        position=position,
        wait_minutes=wait,
        groups=_groups_text(rt, tz, language),
        # Nobody to count on: everyone on shift is away or at their cap, or their last offers
        # went unanswered (a tester was told "about 1 min" by a line whose one supporter kept
        # missing offers); never while someone is being asked to take them.
        nobody_free=bool(on_shift) and staff.answering == 0 and asked_until is None,
        moved_up=conversation is not None
        and conversation.state == QUEUED
        and priority > conversation.priority,
    )


# The shortest a chat going on is counted on to last, in minutes: half a typical chat. Many
# chats ending within a minute or two (texters who leave at once) say little of how long the
# chats going on now will last.
MIN_CHAT_MINUTES = DEFAULT_CHAT_MINUTES / 2


def _expected_wait(rt: Context, position: int, staff: routing.Staffing) -> int | None:
    """Return the minutes a texter at `position` can expect to wait, from the line's own
    recent waits and chats and who is free now; None when nobody takes chats.

    Only those who answer offers count (not someone whose last offers went unanswered); a
    supporter resting after a crisis chat is free when the rest ends, not half a chat from now.
    """
    taking = staff.answering
    if taking == 0:
        return None
    recent = rt.session.execute(
        select(Conversation.queued_at, Conversation.matched_at, Conversation.closed_at)
        .where(Conversation.matched_at.is_not(None))
        .order_by(Conversation.id.desc())
        .limit(20)
    ).all()
    # Waits of the last day only: a wait from last week says little about this hour.
    waits = [
        (matched - queued).total_seconds() / 60
        for queued, matched, _ in recent
        if queued and matched and rt.now - matched < timedelta(days=1)
    ]
    lengths = [
        (closed - matched).total_seconds() / 60
        for _, matched, closed in recent
        if closed and matched and closed >= matched
    ]
    timeout = rt.line.settings.offer_timeout_seconds / 60
    # How long an offer takes to be taken, when someone can be offered them.
    offer_wait = min(statistics.median(waits) if waits else timeout, timeout)
    free = staff.ready
    if position <= free:
        # Someone free is offered them at once: the wait is how long an offer takes.
        return max(1, math.ceil(offer_wait))
    # Otherwise chats must end first, one each `length / taking` minutes on average, the
    # first after half a chat, and then an offer be taken; never less than the people
    # matched lately really waited. A chat counts as MIN_CHAT_MINUTES at least: after a run
    # of very short chats a tester was told "about 2 min" and offered after 4.
    median = statistics.median(lengths) if lengths else DEFAULT_CHAT_MINUTES
    length = max(median, MIN_CHAT_MINUTES)
    ahead = position - free
    estimate = length * (ahead - 0.5) / taking + offer_wait
    rests = staff.rests(rt.now)
    if rests:
        # Someone resting after a crisis chat is in no chat: they are offered the next texter
        # when the rest ends (a tester was told "about 1 min" while the one supporter rested).
        busy = taking - free - len(rests)
        if ahead <= len(rests):
            by_rest = rests[ahead - 1] + offer_wait
            by_chat = length * (ahead - 0.5) / busy + offer_wait if busy > 0 else by_rest
            estimate = min(by_rest, by_chat)
        else:
            estimate = max(estimate, rests[-1] + offer_wait)
    if waits:
        estimate = max(estimate, statistics.median(waits))
    return max(1, round(estimate))


def _groups_text(rt: Context, tz: Any, language: str) -> str | None:

    return upcoming_text(rt.session, tz, rt.now, language)


def policy(rt: Context) -> routing.Policy:
    """Return how offers are made, from the settings."""
    return routing.policy_of(rt.line.settings)


def find_offers(rt: Context) -> list[routing.NewOffer]:
    """Write offers of waiting conversations to free supporters (not yet announced)."""
    locking = rt.line.db.is_postgres
    return routing.match(rt.session, rt.rotas(), rt.now, policy(rt), locking=locking)


def announce(
    rt: Context, offers: Sequence[routing.NewOffer], expired: dict[int, int] | None = None
) -> None:
    """Text each offer to its supporter and time it out; `expired` maps a conversation
    to the supporter whose offer of it has just timed out."""
    timeout = rt.line.settings.offer_timeout_seconds
    first: set[int] = set()
    # The crisis each priority offer names, read once for them all (not once an offer).
    offers = routing.with_crises(rt.session, offers, rt.now - rt.crisis_window)
    for offer in offers:
        # Routing hands over what the text needs: nothing is read again here. The parts are
        # in the supporter's first language, as the offer is.
        language = supporter_language(offer.supporter)
        note = ""
        if not offer.language_matched:
            named = f"language_{offer.language}" in rt.line.catalogue.texts["en"]
            name = rt.render(language, f"language_{offer.language}") if named else offer.language
            note = " " + rt.render(language, "offer_language_note", {"speaks": name})
        again = ""
        if offer.again:
            # Everyone free had already had it: true whether one supporter is free or more.
            if (expired or {}).get(offer.conversation_id) == offer.supporter_id:
                again = " " + rt.render(language, "offer_again_timed_out")
            else:
                again = " " + rt.render(language, "offer_again")
        elif offer.alongside:
            again = " " + rt.render(language, "offer_alongside")
        if offer.resting:
            # Says what "again" would (nobody else free can take it), and that they rest
            # after a hard chat, or call.
            resting = "offer_resting_call" if offer.after_call else "offer_resting"
            again = " " + rt.render(language, resting)
        crisis: dict[str, Any] = {}
        if offer.priority > 0:
            # Its kind, and whose danger when only someone else's was told.
            crisis["kind"] = rt.crisis_kind(offer.crisis)
            if offer.someone_else:
                crisis["wording"] = "offer_priority_other"
        rt.to_supporter(
            offer.supporter,
            "offer_priority" if offer.priority > 0 else "offer",
            offer.conversation_id,
            **crisis,
            alias=offer.alias,
            minutes=max(1, round(timeout / 60)),
            language_note=note,
            waited=_waited(rt, language, offer.queued_at),
            returning=_returning(rt, language, offer),
            again=again,
            via=offer.relay_number,
            # An offer that arrives after it timed out would only confuse.
            valid_for=timeout,
        )
        rt.after_commit.expiries.append((offer.offer_id, timeout))
        if offer.first and offer.conversation_id not in first:
            # Once a chat: several offers of it in one round (fan-out) are one first offer.
            first.add(offer.conversation_id)
            rt.after_commit.first_offers.append((offer.queued_at, rt.now))


#: A texter waiting at this priority or above (a place of danger, an attempt under way) may take
#: a supporter's pending offer of a chat below it when nobody is free.
MAKE_WAY_FOR = priority_of("danger_place")


def match(rt: Context) -> list[routing.NewOffer]:
    """Offer waiting conversations to free supporters and announce the offers."""
    offers = find_offers(rt)
    if not offers:
        offers = _make_way(rt)
    announce(rt, offers)
    return offers


def _make_way(rt: Context) -> list[routing.NewOffer]:
    """Withdraw a pending offer of a less urgent chat when a texter whose life may be in danger
    now waits with nobody free, so that its supporter is offered them next; return the offers
    made. The less urgent texter keeps their place in the line.

    An offer stands two minutes: without this, a texter with an attempt under way waited behind
    an ordinary chat's offer until it was taken or timed out. The offer withdrawn is one whose
    supporter speaks the urgent texter's language if any does, and never one of someone who
    already had the urgent chat (missed or passed it); it is withdrawn only if its supporter is
    then offered the urgent chat (a shift's cap on chats, a call may keep them from it), so
    nobody loses an offer for nothing. On PostgreSQL the offers are locked first, skipping any a
    #take holds, and only offers still pending are withdrawn.
    """
    pending = (
        select(Offer.id)
        .where(Offer.conversation_id == Conversation.id, Offer.status == PENDING)
        .exists()
    )
    # In the queue's own order: priority, then who joined first.
    urgent = rt.session.execute(
        select(Conversation.id, Conversation.language)
        .where(Conversation.state == QUEUED, Conversation.priority >= MAKE_WAY_FOR, ~pending)
        .order_by(Conversation.priority.desc(), Conversation.queued_at, Conversation.id)
        .limit(1)
    ).first()
    if urgent is None:
        return []
    # Who had the urgent chat (missed or passed it); a withdrawn offer is none they had.
    had_it = (
        select(Offer.supporter_id)
        .where(Offer.conversation_id == urgent.id, Offer.status != WITHDRAWN)
        .scalar_subquery()
    )
    query = (
        select(Offer)
        .join(Conversation, Conversation.id == Offer.conversation_id)
        .where(
            Offer.status == PENDING,
            Conversation.priority < MAKE_WAY_FOR,
            Offer.supporter_id.not_in(had_it),
        )
        # The least urgent first, and of those the newest offer: its supporter has read least.
        .order_by(Conversation.priority, Offer.created_at.desc(), Offer.id.desc())
        .limit(10)
    )
    if rt.line.db.is_postgres:
        query = query.with_for_update(skip_locked=True, of=Offer)
    offers = list(rt.session.scalars(query))

    def speaks(offer: Offer) -> bool:
        supporter = rt.session.get(Supporter, offer.supporter_id)
        return supporter is not None and urgent.language in supporter.language_list

    offers.sort(key=lambda o: not speaks(o))  # stable: the order above within each
    for offer in offers[:3]:
        savepoint = rt.session.begin_nested()
        offer.status, offer.resolved_at = WITHDRAWN, rt.now
        rt.session.flush()  # matching reads the database, not the session
        made = find_offers(rt)
        if not any(
            o.conversation_id == urgent.id and o.supporter_id == offer.supporter_id for o in made
        ):
            savepoint.rollback()
            continue
        savepoint.commit()
        supporter = rt.session.get(Supporter, offer.supporter_id)
        conversation = rt.session.get(Conversation, offer.conversation_id)
        if supporter is not None and conversation is not None:
            rt.to_supporter(
                supporter,
                "offer_made_way",
                conversation.id,
                alias=conversation.contact.alias,
                via=offer.relay_number,
            )
        log.info("offer %s withdrawn for urgent conversation %s", offer.id, urgent.id)
        return made
    return []


def accept_offer(
    rt: Context, offer_id: int, supporter: Supporter, *, via: str | None = None
) -> bool:
    """Connect the supporter with the offered conversation, if it is still theirs (a refusal
    goes back on the number `via` they wrote to)."""
    offer = _lock(rt.session, Offer, offer_id)
    if offer is None or offer.supporter_id != supporter.id or offer.status != PENDING:
        # Taken by someone else since it was read: the winner's #take told them so.
        if offer is None or not told_taken(rt, supporter, offer):
            rt.to_supporter(supporter, "no_offer", via=via)
        return False
    conversation = _lock(rt.session, Conversation, offer.conversation_id)
    if conversation is None or conversation.state != QUEUED:
        offer.status, offer.resolved_at = WITHDRAWN, rt.now
        rt.to_supporter(supporter, "already_taken", via=offer.relay_number)
        return False
    if routing.load_of(rt.session, supporter.id) - 1 >= routing.sms_capacity(
        supporter, rt.line.settings.twilio_relay_numbers
    ):
        rt.to_supporter(supporter, "at_capacity", via=offer.relay_number)
        return False
    offer.status, offer.resolved_at = ACCEPTED, rt.now
    conversation.state, conversation.supporter_id = ACTIVE, supporter.id
    conversation.matched_at, conversation.relay_number = rt.now, offer.relay_number
    supporter.expired_in_row = 0
    contact = conversation.contact
    # Offered to several at once: the first #take wins and the others hear so.
    for other in rt.session.scalars(
        select(Offer).where(
            Offer.conversation_id == conversation.id,
            Offer.status == PENDING,
            Offer.id != offer.id,
        )
    ).all():
        other.status, other.resolved_at = WITHDRAWN, rt.now
        loser = rt.session.get(Supporter, other.supporter_id)
        if loser is not None:
            rt.to_supporter(loser, "already_taken", via=other.relay_number)
    rt.session.flush()
    via = offer.relay_number
    backlog = _waiting_words(
        rt, conversation, offer.id, supporter_language(supporter), supporter_id=supporter.id
    )
    if backlog:
        rt.to_supporter(
            supporter, "took_with_backlog", conversation.id, alias=contact.alias, via=via
        )
        for flag, words in backlog:
            rt.relay_to_supporter(conversation, supporter, f"{flag}{contact.alias}: {words}")
    else:
        rt.to_supporter(supporter, "took", conversation.id, alias=contact.alias, via=via)
    rt.to_texter(contact, conversation, "connected", name=supporter.name)
    return True


def told_taken(
    rt: Context, supporter: Supporter, offer: Offer | None = None, *, relay: str | None = None
) -> bool:
    """Say whether the supporter's offer (else their last, on `relay` if given) went to
    someone else while it would still be open, and they were told so (`already_taken`).

    A #take of it then lost a race and needs no answer of its own: "Someone else already
    took that chat" came first (the winner's #take tells the others), and "There is no offer
    waiting for you right now" after it only puzzled.
    """
    if offer is None:
        last = select(Offer).where(Offer.supporter_id == supporter.id)
        if relay is not None:
            last = last.where(Offer.relay_number == relay)
        offer = rt.session.scalar(last.order_by(Offer.id.desc()).limit(1))
    if offer is None or offer.supporter_id != supporter.id or offer.status != WITHDRAWN:
        return False
    if offer.resolved_at is None or offer.expires_at <= rt.now:
        return False  # it would have timed out by now: a late #take hears there is none
    vault = rt.line.vault
    told = rt.session.scalar(
        select(OutboundMessage.id)
        .where(
            # Every key: a text sent before the hash key turned over still counts.
            OutboundMessage.to_hash.in_(vault.lookup_hashes(vault.decrypt(supporter.phone_enc))),
            OutboundMessage.purpose == "already_taken",
            OutboundMessage.created_at >= offer.resolved_at,
        )
        .limit(1)
    )
    return told is not None


def _waiting_words(
    rt: Context,
    conversation: Conversation,
    taking: int,
    language: str = "en",
    *,
    supporter_id: int,
) -> list[tuple[str, str]]:
    """Return what the texter wrote in this conversation that the supporter taking it (offer
    `taking`) has not been shown, each after its marks, oldest first: all of it to someone
    who never had the chat (a chat handed back too), to someone who had it before only what
    came while they were gone (`_unseen`).

    Keywords the line acted on (YES, GROUPS, ...) are left out; HELP and its kin, and
    words that only look like STOP ("please stop", PARAR: the line told them how to stop,
    but they may be words about someone else), are words to a supporter and stay in. Every
    other text stays, however many: the relay joins them into as few SMS as it can.
    """
    query = select(InboundMessage).where(
        InboundMessage.conversation_id == conversation.id,
        InboundMessage.sender_kind == "texter",
    )
    unseen = _unseen(rt, conversation, taking, supporter_id)
    if unseen is not None:
        query = query.where(unseen)
    rows = rt.session.scalars(query.order_by(InboundMessage.id)).all()
    words = (Keyword.NONE, Keyword.HELP, Keyword.RATING, Keyword.STOP_LIKE)
    # Twilio posts an empty body only with pictures: the supporter hears that one came.
    picture = rt.render(language, "picture_waiting")
    waiting = []
    for row in rows:
        text = rt.line.vault.decrypt(row.body_enc)
        if text.strip() and classify(text) not in words:
            continue
        # Marked as a live relay would have been: which words raised safety, which told of
        # someone else at risk (and got the line's 911/988 text for them).
        flag = relay_marks(rt, language, raised=row.raised_safety, other=row.someone_else)
        if not text.strip():
            text = picture
        elif row.picture:
            text += " " + rt.render(language, "picture_too")
        waiting.append((flag, text))
    return waiting


def _unseen(
    rt: Context, conversation: Conversation, taking: int, supporter_id: int
) -> ColumnElement[bool] | None:
    """Return which of a conversation's texts the supporter taking it (offer `taking`) was
    not shown, as a condition on them; None when they never had it (they were shown none).

    Taking a chat shows a supporter every text before it (this replay) and each text relayed
    live while they hold it (inbound_messages.relayed), until they let it go (a #pass or no
    reply, on record as an offer declined then: chats.hand_back; else, on records from before
    that, someone else's #take). So they were not shown what came after their last #take but
    what was relayed to them live: what was written in the queue since, what another
    supporter read live, and what reached the webhook before they let go but was stepped
    after (queued, never relayed). "Since the last #take by anyone", by the clock, lost the
    first words in the queue to a second supporter, and to one taking a chat back what was
    written between their #pass and another's #take.
    """
    # Who took it and who let it go, when: a conversation has a few such offers.
    offers = [
        (sid, status, at)
        for sid, status, at in rt.session.execute(
            select(Offer.supporter_id, Offer.status, Offer.resolved_at).where(
                Offer.conversation_id == conversation.id,
                Offer.id != taking,
                Offer.status.in_((ACCEPTED, DECLINED)),
            )
        )
        if at is not None
    ]
    took = max(
        (at for sid, status, at in offers if sid == supporter_id and status == ACCEPTED),
        default=None,
    )
    if took is None:
        return None
    ended = [
        at
        for sid, status, at in offers
        if at > took
        and (
            (sid == supporter_id and status == DECLINED)
            or (sid != supporter_id and status == ACCEPTED)
        )
    ]
    live: ColumnElement[bool] = InboundMessage.relayed.is_(True)
    if ended:
        live = and_(live, InboundMessage.received_at < min(ended))
    return and_(InboundMessage.received_at >= took, not_(live))


def expire(rt: Context, offer_id: int) -> None:
    """Time out an offer nobody took, offer the texter again at once, and tell the
    supporter truthfully where it went (set away if they keep missing offers)."""
    offer = rt.session.get(Offer, offer_id)
    if offer is None or offer.status != PENDING or offer.expires_at > rt.now:
        return
    offer = resolve_offer(rt, offer_id, EXPIRED)
    if offer is None:
        return
    metrics.OFFERS_EXPIRED.inc()
    supporter = rt.session.get(Supporter, offer.supporter_id)
    assert supporter is not None
    conversation = rt.session.get(Conversation, offer.conversation_id)
    alias = conversation.contact.alias if conversation else "The texter"
    # Matched here, not in a later round, so that the text says where the offer went.
    made = find_offers(rt)
    back_to_them = any(
        o.conversation_id == offer.conversation_id and o.supporter_id == supporter.id for o in made
    )
    elsewhere = rt.session.scalar(
        select(func.count())
        .select_from(Offer)
        .where(
            Offer.conversation_id == offer.conversation_id,
            Offer.status == PENDING,
            Offer.supporter_id != supporter.id,
        )
    )
    if elsewhere:
        key = "offer_gone"
    elif back_to_them:
        key = ""  # the new offer itself says it timed out and comes back to them
    else:
        key = "offer_timed_out"
    if key:
        rt.to_supporter(supporter, key, offer.conversation_id, alias=alias, via=offer.relay_number)
    if supporter.id in rt.set_away_now:
        rt.to_supporter(supporter, "auto_away", count=supporter.expired_in_row)
    announce(rt, made, expired={offer.conversation_id: supporter.id})
    crisis_offer_untaken(rt, offer, supporter, "untaken_timed_out")


#: The kind of alert a crisis texter's untaken offer raises (once a conversation).
CRISIS_UNTAKEN = "crisis_untaken"


def crisis_offer_untaken(rt: Context, offer: Offer | None, supporter: Supporter, how: str) -> None:
    """Tell the on-call coordinators, once a conversation, that a texter who may be in crisis
    still waits after an offer of them went untaken (`how`: timed out, passed, given back by
    #away); `offer` is what `resolve_offer` returned (None: resolved elsewhere, nothing to say).

    The queue's own alert comes after a quarter of an hour; a texter in crisis whose offer
    a supporter let go needs a person to look sooner (call in someone, take it themselves).
    """
    conversation = rt.session.get(Conversation, offer.conversation_id) if offer else None
    if conversation is None or conversation.priority <= 0 or conversation.state != QUEUED:
        return
    # Locked first: two offers of one texter ending at once (fan-out) alert once.
    if _lock(rt.session, Conversation, conversation.id) is None:
        return
    told = rt.session.scalar(
        select(func.count())
        .select_from(Alert)
        .where(Alert.kind == CRISIS_UNTAKEN, Alert.conversation_id == conversation.id)
    )
    if told:
        return
    staff = routing.staffing(rt.session, rt.rotas(), rt.now, policy(rt))
    queued_at = conversation.queued_at or rt.now
    minutes = max(0, int((rt.now - queued_at).total_seconds() // 60))
    alias = conversation.contact.alias
    rt.alert(
        CRISIS_UNTAKEN,
        conversation,
        f"{alias} may be in crisis and still waits ({minutes} min): "
        f"{rt.line.catalogue.words('en', Phrase(how, {'name': supporter.name}))}; "
        f"{staff.free} free of {staff.on_shift} on shift",
        key="crisis_untaken_alert",
        alias=alias,
        minutes=minutes,
        how=Phrase(how, {"name": supporter.name}),
        free=staff.free,
        on_shift=staff.on_shift,
    )


def withdraw_offers(rt: Context, conversation: Conversation, alias: str) -> None:
    """Withdraw pending offers for a conversation and tell the supporters."""
    offers = rt.session.scalars(
        select(Offer).where(Offer.conversation_id == conversation.id, Offer.status == PENDING)
    ).all()
    for offer in offers:
        offer.status, offer.resolved_at = WITHDRAWN, rt.now
        supporter = rt.session.get(Supporter, offer.supporter_id)
        if supporter is not None:
            rt.to_supporter(
                supporter,
                "offer_withdrawn",
                conversation.id,
                alias=alias,
                via=offer.relay_number,
            )
    if offers:
        rt.after_commit.match = True


def schedule_open_notice(rt: Context, conversation: Conversation) -> None:
    """Schedule the 'we are open' text for when the rota next has someone on shift."""
    opening = rt.rotas().next_opening(rt.now)
    if opening is not None:
        rt.after_commit.open_notices.append((conversation.id, opening))


def _waited(rt: Context, language: str, queued_at: datetime | None) -> str:
    """Say how long a texter has waited, for an offer's text."""
    minutes = int((rt.now - queued_at).total_seconds() // 60) if queued_at else 0
    if minutes < 1:
        return rt.render(language, "offer_waited_new")
    if minutes < 120:
        return rt.render(language, "offer_waited_minutes", {"minutes": minutes})
    hours = {"hours": minutes // 60, "minutes": minutes % 60}
    return rt.render(language, "offer_waited_hours", hours)


def _returning(rt: Context, language: str, offer: routing.NewOffer) -> str:
    """Say whether the texter talked with a peer before; with whom only when they asked for
    this supporter again (their consent to continuity)."""
    if offer.last_talked is not None:
        ago = _ago(rt, language, offer.last_talked)
        return rt.render(language, "offer_returning_you", {"ago": ago})
    return rt.render(language, "offer_returning") if offer.returning else ""


def _ago(rt: Context, language: str, when: datetime) -> str:
    """Say roughly how long ago something was, in a supporter's text."""
    days = (rt.now - when).days
    if days < 1:
        return rt.render(language, "ago_under_a_day")
    if days < 2:
        return rt.render(language, "ago_a_day")
    if days < 7:
        return rt.render(language, "ago_days", {"days": days})
    if days < 14:
        return rt.render(language, "ago_last_week")
    if days < 31:
        return rt.render(language, "ago_weeks", {"weeks": days // 7})
    return rt.render(language, "ago_over_a_month")


def run_matching(line: LineServices, now: datetime | None = None) -> Sequence[routing.NewOffer]:
    """Run one matching round in its own transaction."""
    with transaction(line, now) as runtime:
        return match(runtime)


def expire_offer(line: LineServices, offer_id: int, now: datetime | None = None) -> None:
    """Time out one offer in its own transaction."""
    with transaction(line, now) as runtime:
        expire(runtime, offer_id)


def overdue_offers(session: Session, now: datetime) -> list[int]:
    """Return pending offers past their time, whose time-out job may have been lost."""
    return list(
        session.scalars(
            select(Offer.id)
            .where(Offer.status == PENDING, Offer.expires_at < now - timedelta(seconds=5))
            .order_by(Offer.id)
        )
    )
