"""Chats: ending, passing, subscriptions and check-ins, freeing a reminded shift."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from sqlalchemy import select

from peerline.service.availability import format_opening
from peerline.service.context import (
    Context,
)
from peerline.service.models import (
    ACTIVE,
    CLOSED,
    DECLINED,
    QUEUED,
    RATING,
    Contact,
    Conversation,
    GroupSubscription,
    Offer,
    Supporter,
)
from peerline.service.reminders import out_of_quiet_hours
from peerline.service.routing import pass_hold
from peerline.service.runtime.debrief import chat_ended

log = logging.getLogger(__name__)


def end_chat(
    rt: Context,
    conversation: Conversation,
    *,
    by: str,
    ask_rating: bool = True,
    opted_out: bool = False,
    on_call_told: bool = False,
) -> None:
    """End an active chat, free the supporter and tell the other side (`on_call_told`: the
    texter opted out lately after crisis words, and the on-call coordinators were told)."""
    if conversation.state != ACTIVE:
        return
    contact, supporter = conversation.contact, conversation.supporter
    # No rating asked after crisis words: "how was this chat, 1 to 5" just after an overdose
    # was told is the wrong question (session 28); the goodbye says where to turn instead.
    rating = ask_rating and conversation.crisis_at is None
    conversation.state = RATING if rating else CLOSED
    conversation.closed_at, conversation.closed_by = rt.now, by
    if supporter is not None:
        supporter.last_chat_ended_at = rt.now
        if by == "texter":
            key = "texter_ended" if ask_rating else "texter_left"
            if opted_out:
                # Carriers block every text to them now but their own confirmation
                # (Twilio's says "Reply START to resubscribe"): the supporter hears why.
                key = "texter_opted_out"
            rt.to_supporter(
                supporter,
                key,
                conversation.id,
                # and, after crisis words lately, that on call knows (the same purpose)
                wording="texter_opted_out_told" if opted_out and on_call_told else None,
                alias=contact.alias,
                via=conversation.relay_number,
            )
        else:
            # After crisis words, where to turn in an emergency goes with the goodbye.
            crisis = "supporter_ended_crisis" if conversation.crisis_at is not None else None
            rt.to_texter(
                contact, conversation, "supporter_ended", wording=crisis, name=supporter.name
            )
            if rating:
                rt.to_texter(contact, conversation, "ask_rating")
    chat_ended(rt, conversation, supporter)
    rt.after_commit.match = True


def pass_chat(rt: Context, conversation: Conversation, supporter: Supporter) -> Offer:
    """Hand a chat back to the queue, keeping the texter's place; return its record.

    The supporter lets the texter go as an offer's #pass does, and it holds the same way
    (routing.pass_hold; on a one-person shift the chat came back to them on the next round):
    it is on record as an offer of the texter they declined now, which the queue reads as
    any #pass (who let them go, when, and whether crisis words had raised them by then)."""
    handed_back = hand_back(rt, conversation, supporter)
    conversation.state, conversation.supporter_id = QUEUED, None
    conversation.matched_at = None
    supporter.last_chat_ended_at = rt.now
    conversation.relay_number = None
    rt.to_texter(conversation.contact, conversation, "finding_another", name=supporter.name)
    rt.after_commit.match = True
    return handed_back


def hand_back(rt: Context, conversation: Conversation, supporter: Supporter) -> Offer:
    """Put on record that `supporter` let the texter of a chat go now (a #pass in the chat,
    or no reply at all), as an offer of the texter declined at this moment, and plan a round
    for when it stops holding; return the record.

    The queue reads it as any #pass (routing.pass_hold, routing.holds_of, matching._asked):
    the texter is not offered straight back to them, nor told a wait that counts them free."""
    record = Offer(
        conversation_id=conversation.id,
        supporter_id=supporter.id,
        status=DECLINED,
        created_at=rt.now,
        expires_at=rt.now,
        resolved_at=rt.now,
    )
    rt.session.add(record)
    round_when_hold_ends(rt)
    return record


def round_when_hold_ends(rt: Context) -> None:
    """Schedule a matching round for when an offer let go now stops holding: the texter may
    come back to whoever let them go (on a one-person shift, nobody else would take them)."""
    at = rt.now + pass_hold(rt.line.settings.offer_timeout_seconds) + timedelta(seconds=1)
    if at not in rt.after_commit.match_at:
        rt.after_commit.match_at.append(at)


def previous_supporter_id(rt: Context, contact_id: int, current_id: int | None) -> int | None:
    """Return the supporter of the texter's last matched conversation, if any."""
    return rt.session.scalar(
        select(Conversation.supporter_id)
        .where(
            Conversation.contact_id == contact_id,
            Conversation.supporter_id.is_not(None),
            Conversation.id != (current_id or 0),
            Conversation.state.in_((RATING, CLOSED)),
        )
        .order_by(Conversation.id.desc())
        .limit(1)
    )


def subscribe(rt: Context, contact: Contact, on: bool) -> None:
    """Start or stop a texter's group meeting reminders."""
    subscription = rt.session.scalar(
        select(GroupSubscription).where(GroupSubscription.contact_id == contact.id)
    )
    if subscription is None:
        if on:
            rt.session.add(
                GroupSubscription(contact_id=contact.id, created_at=rt.now, updated_at=rt.now)
            )
        return
    subscription.active, subscription.updated_at = on, rt.now


def want_checkin(rt: Context, contact: Contact) -> None:
    """Schedule tomorrow's check-in after the texter's last chat, outside quiet hours."""

    conversation = rt.session.scalar(
        select(Conversation)
        .where(Conversation.contact_id == contact.id, Conversation.matched_at.is_not(None))
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    if conversation is None:
        return
    tz = rt.line.timezone(rt.session)
    tomorrow = (rt.now.astimezone(tz) + timedelta(days=1)).replace(second=0, microsecond=0)
    conversation.checkin_due_at = out_of_quiet_hours(tomorrow, tz, rt.line.settings.quiet_hours)
    conversation.checkin_sent_at = None


def free_reminded_shift(rt: Context, supporter: Supporter) -> None:
    """After a shift reminder, #away frees that shift and tells the on-call coordinator."""
    start, end = supporter.reminded_shift_start, supporter.reminded_shift_end
    if start is None or end is None or rt.now >= end:
        return
    supporter.reminded_shift_start = supporter.reminded_shift_end = None
    tz = rt.line.timezone(rt.session)
    # Each coordinator reads the day and time in their own language.
    when = partial(format_opening, start, tz, rt.now)
    rt.to_supporter(supporter, "shift_freed")
    rt.alert(
        "gap",
        None,
        f"{supporter.name} can't make the shift {when('en')}",
        key="gap_alert",
        supporter=supporter,
        name=supporter.name,
        when=when,
    )
