"""Status callbacks: Twilio's CallStatus moves calls and legs forward, never backwards.

A final status ends the call: legs it held are closed, a caller who hung up before leaving a
message is recorded, and a call-back that never connected reopens its request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerline.service.call_states import STATUS_RANK, TERMINAL, UNANSWERED
from peerline.service.context import transaction
from peerline.service.models import Alert, Contact, Conversation
from peerline.service.services import LineServices
from peerline.service.voice.answers import StatusCallback, UnknownCall
from peerline.service.voice.models import (
    BRIDGING,
    CALLBACK,
    CALLING_SUPPORTER,
    DIALING,
    ENDED,
    FAILED,
    MENU,
    OFFERED,
    PLACING,
    REQUEST_CALLING,
    REQUEST_OPEN,
    RINGING,
    VOICEMAIL,
    Call,
)
from peerline.service.voice.prompts import prompts
from peerline.service.voice.records import call_ended
from peerline.service.voice.settings import voice_settings
from peerline.service.voice.shared import answered_leg, caller_contact, lock_row, tell_supporter

if TYPE_CHECKING:
    from peerline.service.context import Context


def hung_up(line: LineServices, rt: Context, call: Call, status: str | None) -> bool:
    """Apply the CallStatus a voice request carries; say whether the caller has gone."""
    if status is None or status not in STATUS_RANK:
        return False
    apply_call_status(line, rt, call, status, None)
    return call.status in TERMINAL


def _advance(current: str | None, new: str) -> bool:
    """Say whether a status moves a call forward (late, repeated or unknown ones do not)."""
    if new not in STATUS_RANK:
        return False
    if current is None:
        return True
    return STATUS_RANK[new] > STATUS_RANK.get(current, -1)


def leg_status(line: LineServices, leg_id: int, report: StatusCallback) -> None:
    """Apply a supporter leg's status callback, once and never backwards."""
    status, seconds, now = report.status, report.seconds, report.at
    with line.db.session() as session:
        leg, call = answered_leg(session, leg_id, report.call_sid, None)
        if leg.leg_sid != report.call_sid:
            raise UnknownCall(f"CallSid {report.call_sid} is not leg {leg_id}")
        if not _advance(leg.status, status):
            return
        leg.status = status
        if status in ("in-progress", "answered"):
            leg.answered_at = leg.answered_at or now
        if status in TERMINAL:
            leg.ended_at = leg.ended_at or now
            if seconds is not None:
                leg.duration_seconds = seconds
            if leg.outcome is None and status in UNANSWERED | {"canceled"}:
                leg.outcome = status
            if leg.accepted and seconds is not None:
                call.talk_seconds = seconds


def call_status(line: LineServices, report: StatusCallback) -> bool:
    """Apply a call's status callback once and never backwards; False for an unknown call."""
    with transaction(line, report.at) as rt:
        session = rt.session
        call_id = session.scalar(select(Call.id).where(Call.call_sid == report.call_sid))
        if call_id is None:
            return False
        call = lock_row(session, Call, call_id)
        apply_call_status(line, rt, call, report.status, report.seconds)
    return True


def apply_call_status(
    line: LineServices, rt: Context, call: Call, status: str, seconds: int | None
) -> None:
    """Move a locked call forward to a status, closing it on a final one."""
    if not _advance(call.status, status):
        return
    call.status = status
    if status not in TERMINAL:
        return
    now = rt.now
    call.ended_at = call.ended_at or now
    if seconds is not None:
        call.duration_seconds = seconds
    for leg in call.legs:
        if leg.ended_at is None:
            # Legs we never heard the end of must not keep their supporter "on a call".
            leg.ended_at = now
            leg.outcome = leg.outcome or "canceled"
    # Whoever this call held (rung, talking, calling back) may be offered texts again.
    rt.after_commit.match = True
    call_ended(rt, call)  # an answered call's record and its supporter's debrief invite
    if call.direction == CALLBACK:
        callback_ended(line, rt, call, status)
        return
    if call.outcome is None or call.outcome == "groups":
        in_menu, ringing = "hung_up_in_menu", "hung_up_while_ringing"
        left = {MENU: in_menu, OFFERED: in_menu, RINGING: ringing}
        call.outcome = left.get(call.state, call.outcome or "ended")
        if call.crisis and call.outcome in GONE_BEFORE_ANYONE:
            _crisis_caller_gone(rt, call, GONE_BEFORE_ANYONE[call.outcome])
    if call.state == VOICEMAIL and call.callback_request_id is None:
        _missed_call(line, rt, call)
    call.state = ENDED


