"""Voice webhooks: verify, de-duplicate, step the call, answer with TwiML built by the SDK.

`POST /webhooks/voice` (a call comes in) and `POST /webhooks/voice/status` (its status
callback) are the public contract; every further step lives under `/webhooks/voice/` at an
absolute URL on PUBLIC_BASE_URL, so Twilio signs exactly what our validator checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, abort, current_app, request
from twilio.twiml.voice_response import Gather, VoiceResponse

from peerline.flows.menu import LANGUAGES
from peerline.service.call_states import STATUS_RANK
from peerline.service.line import Line
from peerline.service.privacy import BadPhoneNumber, normalise_phone
from peerline.service.voice import callbacks, ringing, steps
from peerline.service.voice import menu as menu_steps
from peerline.service.voice import status as status_steps
from peerline.service.voice import voicemail as voicemail_steps
from peerline.service.voice import whisper as whisper_steps
from peerline.service.voice.answers import (
    Answer,
    Bridge,
    CallbackDial,
    CallbackWhisper,
    CrisisOffer,
    Goodbye,
    GroupTimes,
    InboundCall,
    LeaveMessage,
    Menu,
    Ring,
    Transfer,
    UnknownCall,
    Whisper,
)
from peerline.service.voice.prompts import Prompts, prompts
from peerline.webhooks.signing import twilio_signed

log = logging.getLogger(__name__)

bp = Blueprint("voice", __name__, url_prefix=steps.PREFIX)

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
# Events we ask Twilio to report for every supporter's leg.
LEG_EVENTS = "initiated ringing answered completed"


# -- request parsing ---------------------------------------------------------------------


def _line() -> Line:
    """Return the line this app serves."""
    line: Line = current_app.extensions["peerline"]
    return line


def _required(name: str) -> str:
    """Return a required form field, or answer 400 naming it."""
    value = request.form.get(name, "").strip()
    if not value:
        abort(400, description=f"{name} is required")
    return value


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


def _caller(line: Line) -> str | None:
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


def _step(action: Callable[[], R]) -> R:
    """Run a step, answering 400 with the reason when the webhook names another call."""
    try:
        return action()
    except UnknownCall as exc:
        abort(400, description=str(exc))


# -- TwiML -------------------------------------------------------------------------------


class Speaker:
    """Say prompts in the right voice and language."""

    def __init__(self, line: Line) -> None:
        self.line = line
        self.prompts: Prompts = prompts(line)

    def say(self, node: VoiceResponse | Gather, language: str, key: str, /, **params: Any) -> None:
        """Add a <Say> of a prompt, spoken by that language's voice."""
        texts = self.prompts
        node.say(
            texts.text(language, key, **params),
            voice=texts.text(language, "voice"),
            language=texts.text(language, "say_language"),
        )

    def url(self, path: str) -> str:
        """Return the absolute, signed-by-Twilio URL of a voice step."""
        return steps.url(self.line, path)


def twiml(response: VoiceResponse) -> Response:
    """Return TwiML as Twilio expects it."""
    return Response(str(response), mimetype="text/xml")


def _skippable(speaker: Speaker, response: VoiceResponse, call_id: int) -> Gather:
    """Return a <Gather> whose prompts one key press skips, to the same step said quietly."""
    return response.gather(
        input="dtmf",
        num_digits=1,
        # The shortest wait Twilio allows after the words: the caller is waiting for a person.
        timeout=1,
        action=speaker.url(f"/call/{call_id}/now"),
        method="POST",
    )


def _menu(
    speaker: Speaker,
    response: VoiceResponse,
    call_id: int,
    language: str,
    *,
    greeting: bool = False,
    switched: bool = False,
    text_offer: bool = False,
    before: tuple[tuple[str, dict[str, Any]], ...] = (),
) -> None:
    """Add the menu <Gather>, then a <Redirect> back to the menu for when nothing came.

    Every word is inside the <Gather>, so a key press cuts any of it short. A first greeting
    names the line, offers the other language at once, says 911 and the one key for a
    person; the rest of the menu comes after that key.
    """
    texts = speaker.prompts
    menu_url = speaker.url(f"/call/{call_id}/menu/{language}")
    gather = response.gather(
        input="dtmf speech",
        num_digits=1,
        action=menu_url,
        method="POST",
        timeout=6,
        speech_timeout="auto",
        language=texts.text(language, "speech_language"),
        hints=texts.text(language, "hints"),
    )
    for key, params in before:
        speaker.say(gather, language, key, **params)
    others = [other for other in texts.languages() if other != language]
    if greeting and not switched:
        speaker.say(gather, language, "greeting")
        for other in others:
            speaker.say(gather, other, "language_offer")
    if greeting:
        speaker.say(gather, language, "emergency")
    speaker.say(gather, language, "first_key")
    speaker.say(gather, language, "menu")
    if greeting:
        speaker.say(gather, language, "about")
    if text_offer:
        speaker.say(gather, language, "groups_text_offer")
    if not greeting or switched:
        for other in others:
            speaker.say(gather, other, "language_offer")
    # No input falls through the <Gather>: come back without Digits, counted as silence.
    response.redirect(menu_url, method="POST")


