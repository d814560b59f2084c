"""Masked call-backs: a supporter's #call, then the bridge to the texter or caller."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerline.service.call_states import MACHINE, STALE_AFTER, UNANSWERED
from peerline.service.context import transaction
from peerline.service.models import ACTIVE, Alert, Contact, Conversation, Supporter
from peerline.service.services import LineServices
from peerline.service.voice.answers import (
    Answer,
    Bridge,
    CallbackDial,
    CallbackWhisper,
    CallEvent,
    DialEnd,
    Goodbye,
    StatusCallback,
    UnknownCall,
)
from peerline.service.voice.models import (
    BRIDGING,
    CALLBACK,
    CALLING_SUPPORTER,
    CONNECTED,
    DIALING,
    ENDED,
    FAILED,
    PLACING,
    REQUEST_CALLING,
    REQUEST_DONE,
    Call,
    CallbackRequest,
)
from peerline.service.voice.prompts import prompts
from peerline.service.voice.ringing import supporters_on_calls
from peerline.service.voice.settings import telephony_available, voice_settings
from peerline.service.voice.shared import lock_row, tell_supporter
from peerline.service.voice.status import (
    apply_call_status,
    hung_up,
    reopen_request,
    tell_texter_missed,
)

if TYPE_CHECKING:
    from peerline.service.context import Context


REFERENCE = re.compile(r"(?i)^\s*(?:vm)?[\s-]*(\d{4,6})\s*$")


def call_command(
    runtime: Context,
    supporter: Supporter,
    chat: Conversation | None,
    argument: str,
    via: str | None = None,
) -> Call | None:
    """Carry out a supporter's #call: a voicemail's reference if given, else their chat.

    Answers without a chat go back on `via`, the number the supporter wrote to.
    """
    if argument.strip():
        return call_back_voicemail(runtime, supporter, argument, via)
    if chat is None:
        tell_supporter(runtime, supporter, "sms_call_how", via=via)
        return None
    return request_callback(runtime, chat, supporter, via)


def _may_place(
    runtime: Context, supporter: Supporter, chat: Conversation | None, via: str | None
) -> bool:
    """Check the line can place calls and the supporter is free; tell them if not."""
    if not telephony_available(runtime.line.settings):
        tell_supporter(runtime, supporter, "sms_call_unavailable", chat, via=via)
        return False
    if supporter.id in supporters_on_calls(runtime.session, runtime.now):
        tell_supporter(runtime, supporter, "sms_call_busy", chat, via=via)
        return False
    return True


def request_callback(
    runtime: Context, conversation: Conversation, supporter: Supporter, via: str | None = None
) -> Call | None:
    """Call the supporter, then bridge them to the texter of their chat, numbers masked."""
    if conversation.state != ACTIVE or conversation.supporter_id != supporter.id:
        tell_supporter(runtime, supporter, "sms_call_how", via=via)
        return None
    contact = conversation.contact
    if not _may_place(runtime, supporter, conversation, via):
        return None
    session = runtime.session
    calling = session.scalar(
        select(Call.id).where(
            Call.conversation_id == conversation.id,
            Call.direction == CALLBACK,
            Call.ended_at.is_(None),
            Call.state.not_in((FAILED, ENDED)),
        )
    )
    if calling is not None:
        tell_supporter(
            runtime,
            supporter,
            "sms_call_in_progress",
            conversation,
            reference=contact.alias,
            name=supporter.name,
        )
        return None
    call = _place(
        runtime,
        supporter,
        contact_id=contact.id,
        conversation_id=conversation.id,
        language=conversation.language,
    )
    tell_supporter(runtime, supporter, "sms_call_starting", conversation, alias=contact.alias)
    if not contact.opted_out:
        runtime.send(
            to_phone=runtime.line.vault.decrypt(contact.phone_enc),
            recipient_kind="texter",
            purpose="call_notice",
            text=prompts(runtime.line).text(
                conversation.language, "sms_call_notice", name=supporter.name
            ),
            conversation_id=conversation.id,
        )
    return call


def call_back_voicemail(
    runtime: Context, supporter: Supporter, reference: str, via: str | None = None
) -> Call | None:
    """Call the supporter, then bridge them to whoever left a voicemail, numbers masked."""
    match = REFERENCE.match(reference)
    wanted = f"VM-{match.group(1)}" if match else reference.strip().upper()[:16]
    session = runtime.session
    found = session.scalar(select(CallbackRequest).where(CallbackRequest.reference == wanted))
    if found is None:
        tell_supporter(runtime, supporter, "sms_call_unknown", via=via, reference=wanted)
        return None
    if found.contact.opted_out or not found.contact.phone_enc:
        # Issue 16: someone who texted STOP (or erased their data) is never called.
        tell_supporter(runtime, supporter, "sms_call_no_number", via=via, reference=wanted)
        return None
    request = lock_row(session, CallbackRequest, found.id)
    if request.status == REQUEST_DONE and request.supporter_id != supporter.id:
        # Someone already reached this caller: a second call would surprise them.
        other = request.supporter.name if request.supporter else "another peer"
        tell_supporter(runtime, supporter, "sms_call_done", via=via, reference=wanted, name=other)
        return None
    live = session.scalar(
        select(Call.id).where(
            Call.callback_request_id == request.id,
            Call.ended_at.is_(None),
            Call.state.not_in((FAILED, ENDED)),
            Call.created_at >= runtime.now - STALE_AFTER,
        )
    )
    # "calling" with no live call left means a call-back whose end we never heard: go ahead.
    if request.status == REQUEST_CALLING and live is not None:
        other = request.supporter.name if request.supporter else "another peer"
        tell_supporter(
            runtime, supporter, "sms_call_in_progress", via=via, reference=wanted, name=other
        )
        return None
    if not telephony_available(runtime.line.settings):
        # The caller was never promised this call (voicemail.py): they were texted to reply
        # YES, and the supporter hears that, not "keep chatting" about a chat they lack.
        runtime.to_supporter(
            supporter,
            "call_unavailable_voicemail",
            via=via,
            alias=request.contact.alias,
            reference=request.reference,
        )
        return None
    if not _may_place(runtime, supporter, None, via):
        return None
    request.status, request.supporter_id = REQUEST_CALLING, supporter.id
    request.attempts += 1
    call = _place(
        runtime,
        supporter,
        contact_id=request.contact_id,
        conversation_id=request.conversation_id,
        callback_request_id=request.id,
        language=request.language,
    )
    tell_supporter(runtime, supporter, "sms_call_starting", via=via, alias=request.contact.alias)
    return call


def _place(runtime: Context, supporter: Supporter, **fields: Any) -> Call:
    """Write a call-back to place and queue its placing for after the commit."""
    call = Call(
        direction=CALLBACK,
        state=PLACING,
        created_at=runtime.now,
        supporter_id=supporter.id,
        **fields,
    )
    runtime.session.add(call)
    runtime.session.flush()
    runtime.after_commit.calls.append(call.id)
    return call


def _callback_call(session: Session, call_id: int, call_sid: str) -> Call:
    """Return an outbound call-back locked, recording its SID if Twilio's reply was slow."""
    call = lock_row(session, Call, call_id)
    if call is None or call.direction != CALLBACK:
        raise UnknownCall(f"no call-back {call_id}")
    if call.call_sid is None:
        call.call_sid = call_sid
    elif call.call_sid != call_sid:
        raise UnknownCall(f"CallSid {call_sid} is not call-back {call_id}")
    return call