# How a caller who hung up before reaching anyone left, said in their missed call's alert.
GONE_BEFORE_ANYONE = {
    "hung_up_in_menu": "at the crisis offer",
    "hung_up_while_ringing": "while supporters were rung",
}


def _missed_call_alert(rt: Context, call: Call, left: str) -> Contact | None:
    """Alert the coordinators of a missed call, naming the caller by alias (a first-time
    caller's number gets a contact and alias, as their voicemail would), never by number, and
    how they `left`; return their contact (None for a hidden number)."""
    contact = caller_contact(rt, call)
    alias = contact.alias if contact else "a caller with a hidden number"
    crisis = ""
    if call.crisis:
        # The category in words ("wishes to be dead"), never its code; a crisis with no kind
        # named (the word "suicide" alone, a crisis transfer that failed) says only that.
        key = rt.crisis_key(call.crisis)
        crisis = f", who used crisis words ({rt.render('en', key)})," if key else ""
        crisis = crisis or ", who may be in crisis,"
    rt.session.add(
        Alert(
            kind="missed_call", detail=f"Missed call from {alias}{crisis} {left}", created_at=rt.now
        )
    )
    return contact


def _crisis_caller_gone(rt: Context, call: Call, where: str) -> None:
    """Alert the coordinators that a caller who used crisis words hung up before reaching
    anyone, as a missed call at the voicemail prompt does; once, as the call ends once."""
    _missed_call_alert(rt, call, f"who hung up {where} before reaching anyone")


def _missed_call(line: LineServices, rt: Context, call: Call) -> None:
    """Record a caller who hung up before leaving a message, for the coordinators."""
    call.outcome = "missed"
    contact = _missed_call_alert(rt, call, "who hung up before leaving a message")
    if not voice_settings(line).missed_call_text or contact is None:
        return
    if not contact.opted_out:
        rt.send(
            to_phone=line.vault.decrypt(contact.phone_enc),
            recipient_kind="texter",
            purpose="missed_call",
            text=prompts(line).text(call.language, "sms_missed_call"),
            conversation_id=None,
        )


def callback_ended(line: LineServices, rt: Context, call: Call, status: str) -> None:
    """Close a call-back; if the supporter's own phone never answered, tell them by text."""
    never_answered = call.state in (PLACING, DIALING, CALLING_SUPPORTER) and status in UNANSWERED
    if call.state in (CALLING_SUPPORTER, BRIDGING, DIALING, PLACING):
        call.outcome = call.outcome or (
            "supporter_" + status.replace("-", "_") if never_answered else "ended"
        )
    reopen_request(call)
    if call.state in (CALLING_SUPPORTER, BRIDGING, DIALING, PLACING):
        tell_texter_missed(rt, call)
    if call.state != FAILED:
        call.state = ENDED
    if never_answered and call.supporter is not None:
        alias = call.contact.alias if call.contact else "the caller"
        reference = f" {call.callback_request.reference}" if call.callback_request else ""
        tell_supporter(
            rt,
            call.supporter,
            "sms_call_missed",
            callback_chat(rt.session, call),
            alias=alias,
            reference=reference,
        )


def callback_chat(session: Session, call: Call) -> Conversation | None:
    """Return the SMS chat a call-back was asked for from, if any."""
    return session.get(Conversation, call.conversation_id) if call.conversation_id else None


def reopen_request(call: Call) -> None:
    """Put a voicemail's request back in the queue after a call-back that did not connect."""
    request = call.callback_request
    if request is not None and request.status == REQUEST_CALLING:
        request.status = REQUEST_OPEN


def tell_texter_missed(rt: Context, call: Call) -> None:
    """Tell a texter who was told a supporter would call that the call did not happen."""
    if call.callback_request_id is not None or call.conversation_id is None:
        return  # a voicemail's caller was never promised this call
    chat = callback_chat(rt.session, call)
    if chat is None or call.contact is None or call.supporter is None:
        return
    rt.to_texter(call.contact, chat, "call_back_missed", name=call.supporter.name)