def _render_menu(speaker: Speaker, answer: Menu) -> VoiceResponse:
    """Render the greeting and menu."""
    response = VoiceResponse()
    _menu(
        speaker,
        response,
        answer.call_id,
        answer.language,
        greeting=answer.greeting,
        switched=answer.switched,
        before=((answer.notice, {}),) if answer.notice else (),
    )
    return response


def _render_crisis_offer(speaker: Speaker, answer: CrisisOffer) -> VoiceResponse:
    """Render the crisis words' answer: where to turn, 3 for the crisis line, else a person."""
    response = VoiceResponse()
    texts = speaker.prompts
    gather = response.gather(
        input="dtmf speech",
        num_digits=1,
        action=speaker.url(f"/call/{answer.call_id}/menu/{answer.language}"),
        method="POST",
        timeout=3,
        speech_timeout="auto",
        language=texts.text(answer.language, "speech_language"),
        hints=texts.text(answer.language, "hints"),
    )
    speaker.say(gather, answer.language, "crisis_heard")
    # Staying on the line is the other choice: straight to the ringing, never the menu.
    response.redirect(speaker.url(f"/call/{answer.call_id}/connect"), method="POST")
    return response


def _render_groups(speaker: Speaker, answer: GroupTimes) -> VoiceResponse:
    """Render the group times, then the menu."""
    response = VoiceResponse()
    said: tuple[tuple[str, dict[str, Any]], ...] = (
        (("groups", {"groups": answer.groups}),) if answer.groups else (("no_groups", {}),)
    )
    _menu(
        speaker,
        response,
        answer.call_id,
        answer.language,
        text_offer=answer.can_text,
        before=said,
    )
    return response


def _render_transfer(speaker: Speaker, answer: Transfer) -> VoiceResponse:
    """Render the transfer to the crisis line."""
    response = VoiceResponse()
    if not answer.quiet:
        speaker.say(
            _skippable(speaker, response, answer.call_id), answer.language, "crisis_transfer"
        )
    dial = response.dial(
        action=speaker.url(f"/call/{answer.call_id}/crisis"),
        method="POST",
        # A full number from the line's own number: a short code or a hidden caller ID may
        # not route through the provider.
        caller_id=speaker.line.settings.twilio_phone_number,
    )
    dial.number(answer.number)
    return response


def _render_ring(speaker: Speaker, answer: Ring) -> VoiceResponse:
    """Render the ringing of supporters, each screened by a whisper."""
    response = VoiceResponse()
    if answer.notice:
        speaker.say(_skippable(speaker, response, answer.call_id), answer.language, answer.notice)
    dial = response.dial(
        action=speaker.url(f"/call/{answer.call_id}/dial/{answer.round}"),
        method="POST",
        timeout=answer.ring_seconds,
        # Supporters see the line's number, never the caller's.
        caller_id=speaker.line.settings.twilio_phone_number,
        # The caller keeps hearing ringing while a supporter hears the whisper.
        answer_on_bridge=True,
    )
    for leg in answer.legs:
        dial.number(
            leg.phone,
            url=speaker.url(f"/leg/{leg.leg_id}/whisper"),
            method="POST",
            status_callback=speaker.url(f"/leg/{leg.leg_id}/status"),
            status_callback_event=LEG_EVENTS,
            status_callback_method="POST",
        )
    return response


