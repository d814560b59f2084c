"""Voice webhooks: verify, de-duplicate, step the call, answer with TwiML built by the SDK.

`POST /webhooks/voice` (a call comes in) and `POST /webhooks/voice/status` (its status
callback) are the public contract; every further step lives under `/webhooks/voice/` at an
absolute URL on PUBLIC_BASE_URL, so Twilio signs exactly what our validator checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, Response, abort, current_app, request
from twilio.twiml.voice_response import VoiceResponse

from peerline.flows.menu import LANGUAGES
from peerline.service.call_states import STATUS_RANK
from peerline.service.privacy import BadPhoneNumber, normalise_phone
from peerline.service.services import LineServices
from peerline.service.voice import callbacks, ringing, shared
from peerline.service.voice import menu as voice_menu
from peerline.service.voice import status as voice_status
from peerline.service.voice import voicemail as voice_voicemail
from peerline.service.voice import whisper as voice_whisper
from peerline.service.voice.answers import (
    Answer,
    CallEvent,
    DialEnd,
    InboundCall,
    LegEvent,
    Recording,
    StatusCallback,
    UnknownCall,
)
from peerline.service.voice.twiml import render
from peerline.webhooks.signing import twilio_signed

log = logging.getLogger(__name__)

bp = Blueprint("voice", __name__, url_prefix=shared.PREFIX)

# What Twilio puts in From when the caller hides their number: words, or the same words
# spelled on a keypad (ANONYMOUS, RESTRICTED, BLOCKED, UNKNOWN, UNAVAILABLE).
WITHHELD = frozenset(
    {
        "",
        "anonymous",
        "restricted",
        "blocked",
        "unknown",
        "unavailable",
        "private",
        "+266696687",
        "+7378742833",
        "+2562533",
        "+8656696",
        "+86282452253",
    }
)


# -- request parsing ---------------------------------------------------------------------


def _line() -> LineServices:
    """Return the line this app serves."""
    line: LineServices = current_app.extensions["peerline"]
    return line


def _required(name: str) -> str:
    """Return a required form field, or answer 400 naming it."""
    value = request.form.get(name, "").strip()
    if not value:
        abort(400, description=f"{name} is required")
    return value


def _optional(name: str) -> str | None:
    """Return an optional form field, or None when it is missing or blank."""
    return request.form.get(name, "").strip() or None


def _seconds(name: str) -> int | None:
    """Return a whole number of seconds from a form field, or None when absent."""
    value = request.form.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        abort(400, description=f"{name} must be a whole number of seconds")
    return int(value)


def _call_status(name: str = "CallStatus") -> str:
    """Return a Twilio call status from a form field, or answer 400."""
    value = _required(name).lower()
    if value not in STATUS_RANK:
        abort(400, description=f"{name} {value!r} is not a Twilio call status")
    return value


def _status_now() -> str | None:
    """Return the caller's CallStatus a voice request carries, or None when it has none.

    Every request Twilio makes about a call says where the call is: a <Dial> action with
    CallStatus completed means the caller hung up, whether or not a status callback follows.
    """
    value = request.form.get("CallStatus", "").strip().lower()
    if not value:
        return None
    if value not in STATUS_RANK:
        abort(400, description=f"CallStatus {value!r} is not a Twilio call status")
    return value


def _call_event(call_id: int) -> CallEvent:
    """Return what a request says about one of the line's calls, or answer 400."""
    return CallEvent(call_id, _required("CallSid"), _status_now())


def _leg_event(leg_id: int) -> LegEvent:
    """Return what a request says about a supporter's leg, or answer 400."""
    return LegEvent(leg_id, _required("CallSid"), _optional("ParentCallSid"))


def _status_callback() -> StatusCallback:
    """Return what a status callback says, or answer 400."""
    return StatusCallback(_required("CallSid"), _call_status(), _seconds("CallDuration"))


def _dial_end() -> DialEnd:
    """Return how the <Dial> this request ends went, or answer 400."""
    return DialEnd(_call_status("DialCallStatus"), _seconds("DialCallDuration"))


def _recording(sid: str | None, status: str = "completed") -> Recording:
    """Return what a request says of a voicemail's recording."""
    return Recording(sid, _optional("RecordingUrl"), _seconds("RecordingDuration"), status)


def _answer_in(call_id: int, language: str) -> tuple[LineServices, CallEvent, str]:
    """Return the line, what the request says of the call, and the caller's words, for a step
    asked in `language` (a language the line does not speak is answered 400)."""
    if language not in LANGUAGES:
        abort(400, description=f"{language!r} is not a language of the line")
    return _line(), _call_event(call_id), request.form.get("SpeechResult", "").strip()


