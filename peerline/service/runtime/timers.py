"""Timers: chat and queue ticks, check-ins, reminders and catching up lost timers."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select

from peerline.flows.catalogue import Phrase
from peerline.service import routing
from peerline.service.availability import format_opening
from peerline.service.context import (
    STUCK_QUEUE_LOCK,
    STUCK_QUEUE_REPEAT,
    Context,
    _lock,
    supporter_language,
    transaction,
)
from peerline.service.drafts import draft, write_many
from peerline.service.models import (
    ACTIVE,
    CLOSED,
    QUEUED,
    RATING,
    WELCOMED,
    Alert,
    Conversation,
    Group,
    InboundMessage,
    Supporter,
)
from peerline.service.reminders import claim, last_words, subscribers
from peerline.service.runtime.chats import hand_back
from peerline.service.runtime.debrief import chat_ended
from peerline.service.runtime.offers import (
    policy,
    schedule_open_notice,
)
from peerline.service.services import LineServices

log = logging.getLogger(__name__)


def chat_tick(rt: Context, conversation_id: int) -> int | None:
    """Nudge a supporter who has not answered, close a chat gone quiet; return next tick.

    A chat gone quiet in which the supporter never wrote goes back to the queue with an
    alert (nobody was with them); a chat flagged for safety never closes itself: its
    supporter is nudged and the on-call coordinator alerted, once each quiet period.
    """

    conversation = _lock(rt.session, Conversation, conversation_id)
    if conversation is None or conversation.state != ACTIVE:
        return None
    settings = rt.line.settings
    waiting, last_activity = last_words(rt.session, conversation_id)
    idle = rt.now - last_activity
    quiet = timedelta(minutes=settings.idle_close_minutes)
    if idle >= quiet and not _supporter_wrote(rt, conversation):
        _unanswered(rt, conversation, idle)
        return None
    if idle >= quiet and (conversation.crisis_at is not None or conversation.priority > 0):
        _crisis_quiet(rt, conversation, idle, last_activity)
        # Look again one quiet period on: the flag does not lapse while nobody writes.
        return max(1, int((quiet - idle % quiet).total_seconds()) + 1)
    if idle >= quiet:
        supporter = conversation.supporter
        conversation.state, conversation.closed_at = CLOSED, rt.now
        conversation.closed_by = "idle"
        rt.to_texter(conversation.contact, conversation, "chat_idle_closed")
        if supporter is not None:
            supporter.last_chat_ended_at = rt.now
            rt.to_supporter(
                supporter,
                "chat_idle_ended",
                conversation.id,
                alias=conversation.contact.alias,
                via=conversation.relay_number,
            )
        chat_ended(rt, conversation, supporter)
        rt.after_commit.match = True
        return None
    answered = rt.session.scalar(
        select(func.count())
        .select_from(InboundMessage)
        .where(
            InboundMessage.conversation_id == conversation_id,
            InboundMessage.sender_kind == "supporter",
            InboundMessage.id > (waiting.id if waiting else 0),
        )
    )
    if waiting is not None and not answered and conversation.nudged_inbound_id != waiting.id:
        waited = rt.now - waiting.received_at
        if waited >= timedelta(minutes=settings.reply_nudge_minutes):
            conversation.nudged_inbound_id = waiting.id
            if conversation.supporter is not None:
                rt.to_supporter(
                    conversation.supporter,
                    "reply_nudge",
                    conversation.id,
                    alias=conversation.contact.alias,
                    minutes=int(waited.total_seconds() // 60),
                    via=conversation.relay_number,
                )
    remaining = timedelta(minutes=settings.idle_close_minutes) - idle
    return max(1, int(remaining.total_seconds()) + 1)


def _supporter_wrote(rt: Context, conversation: Conversation) -> bool:
    """Say whether the supporter wrote anything (words or a command) in this chat."""
    return bool(
        rt.session.scalar(
            select(InboundMessage.id)
            .where(
                InboundMessage.conversation_id == conversation.id,
                InboundMessage.sender_kind == "supporter",
                InboundMessage.received_at >= (conversation.matched_at or rt.now),
            )
            .limit(1)
        )
    )


def _unanswered(rt: Context, conversation: Conversation, idle: timedelta) -> None:
    """Put a texter whose supporter never wrote back in the queue, keeping their place,
    set that supporter away, and alert the on-call coordinator.

    The texter is let go as a #pass lets them go, and held from that supporter the same way
    (chats.hand_back): a #back at once was offered the same texter again at once."""
    supporter, via = conversation.supporter, conversation.relay_number
    if supporter is not None:
        hand_back(rt, conversation, supporter)
    minutes = int(idle.total_seconds() // 60)
    alias = conversation.contact.alias
    name = supporter.name if supporter is not None else Phrase("their_supporter")
    conversation.state, conversation.supporter_id = QUEUED, None
    conversation.matched_at, conversation.relay_number = None, None
    conversation.queued_at = conversation.queued_at or rt.now
    if supporter is not None:
        supporter.last_chat_ended_at, supporter.away = rt.now, True
        rt.to_supporter(
            supporter,
            "chat_unanswered_supporter",
            conversation.id,
            alias=alias,
            minutes=minutes,
            via=via,
        )
    # Nobody answered someone who may be in crisis: they hear where to turn now, and on call
    # hears it as the safety alert it is (it read as any chat's "no reply").
    flagged = conversation.crisis_at is not None or conversation.priority > 0
    rt.to_texter(
        conversation.contact,
        conversation,
        "chat_unanswered_crisis" if flagged else "chat_unanswered",
    )
    rt.alert(
        "unanswered",
        conversation,
        f"{alias}: {'flagged for safety, ' if flagged else ''}no reply from "
        f"{rt.line.catalogue.words('en', name)} in {minutes} min; back in the queue",
        key="crisis_unanswered_alert" if flagged else "unanswered_alert",
        supporter=supporter,
        alias=alias,
        name=name,
        minutes=minutes,
    )
    rt.after_commit.match = True
    rt.after_commit.ticks.append((conversation.id, next_tick_delay(rt, conversation)))


def _crisis_quiet(
    rt: Context, conversation: Conversation, idle: timedelta, last_activity: datetime
) -> None:
    """Nudge the supporter of a flagged chat gone quiet and alert on call, once a period."""

    quiet = timedelta(minutes=rt.line.settings.idle_close_minutes)
    period = int(idle / quiet)
    key = f"crisis-quiet-{conversation.id}-{int(last_activity.timestamp())}-{period}"
    if claim(rt.session, key, rt.now) is None:
        return
    minutes = int(idle.total_seconds() // 60)
    alias, supporter = conversation.contact.alias, conversation.supporter
    name = supporter.name if supporter is not None else Phrase("no_supporter")
    if supporter is not None:
        rt.to_supporter(
            supporter,
            "crisis_quiet_nudge",
            conversation.id,
            alias=alias,
            minutes=minutes,
            via=conversation.relay_number,
        )
    rt.alert(
        "crisis_quiet",
        conversation,
        f"{alias}: flagged chat quiet {minutes} min, kept open",
        key="crisis_quiet_alert",
        supporter=supporter,
        alias=alias,
        name=name,
        minutes=minutes,
    )


def next_tick_delay(rt: Context, conversation: Conversation) -> int:
    """Return seconds until the next wait update or unmatched alert is due."""
    settings = rt.line.settings
    queued_at = conversation.queued_at or rt.now
    update_due = queued_at + timedelta(
        seconds=settings.wait_update_seconds * (conversation.wait_updates + 1)
    )
    due = [update_due]
    if conversation.unmatched_alerted_at is None:
        due.append(queued_at + timedelta(seconds=settings.unmatched_alert_seconds))
    return max(1, int((min(due) - rt.now).total_seconds()) + 1)


def queue_tick(rt: Context, conversation_id: int) -> bool:
    """Send a due wait update and raise a due unmatched alert; say if still waiting."""
    conversation = _lock(rt.session, Conversation, conversation_id)
    if conversation is None or conversation.state != QUEUED or conversation.queued_at is None:
        return False
    settings, waited = rt.line.settings, rt.now - conversation.queued_at
    due_updates = int(waited.total_seconds() // settings.wait_update_seconds)
    if due_updates > conversation.wait_updates:
        conversation.wait_updates = due_updates
        position = routing.queue_position(rt.session, conversation)
        rt.to_texter(conversation.contact, conversation, "still_looking", position=position)
    if (
        conversation.unmatched_alerted_at is None
        and waited.total_seconds() >= settings.unmatched_alert_seconds
    ):
        conversation.unmatched_alerted_at = rt.now
        alert_unmatched(rt, conversation, int(waited.total_seconds() // 60))
    return True


def alert_unmatched(rt: Context, conversation: Conversation, minutes: int) -> None:
    """Tell the on-call coordinators that the queue is stuck: one alert that sums it up,
    not one text per texter; while it is open (for an hour) it is kept up to date."""
    session = rt.session
    if rt.line.db.is_postgres:
        # Texters crossing the threshold at the same moment make one alert, not several.
        session.execute(select(func.pg_advisory_xact_lock(STUCK_QUEUE_LOCK)))
    current = session.scalar(
        select(Alert)
        .where(
            Alert.kind == "unmatched",
            Alert.resolved_at.is_(None),
            Alert.created_at > rt.now - STUCK_QUEUE_REPEAT,
        )
        .order_by(Alert.id.desc())
        .limit(1)
    )
    staff = routing.staffing(session, rt.rotas(), rt.now, policy(rt))
    waiting = routing.queue_length(session)
    oldest = session.scalar(
        select(func.min(Conversation.queued_at)).where(Conversation.state == QUEUED)
    )
    longest = max(minutes, int((rt.now - oldest).total_seconds() // 60) if oldest else 0)
    detail = (
        f"{waiting} waiting, the longest {longest} min; {staff.free} free of "
        f"{staff.on_shift} on shift, {staff.away} away"
    )
    if current is not None:
        current.detail = detail  # the console shows the queue as it is now
        return
    rt.alert(
        "unmatched",
        None,
        detail,
        key="queue_stuck_alert",
        waiting=waiting,
        minutes=longest,
        on_shift=staff.on_shift,
        free=staff.free,
        away=staff.away,
    )


def notify_open(rt: Context, conversation_id: int) -> None:
    """Tell a texter who asked that the line is open, once, if it is."""
    conversation = _lock(rt.session, Conversation, conversation_id)
    if conversation is None or not conversation.notify_on_open:
        return
    if conversation.state not in (WELCOMED, RATING, CLOSED):
        conversation.notify_on_open = False
        return
    if not rt.rotas().on_shift(rt.now):
        # The rota changed since this was scheduled: wait for the new opening.
        schedule_open_notice(rt, conversation)
        return
    conversation.notify_on_open = False
    rt.to_texter(conversation.contact, conversation, "line_open")


def checkin(rt: Context, conversation_id: int) -> bool:
    """Send the check-in a texter asked for, once."""
    conversation = _lock(rt.session, Conversation, conversation_id)
    if (
        conversation is None
        or conversation.checkin_due_at is None
        or conversation.checkin_sent_at is not None
        or conversation.checkin_due_at > rt.now + timedelta(minutes=1)
    ):
        return False
    conversation.checkin_sent_at = rt.now
    rt.to_texter(conversation.contact, None, "checkin")
    return True


def group_reminder(rt: Context, group_id: int, starts: datetime) -> int:
    """Text every subscriber before a meeting, once; return how many were written."""

    group = rt.session.get(Group, group_id)
    if group is None or starts <= rt.now:
        return 0
    entry = claim(rt.session, f"group-{group_id}-{int(starts.timestamp())}", rt.now)
    if entry is None:
        return 0
    tz = rt.line.timezone(rt.session)
    join = f" Join: {group.join_url}" if group.join_url else ""
    valid = int((starts - rt.now).total_seconds())
    people = subscribers(rt.session)
    texts: dict[str, str] = {}  # the reminder in each language, rendered once
    drafts = []
    for phone_enc, language in people:
        if language not in texts:
            texts[language] = rt.render(
                language,
                "group_reminder",
                {
                    "group": group.name,
                    "when": format_opening(starts, tz, rt.now, language),
                    "join": join,
                },
            )
        # The same row `send` writes, each recipient and text encrypted on its own.
        drafts.append(
            draft(
                rt.line,
                to_phone=rt.line.vault.decrypt(phone_enc),
                recipient_kind="texter",
                purpose="group_reminder",
                text=texts[language],
                conversation_id=None,
                now=rt.now,
                # A reminder that would arrive after the meeting began is not sent.
                valid_for=valid,
            )
        )
    # Thousands of subscribers: written in bulk, not a flush per message.
    rt.after_commit.sends.extend(write_many(rt.session, drafts))
    entry.recipients = len(people)
    return len(people)


def shift_reminder(rt: Context, supporter_id: int, start: datetime, end: datetime) -> bool:
    """Remind a supporter of their shift, once."""

    supporter = rt.session.get(Supporter, supporter_id)
    if supporter is None or not supporter.active or start <= rt.now:
        return False
    if claim(rt.session, f"shift-{supporter_id}-{int(start.timestamp())}", rt.now) is None:
        return False
    supporter.reminded_shift_start, supporter.reminded_shift_end = start, end
    tz = rt.line.timezone(rt.session)
    rt.to_supporter(
        supporter,
        "shift_reminder",
        when=format_opening(start, tz, rt.now, supporter_language(supporter)),
        valid_for=int((start - rt.now).total_seconds()),
    )
    return True


def catch_up_timers(line: LineServices, now: datetime) -> int:
    """Run waiting-texter timers and open notices that are due, whatever Redis lost."""
    with line.db.session() as session:
        waiting = list(session.scalars(select(Conversation.id).where(Conversation.state == QUEUED)))
        wanting = list(
            session.scalars(select(Conversation.id).where(Conversation.notify_on_open.is_(True)))
        )
    for conversation_id in waiting:
        with transaction(line, now) as runtime:
            queue_tick(runtime, conversation_id)
    for conversation_id in wanting:
        with transaction(line, now) as runtime:
            notify_open(runtime, conversation_id)
    return len(waiting) + len(wanting)
