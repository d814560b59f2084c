"""The texter flow's effects carried out on the effect context."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import func, select

from peerline.flows import effects as fx
from peerline.flows import texter as texter_flow
from peerline.flows.emergency import NAMED, read_emergency
from peerline.flows.keywords import Keyword, classify
from peerline.flows.language import guess
from peerline.service.context import (
    AFTER_CHAT,
    AFTER_CHAT_REPLIES,
    AGAIN_QUIET,
    ASKED_QUIET,
    BYE_ASKED,
    EMERGENCY_AGAIN,
    ERASE_WINDOW,
    FLOOD_QUIET,
    MENU_QUIET,
    MENU_TEXTS,
    PLACE_IN_LINE,
    Context,
    _due,
    relay_marks,
    supporter_language,
)
from peerline.service.crisis import BURST_TEXTS
from peerline.service.crisis_detection import Detection
from peerline.service.models import (
    ACTIVE,
    CLOSED,
    OPEN_STATES,
    QUEUED,
    RATING,
    WELCOMED,
    Alert,
    Contact,
    Conversation,
    InboundMessage,
    OutboundMessage,
    SafetyEvent,
    Supporter,
)
from peerline.service.runtime.chats import (
    end_chat,
    previous_supporter_id,
    subscribe,
    want_checkin,
)
from peerline.service.runtime.debrief import rated
from peerline.service.runtime.offers import (
    line_status,
    schedule_open_notice,
    withdraw_offers,
)
from peerline.service.runtime.safety import erase, opted_out_in_crisis, raise_safety
from peerline.service.runtime.timers import (
    next_tick_delay,
)

log = logging.getLogger(__name__)
# A burst: the texter's texts of the last few minutes, read together by the crisis check
# (`crisis.BURST_TEXTS` of them at most; figures in docs/crisis.md, "Bursts").
BURST_WINDOW = timedelta(minutes=5)


def texter_message(
    rt: Context,
    contact: Contact,
    inbound: InboundMessage,
    text: str,
    *,
    flood: bool = False,
    media: int = 0,
) -> None:
    """Run the texter's flow on one message (their contact locked by `contact_for`) and
    carry out its effects; a flood only quietens the line's automatic answers."""
    conversation = rt.open_conversation(contact.id)
    returning = conversation is not None or bool(
        rt.session.scalar(
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.contact_id == contact.id)
        )
    )
    supporter = conversation.supporter if conversation else None
    previous_id = (
        previous_supporter_id(rt, contact.id, conversation.id if conversation else None)
        if returning
        else None
    )
    previous = rt.session.get(Supporter, previous_id) if previous_id else None
    # When they last heard their place in line (None: not in the line, or never told); a
    # question to the line right after the crisis welcome is still answered ("are you
    # there"): only the ordinary place texts quieten it (`asked`).
    told, asked = _place_told_at(rt, conversation)
    still_waiting = timedelta(minutes=rt.line.settings.still_waiting_minutes)
    state = texter_flow.TexterState(
        stage=conversation.state if conversation else texter_flow.NEW,
        language=conversation.language if conversation else contact.language,
        opted_out=contact.opted_out,
        returning=returning,
        supporter_name=supporter.name if supporter else None,
        previous_supporter=previous.name if previous and previous.active else None,
        crisis_reply_due=_due(contact.crisis_replied_at, rt.now, rt.crisis_window),
        erase_pending=not _due(contact.erase_requested_at, rt.now, ERASE_WINDOW),
        still_waiting_due=_due(told, rt.now, still_waiting),
        asked_due=_due(asked, rt.now, ASKED_QUIET),
    )
    if state.stage == ACTIVE and conversation is not None and conversation.crisis_at is not None:
        # A BYE in a chat flagged for crisis: asked about once first (one query, only then).
        bye_asked = classify(text) is Keyword.BYE and _said_lately(
            rt, contact, "bye_confirm", BYE_ASKED
        )
        state = replace(state, chat_flagged=True, bye_asked=bye_asked)
    if state.stage in (WELCOMED, texter_flow.NEW, CLOSED):
        # The menu minutes ago ("is anyone there" after the welcome, words after START's or
        # HELP's answer): they hear a short answer, not the menu again (one query), and that
        # short answer not again within seconds, to a burst (one more, only then).
        menu_due = not _said_lately(rt, contact, MENU_TEXTS, MENU_QUIET)
        again_due = menu_due or not _said_lately(rt, contact, "menu_again", AGAIN_QUIET)
        state = replace(state, menu_due=menu_due, again_due=again_due)
    # Words just after a chat (the rating question open, or closed minutes ago): about it.
    ended = _ended_chat(rt, contact, conversation) if returning else None
    if ended is not None:
        state, ended = _after_chat_state(rt, state, contact, ended)
    if state.stage in (WELCOMED, QUEUED, RATING) and guess(text) not in (None, state.language):
        # Words in the other language: whether theirs is established decides (one query).
        assert conversation is not None
        state = replace(state, earlier_languages=_earlier_languages(rt, conversation, inbound))
    raised_at = _crisis_raised_at(rt, contact)
    own_lately = _own_crisis_lately(rt, contact, conversation, raised_at)
    # A texter whose crisis was raised lately keeps their place at the front if they join the
    # line again (a tester's STOP by mistake, then START and YES, joined behind two others).
    flagged = None
    if raised_at is not None and not _due(raised_at, rt.now, rt.crisis_window):
        flagged = _flagged_lately(rt, contact)
    detection = rt.line.crisis.detect(text, after_crisis=own_lately)
    if not detection.matched:
        # Only a text that says nothing alone is read with the ones before it (one query).
        texts, model = burst(rt, inbound, text, raised_at)
        if len(texts) > 1:
            detection = rt.line.crisis.detect_together(texts, model=model)
    # Words that tell of someone else at risk are read apart from the rest: the rest may be the
    # texter's own crisis, or nothing of theirs (a worried texter: they hear what to do if the
    # other person is in danger now, over an alarm only the model raised too, a phrase found in
    # the other person's words or quoted from them, or their words read again as the writer's;
    # never over crisis words the detector found of the writer's own).
    detection, worried = rt.line.crisis.answer(text, detection)
    emergency = read_emergency(text)
    if (
        not contact.opted_out
        and emergency is not None
        and (
            emergency == NAMED
            or _said_lately(rt, contact, "someone_else_emergency", rt.crisis_window)
        )
    ):
        # Another person's emergency under way ("my mom took pills and wont wake up" read as
        # the writer's preparation), or its signs told again ("still not breathing"): theirs,
        # as urgent as an attempt, and 911 for them now, again when told again.
        language = detection.language or guess(text)
        detection, worried = Detection(True, language, "emergency", texter_flow.ATTEMPT), True
        due = not _said_lately(rt, contact, "someone_else_emergency", EMERGENCY_AGAIN)
        state = replace(state, emergency=True, emergency_due=due)
    category = detection.category if detection.matched else None
    if worried and state.crisis_reply_due and not contact.opted_out:
        # Not again within the crisis window: a worried texter's every text would repeat it.
        # (Asked only when the flow could send it.)
        due = not _said_lately(rt, contact, "someone_else", rt.crisis_window)
        state = replace(state, someone_else_due=due)
    if category == texter_flow.ATTEMPT and not state.crisis_reply_due:
        # The resources went out lately, perhaps for words less urgent: 911 now is news.
        state = replace(state, attempt_reply_due=not _attempt_told(rt, contact))
    speaks, priority = state.language, 0
    if state.stage == ACTIVE:
        status = texter_flow.LineStatus(open_now=True)  # relaying needs no rota
    else:
        # Crisis words join at their category's priority: the place they hear is true.
        priority = rt.line.crisis.priority_of(category) if category else 0
        priority = max(priority, flagged.priority if flagged is not None else 0)
        # Crisis words plainly in the other language are answered in it (the next opening too).
        switch, once = texter_flow.crisis_move(state, text, detection.language)
        said = next((e.language for e in switch if isinstance(e, fx.SetLanguage)), once)
        speaks = said if category and said else state.language
        status = line_status(rt, conversation, speaks, priority=priority)
    step = partial(
        texter_flow.decide,
        state,
        text=text,
        crisis=category,
        media=media,
        crisis_language=detection.language,
        someone_else=worried,
    )
    outcome = step(status)
    moved = next((e.language for e in outcome.effects if isinstance(e, fx.SetLanguage)), None)
    if state.stage != ACTIVE and moved not in (None, speaks):
        # A first text the flow read as Spanish: the next opening and the groups in it too
        # (a closed line told "me quiero morir" it opens again "tomorrow at 9:00 AM").
        outcome = step(line_status(rt, conversation, moved, priority=priority))
    if conversation is None and ended is not None and outcome.stage == CLOSED:
        # Words after the chat are kept with it (the transcript) and answered from it.
        conversation = ended
    if conversation is None and outcome.stage in OPEN_STATES:
        conversation = _new_conversation(rt, contact)
    if conversation is not None:
        inbound.conversation_id = conversation.id
    effects = outcome.effects
    if flood:
        effects = _quieten(rt, contact, outcome.stage, effects)
    # Words that raise safety reach the supporter flagged, wherever the raise sits in the list.
    raised = any(isinstance(effect, fx.RaiseSafety) for effect in effects)
    # Words that got the someone-else text reach the supporter marked so (what the line said),
    # and so do words that raised the flag over someone else's risk only, the text already
    # sent in this crisis window ("she is on the bridge" after "my friend took her pills").
    other = fx.Reply("someone_else") in effects or (raised and worried)
    # Kept on the text too: a supporter who takes the chat later sees it marked the same way,
    # and a flag raised over someone else's words is not the texter's own crisis.
    inbound.raised_safety, inbound.someone_else, inbound.picture = raised, other, media > 0
    joining = fx.JoinQueue() in effects
    on_call_told = False
    if fx.SetOptOut(True) in effects and not contact.opted_out and flagged is not None:
        # STOP lately after crisis words: the line can no longer text them, and the supporter
        # of a chat would be the only one to know. On call hears it, once a conversation.
        on_call_told = opted_out_in_crisis(rt, conversation or flagged) > 0
    elif fx.Erase() in effects and not contact.opted_out and flagged is not None:
        # The same for DELETE confirmed, which also leaves the line unable to reach them.
        opted_out_in_crisis(rt, conversation or flagged, erased=True)
    if conversation is None and raised:
        # Crisis words from someone the line cannot text (they opted out): nothing goes to
        # them, but a coordinator must hear of it, and the words are kept where the console
        # finds them.
        conversation = _crisis_record(rt, contact, flagged)
        inbound.conversation_id = conversation.id
    for effect in effects:
        if (
            isinstance(effect, fx.JoinQueue)
            and conversation is not None
            and conversation.state == CLOSED
        ):
            # The last conversation just closed (a rating left unanswered): a new one
            # joins the queue, so the old one keeps its supporter and its record; a
            # crisis raised by these same words goes with it.
            closed, conversation = conversation, _new_conversation(rt, contact)
            conversation.priority, conversation.crisis_at = closed.priority, closed.crisis_at
            inbound.conversation_id = conversation.id
        _texter_effect(
            rt,
            effect,
            contact,
            conversation,
            raised=raised,
            other=other,
            own_lately=own_lately,
            joining=joining,
            on_call_told=on_call_told,
        )
        if (
            isinstance(effect, fx.Relay | fx.Notify)
            and conversation is not None
            and conversation.supporter is not None
            and not conversation.supporter.opted_out
        ):
            # Read live in the chat: a re-take by this supporter does not replay it.
            inbound.relayed = True
    if (
        joining
        and conversation is not None
        and flagged is not None
        and conversation.priority < flagged.priority
    ):
        conversation.priority = flagged.priority
        conversation.crisis_at = conversation.crisis_at or flagged.crisis_at
    if conversation is not None and outcome.stage in (*OPEN_STATES, CLOSED):
        if conversation.state != CLOSED or outcome.stage == CLOSED:
            conversation.state = outcome.stage
        if conversation.state == CLOSED and conversation.closed_at is None:
            conversation.closed_at = rt.now


