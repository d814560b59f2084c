"""The supporter flow's effects carried out on the effect context."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from peerline.flows import effects as fx
from peerline.flows import supporter as supporter_flow
from peerline.flows.catalogue import Phrase
from peerline.service import calls, rota
from peerline.service.availability import rota_of
from peerline.service.context import (
    Context,
    resolve_offer,
)
from peerline.service.models import (
    DECLINED,
    PENDING,
    ContactRecord,
    Conversation,
    InboundMessage,
    Offer,
    OutboundMessage,
    Supporter,
)
from peerline.service.runtime import debrief
from peerline.service.runtime.chats import (
    end_chat,
    free_reminded_shift,
    pass_chat,
    round_when_hold_ends,
)
from peerline.service.runtime.offers import (
    accept_offer,
    crisis_offer_untaken,
    told_taken,
)
from peerline.service.runtime.safety import block, raise_safety
from peerline.service.voice.records import caller_alias, latest_call_record

log = logging.getLogger(__name__)

# The after-chat texts, which go to a supporter in the language they speak first.
DEBRIEF_REPLIES = frozenset(
    (
        "note_ok",
        "note_ok_no_topics",
        "note_ok_no_score",
        "note_ok_no_score_topics",
        "note_help",
        "note_score",
        "note_no_chat",
        "referred_ok",
        "ready_ok",
        "ready_ok_away",
        "ready_not_paused",
    )
)
# Those of the line's texts about noting a contact that ask for its missing 1-5 (after
# "#note lonely, heavy one"), and the others that begin or end a note: the latest of them
# says whether a bare "#note 3" answers such a question.
SCORE_ASKS = ("note_ok_no_score", "note_ok_no_score_topics")
NOTE_TEXTS = (
    *SCORE_ASKS,
    "note_ok",
    "note_ok_no_topics",
    "debrief_invite",
    "debrief_invite_paused",
)
# How long after such a question a bare "#note 3" answers it, even from the next chat.
SCORE_ASKED = timedelta(minutes=10)


def supporter_message(
    rt: Context, supporter: Supporter, inbound: InboundMessage, text: str, media: int = 0
) -> None:
    """Step a supporter's flow with one message (their row locked by the caller) and carry
    out its effects; pictures are not passed on, and the supporter hears so."""
    relay = (
        inbound.to_number if inbound.to_number in rt.line.settings.twilio_relay_numbers else None
    )
    # The number they wrote to tells which chat or offer they mean; answers go back there.
    chat = rt.chat_of(supporter.id, relay)
    offer = rt.pending_offer_of(supporter.id, relay)
    offered = rt.session.get(Conversation, offer.conversation_id) if offer else None
    spec = rt.line.holidays_spec(rt.session)
    on_shift = rota.on_shift(
        rota_of(supporter),
        rt.line.timezone(rt.session),
        rt.now,
        rota.Closures(spec) if spec else None,
    )
    last = debrief.last_chat_of(rt, supporter, chat)
    # A call answered after their last chat is what a #note is about (issue 21: voice).
    call_record = None if chat is not None else latest_call_record(rt, supporter.id, last)
    if call_record is not None:
        last_alias: str | Phrase | None = caller_alias(rt, call_record)
    else:
        last_alias = last.contact.alias if last else None
    # The chat (or call) whose missing 1-5 the line just asked for, for a bare "#note 3".
    topics = rt.line.settings.note_topics
    asked = _score_asked(rt, supporter) if supporter_flow.answers_a_score(text, topics) else None
    state = supporter_flow.SupporterState(
        away=supporter.away,
        on_shift=on_shift,
        chat_alias=chat.contact.alias if chat else None,
        offer_id=offer.id if offer else None,
        offer_alias=offered.contact.alias if offered else None,
        # Read only for a #take with no offer: did it lose a race they were told of?
        offer_taken=offer is None
        and supporter_flow.is_take(text)
        and told_taken(rt, supporter, relay=relay),
        paused=supporter.paused_until is not None and supporter.paused_until > rt.now,
        last_alias=last_alias,
        topics=topics,
        score_asked=_asked_about(rt, asked) if asked is not None else None,
    )
    if chat is not None:
        inbound.conversation_id = chat.id
    if media:
        rt.to_supporter(supporter, "picture_not_passed", chat.id if chat else None, via=relay)
        if not text.strip():
            return  # never an empty relay
    # A score asked for is noted on that chat's (or call's) record, wherever they are now.
    record = asked if asked is not None else call_record
    for effect in supporter_flow.decide(state, text).effects:
        if record is not None:
            _record_effect(rt, effect, supporter, record, relay)
        else:
            _supporter_effect(rt, effect, supporter, chat, relay, last)


def _score_asked(rt: Context, supporter: Supporter) -> ContactRecord | None:
    """Return the record of the chat or call whose missing 1-5 the line asked the supporter
    for within SCORE_ASKED, while that is its latest text about notes and the 1-5 is still
    missing."""
    phone = rt.line.vault.decrypt(supporter.phone_enc)
    latest = rt.session.execute(
        select(OutboundMessage.purpose, OutboundMessage.conversation_id, OutboundMessage.created_at)
        .where(
            # Every key: a question asked before the hash key turned over still counts.
            OutboundMessage.to_hash.in_(rt.line.vault.lookup_hashes(phone)),
            OutboundMessage.purpose.in_(NOTE_TEXTS),
            OutboundMessage.created_at > rt.now - SCORE_ASKED,
        )
        .order_by(OutboundMessage.id.desc())
        .limit(1)
    ).first()
    if latest is None or latest.purpose not in SCORE_ASKS:
        return None
    if latest.conversation_id is not None:
        about = ContactRecord.conversation_id == latest.conversation_id
    else:
        # Asked about a call (its texts name no chat): their last call ended before it.
        about = (
            (ContactRecord.supporter_id == supporter.id)
            & ContactRecord.call_id.is_not(None)
            & (ContactRecord.ended_at <= latest.created_at)
        )
    record = rt.session.scalar(
        select(ContactRecord)
        .where(about)
        .order_by(ContactRecord.ended_at.desc(), ContactRecord.id.desc())
        .limit(1)
    )
    return record if record is not None and record.supporter_score is None else None


def _asked_about(rt: Context, record: ContactRecord) -> supporter_flow.ScoreAsked:
    """Return how the supporter knows the contact a 1-5 was asked for, and its topics."""
    conversation = (
        rt.session.get(Conversation, record.conversation_id) if record.conversation_id else None
    )
    alias = conversation.contact.alias if conversation else caller_alias(rt, record)
    return supporter_flow.ScoreAsked(alias, tuple(t for t in record.topics.split(",") if t))


def _record_effect(
    rt: Context, effect: fx.Effect, supporter: Supporter, record: ContactRecord, via: str | None
) -> None:
    """Carry out a #note, #referred or #debrief about a contact's record (a call's, or the
    chat whose 1-5 was asked for); other effects as always."""
    match effect:
        case fx.Reply(key=key, params=params) if key in DEBRIEF_REPLIES:
            rt.to_supporter(supporter, key, record.conversation_id, via=via, **params)
        case fx.SaveNote(note=note):
            debrief.keep_note(rt, record, note)
        case fx.MarkReferred():
            record.referred = True
        case fx.AskDebrief():
            alias = caller_alias(rt, record)
            debrief.ask_debrief(rt, supporter, None, via, call_id=record.call_id, alias=alias)
        case _:
            _supporter_effect(rt, effect, supporter, None, via, None)


def _supporter_effect(
    rt: Context,
    effect: fx.Effect,
    supporter: Supporter,
    chat: Conversation | None,
    via: str | None,
    last: Conversation | None = None,
) -> None:
    """Carry out one effect of a supporter's flow; answers go back on the number `via`.

    `last` is the chat a #note, #referred or #debrief is about (the current one, else the
    supporter's last)."""
    match effect:
        case fx.Reply(key=key, params=params) if key in DEBRIEF_REPLIES:
            rt.to_supporter(supporter, key, last.id if last else None, via=via, **params)
        case fx.Reply(key=key, params=params):
            rt.to_supporter(supporter, key, chat.id if chat else None, via=via, **params)
        case fx.SaveNote(note=note):
            if last is not None:
                debrief.save_note(rt, last, note)
        case fx.MarkReferred():
            if last is not None:
                debrief.mark_referred(rt, last)
        case fx.AskDebrief():
            debrief.ask_debrief(rt, supporter, last, via)
        case fx.Ready():
            debrief.ready(rt, supporter)
        case fx.Relay(text=text):
            if chat is not None:
                rt.to_texter_words(chat, f"{supporter.name}: {text}")
        case fx.AcceptOffer(offer_id=offer_id):
            accept_offer(rt, offer_id, supporter, via=via)
        case fx.DeclineOffer(offer_id=offer_id):
            declined = resolve_offer(rt, offer_id, DECLINED)
            if declined is not None:
                # A #pass answers the line: misses before it are no longer in a row.
                supporter.expired_in_row = 0
                round_when_hold_ends(rt)
            crisis_offer_untaken(rt, declined, supporter, "untaken_passed")
        case fx.EndChat(by=by, ask_rating=ask_rating):
            if chat is not None:
                end_chat(rt, chat, by=by, ask_rating=ask_rating)
        case fx.PassChat():
            if chat is not None:
                handed_back = pass_chat(rt, chat, supporter)
                # A chat in crisis handed back waits like an offer let go: on call hears now.
                crisis_offer_untaken(rt, handed_back, supporter, "untaken_handed_back")
        case fx.SetAway(away=away):
            supporter.away = away
            if away:
                free_reminded_shift(rt, supporter)
                # Away means no offers at all, including any waiting on other numbers.
                for other in rt.session.scalars(
                    select(Offer).where(Offer.supporter_id == supporter.id, Offer.status == PENDING)
                ):
                    given_back = resolve_offer(rt, other.id, DECLINED)
                    if given_back is not None:
                        # Given back like a #pass, it holds like one: a round when it ends,
                        # should they be #back by then.
                        round_when_hold_ends(rt)
                    crisis_offer_untaken(rt, given_back, supporter, "untaken_away")
            else:
                supporter.expired_in_row = 0
                rt.after_commit.match = True
        case fx.SetOptOut(opted_out=opted_out):
            supporter.opted_out = opted_out
        case fx.RaiseAlert(alias=alias):
            told = 0
            if chat is not None:
                told = raise_safety(rt, chat, "supporter", "supporter_alert", supporter.name)
            # Say only what was done: whether anyone on call was really texted.
            key = "alert_told" if told else "alert_nobody_on_call"
            rt.to_supporter(supporter, key, chat.id if chat else None, via=via, alias=alias)
        case fx.PlaceCall(argument=argument):
            calls.call_command(rt, supporter, chat, argument, via)
        case fx.BlockTexter():
            if chat is not None:
                alias = chat.contact.alias
                block(rt, chat.contact, f"#block by {supporter.name}", status="review")
                blocked = Phrase("alert_what_blocked", {"name": supporter.name})
                rt.safety_alert("block_review", chat, alias, blocked)
        case _:
            raise ValueError(f"a supporter's flow cannot ask for {effect!r}")