def _render_leave_message(speaker: Speaker, answer: LeaveMessage) -> VoiceResponse:
    """Render why nobody can answer, then the voicemail <Record> (a key skips to the beep)."""
    response = VoiceResponse()
    language = answer.language
    if not answer.can_record:
        if answer.reason == "closed":
            speaker.say(response, language, "closed", opening=answer.opening)
        else:
            speaker.say(response, language, answer.reason)
        speaker.say(response, language, "withheld")
        response.hangup()
        return response
    if not answer.quiet:
        prompt = _skippable(speaker, response, answer.call_id)
        if answer.reason == "closed":
            speaker.say(prompt, language, "closed", opening=answer.opening)
        else:
            speaker.say(prompt, language, answer.reason)
        when = (
            speaker.prompts.text(language, "leave_message_when_open")
            if answer.reason == "closed"
            else ""
        )
        speaker.say(prompt, language, "leave_message", when=when)
    response.record(
        action=speaker.url(f"/call/{answer.call_id}/voicemail"),
        method="POST",
        max_length=answer.max_seconds,
        timeout=10,
        finish_on_key="#",
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=speaker.url(f"/call/{answer.call_id}/recording"),
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
        # Transcribed so the crisis check runs on what was said, and supporters get a summary.
        transcribe=True,
        transcribe_callback=speaker.url(f"/call/{answer.call_id}/transcription"),
    )
    # Reached only when nothing was recorded: Twilio skips the action on silence.
    speaker.say(response, language, "voicemail_none")
    response.hangup()
    return response


def _render_goodbye(speaker: Speaker, answer: Goodbye) -> VoiceResponse:
    """Render a last word and a hang-up."""
    response = VoiceResponse()
    if answer.key:
        speaker.say(response, answer.language, answer.key, **answer.params)
    response.hangup()
    return response


def _render_whisper(speaker: Speaker, answer: Whisper) -> VoiceResponse:
    """Render the whisper that asks the supporter to press 1."""
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=answer.seconds,
        action=speaker.url(f"/leg/{answer.leg_id}/accept"),
        method="POST",
    )
    name = speaker.prompts.text(answer.caller_language, "language_name")
    # What the supporter must know, as few words as can say it: the caller waits meanwhile.
    if answer.caller_language == "en":
        speaker.say(gather, "en", "whisper")
    else:
        speaker.say(gather, "en", "whisper_language", language=name)
    if answer.crisis:
        speaker.say(gather, "en", "whisper_crisis")
    if answer.other_language:
        speaker.say(gather, "en", "whisper_other_language", language=name)
    speaker.say(gather, "en", "whisper_key")
    # No key (or a voicemail box) ends here: this leg hangs up and the caller never hears it.
    response.hangup()
    return response


def _render_bridge(speaker: Speaker, answer: Bridge) -> VoiceResponse:
    """Render the end of a whisper that connects the call."""
    response = VoiceResponse()
    # The whisper document ends without <Hangup>, and that is what tells Twilio to bridge.
    if answer.key:
        speaker.say(response, "en", answer.key)
    return response


def _render_callback_whisper(speaker: Speaker, answer: CallbackWhisper) -> VoiceResponse:
    """Render the whisper to a supporter we are calling back for."""
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf",
        num_digits=1,
        timeout=answer.seconds,
        action=speaker.url(f"/callback/{answer.call_id}/connect"),
        method="POST",
    )
    about = (
        speaker.prompts.text("en", "callback_about", reference=answer.reference)
        if answer.reference
        else ""
    )
    speaker.say(gather, "en", "callback_whisper", alias=answer.alias, about=about)
    response.hangup()
    return response


def _render_callback_dial(speaker: Speaker, answer: CallbackDial) -> VoiceResponse:
    """Render the ringing of the person called back."""
    response = VoiceResponse()
    speaker.say(response, "en", "callback_connecting", alias=answer.alias)
    dial = response.dial(
        action=speaker.url(f"/callback/{answer.call_id}/done"),
        method="POST",
        timeout=answer.ring_seconds,
        # The person called back sees the line's number, never the supporter's.
        caller_id=speaker.line.settings.twilio_phone_number,
    )
    dial.number(
        answer.phone,
        # Their own voicemail answering is not a call-back made: the screen hangs up on it.
        machine_detection="Enable",
        url=speaker.url(f"/callback/{answer.call_id}/screen"),
        method="POST",
    )
    return response


RENDERERS: dict[type, Callable[[Speaker, Any], VoiceResponse]] = {
    Menu: _render_menu,
    CrisisOffer: _render_crisis_offer,
    GroupTimes: _render_groups,
    Transfer: _render_transfer,
    Ring: _render_ring,
    LeaveMessage: _render_leave_message,
    Goodbye: _render_goodbye,
    Whisper: _render_whisper,
    Bridge: _render_bridge,
    CallbackWhisper: _render_callback_whisper,
    CallbackDial: _render_callback_dial,
}


