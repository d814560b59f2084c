"""What a tester calling the line found (session 27): Spanish words at the English menu are
acted on in Spanish. Driven by signed webhooks, as Twilio sends them; every TwiML answer
parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import lines
from tests.support.voice import Phone, Twiml, the_call, voice_app, voice_line

SPEECH_LANGUAGE = {"en": "en-US", "es": "es-US"}


def phone_for(tmp_path: Path, line_file: str = lines.ON_CALL) -> Phone:
    """Return Twilio's side of a line (Sam and Ria on shift, Ria on call and the one who speaks
    Spanish, by default)."""
    line = voice_line(tmp_path, line_file)
    return Phone(line, voice_app(line))


def rung(twiml: Twiml) -> list[str]:
    """Return the numbers an answer rings, after nothing said (a choice acted on at once)."""
    assert twiml.verbs == ["Dial"], twiml
    return [n.text or "" for n in twiml.all("Number")]


# -- 3. asking for a person in Spanish at the English menu rings, in Spanish -----------------


@pytest.mark.parametrize(
    "words",
    [
        "quiero hablar con alguien",
        "necesito hablar con alguien",
        "quiero hablar con una persona",
        "Quiero hablar con alguien, por favor.",
        "hablar con alguien",
    ],
)
def test_asking_for_a_person_in_spanish_at_the_english_menu_rings_in_spanish(
    tmp_path: Path, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(caller.dial_in(), words)
    # Ria, who speaks Spanish, is rung at once: no Spanish menu to answer first.
    assert rung(ring) == [lines.RIA]
    call = the_call(phone.line, caller)
    assert (call.language, call.state, call.menu_choice) == ("es", "ringing", "peer")
    (ria,) = caller.legs(ring)
    assert "Spanish caller" in ria.answer().spoken()


def test_group_times_asked_in_spanish_at_the_english_menu_are_said_in_spanish(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    times = caller.speak(caller.dial_in(), "quiero saber los horarios de los grupos")
    gather = times.one("Gather")
    assert gather.attrib["language"] == SPEECH_LANGUAGE["es"]
    assert gather.attrib["action"].endswith("/menu/es/0")
    assert "grupos" in times.spoken() and "oprima" in times.spoken()
    assert the_call(phone.line, caller).menu_choice == "groups"


@pytest.mark.parametrize("words", ["español", "en español por favor", "Spanish"])
def test_asking_for_spanish_at_the_english_menu_still_gives_the_spanish_menu(
    tmp_path: Path, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = caller.speak(caller.dial_in(), words)
    assert menu.one("Gather").attrib["action"].endswith("/menu/es/0")
    assert "Para hablar con alguien, oprima 1." in menu.spoken()
    call = the_call(phone.line, caller)
    assert (call.language, call.state) == ("es", "menu")


def test_english_words_at_the_english_menu_ring_in_english(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(caller.dial_in(), "I want to talk to a person")
    assert sorted(rung(ring)) == sorted([lines.SAM, lines.RIA])
    assert the_call(phone.line, caller).language == "en"