def _digits() -> str:
    """Return the keys the person pressed, if any."""
    return request.form.get("Digits", "").strip()


def _caller(line: LineServices) -> str | None:
    """Return the caller's number in E.164, or None when they withheld it."""
    if "From" not in request.form:
        abort(400, description="From is required")
    raw = request.form["From"].strip()
    if raw.lower() in WITHHELD:
        return None
    try:
        return normalise_phone(raw, line.settings.default_region)
    except BadPhoneNumber:
        # An anonymous caller still gets support; they just cannot be called back.
        log.info("caller number withheld or unreadable")
        return None


R = TypeVar("R")


def _about_this_call(action: Callable[[], R]) -> R:
    """Run a step, answering 400 with the reason when the webhook names another call."""
    try:
        return action()
    except UnknownCall as exc:
        abort(400, description=str(exc))


# -- TwiML -------------------------------------------------------------------------------


def twiml(response: VoiceResponse) -> Response:
    """Return TwiML as Twilio expects it."""
    return Response(str(response), mimetype="text/xml")


def _answer(line: LineServices, answer: Answer) -> Response:
    """Return an answer as a TwiML response."""
    return twiml(render(line, answer))


def _answered(line: LineServices, action: Callable[[], Answer]) -> Response:
    """Run a step about the call the webhook names and return its answer as TwiML."""
    return _answer(line, _about_this_call(action))


# -- the caller's steps ------------------------------------------------------------------


@bp.post("")
@twilio_signed
def incoming() -> Response:
    """Answer a call: greeting and menu, once per CallSid."""
    line = _line()
    sid = _required("CallSid")
    caller = _caller(line)
    inbound = InboundCall(sid, caller, request.form.get("To", "").strip())
    return _answer(line, voice_menu.receive_call(line, inbound))


@bp.post("/status")
@twilio_signed
def status() -> Response:
    """Apply a call status callback, once and never backwards."""
    report = _status_callback()
    if not voice_status.call_status(_line(), report):
        log.info("status %s for unknown call %s", report.status, report.call_sid)
    return Response(status=204)


@bp.post("/call/<int:call_id>/menu/<language>/<int:attempt>")
@bp.post("/call/<int:call_id>/menu/<language>")
@twilio_signed
def menu(call_id: int, language: str, attempt: int | None = None) -> Response:
    """Act on the caller's menu choice, pressed or spoken, in the menu's language (at the
    menu after `attempt` misses; a <Gather> given before menus were numbered names none)."""
    line, event, speech = _answer_in(call_id, language)
    return _answered(
        line, lambda: voice_menu.choose(line, event, _digits(), speech, language, attempt)
    )


@bp.post("/call/<int:call_id>/offer/<language>")
@twilio_signed
def offer(call_id: int, language: str) -> Response:
    """Act on the caller's answer to the crisis offer: 3 the crisis line, else a person."""
    line, event, speech = _answer_in(call_id, language)
    return _answered(
        line, lambda: voice_menu.answer_offer(line, event, _digits(), speech, language)
    )


@bp.post("/call/<int:call_id>/connect/nobody", defaults={"told": True})
@bp.post("/call/<int:call_id>/connect", defaults={"told": False})
@twilio_signed
def connect(call_id: int, told: bool) -> Response:
    """Ring supporters for a caller who stayed on the line after the crisis offer (one that
    `told` them nobody could answer and what staying on leads to, at `/connect/nobody`)."""
    line, event = _line(), _call_event(call_id)
    return _answered(line, lambda: voice_menu.connect(line, event, told))


@bp.post("/call/<int:call_id>/now/<int:transfers>")
@bp.post("/call/<int:call_id>/now")
@twilio_signed
def skip(call_id: int, transfers: int | None = None) -> Response:
    """Go on without the rest of a notice the caller cut short with a key (3 at a crisis
    call's voicemail prompt, which names the call's crisis `transfers` before it: the crisis
    line)."""
    line, event = _line(), _call_event(call_id)
    return _answered(line, lambda: voice_menu.answer_now(line, event, _digits(), transfers))


@bp.post("/call/<int:call_id>/silent")
@twilio_signed
def silent(call_id: int) -> Response:
    """Act on a crisis call's message prompt that recorded nothing: the crisis line."""
    line, event = _line(), _call_event(call_id)
    return _answered(line, lambda: voice_menu.silent_at_tone(line, event))


@bp.post("/call/<int:call_id>/dial/<int:round_number>")
@twilio_signed
def dial_done(call_id: int, round_number: int) -> Response:
    """Act on the end of a ringing round."""
    line, event, dial = _line(), _call_event(call_id), _dial_end()
    return _answered(line, lambda: ringing.dial_ended(line, event, round_number, dial))