def _unless_gone(
    line: LineServices, event: CallEvent, then: Callable[[Call, Contact], Answer]
) -> Answer:
    """Lock the call-back and answer with `then`, unless the supporter hung up or the
    call-back was cancelled while their phone rang."""
    with transaction(line, event.at) as rt:
        call = _callback_call(rt.session, event.call_id, event.call_sid)
        if hung_up(line, rt, call, event.status):
            return Goodbye("en", None)
        if call.state in (ENDED, FAILED) or call.contact is None:
            return Goodbye("en", "callback_cancelled")
        return then(call, call.contact)


def callback_answered(line: LineServices, event: CallEvent) -> Answer:
    """Whisper to the supporter who answered our call: press 1 to ring the other person."""

    def whisper(call: Call, contact: Contact) -> Answer:
        if call.state in (PLACING, DIALING):
            call.state = CALLING_SUPPORTER
        request = call.callback_request
        return CallbackWhisper(
            call.id,
            contact.alias,
            request.reference if request else None,
            voice_settings(line).whisper_seconds,
        )

    return _unless_gone(line, event, whisper)


def callback_connect(line: LineServices, event: CallEvent, digits: str) -> Answer:
    """Ring the texter or caller from the line's number once the supporter pressed 1."""

    def dial(call: Call, contact: Contact) -> Answer:
        if digits.strip() != "1":
            call.outcome = "supporter_declined"
            return Goodbye("en", "callback_cancelled")
        call.state = BRIDGING
        call.answered_by = None
        return CallbackDial(
            call.id,
            contact.alias,
            line.vault.decrypt(contact.phone_enc),
            voice_settings(line).ring_seconds + 10,
        )

    return _unless_gone(line, event, dial)


