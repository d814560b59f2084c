"""TwiML for each answer, built with the Twilio SDK's builders: what the caller hears.

Every prompt is said in its language's voice; every URL is absolute on PUBLIC_BASE_URL, so
Twilio signs exactly what the webhooks check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twilio.twiml.voice_response import Gather, VoiceResponse

from peerline.service.services import LineServices
from peerline.service.voice import shared
from peerline.service.voice.answers import (
    Answer,
    Bridge,
    CallbackDial,
    CallbackWhisper,
    CrisisOffer,
    Goodbye,
    GroupTimes,
    LeaveMessage,
    Menu,
    Ring,
    Transfer,
    Whisper,
)
from peerline.service.voice.prompts import Prompts, prompts

# Events we ask Twilio to report for every supporter's leg.
LEG_EVENTS = "initiated ringing answered completed"


class Speaker:
    """Say prompts in the right voice and language."""

    def __init__(self, line: LineServices) -> None:
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
        return shared.url(self.line, path)


# What a menu says first after a miss (silence, a wrong key or words that are no choice).
MISSES = frozenset({"no_input", "not_an_option"})


def _one_key(
    speaker: Speaker,
    response: VoiceResponse,
    path: str,
    timeout: int,
    speech_language: str | None = None,
) -> Gather:
    """Return a <Gather> of one key press posted to a voice step, or a spoken word too when
    `speech_language` is given (heard with that language's speech settings and hints)."""
    if speech_language is None:
        return response.gather(
            input="dtmf", num_digits=1, timeout=timeout, action=speaker.url(path), method="POST"
        )
    texts = speaker.prompts
    return response.gather(
        input="dtmf speech",
        num_digits=1,
        action=speaker.url(path),
        method="POST",
        timeout=timeout,
        speech_timeout="auto",
        language=texts.text(speech_language, "speech_language"),
        hints=texts.text(speech_language, "hints"),
    )


def _skippable(
    speaker: Speaker, response: VoiceResponse, call_id: int, transfers: int | None = None
) -> Gather:
    """Return a <Gather> whose prompts one key press skips, to the same step said quietly.

    The message prompt names the call's crisis `transfers` so far: its 3 (the crisis line,
    for a crisis call) sent again is told apart from a key at the transfer's own notice.
    """
    path = f"/call/{call_id}/now" if transfers is None else f"/call/{call_id}/now/{transfers}"
    # The shortest wait Twilio allows after the words: the caller is waiting for a person.
    return _one_key(speaker, response, path, 1)


def _menu(
    speaker: Speaker,
    response: VoiceResponse,
    call_id: int,
    language: str,
    attempt: int,
    *,
    greeting: bool = False,
    switched: bool = False,
    text_offer: bool = False,
    before: tuple[tuple[str, dict[str, Any]], ...] = (),
) -> None:
    """Add the menu <Gather>, then a <Redirect> back to the menu for when nothing came.

    Both post to a step that names the menu's `attempt` (menus passed without a choice), so
    a miss Twilio sends again is counted once. Every word is inside the <Gather>, so a key
    press cuts any of it short. A first greeting names the line, offers the other language
    at once, says 911 and the one key for a person; the rest of the menu comes after that
    key.
    """
    texts = speaker.prompts
    menu_path = f"/call/{call_id}/menu/{language}/{attempt}"
    gather = _one_key(speaker, response, menu_path, 6, language)
    for key, params in before:
        speaker.say(gather, language, key, **params)
    others = [other for other in texts.languages() if other != language]
    if greeting and not switched:
        speaker.say(gather, language, "greeting")
        for other in others:
            speaker.say(gather, other, "language_offer")
    # After a miss too: the caller may be the one who could not find the words for danger.
    if greeting or any(key in MISSES for key, _ in before):
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
    response.redirect(speaker.url(menu_path), method="POST")


def _render_menu(speaker: Speaker, answer: Menu) -> VoiceResponse:
    """Render the greeting and menu."""
    response = VoiceResponse()
    _menu(
        speaker,
        response,
        answer.call_id,
        answer.language,
        answer.attempt,
        greeting=answer.greeting,
        switched=answer.switched,
        before=((answer.notice, {}),) if answer.notice else (),
    )
    return response


def _render_crisis_offer(speaker: Speaker, answer: CrisisOffer) -> VoiceResponse:
    """Render the crisis words' answer: where to turn, 3 for the crisis line, else a person;
    after a transfer that did not connect, first say so; to a worried caller, what to do for
    the other person. When nobody could answer, staying on is a message and a call back (or,
    for a hidden number, no call back), never a person promised."""
    response = VoiceResponse()
    # Its own step: the menu's, sent again by Twilio, is told this offer again (not a choice).
    offer_path = f"/call/{answer.call_id}/offer/{answer.language}"
    gather = _one_key(speaker, response, offer_path, 3, answer.language)
    if answer.after_peer:
        speaker.say(gather, answer.language, "crisis_after_peer")
        speaker.say(response, answer.language, "goodbye")
        response.hangup()
        return response
    if answer.ended and answer.nobody is None:
        # The crisis line's call ended at once: where to turn, 3 to try it again, or a peer.
        speaker.say(gather, answer.language, "crisis_ended_peer")
        response.redirect(speaker.url(f"/call/{answer.call_id}/connect"), method="POST")
        return response
    if answer.ended:
        # The same, nobody able to answer: where to turn, 3 to try it again, goodbye.
        speaker.say(gather, answer.language, "crisis_leave")
        speaker.say(response, answer.language, "goodbye")
        response.hangup()
        return response
    words = "crisis_transfer_failed" if answer.failed else "crisis_heard"
    if answer.attempt and not answer.failed:
        # Pills or poison taken, a cut bleeding: 911 now comes first (as the texts say it).
        words = "crisis_heard_attempt"
    if answer.worried and not answer.failed:
        words = "someone_else_heard"
    if answer.nobody is None:
        speaker.say(gather, answer.language, words)
    else:
        speaker.say(gather, answer.language, f"{words}_nobody")
        if answer.to_crisis_line:
            speaker.say(gather, answer.language, "stay_crisis_line")
        elif answer.can_record:
            when = (
                speaker.prompts.text(answer.language, "leave_message_when_open")
                if answer.nobody == "closed"
                else ""
            )
            speaker.say(gather, answer.language, "stay_message", when=when)
        else:
            speaker.say(gather, answer.language, "stay_hidden")
    # Staying on the line is the other choice: straight to the ringing (or the message when
    # nobody can answer, which then does not say again what this offer said), never the menu.
    stay = "connect" if answer.nobody is None else "connect/nobody"
    response.redirect(speaker.url(f"/call/{answer.call_id}/{stay}"), method="POST")
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
        answer.attempt,
        text_offer=answer.can_text,
        before=said,
    )
    return response


