"""A caller worried about someone else at risk, at the voice menu: the words tell of another
person's danger and of no crisis of the caller's own. They hear what the worried texter reads
(911 if that person is in danger now, 988 helps friends and family too: press 3, or stay on
for a peer), in their language; recorded as a safety event, the call not flagged a crisis.
Driven by signed webhooks, as Twilio sends them; every TwiML answer parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import lines
from tests.support.voice import Caller, Twiml, is_transfer, phone_for, safety_events, the_call

WORRIED = {
    "en": "my friend wants to kill herself",
    "es": "mi hermana dice que se quiere matar",
}
# What the worried caller hears, by language.
GUIDANCE = {
    "en": ("Worried about someone?", "call 9 1 1", "friends and family", "press 3", "stay on"),
    "es": ("¿Le preocupa alguien?", "llame al 9 1 1", "familiares y amigos", "oprima 3", "siga"),
}


def worried_offer(caller: Caller, language: str) -> Twiml:
    """Say worried words at the menu: the offer for someone worried, in their language."""
    offer = caller.speak(caller.dial_in(), WORRIED[language])
    assert offer.one("Gather").attrib["action"].endswith(f"/offer/{language}"), offer
    return offer


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_worried_caller_hears_what_to_do_for_the_other_person(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    said = worried_offer(caller, language).spoken()
    assert "not one of the choices" not in said and "no es una de las opciones" not in said
    for words in GUIDANCE[language]:
        assert words in said, said
    # Not the words meant for the caller's own crisis.
    assert "you deserve support" not in said and "usted merece apoyo" not in said
    call = the_call(phone.line, caller)
    assert call.state == "crisis_offer" and call.language == language
    assert call.crisis is None  # someone else's risk: not the caller's crisis
    assert safety_events(phone.line) == ["voice_someone_else"]


@pytest.mark.parametrize("language", ["en", "es"])
def test_3_at_the_worried_offer_is_the_crisis_line(tmp_path: Path, language: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    assert is_transfer(caller.press(worried_offer(caller, language), "3"))
    assert the_call(phone.line, caller).state == "transferred"


def test_staying_on_at_the_worried_offer_rings_a_peer(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.stay_silent(worried_offer(caller, "en"))
    assert ring.verbs[-1] == "Dial" and not is_transfer(ring)
    assert the_call(phone.line, caller).state == "ringing"


def test_other_words_at_the_worried_offer_ring_a_peer(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(worried_offer(caller, "en"), "I just don't know what to do")
    assert ring.verbs[-1] == "Dial" and not is_transfer(ring)
    assert "not one of the choices" not in ring.spoken()


def test_the_worried_words_sent_again_are_told_the_same_offer(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    first = caller.speak(menu, WORRIED["en"])
    again = caller.speak(menu, WORRIED["en"])  # Twilio sends the request again
    assert again.spoken() == first.spoken()
    assert safety_events(phone.line) == ["voice_someone_else"]


@pytest.mark.parametrize(
    "words",
    [
        "my friend wants to kill herself and I want to end my life too",
        "my friend wants to kill herself and I want to die",
    ],
)
def test_the_callers_own_crisis_beside_someone_elses_gets_the_crisis_offer(
    tmp_path: Path, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), words)
    said = offer.spoken()
    assert "you deserve support" in said and "Worried about someone?" not in said
    assert the_call(phone.line, caller).crisis is not None


def test_an_everyday_mention_of_a_friend_is_no_choice(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = caller.speak(caller.dial_in(), "my friend's phone died")
    assert "not one of the choices" in menu.spoken()
    assert safety_events(phone.line) == []
    assert the_call(phone.line, caller).crisis is None