def _ended_chat(
    rt: Context, contact: Contact, conversation: Conversation | None
) -> Conversation | None:
    """Return the chat a texter's words come just after: their open conversation at the
    rating question, else their latest one, when it was a chat that ended within AFTER_CHAT
    (and was neither erased nor ended by a #block: its supporter asked to hear no more)."""
    if conversation is not None and conversation.state != RATING:
        return None
    latest = (
        conversation
        or rt.session.scalars(
            select(Conversation)
            .where(Conversation.contact_id == contact.id)
            .order_by(Conversation.id.desc())
            .limit(1)
        ).first()
    )
    if (
        latest is None
        or latest.state not in (RATING, CLOSED)
        or latest.matched_at is None
        or latest.closed_at is None
        or latest.purged_at is not None
        or rt.now - latest.closed_at > AFTER_CHAT
    ):
        return None
    blocked = rt.session.scalar(
        select(Alert.id)
        .where(Alert.kind == "block_review", Alert.conversation_id == latest.id)
        .limit(1)
    )
    return None if blocked is not None else latest


def _after_chat_state(
    rt: Context, state: texter_flow.TexterState, contact: Contact, ended: Conversation
) -> tuple[texter_flow.TexterState, Conversation | None]:
    """Return the flow's state for words just after the chat `ended` (whether it is rated,
    its supporter while still on shift, which short answers went out since it ended), and
    the chat; or the state as it was and None when the line's menu went out since (START's
    answer after a STOP, a welcome back): they moved on from it. One query for the texts."""
    hashes = rt.phone_hashes(contact)
    told = set(
        rt.session.scalars(
            select(OutboundMessage.purpose).where(
                OutboundMessage.to_hash.in_(hashes),
                OutboundMessage.purpose.in_((*AFTER_CHAT_REPLIES, *MENU_TEXTS)),
                OutboundMessage.created_at >= ended.closed_at,
            )
        )
    )
    if told & set(MENU_TEXTS):
        return state, None
    supporter = ended.supporter
    reachable = (
        supporter is not None
        and supporter.active
        and not supporter.opted_out
        and supporter.id in rt.rotas().on_shift(rt.now)
    )
    after = replace(
        state,
        after_chat=True,
        after_chat_rated=ended.rating is not None,
        after_chat_supporter=supporter.name if reachable and supporter is not None else None,
        after_chat_due=not told & {"after_chat", "after_chat_passed"},
        thanks_due="thanks_no_rating" not in told,
    )
    if after.previous_supporter is None and supporter is not None and supporter.active:
        # At the rating question the chat is still theirs: "can I talk to Sam again" names him.
        after = replace(after, previous_supporter=supporter.name)
    return after, ended


