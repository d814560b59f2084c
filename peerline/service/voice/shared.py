"""What every voice step shares: its transaction, locked rows, the call a webhook names.

Each webhook step opens its own transaction, moves the call on and returns an answer. Every
step is safe to repeat: Twilio retries webhooks, so a step that finds the call already past
it answers with what the call should hear now instead of acting again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerline.service.context import Context, supporter_language
from peerline.service.models import Contact, Conversation, Supporter
from peerline.service.services import LineServices
from peerline.service.voice.answers import UnknownCall
from peerline.service.voice.models import Call, CallLeg
from peerline.service.voice.prompts import prompts

PREFIX = "/webhooks/voice"


def lock_row(session: Session, model: Any, row_id: int) -> Any:
    """Return a row locked for this transaction (SQLite serialises writers instead)."""
    return session.scalar(select(model).where(model.id == row_id).with_for_update())


def locked_call(session: Session, call_id: int, call_sid: str) -> Call:
    """Return an inbound call locked, checking that the webhook is about this call."""
    call = lock_row(session, Call, call_id)
    if call is None or call.call_sid != call_sid:
        raise UnknownCall(f"CallSid {call_sid} is not call {call_id}")
    return call


def locked_leg(session: Session, leg_id: int, parent_sid: str | None) -> tuple[CallLeg, Call]:
    """Return a leg and its call, both locked, checking the webhook is about this call."""
    call_id = session.scalar(select(CallLeg.call_id).where(CallLeg.id == leg_id))
    if call_id is None:
        raise UnknownCall(f"no leg {leg_id}")
    # Always the call first, then the leg: every step locks in that order, so none deadlock.
    call = lock_row(session, Call, call_id)
    leg = lock_row(session, CallLeg, leg_id)
    if parent_sid and call.call_sid != parent_sid:
        raise UnknownCall(f"ParentCallSid {parent_sid} is not the call of leg {leg_id}")
    return leg, call


def answered_leg(
    session: Session, leg_id: int, leg_sid: str, parent_sid: str | None
) -> tuple[CallLeg, Call]:
    """Return a supporter's leg and its call, locked, noting the leg's CallSid the first time
    a webhook names it."""
    leg, call = locked_leg(session, leg_id, parent_sid)
    if leg.leg_sid is None:
        leg.leg_sid = leg_sid
    return leg, call


def caller_contact(rt: Context, call: Call) -> Contact | None:
    """Return the caller's contact, None for a hidden number; one made for a number first
    heard on this call (a fresh alias, as a texter's) speaks the call's language."""
    if call.contact_id is not None:
        return rt.session.get(Contact, call.contact_id)
    if call.from_enc is None:
        return None
    contact = rt.contact_for(rt.line.vault.decrypt(call.from_enc))
    if contact.created_at == rt.now:
        # Made just now, by this step (contact_for dates a new one with the step's time).
        contact.language = call.language
    call.contact_id, call.contact = contact.id, contact
    return contact


def url(line: LineServices, path: str) -> str:
    """Return the absolute public URL of a voice webhook, as Twilio must call (and sign) it."""
    return f"{line.settings.public_base_url}{PREFIX}{path}"


def tell_supporter(
    runtime: Context,
    supporter: Supporter,
    key: str,
    conversation: Conversation | None = None,
    *,
    via: str | None = None,
    **params: Any,
) -> None:
    """Text a supporter one of the voice line's notices, in the thread of their chat.

    Without a chat it goes out on `via`, the number the supporter last wrote to (if any).
    """
    runtime.to_supporter(
        supporter,
        key.removeprefix("sms_"),
        conversation.id if conversation else None,
        text=prompts(runtime.line).text(supporter_language(supporter), key, **params),
        via=conversation.relay_number if conversation else via,
    )
