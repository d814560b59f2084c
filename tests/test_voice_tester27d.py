"""What a tester playing about a hundred callers found (session 27, fourth round): help asked
of 911, the word "crisis" in a sentence, a crisis caller nobody can answer, a crisis transfer
that drops at once, distress that names no choice, 3 at a closed line's message prompt, Spanish
words at the English menu, and asking the crisis offer again. Driven by signed webhooks, as
Twilio sends them; every TwiML answer parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import lines
from tests.support.voice import (
    SPEECH_LANGUAGE,
    Twiml,
    alerts,
    closed_line_file,
    crisis_offer,
    is_transfer,
    menu_of,
    offered_in,
    phone_for,
    safety_events,
    the_call,
)

# Each language's 911 line in the greeting, and the answer to help asked of 911.
EMERGENCY = {"en": "In danger? Call 9 1 1.", "es": "¿Peligro? Llame al 9 1 1."}
DANGER_911 = {
    "en": "If you are in danger, hang up and call 9 1 1 now.",
    "es": "Si está en peligro, cuelgue y llame al 9 1 1 ahora.",
}
FIRST_KEY = {"en": "To talk with a peer, press 1.", "es": "Para hablar con alguien, oprima 1."}


def says(twiml: Twiml, language: str) -> list[str]:
    """Return the words of each <Say> in the menu's <Gather>, checking they are in a language
    (all but the other language's key)."""
    gather = twiml.one("Gather")
    said = [say.text or "" for say in gather.iter("Say")]
    own = [say for say in gather.iter("Say") if "8." not in (say.text or "")]
    assert all(say.attrib["language"] == SPEECH_LANGUAGE[language] for say in own), twiml
    return said


# -- 1. help asked of 911: hang up and call 9 1 1 now, then the menu; a miss keeps 911 ----------

ASKING_911 = {
    "en": (
        "nine one one",
        "call 911",
        "911",
        "I need an ambulance",
        "I can't breathe",
        "please call nine one one",
    ),
    "es": ("necesito una ambulancia", "no puedo respirar", "llame al nueve uno uno"),
}


@pytest.mark.parametrize(
    ("language", "words"), [(lang, w) for lang, said in ASKING_911.items() for w in said]
)
def test_help_asked_of_911_is_told_to_call_it_at_once_then_the_menu(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    answer = caller.speak(menu_of(caller, language), words)
    said = says(answer, language)
    assert said[0] == DANGER_911[language], said
    assert FIRST_KEY[language] in said
    assert not answer.all("Dial")
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_attempts, call.language) == ("menu", 0, language)


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_menu_after_a_miss_keeps_the_911_line(tmp_path: Path, language: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = menu_of(caller, language)
    for again in (caller.press(menu, "7"), caller.stay_silent(menu)):
        said = says(again, language)
        assert EMERGENCY[language] in said, said
        assert said.index(EMERGENCY[language]) < said.index(FIRST_KEY[language])


# -- 2. "crisis" in a sentence is not choice 3: only the choice itself is ---------------------

CRISIS_CHOSEN = {
    "en": ("crisis", "crisis line", "the crisis line please", "988", "nine eight eight"),
    "es": ("crisis", "línea de crisis", "la línea de crisis por favor", "nueve ocho ocho"),
}


@pytest.mark.parametrize(
    ("language", "words"), [(lang, w) for lang, said in CRISIS_CHOSEN.items() for w in said]
)
def test_the_crisis_line_named_as_the_choice_is_put_through(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    assert is_transfer(caller.speak(menu_of(caller, language), words))


@pytest.mark.parametrize(
    "words", ["is this the crisis line?", "is this 988", "is this nine eight eight"]
)
def test_a_question_naming_the_crisis_line_hears_the_greeting(tmp_path: Path, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    answer = caller.speak(menu_of(caller, "en"), words)
    assert not answer.all("Dial")
    said = says(answer, "en")
    assert said[0] == "Peerline peer support." and EMERGENCY["en"] in said, said
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_attempts) == ("menu", 0)


@pytest.mark.parametrize(
    "words",
    [
        "I had a crisis last week and I want to talk to someone",
        "my crisis worker told me to call you",
        "I was in crisis yesterday",
    ],
)
def test_crisis_in_a_sentence_of_ones_own_rings_a_peer(tmp_path: Path, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(menu_of(caller, "en"), words)
    assert not is_transfer(ring)
    assert sorted(n.text or "" for n in ring.all("Number")) == sorted([lines.SAM, lines.RIA])
    assert the_call(phone.line, caller).menu_choice == "peer"


@pytest.mark.parametrize("words", ["my friend is in crisis what do I do", "my son is in crisis"])
def test_someone_elses_crisis_hears_the_worried_callers_offer(tmp_path: Path, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(menu_of(caller, "en"), words)
    call = the_call(phone.line, caller)
    offered_in(offer, call.id, "en", "worried")
    assert (call.state, call.menu_choice, call.crisis) == ("crisis_offer", "someone_else", None)
    assert safety_events(phone.line) == ["voice_someone_else"]
    assert alerts(phone.line) == []


# -- 3. a hidden-number crisis caller nobody can answer: put through to 988, never hung up on ---

STAY_988 = {
    "en": "Stay on the line and we will put you through",
    "es": "Siga en la línea y le pasaremos",
}
PUT_THROUGH = {"en": "so we are putting you through", "es": "así que le pasamos"}


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_hidden_crisis_caller_nobody_can_answer_is_put_through_to_the_crisis_line(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(None)
    offer = crisis_offer(caller, language)
    assert STAY_988[language] in offer.spoken(), offer.spoken()
    transfer = caller.stay_silent(offer)
    assert is_transfer(transfer), transfer
    assert PUT_THROUGH[language] in transfer.spoken()
    assert "Hangup" not in transfer.verbs
    call = the_call(phone.line, caller)
    assert (call.state, call.crisis_transfers) == ("transferred", 1)
    # Twilio sends it again: the same transfer, not a second one.
    assert is_transfer(caller.stay_silent(offer))
    assert the_call(phone.line, caller).crisis_transfers == 1


def test_a_hidden_caller_who_took_pills_on_a_closed_line_reaches_the_crisis_line(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(None)
    offer = caller.speak(menu_of(caller, "en"), "I took all my pills")
    assert is_transfer(caller.stay_silent(offer))