def _after_chat_words(
    rt: Context, conversation: Conversation, contact: Contact, text: str, *, other: bool
) -> None:
    """Pass words written just after a chat to the supporter who had it (the flow asks only
    while they are on shift), marked by alias as after the chat and that a reply will not
    reach them; from the line's number, since the chat's relay number may carry another
    chat of theirs by now."""
    supporter = conversation.supporter
    if supporter is None:
        return
    speaks = supporter_language(supporter)
    flag = relay_marks(rt, speaks, raised=False, other=other)
    mark = rt.render(speaks, "after_chat_mark", {"alias": contact.alias})
    current = rt.chat_of(supporter.id)
    if current is not None and current.id != conversation.id:
        # A reply to the line's number goes to their one chat now: they must know whose.
        note = rt.render(speaks, "after_chat_note_busy", {"alias": current.contact.alias})
    else:
        note = rt.render(speaks, "after_chat_note")
    rt.to_supporter(supporter, "relay", conversation.id, text=f"{flag}{mark} {text} {note}")


# How many of a texter's earlier texts say whether their language is established.
EARLIER_TEXTS = 5


def _earlier_languages(
    rt: Context, conversation: Conversation, inbound: InboundMessage
) -> tuple[str, ...]:
    """Return the languages the texter's last few texts in a conversation read as, newest
    first, "" for one that says none ("yes", "ok"): a neutral text breaks a run, so "hola? hay
    alguien?", "ok", "gracias" is no two Spanish texts in a row."""
    bodies = rt.session.scalars(
        select(InboundMessage.body_enc)
        .where(
            InboundMessage.conversation_id == conversation.id,
            InboundMessage.sender_kind == "texter",
            InboundMessage.id < inbound.id,
        )
        .order_by(InboundMessage.id.desc())
        .limit(EARLIER_TEXTS)
    ).all()
    read = (texter_flow.text_language(rt.line.vault.decrypt(body)) for body in bodies)
    return tuple(language or "" for language in read)