def callback_screen(
    line: LineServices, call_id: int, parent_sid: str, answered_by: str | None
) -> Answer:
    """Note who answered the person called back: a machine is hung up on, a person bridged."""
    with line.db.session() as session:
        call = _callback_call(session, call_id, parent_sid)
        call.answered_by = (answered_by or "unknown")[:24]
        if call.answered_by in MACHINE:
            # Their voicemail: nobody to talk to, so no message left on it in the line's name.
            return Goodbye("en", None)
        return Bridge()


def callback_done(line: LineServices, event: CallEvent, dial: DialEnd) -> Answer:
    """Record how the bridged call-back went and tell both sides if it did not connect.

    A call-back answered by the other person's voicemail (answering machine detection) is
    not a call-back done: the request stays open and the texter is told.
    """
    now = event.at
    with transaction(line, now) as rt:
        session = rt.session
        call = _callback_call(session, event.call_id, event.call_sid)
        alias = call.contact.alias if call.contact else "the caller"
        if call.state != BRIDGING:
            hung_up(line, rt, call, event.status)
            return Goodbye("en", "callback_ended")
        machine = call.answered_by in MACHINE
        if dial.status in ("completed", "answered") and not machine:
            call.state, call.outcome = CONNECTED, "connected"
            call.connected_at = call.connected_at or now
            call.talk_seconds = dial.seconds
            request = call.callback_request
            if request is not None:
                request.status, request.completed_at = REQUEST_DONE, now
                _resolve_alert(session, request, call, now)
            hung_up(line, rt, call, event.status)
            return Goodbye("en", "callback_ended")
        call.state = ENDED
        if machine:
            call.outcome = "machine"
        else:
            unanswered = dial.status in UNANSWERED
            call.outcome = dial.status.replace("-", "_") if unanswered else "no_answer"
        reopen_request(call)
        tell_texter_missed(rt, call)
        hung_up(line, rt, call, event.status)
        key = "callback_machine" if machine else "callback_no_answer"
        return Goodbye("en", key, {"alias": alias})


def _resolve_alert(session: Session, request: CallbackRequest, call: Call, now: datetime) -> None:
    """Resolve the coordinators' alert about a voicemail once someone has called back."""
    name = call.supporter.name if call.supporter else "a peer"
    for alert in session.scalars(
        select(Alert).where(
            Alert.kind == "voicemail",
            Alert.resolved_at.is_(None),
            Alert.detail.startswith(f"Voicemail {request.reference} "),
        )
    ):
        alert.resolved_at, alert.resolved_by = now, f"call-back by {name}"


def callback_status(line: LineServices, call_id: int, report: StatusCallback) -> None:
    """Apply an outbound call-back's status callback, once and never backwards."""
    with transaction(line, report.at) as rt:
        call = _callback_call(rt.session, call_id, report.call_sid)
        apply_call_status(line, rt, call, report.status, report.seconds)