def render(line: Line, answer: Answer) -> VoiceResponse:
    """Return the TwiML for what the person on the line hears next."""
    return RENDERERS[type(answer)](Speaker(line), answer)


def _answer(line: Line, answer: Answer) -> Response:
    """Return an answer as a TwiML response."""
    return twiml(render(line, answer))


# -- the caller's steps ------------------------------------------------------------------


@bp.post("")
@twilio_signed
def incoming() -> Response:
    """Answer a call: greeting and menu, once per CallSid."""
    line = _line()
    sid = _required("CallSid")
    caller = _caller(line)
    inbound = InboundCall(sid, caller, request.form.get("To", "").strip())
    return _answer(line, menu_steps.receive_call(line, inbound))


@bp.post("/status")
@twilio_signed
def status() -> Response:
    """Apply a call status callback, once and never backwards."""
    line = _line()
    sid = _required("CallSid")
    state = _call_status()
    if not status_steps.call_status(line, sid, state, _seconds("CallDuration")):
        log.info("status %s for unknown call %s", state, sid)
    return Response(status=204)


@bp.post("/call/<int:call_id>/menu/<language>")
@twilio_signed
def menu(call_id: int, language: str) -> Response:
    """Act on the caller's menu choice, pressed or spoken, in the menu's language."""
    line = _line()
    if language not in LANGUAGES:
        abort(400, description=f"{language!r} is not a language of the line")
    sid = _required("CallSid")
    digits = request.form.get("Digits", "").strip()
    speech = request.form.get("SpeechResult", "").strip()
    now = _status_now()
    return _answer(
        line,
        _step(lambda: menu_steps.choose(line, call_id, sid, digits, speech, language, status=now)),
    )


@bp.post("/call/<int:call_id>/connect")
@twilio_signed
def connect(call_id: int) -> Response:
    """Ring supporters for a caller who stayed on the line after the crisis offer."""
    line = _line()
    sid = _required("CallSid")
    now = _status_now()
    return _answer(line, _step(lambda: menu_steps.connect(line, call_id, sid, now)))


@bp.post("/call/<int:call_id>/now")
@twilio_signed
def skip(call_id: int) -> Response:
    """Go on without the rest of a notice the caller cut short with a key."""
    line = _line()
    sid = _required("CallSid")
    now = _status_now()
    return _answer(line, _step(lambda: menu_steps.now_step(line, call_id, sid, now)))


@bp.post("/call/<int:call_id>/dial/<int:round_number>")
@twilio_signed
def dial_done(call_id: int, round_number: int) -> Response:
    """Act on the end of a ringing round."""
    line = _line()
    sid = _required("CallSid")
    dial_status = _call_status("DialCallStatus")
    seconds = _seconds("DialCallDuration")
    now = _status_now()
    return _answer(
        line,
        _step(
            lambda: ringing.dial_ended(
                line, call_id, round_number, sid, dial_status, seconds, status=now
            )
        ),
    )


@bp.post("/call/<int:call_id>/crisis")
@twilio_signed
def crisis_done(call_id: int) -> Response:
    """Finish a transfer to the crisis line."""
    line = _line()
    sid = _required("CallSid")
    dial_status = _call_status("DialCallStatus")
    now = _status_now()
    return _answer(
        line, _step(lambda: menu_steps.crisis_done(line, call_id, sid, dial_status, status=now))
    )


@bp.post("/call/<int:call_id>/voicemail")
@twilio_signed
def voicemail(call_id: int) -> Response:
    """Keep the voicemail the caller just left."""
    line = _line()
    sid = _required("CallSid")
    recording_url = request.form.get("RecordingUrl", "").strip() or None
    seconds = _seconds("RecordingDuration")
    recording_sid = request.form.get("RecordingSid", "").strip() or None
    now = _status_now()
    answer = _step(
        lambda: voicemail_steps.voicemail(
            line,
            call_id,
            sid,
            recording_sid=recording_sid,
            recording_url=recording_url,
            seconds=seconds,
            call_status=now,
        )
    )
    return _answer(line, answer)


@bp.post("/call/<int:call_id>/transcription")
@twilio_signed
def transcription(call_id: int) -> Response:
    """Apply a voicemail's transcription: the crisis check, then a summary to supporters."""
    line = _line()
    sid = _required("CallSid")
    state = request.form.get("TranscriptionStatus", "").strip().lower()
    if not state:
        abort(400, description="TranscriptionStatus is required")
    text = request.form.get("TranscriptionText", "").strip() or None
    recording_sid = request.form.get("RecordingSid", "").strip() or None
    _step(
        lambda: voicemail_steps.transcription(
            line, call_id, sid, recording_sid=recording_sid, text=text, status=state
        )
    )
    return Response(status=204)