def _flagged_lately(rt: Context, contact: Contact) -> Conversation | None:
    """Return the texter's latest conversation flagged within the crisis window, if any."""
    return rt.session.scalar(
        select(Conversation)
        .where(
            Conversation.contact_id == contact.id,
            Conversation.crisis_at >= rt.now - rt.crisis_window,
        )
        .order_by(Conversation.crisis_at.desc(), Conversation.id.desc())
        .limit(1)
    )


def _crisis_record(rt: Context, contact: Contact, flagged: Conversation | None) -> Conversation:
    """Return the conversation that keeps crisis words the line cannot answer by text: the
    texter's latest one flagged within the crisis window (`flagged`, its alert was raised),
    else a new, closed one."""
    if flagged is not None:
        return flagged
    conversation = _new_conversation(rt, contact)
    conversation.state, conversation.closed_at = CLOSED, rt.now
    return conversation


def _attempt_told(rt: Context, contact: Contact) -> bool:
    """Say whether the last crisis resources this texter was sent (within the crisis window,
    as `crisis_reply_due` says) were the words for an attempt under way: sent with an attempt
    raised by the same step, at the same moment."""
    if contact.crisis_replied_at is None:
        return False
    return bool(
        rt.session.scalar(
            select(SafetyEvent.id)
            .join(Conversation, Conversation.id == SafetyEvent.conversation_id)
            .where(
                Conversation.contact_id == contact.id,
                SafetyEvent.source == "detector",
                SafetyEvent.category == texter_flow.ATTEMPT,
                SafetyEvent.created_at == contact.crisis_replied_at,
            )
            .limit(1)
        )
    )


