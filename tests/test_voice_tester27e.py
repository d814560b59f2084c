"""What a tester playing callers found (session 27, fifth round): a crisis transfer that drops
at once, asking the crisis offer again, Spanish words at the English menu, 3 at a closed
line's message prompt, and distress that names no choice. Driven by signed webhooks, as
Twilio sends them; every TwiML answer parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import lines
from tests.support.voice import (
    SPEECH_LANGUAGE,
    alerts,
    closed_line_file,
    crisis_offer,
    is_transfer,
    menu_of,
    offered_in,
    phone_for,
    the_call,
)

# -- 1. a crisis transfer that drops at once: an alert, and a peer when one can answer -------

STAY_FOR_PEER = {
    "en": "Or stay on the line to talk with a peer supporter.",
    "es": "O siga en la línea para hablar con un compañero de apoyo.",
}


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_dropped_crisis_transfer_alerts_and_offers_a_peer(tmp_path: Path, language: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    transfer = caller.press(menu_of(caller, language), "3")
    short = caller.dial_ends(transfer, "completed", 6)
    assert "Hangup" not in short.verbs, short
    assert STAY_FOR_PEER[language] in short.spoken(), short.spoken()
    assert alerts(phone.line) == ["crisis"]
    # Twilio sends the end again: the same answer, no second alert.
    assert str(caller.dial_ends(transfer, "completed", 6)) == str(short)
    assert alerts(phone.line) == ["crisis"]
    # Staying on rings a peer (Ria, who speaks Spanish, first for a Spanish caller).
    ring = caller.stay_silent(short)
    assert not is_transfer(ring)
    assert lines.RIA in [n.text for n in ring.all("Number")]


def test_a_dropped_crisis_transfer_nobody_can_answer_alerts_and_says_goodbye(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    short = caller.dial_ends(caller.press(caller.dial_in(), "3"), "completed", 6)
    assert short.verbs[-1] == "Hangup"
    assert "Goodbye." in short.spoken()
    assert alerts(phone.line) == ["crisis"]


# -- 2. asking what was said at the crisis offer hears it again, not a ring -------------------

ASKED_AGAIN = {
    "en": ("sorry what", "what?", "Sorry, what?", "what did you say"),
    "es": ("repita por favor", "¿qué dijo?", "¿Cómo?", "perdón, ¿qué dijo?"),
}


@pytest.mark.parametrize(
    ("language", "words"), [(lang, w) for lang, said in ASKED_AGAIN.items() for w in said]
)
def test_asking_what_was_said_at_the_crisis_offer_hears_it_again(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, language)
    again = caller.speak(offer, words)
    assert not again.all("Dial"), again
    call = the_call(phone.line, caller)
    offered_in(again, call.id, language)
    assert call.state == "crisis_offer"


# -- 3. common Spanish words at the English menu get the Spanish menu -------------------------


@pytest.mark.parametrize("words", ["no entiendo", "bueno?", "¿Bueno?", "aló", "oiga, no entiendo"])
def test_common_spanish_words_at_the_english_menu_get_the_spanish_menu(
    tmp_path: Path, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    answer = caller.speak(menu_of(caller, "en"), words)
    gather = answer.one("Gather")
    assert gather.attrib["language"] == SPEECH_LANGUAGE["es"], answer
    assert not answer.all("Dial")
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_attempts, call.language) == ("menu", 0, "es")


# -- 4. 3 at a closed line's message prompt is the crisis line, crisis words or not ----------


def test_3_at_a_closed_lines_message_prompt_is_the_crisis_line(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    prompt = caller.press(caller.dial_in(), "1")
    assert prompt.all("Record")
    transfer = caller.press(prompt, "3")
    assert is_transfer(transfer), transfer
    call = the_call(phone.line, caller)
    assert (call.state, call.crisis_transfers, call.callback_request_id) == ("transferred", 1, None)
    # Twilio sends the 3 again: the same transfer, not a second.
    assert is_transfer(caller.press(prompt, "3"))
    assert the_call(phone.line, caller).crisis_transfers == 1


def test_another_key_at_the_message_prompt_still_skips_to_the_beep(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    skipped = caller.press(caller.press(caller.dial_in(), "1"), "5")
    assert "Record" in skipped.verbs, skipped
    assert not skipped.all("Dial")


# -- 5. distress naming no choice rings a peer; worry for someone named is the worried offer --

DISTRESSED = {
    "en": (
        "I'm so lonely",
        "I'm not okay",
        "I'm scared",
        "I'm having a panic attack",
        "i don't know what to do",
    ),
    "es": ("me siento muy sola", "tengo miedo", "no se que hacer"),
}


@pytest.mark.parametrize(
    ("language", "words"), [(lang, w) for lang, said in DISTRESSED.items() for w in said]
)
def test_distress_naming_no_choice_rings_a_peer(tmp_path: Path, language: str, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(menu_of(caller, language), words)
    assert ring.all("Number") and not is_transfer(ring), ring
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_choice, call.language) == ("ringing", "peer", language)


def test_spanish_distress_at_the_english_menu_rings_in_spanish(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(menu_of(caller, "en"), "me siento muy sola")
    assert ring.all("Number"), ring
    call = the_call(phone.line, caller)
    assert (call.menu_choice, call.language) == ("peer", "es")


@pytest.mark.parametrize(
    "words", ["I think my friend might hurt herself", "I'm worried about my son"]
)
def test_worry_for_someone_named_hears_the_worried_callers_offer(
    tmp_path: Path, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(menu_of(caller, "en"), words)
    call = the_call(phone.line, caller)
    offered_in(offer, call.id, "en", "worried")
    assert (call.state, call.menu_choice) == ("crisis_offer", "someone_else")


@pytest.mark.parametrize("words", ["hello?", "Hello, is anyone there?"])
def test_hello_at_the_menu_hears_it_again_with_no_miss(tmp_path: Path, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = menu_of(caller, "en")
    for _ in range(3):
        menu = caller.speak(menu, words)
        assert not menu.all("Dial"), menu
        assert menu.one("Gather").attrib["language"] == SPEECH_LANGUAGE["en"]
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_attempts) == ("menu", 0)