def _render_transfer(speaker: Speaker, answer: Transfer) -> VoiceResponse:
    """Render the transfer to the crisis line."""
    response = VoiceResponse()
    if not answer.quiet:
        speaker.say(
            _skippable(speaker, response, answer.call_id),
            answer.language,
            "crisis_transfer_nobody" if answer.nobody else "crisis_transfer",
        )
    dial = response.dial(
        action=speaker.url(f"/call/{answer.call_id}/crisis/{answer.attempt}"),
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
    """Render why nobody can answer, then the voicemail <Record> (a key skips to the beep).

    A crisis call also hears where to turn, with 3 for the crisis line, before the voicemail
    prompt or, when its number is hidden, before the goodbye. A notice (the 911 line in a
    language the call just changed to) comes first. A caller the crisis offer just `told` all
    that hears only what is new.
    """
    if answer.told and not answer.quiet:
        return _render_leave_message_told(speaker, answer)
    response = VoiceResponse()
    language = answer.language
    if not answer.can_record:
        if answer.crisis and not answer.quiet:
            prompt = _skippable(speaker, response, answer.call_id, answer.transfers)
            _why_nobody(speaker, prompt, answer)
            speaker.say(prompt, language, "crisis_leave")
            speaker.say(prompt, language, "withheld")
        elif answer.crisis:
            speaker.say(response, language, "withheld")
        else:
            if answer.notice:
                speaker.say(response, language, answer.notice)
            _why_nobody(speaker, response, answer)
            speaker.say(response, language, "withheld")
        response.hangup()
        return response
    if not answer.quiet:
        prompt = _skippable(speaker, response, answer.call_id, answer.transfers)
        if answer.notice:
            speaker.say(prompt, language, answer.notice)
        _why_nobody(speaker, prompt, answer)
        if answer.crisis:
            speaker.say(prompt, language, "crisis_leave")
        when = (
            speaker.prompts.text(language, "leave_message_when_open")
            if answer.reason == "closed"
            else ""
        )
        speaker.say(prompt, language, "leave_message", when=when)
    _record(speaker, response, answer)
    return response


def _render_leave_message_told(speaker: Speaker, answer: LeaveMessage) -> VoiceResponse:
    """Render the message prompt, or the goodbye for a hidden number, right after a crisis
    offer that said why nobody can answer, 911, 3 for the crisis line and what staying on
    leads to: when the line opens (the offer said only "when the line opens") and the tone,
    or a goodbye. The words sit in a <Gather> where 3 is still the crisis line for a crisis
    call; a key skips to the beep."""
    response = VoiceResponse()
    language = answer.language
    if not answer.can_record:
        node: VoiceResponse | Gather = response
        if answer.crisis:
            node = _skippable(speaker, response, answer.call_id, answer.transfers)
        speaker.say(node, language, "withheld_told")
        response.hangup()
        return response
    prompt = _skippable(speaker, response, answer.call_id, answer.transfers)
    if answer.reason == "closed":
        speaker.say(prompt, language, "opens", opening=answer.opening)
    speaker.say(prompt, language, "leave_message_told")
    _record(speaker, response, answer)
    return response


def _record(speaker: Speaker, response: VoiceResponse, answer: LeaveMessage) -> None:
    """Add the voicemail's <Record>, and what is said when nothing was recorded."""
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
    # Reached only when nothing was recorded: Twilio skips the action on silence. A crisis
    # caller silent at the tone (crying, or unable to speak) is not hung up on: the next step
    # puts them through to the crisis line.
    if answer.crisis:
        response.redirect(speaker.url(f"/call/{answer.call_id}/silent"), method="POST")
        return
    speaker.say(response, answer.language, "voicemail_none")
    response.hangup()


def _why_nobody(speaker: Speaker, node: VoiceResponse | Gather, answer: LeaveMessage) -> None:
    """Add why nobody can answer: closed (and when it opens), busy, or no answer."""
    if answer.reason == "closed":
        speaker.say(node, answer.language, "closed", opening=answer.opening)
    else:
        speaker.say(node, answer.language, answer.reason)


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
    gather = _one_key(speaker, response, f"/leg/{answer.leg_id}/accept", answer.seconds)
    name = speaker.prompts.text(answer.caller_language, "language_name")
    # What the supporter must know, as few words as can say it: the caller waits meanwhile.
    if answer.caller_language == "en":
        speaker.say(gather, "en", "whisper")
    else:
        speaker.say(gather, "en", "whisper_language", language=name)
    if answer.worried:
        speaker.say(gather, "en", "whisper_someone_else")
    elif answer.crisis:
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
    gather = _one_key(speaker, response, f"/callback/{answer.call_id}/connect", answer.seconds)
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


def render(line: LineServices, answer: Answer) -> VoiceResponse:
    """Return the TwiML for what the person on the line hears next."""
    return RENDERERS[type(answer)](Speaker(line), answer)