def _crisis_raised_at(rt: Context, contact: Contact) -> datetime | None:
    """Return when a crisis was last raised for this texter, in any conversation."""
    return rt.session.scalar(
        select(func.max(Conversation.crisis_at)).where(Conversation.contact_id == contact.id)
    )


def _own_crisis_lately(
    rt: Context,
    contact: Contact,
    conversation: Conversation | None,
    raised_at: datetime | None,
) -> bool:
    """Say whether the texter's own crisis was raised within the crisis window: by their words
    (not a worried texter's alarm about someone else) or a supporter's #alert, in the open
    conversation, or in the last one if a supporter or the line closed it (not the texter's
    BYE: they ended that chat)."""
    if raised_at is None or _due(raised_at, rt.now, rt.crisis_window):
        return False
    if conversation is None:
        conversation = rt.session.scalars(
            select(Conversation)
            .where(Conversation.contact_id == contact.id)
            .order_by(Conversation.id.desc())
            .limit(1)
        ).first()
        if conversation is None or conversation.closed_by not in ("supporter", "idle"):
            return False
    since = rt.now - rt.crisis_window
    words = (
        select(InboundMessage.id)
        .where(
            InboundMessage.conversation_id == conversation.id,
            InboundMessage.raised_safety.is_(True),
            InboundMessage.someone_else.is_(False),
            InboundMessage.received_at > since,
        )
        .limit(1)
    )
    alert = (
        select(SafetyEvent.id)
        .where(
            SafetyEvent.conversation_id == conversation.id,
            SafetyEvent.source == "supporter",
            SafetyEvent.created_at > since,
        )
        .limit(1)
    )
    return bool(rt.session.scalar(words) or rt.session.scalar(alert))


def burst(
    rt: Context, inbound: InboundMessage, text: str, raised: datetime | None
) -> tuple[list[str], bool]:
    """Return the texter's texts of the last few minutes, oldest first, ending with `text`,
    and whether the model may read them together.

    People split one thought across texts ("i cant" / "do this anymore" / "im at the bridge"),
    so the crisis check reads the burst together when the newest text alone says nothing
    (`CrisisDetector.detect_together`). Only texts after `raised`, the last crisis raised for
    this texter (in any conversation: a BYE closes one), count; while that crisis is recent
    (the crisis window) the phrases alone read them together: the supporter knows, an
    escalation told in words ("i swallowed" / "everything in the cabinet") still counts, and
    the model's category for a few bland texts after it ("sorry" / "its just a lot rn", read
    as means) would only move the chat in the queue."""
    if not text.strip() or _said_to_the_line(text):
        return [text], True  # a picture alone adds no words to read, nor a command
    since = inbound.received_at - BURST_WINDOW
    if raised is not None:
        since = max(since, raised)
    earlier = rt.session.scalars(
        select(InboundMessage.body_enc)
        .where(
            InboundMessage.from_hash == inbound.from_hash,
            InboundMessage.sender_kind == "texter",
            InboundMessage.id < inbound.id,
            InboundMessage.received_at > since,
        )
        .order_by(InboundMessage.id.desc())
        .limit(BURST_TEXTS - 1)
    ).all()
    texts = [rt.line.vault.decrypt(body) for body in reversed(earlier)]
    recent = raised is not None and not _due(raised, rt.now, rt.crisis_window)
    return [t for t in texts if t.strip() and not _said_to_the_line(t)] + [text], not recent


