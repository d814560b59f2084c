"""After a hard phone call the supporter reads "call", not "chat" (session 27).

A supporter who took a crisis call was texted "That was a hard chat: no new one for 5 min",
and an offer while they rested said "You're resting after a hard chat". Driven by signed
webhooks, as Twilio sends them; Sam reads English, Ria Spanish first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import lines
from tests.support.chat import outbox, run_jobs
from tests.support.voice import Caller, Phone, Twiml, voice_app, voice_line

CRISIS_WORDS = "I have no one to talk to and I want to end my life"


def phone_for(tmp_path: Path) -> Phone:
    """Return Twilio's side of a line with Sam and Ria on shift, Ria on call."""
    line = voice_line(tmp_path, lines.ON_CALL)
    return Phone(line, voice_app(line))


def answered_by(caller: Caller, ring: Twiml, number: str) -> None:
    """Have the supporter at `number` take the call and the other phone stop ringing."""
    for leg in caller.legs(ring):
        if leg.to == number:
            leg.press(leg.answer(), "1")
        else:
            leg.status("canceled")


def texts(phone: Phone, number: str, purpose: str) -> list[str]:
    """Return the texts of one purpose written to a number."""
    return [m["body"] for m in outbox(phone.line, number) if m["purpose"].startswith(purpose)]


@pytest.mark.parametrize(
    ("number", "said"),
    [
        (lines.SAM, "That was a hard call: no new chat or call for 5 min, or text #ready."),
        (lines.RIA, "Fue una llamada dificil: ni chats ni llamadas en 5 min"),
    ],
)
def test_after_a_crisis_call_the_debrief_text_says_call(
    tmp_path: Path, number: str, said: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.stay_silent(caller.speak(caller.dial_in(), CRISIS_WORDS))
    answered_by(caller, ring, number)
    caller.dial_ends(ring, "completed", 200, CallStatus="completed")
    [invite] = texts(phone, number, "debrief_invite_paused")
    assert invite.startswith(said), invite
    assert "chat:" not in invite and "conversacion" not in invite


def test_an_offer_while_resting_after_a_call_says_call(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    phone.hooks.sms(lines.RIA, "#away")
    caller = phone.call(lines.TEXTER)
    ring = caller.stay_silent(caller.speak(caller.dial_in(), CRISIS_WORDS))
    answered_by(caller, ring, lines.SAM)
    caller.dial_ends(ring, "completed", 200, CallStatus="completed")
    # A texter in crisis with nobody else free reaches Sam while he rests.
    phone.hooks.sms(lines.TEXTER_2, "i want to kill myself tonight")
    run_jobs(phone.line)
    [offer] = texts(phone, lines.SAM, "offer")
    assert "You rest after a hard call" in offer, offer  # session 28: "their best match"
