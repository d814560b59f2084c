"""Placing a call-back: queued after its transaction commits, placed by a worker, swept."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import or_, select

from peerline.service.call_states import STALE_AFTER
from peerline.service.context import transaction
from peerline.service.models import utcnow
from peerline.service.services import LineServices
from peerline.service.twilio_http import make_client
from peerline.service.voice.models import (
    CALLING_SUPPORTER,
    DIALING,
    FAILED,
    INBOUND,
    MENU,
    OFFERED,
    PLACING,
    RINGING,
    VOICEMAIL,
    Call,
)
from peerline.service.voice.settings import telephony_available, voice_settings
from peerline.service.voice.shared import lock_row, tell_supporter, url
from peerline.service.voice.status import (
    apply_call_status,
    callback_chat,
    reopen_request,
    tell_texter_missed,
)

if TYPE_CHECKING:
    from twilio.rest import Client


log = logging.getLogger(__name__)


def place_call_job(call_id: int) -> None:
    """Place one outbound call-back (an RQ job: the call's id only)."""
    from peerline.workers.context import get_line

    place_call(get_line(), call_id)


@lru_cache(maxsize=4)
def twilio_client(account_sid: str, auth_token: str, base_url: str | None) -> Client:
    """Return a Twilio REST client, built once per process and credentials."""
    return make_client(account_sid, auth_token, base_url)


def place_call(line: LineServices, call_id: int, now: datetime | None = None) -> str | None:
    """Ring the supporter's phone for a call-back; return the call's SID once Twilio has it."""
    from twilio.base.exceptions import TwilioException, TwilioRestException

    with line.db.session() as session:
        call = lock_row(session, Call, call_id)
        if call is None or call.state != PLACING or call.supporter is None:
            return None
        # Issue 16: an opt-out (or an erasure) after the #call still stops the call.
        contact = call.contact
        stopped = contact is not None and (contact.opted_out or not contact.phone_enc)
        # Committed before the request: a second run of this job finds DIALING and stops,
        # so a supporter is never rung twice for one #call.
        call.state = DIALING
        supporter_phone = line.vault.decrypt(call.supporter.phone_enc)
    settings = line.settings
    if stopped or not telephony_available(settings):
        _placement_failed(line, call_id, None, now)
        return None
    client = twilio_client(
        settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base_url
    )
    try:
        created = client.calls.create(
            to=supporter_phone,
            from_=settings.twilio_phone_number,
            url=url(line, f"/callback/{call_id}/answer"),
            method="POST",
            status_callback=url(line, f"/callback/{call_id}/status"),
            status_callback_method="POST",
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            timeout=voice_settings(line).ring_seconds + 10,
        )
    except TwilioRestException as exc:
        log.warning("Twilio refused call-back %s: %s", call_id, exc.code)
        _placement_failed(line, call_id, exc.code, now)
        return None
    except (TwilioException, OSError) as exc:
        log.warning("call-back %s could not be placed: %s", call_id, exc)
        _placement_failed(line, call_id, getattr(exc, "code", None), now)
        return None
    sid = str(created.sid)
    with line.db.session() as session:
        call = lock_row(session, Call, call_id)
        if call.call_sid is None:
            call.call_sid = sid
        if call.state == DIALING:
            call.state = CALLING_SUPPORTER
    return sid


def _placement_failed(
    line: LineServices, call_id: int, code: int | None, now: datetime | None = None
) -> None:
    """Mark a call-back that never left as failed and tell its supporter."""
    now = now or utcnow()
    with transaction(line, now) as rt:
        session = rt.session
        call = lock_row(session, Call, call_id)
        if call is None or call.ended_at is not None:
            return
        call.state, call.outcome, call.error_code = FAILED, "not_placed", code
        call.ended_at = now
        reopen_request(call)
        if call.supporter is not None:
            alias = call.contact.alias if call.contact else "the caller"
            tell_supporter(
                rt, call.supporter, "sms_call_failed", callback_chat(session, call), alias=alias
            )
        tell_texter_missed(rt, call)


def catch_up(line: LineServices, now: datetime | None = None) -> int:
    """Re-enqueue call-backs whose job Redis lost, and fail ones a dead worker left; count."""
    now = now or utcnow()
    with line.db.session() as session:
        waiting = list(
            session.scalars(
                select(Call.id).where(
                    Call.state == PLACING, Call.created_at < now - timedelta(seconds=30)
                )
            )
        )
        stuck = list(
            session.scalars(
                select(Call.id).where(
                    Call.state == DIALING,
                    Call.call_sid.is_(None),
                    Call.created_at < now - timedelta(minutes=2),
                )
            )
        )
    for call_id in waiting:
        line.job_queue.place_call(call_id)
    missed = _sweep_unfinished(line, now)
    for call_id in stuck:
        _placement_failed(line, call_id, None, now)
    return len(waiting) + len(stuck) + missed


def _sweep_unfinished(line: LineServices, now: datetime) -> int:
    """End inbound calls we never heard the end of, so a line without the optional status
    URL still frees its supporters and records who hung up before leaving a message."""
    # Long enough for any message to be recorded and its action to arrive.
    quiet_for = timedelta(seconds=voice_settings(line).voicemail_seconds) + timedelta(minutes=15)
    with transaction(line, now) as rt:
        ids = list(
            rt.session.scalars(
                select(Call.id).where(
                    Call.direction == INBOUND,
                    Call.ended_at.is_(None),
                    or_(
                        (Call.state == VOICEMAIL)
                        & Call.callback_request_id.is_(None)
                        & (Call.created_at < now - quiet_for),
                        # A caller may sit in the menu or ringing rounds a while; hours, no.
                        Call.state.in_((MENU, OFFERED, RINGING))
                        & (Call.created_at < now - STALE_AFTER),
                    ),
                )
            )
        )
        for call_id in ids:
            apply_call_status(line, rt, lock_row(rt.session, Call, call_id), "completed", None)
    return len(ids)