def _said_to_the_line(text: str) -> bool:
    """Say whether a text is one of the line's own words (YES, STOP, PARAR, ADIOS...): a
    command, not part of a thought split across texts. "yes" / "stop pls" / "PARAR" read
    together alarmed the model (a tester, session 26). HELP and a 1-5 are kept: "i took" / "5"
    / "of them" is one thought."""
    return classify(text) not in (Keyword.NONE, Keyword.HELP, Keyword.RATING)


# The place texts that quieten an answer to a question to the line: not the crisis welcome.
ASKED_AFTER = tuple(purpose for purpose in PLACE_IN_LINE if purpose != "crisis_queued")


def _place_told_at(
    rt: Context, conversation: Conversation | None
) -> tuple[datetime | None, datetime | None]:
    """Return when a queued texter was last told their place in line, and when by a text
    other than the crisis welcome (ASKED_AFTER), in one query: none again within the next few
    minutes (PEERLINE_STILL_WAITING_MINUTES; ASKED_QUIET for a question to the line), one
    text a burst, not one a message."""
    if conversation is None or conversation.state != QUEUED:
        return None, None
    told = OutboundMessage.created_at
    row = rt.session.execute(
        select(
            func.max(told),
            func.max(told).filter(OutboundMessage.purpose.in_(ASKED_AFTER)),
        ).where(
            OutboundMessage.conversation_id == conversation.id,
            OutboundMessage.purpose.in_(PLACE_IN_LINE),
        )
    ).one()
    return row[0], row[1]


def _new_conversation(rt: Context, contact: Contact) -> Conversation:
    """Start a texter's new conversation, welcomed, in their language."""
    conversation = Conversation(
        contact_id=contact.id,
        state=WELCOMED,
        language=contact.language,
        created_at=rt.now,
    )
    rt.session.add(conversation)
    rt.session.flush()
    return conversation


