"""Contact records for answered calls, and the supporter's debrief invite after one (issue 21).

A record is written once, when the call ends (the first final status, whichever way it came:
the status callback, the `<Dial>` action or the sweep); a repeated or duplicate callback finds
the record there and does nothing more. `#note`, `#referred` and `#debrief` then apply to the
supporter's latest record, a call's when the call ended after their last chat.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from peerline.flows.catalogue import Phrase
from peerline.service.context import Context
from peerline.service.debrief_invite import invite_to_debrief
from peerline.service.models import ContactRecord, Conversation
from peerline.service.voice.models import CALLBACK, Call


def _seconds(later: datetime | None, earlier: datetime | None) -> int | None:
    if later is None or earlier is None:
        return None
    return max(0, int((later - earlier).total_seconds()))


def _waited(call: Call) -> int | None:
    """Return how long the caller waited for a person: phones ringing, or for a call-back."""
    if call.direction == CALLBACK:
        request = call.callback_request
        return _seconds(call.connected_at, request.created_at if request else None)
    started = min((leg.created_at for leg in call.legs), default=call.created_at)
    return _seconds(call.connected_at, started)


def _returning(rt: Context, call: Call) -> bool:
    """Say whether the caller talked with a peer before, by phone or by text."""
    same_caller = []
    if call.contact_id is not None:
        same_caller.append(Call.contact_id == call.contact_id)
    if call.from_hash is not None:
        same_caller.append(Call.from_hash == call.from_hash)
    if not same_caller:
        return False  # a withheld number: nothing to know them by
    earlier_call = rt.session.scalar(
        select(Call.id)
        .where(or_(*same_caller), Call.id < call.id, Call.connected_at.is_not(None))
        .limit(1)
    )
    if earlier_call is not None or call.contact_id is None:
        return earlier_call is not None
    earlier_chat = rt.session.scalar(
        select(Conversation.id)
        .where(
            Conversation.contact_id == call.contact_id,
            Conversation.matched_at.is_not(None),
            Conversation.matched_at < (call.connected_at or rt.now),
        )
        .limit(1)
    )
    return earlier_chat is not None


def call_ended(rt: Context, call: Call) -> None:
    """Keep an answered call's record (once) and invite the supporter who took it to note it.

    A call-back asked for from an SMS chat (`#call`) is part of that chat and its record.
    """
    if call.connected_at is None or call.supporter is None:
        return
    if call.direction == CALLBACK and call.conversation_id is not None:
        return
    kept = rt.session.scalar(select(ContactRecord.id).where(ContactRecord.call_id == call.id))
    if kept is not None:
        return
    ended = call.ended_at or rt.now
    rt.session.add(
        ContactRecord(
            call_id=call.id,
            conversation_id=None,
            supporter_id=call.supporter_id,
            channel="voice",
            language=call.language,
            waited_seconds=_waited(call),
            duration_seconds=(
                call.talk_seconds
                if call.talk_seconds is not None
                else _seconds(ended, call.connected_at)
            ),
            crisis_category=call.crisis,
            topics="",
            referred=False,
            returning_texter=_returning(rt, call),
            ended_at=ended,
        )
    )
    with rt.about_a_call():  # "That was a hard call", not "chat"
        invite_to_debrief(rt, call.supporter, crisis=call.crisis is not None)


def latest_call_record(
    rt: Context, supporter_id: int, last_chat: Conversation | None
) -> ContactRecord | None:
    """Return the supporter's last call's record when that call ended after their last chat."""
    record = rt.session.scalar(
        select(ContactRecord)
        .where(ContactRecord.supporter_id == supporter_id, ContactRecord.call_id.is_not(None))
        .order_by(ContactRecord.ended_at.desc(), ContactRecord.id.desc())
        .limit(1)
    )
    if record is None or record.ended_at is None:
        return None
    if last_chat is not None:
        chat_end = last_chat.closed_at or last_chat.matched_at
        if chat_end is None or chat_end >= record.ended_at:
            return None
    return record


def caller_alias(rt: Context, record: ContactRecord) -> str | Phrase:
    """Return how a supporter knows the caller of a call's record (never their number)."""
    call = rt.session.get(Call, record.call_id) if record.call_id else None
    if call is not None and call.contact is not None:
        return call.contact.alias
    return Phrase("a_caller")  # a hidden number: in the reader's words