@bp.post("/call/<int:call_id>/recording")
@twilio_signed
def recording(call_id: int) -> Response:
    """Apply a voicemail's recording status callback."""
    line = _line()
    sid = _required("CallSid")
    recording_sid = _required("RecordingSid")
    state = request.form.get("RecordingStatus", "completed").strip().lower()
    recording_url = request.form.get("RecordingUrl", "").strip() or None
    seconds = _seconds("RecordingDuration")
    _step(
        lambda: voicemail_steps.voicemail(
            line,
            call_id,
            sid,
            recording_sid=recording_sid,
            recording_url=recording_url,
            seconds=seconds,
            status=state,
        )
    )
    return Response(status=204)


# -- a supporter's leg -------------------------------------------------------------------


@bp.post("/leg/<int:leg_id>/whisper")
@twilio_signed
def whisper(leg_id: int) -> Response:
    """Screen the supporter who answered."""
    line = _line()
    sid = _required("CallSid")
    parent = request.form.get("ParentCallSid", "").strip() or None
    return _answer(line, _step(lambda: whisper_steps.whisper(line, leg_id, sid, parent)))


@bp.post("/leg/<int:leg_id>/accept")
@twilio_signed
def accept(leg_id: int) -> Response:
    """Connect the supporter who pressed 1; hang up on anything else."""
    line = _line()
    sid = _required("CallSid")
    digits = request.form.get("Digits", "").strip()
    parent = request.form.get("ParentCallSid", "").strip() or None
    return _answer(line, _step(lambda: whisper_steps.accept(line, leg_id, sid, digits, parent)))


@bp.post("/leg/<int:leg_id>/status")
@twilio_signed
def leg_status(leg_id: int) -> Response:
    """Apply a supporter leg's status callback."""
    line = _line()
    sid = _required("CallSid")
    state = _call_status()
    seconds = _seconds("CallDuration")
    _step(lambda: status_steps.leg_status(line, leg_id, sid, state, seconds))
    return Response(status=204)


# -- outbound call-backs -----------------------------------------------------------------


@bp.post("/callback/<int:call_id>/answer")
@twilio_signed
def callback_answer(call_id: int) -> Response:
    """Whisper to the supporter who answered our call-back."""
    line = _line()
    sid = _required("CallSid")
    now = _status_now()
    return _answer(line, _step(lambda: callbacks.callback_answered(line, call_id, sid, status=now)))


@bp.post("/callback/<int:call_id>/connect")
@twilio_signed
def callback_connect(call_id: int) -> Response:
    """Ring the other person once the supporter pressed 1."""
    line = _line()
    sid = _required("CallSid")
    digits = request.form.get("Digits", "").strip()
    now = _status_now()
    return _answer(
        line, _step(lambda: callbacks.callback_connect(line, call_id, sid, digits, status=now))
    )


@bp.post("/callback/<int:call_id>/done")
@twilio_signed
def callback_done(call_id: int) -> Response:
    """Record how the call-back went."""
    line = _line()
    sid = _required("CallSid")
    dial_status = _call_status("DialCallStatus")
    seconds = _seconds("DialCallDuration")
    now = _status_now()
    return _answer(
        line,
        _step(
            lambda: callbacks.callback_done(line, call_id, sid, dial_status, seconds, status=now)
        ),
    )


@bp.post("/callback/<int:call_id>/screen")
@twilio_signed
def callback_screen(call_id: int) -> Response:
    """Hang up on the voicemail of the person called back; bridge a person."""
    line = _line()
    parent = _required("ParentCallSid")
    answered_by = request.form.get("AnsweredBy", "").strip().lower() or None
    return _answer(
        line, _step(lambda: callbacks.callback_screen(line, call_id, parent, answered_by))
    )


@bp.post("/callback/<int:call_id>/status")
@twilio_signed
def callback_status(call_id: int) -> Response:
    """Apply a call-back's status callback."""
    line = _line()
    sid = _required("CallSid")
    state = _call_status()
    seconds = _seconds("CallDuration")
    _step(lambda: callbacks.callback_status(line, call_id, sid, state, seconds))
    return Response(status=204)