def _texter_effect(
    rt: Context,
    effect: fx.Effect,
    contact: Contact,
    conversation: Conversation | None,
    *,
    raised: bool = False,
    other: bool = False,
    own_lately: bool = False,
    joining: bool = False,
    on_call_told: bool = False,
) -> None:
    match effect:
        case fx.Reply(key=key, params=params, language=language, wording=wording):
            if key in ("crisis", "crisis_closed"):
                contact.crisis_replied_at = rt.now
            if key == "help_in_chat" and conversation and conversation.supporter:
                params = {**params, "name": conversation.supporter.name}
            rt.to_texter(
                contact, conversation, key, in_language=language, wording=wording, **params
            )
        case fx.Relay(text=text, picture=picture):
            if conversation is not None and conversation.supporter is not None:
                nudge = rt.line.settings.reply_nudge_minutes * 60
                rt.after_commit.chat_ticks.append((conversation.id, nudge))
                speaks = supporter_language(conversation.supporter)
                flag = relay_marks(rt, speaks, raised=raised, other=other)
                mark = " " + rt.render(speaks, "picture_too") if picture else ""
                rt.relay_to_supporter(
                    conversation, conversation.supporter, f"{flag}{contact.alias}: {text}{mark}"
                )
        case fx.AfterChat(text=text):
            if conversation is not None:
                _after_chat_words(rt, conversation, contact, text, other=other)
        case fx.Notify(key=key, params=params):
            if conversation is not None and conversation.supporter is not None:
                rt.to_supporter(
                    conversation.supporter,
                    key,
                    conversation.id,
                    via=conversation.relay_number,
                    alias=contact.alias,
                    **params,
                )
        case fx.SetOptOut(opted_out=opted_out):
            contact.opted_out = opted_out
            contact.opted_out_at = rt.now if opted_out else None
            if opted_out:
                # STOP means everything, group reminders included; START does not
                # quietly bring them back.
                subscribe(rt, contact, False)
        case fx.Subscribe(on=on):
            subscribe(rt, contact, on)
        case fx.WantCheckin():
            want_checkin(rt, contact)
        case fx.SetLanguage(language=language):
            contact.language = language
            if conversation is not None:
                conversation.language = language
        case fx.JoinQueue():
            assert conversation is not None
            conversation.state = QUEUED
            conversation.queued_at = conversation.queued_at or rt.now
            conversation.notify_on_open = False
            rt.after_commit.match = True
            rt.after_commit.ticks.append((conversation.id, next_tick_delay(rt, conversation)))
        case fx.LeaveQueue():
            if conversation is not None:
                withdraw_offers(rt, conversation, contact.alias)
        case fx.Close():
            if conversation is not None:
                conversation.state = CLOSED
                conversation.closed_at = conversation.closed_at or rt.now
        case fx.Rate(score=score):
            if conversation is not None:
                conversation.rating = score
                conversation.state = CLOSED
                rated(rt, conversation, score)
        case fx.EndChat(by=by, ask_rating=ask_rating, opted_out=opted_out):
            if conversation is not None:
                end_chat(
                    rt,
                    conversation,
                    by=by,
                    ask_rating=ask_rating,
                    opted_out=opted_out,
                    on_call_told=on_call_told,
                )
        case fx.RaiseSafety(source=source, category=category):
            if conversation is not None:
                raise_safety(
                    rt,
                    conversation,
                    source,
                    category,
                    someone_else=other,
                    first_own=not other and not own_lately,
                    joining=joining,
                )
        case fx.RequestErase():
            contact.erase_requested_at = rt.now
        case fx.Erase():
            erase(rt, contact)
        case fx.PreferPrevious():
            if conversation is not None:
                conversation.preferred_supporter_id = previous_supporter_id(
                    rt, contact.id, conversation.id
                )
                rt.after_commit.match = True
        case fx.NotifyOnOpen():
            if conversation is not None:
                conversation.notify_on_open = True
                schedule_open_notice(rt, conversation)
        case _:
            raise ValueError(f"a texter's flow cannot ask for {effect!r}")


def _quieten(
    rt: Context, contact: Contact, stage: str, effects: list[fx.Effect]
) -> list[fx.Effect]:
    """Return a flooding texter's effects without automatic texts said lately.

    Words still reach a supporter and crisis resources still go out (they have their own
    window); what is withheld is an answer the texter already had in the last ten minutes.
    Outside a chat and the queue, they hear once why the line answers less.
    """
    kept: list[fx.Effect] = []
    withheld = False
    for effect in effects:
        if (
            isinstance(effect, fx.Reply)
            # The crisis text's purpose either way the line stands: its window governs it.
            and effect.key not in ("crisis", "crisis_closed")
            and _said_lately(rt, contact, effect.key)
        ):
            withheld = True
            continue
        kept.append(effect)
    if withheld and stage not in (QUEUED, ACTIVE):
        if _due(contact.flood_noticed_at, rt.now, FLOOD_QUIET):
            contact.flood_noticed_at = rt.now
            kept.append(fx.Reply("flood_quiet"))
    return kept


def _said_lately(
    rt: Context, contact: Contact, key: str | tuple[str, ...], within: timedelta = FLOOD_QUIET
) -> bool:
    """Say whether the line sent this texter this automatic text (or one of these) `within`
    (the quiet window)."""
    purposes = (key,) if isinstance(key, str) else key
    # Every key's hash: rows sent before a key change keep the older one until `keys rotate`.
    hashes = rt.phone_hashes(contact)
    return bool(
        rt.session.scalar(
            select(OutboundMessage.id)
            .where(
                OutboundMessage.to_hash.in_(hashes),
                OutboundMessage.purpose.in_(purposes),
                OutboundMessage.created_at > rt.now - within,
            )
            .limit(1)
        )
    )