@bp.post("/call/<int:call_id>/crisis/<int:attempt>")
@bp.post("/call/<int:call_id>/crisis")
@twilio_signed
def crisis_done(call_id: int, attempt: int | None = None) -> Response:
    """Finish a transfer to the crisis line (the call's `attempt`-th; a <Dial> given before
    transfers were counted names none)."""
    line, event, dial = _line(), _call_event(call_id), _dial_end()
    return _answered(line, lambda: voice_menu.crisis_done(line, event, dial, attempt))


@bp.post("/call/<int:call_id>/voicemail")
@twilio_signed
def voicemail(call_id: int) -> Response:
    """Keep the voicemail the caller just left."""
    line, event = _line(), _call_event(call_id)
    recording = _recording(_optional("RecordingSid"))
    return _answered(line, lambda: voice_voicemail.voicemail(line, event, recording))


@bp.post("/call/<int:call_id>/transcription")
@twilio_signed
def transcription(call_id: int) -> Response:
    """Apply a voicemail's transcription: the crisis check, then a summary to supporters."""
    line = _line()
    event = CallEvent(call_id, _required("CallSid"))
    state = request.form.get("TranscriptionStatus", "").strip().lower()
    if not state:
        abort(400, description="TranscriptionStatus is required")
    text = _optional("TranscriptionText")
    recording_sid = _optional("RecordingSid")
    _about_this_call(lambda: voice_voicemail.transcription(line, event, recording_sid, text, state))
    return Response(status=204)


@bp.post("/call/<int:call_id>/recording")
@twilio_signed
def recording(call_id: int) -> Response:
    """Apply a voicemail's recording status callback."""
    line = _line()
    event = CallEvent(call_id, _required("CallSid"))
    recording_sid = _required("RecordingSid")
    state = request.form.get("RecordingStatus", "completed").strip().lower()
    recording = _recording(recording_sid, state)
    _about_this_call(lambda: voice_voicemail.voicemail(line, event, recording))
    return Response(status=204)


# -- a supporter's leg -------------------------------------------------------------------


@bp.post("/leg/<int:leg_id>/whisper")
@twilio_signed
def whisper(leg_id: int) -> Response:
    """Screen the supporter who answered."""
    line, event = _line(), _leg_event(leg_id)
    return _answered(line, lambda: voice_whisper.whisper(line, event))


@bp.post("/leg/<int:leg_id>/accept")
@twilio_signed
def accept(leg_id: int) -> Response:
    """Connect the supporter who pressed 1; hang up on anything else."""
    line, event = _line(), _leg_event(leg_id)
    return _answered(line, lambda: voice_whisper.accept(line, event, _digits()))


@bp.post("/leg/<int:leg_id>/status")
@twilio_signed
def leg_status(leg_id: int) -> Response:
    """Apply a supporter leg's status callback."""
    line, report = _line(), _status_callback()
    _about_this_call(lambda: voice_status.leg_status(line, leg_id, report))
    return Response(status=204)


# -- outbound call-backs -----------------------------------------------------------------


@bp.post("/callback/<int:call_id>/answer")
@twilio_signed
def callback_answer(call_id: int) -> Response:
    """Whisper to the supporter who answered our call-back."""
    line, event = _line(), _call_event(call_id)
    return _answered(line, lambda: callbacks.callback_answered(line, event))


@bp.post("/callback/<int:call_id>/connect")
@twilio_signed
def callback_connect(call_id: int) -> Response:
    """Ring the other person once the supporter pressed 1."""
    line, event = _line(), _call_event(call_id)
    return _answered(line, lambda: callbacks.callback_connect(line, event, _digits()))


@bp.post("/callback/<int:call_id>/done")
@twilio_signed
def callback_done(call_id: int) -> Response:
    """Record how the call-back went."""
    line, event, dial = _line(), _call_event(call_id), _dial_end()
    return _answered(line, lambda: callbacks.callback_done(line, event, dial))


@bp.post("/callback/<int:call_id>/screen")
@twilio_signed
def callback_screen(call_id: int) -> Response:
    """Hang up on the voicemail of the person called back; bridge a person."""
    line = _line()
    parent = _required("ParentCallSid")
    answered_by = request.form.get("AnsweredBy", "").strip().lower() or None
    return _answered(line, lambda: callbacks.callback_screen(line, call_id, parent, answered_by))


@bp.post("/callback/<int:call_id>/status")
@twilio_signed
def callback_status(call_id: int) -> Response:
    """Apply a call-back's status callback."""
    line, report = _line(), _status_callback()
    _about_this_call(lambda: callbacks.callback_status(line, call_id, report))
    return Response(status=204)
