"""What a tester calling the line found (session 27): Spanish words at the English menu are
acted on in Spanish, asking for the other language at the crisis offer is told that offer in
it, not the menu, a plea for help at the menu is asking for a person, and speech recognition
is hinted the number words the menu takes. Driven by signed webhooks, as Twilio sends them;
every TwiML answer parsed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from peerline.flows.menu import DIGITS
from peerline.service.models import Alert
from peerline.service.services import LineServices
from peerline.service.voice.spoken import heard
from tests.support import lines
from tests.support.voice import Caller, Phone, Twiml, the_call, voice_app, voice_line

CRISIS_NUMBER = "+18002738255"
SPEECH_LANGUAGE = {"en": "en-US", "es": "es-US"}
CRISIS_WORDS = {
    "en": "I have no one to talk to and I want to end my life",
    "es": "no tengo a nadie y quiero quitarme la vida",
}
WORRIED_WORDS = {"en": "my friend wants to kill herself", "es": "mi amiga se quiere matar"}
# How each offer starts, by language.
OFFER_STARTS = {
    "crisis": {"en": "It sounds like things are really hard", "es": "Parece que las cosas"},
    "worried": {"en": "Worried about someone?", "es": "¿Le preocupa alguien?"},
    "failed": {
        "en": "We could not connect you to the crisis line.",
        "es": "No pudimos conectarle con la línea de crisis.",
    },
}
OTHER = {"en": "es", "es": "en"}
# The other language asked for by name, as each offer's speech recognition may hear it.
NAMES = {"en": ("español", "Spanish", "en español por favor"), "es": ("inglés", "English")}


def phone_for(tmp_path: Path, line_file: str = lines.ON_CALL) -> Phone:
    """Return Twilio's side of a line (Sam and Ria on shift, Ria on call and the one who speaks
    Spanish, by default)."""
    line = voice_line(tmp_path, line_file)
    return Phone(line, voice_app(line))


def alerts(line: LineServices) -> list[str]:
    """Return the kinds of alerts raised, oldest first."""
    with line.db.session() as session:
        return list(session.scalars(select(Alert.kind).order_by(Alert.id)))


def offered_in(twiml: Twiml, call_id: int, language: str, kind: str = "crisis") -> None:
    """Check an answer is the crisis offer of a kind, in a language, waiting at its own step."""
    gather = twiml.one("Gather")
    assert gather.attrib["action"].endswith(f"/call/{call_id}/offer/{language}"), twiml
    assert gather.attrib["language"] == SPEECH_LANGUAGE[language]
    assert all(say.attrib["language"] == SPEECH_LANGUAGE[language] for say in twiml.all("Say"))
    assert twiml.spoken().startswith(OFFER_STARTS[kind][language]), twiml.spoken()
    assert twiml.one("Redirect").text.endswith(f"/call/{call_id}/connect")


def spanish_menu(caller: Caller) -> Twiml:
    """Dial in and choose Spanish (8): the Spanish menu."""
    return caller.press(caller.dial_in(), "8")


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


# -- 2. asking for the other language at the crisis offer is the offer in it -------------------


def crisis_offer(caller: Caller, language: str) -> Twiml:
    """Say crisis words at the menu of a language: the crisis offer, in it."""
    menu = caller.dial_in() if language == "en" else spanish_menu(caller)
    return caller.speak(menu, CRISIS_WORDS[language])


@pytest.mark.parametrize(
    ("language", "words"), [(lang, name) for lang, names in NAMES.items() for name in names]
)
def test_the_other_language_named_at_the_crisis_offer_is_the_offer_in_it(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, language)
    call_id = the_call(phone.line, caller).id
    offered_in(offer, call_id, language)
    again = caller.speak(offer, words)
    offered_in(again, call_id, OTHER[language])
    call = the_call(phone.line, caller)
    assert (call.state, call.language) == ("crisis_offer", OTHER[language])
    # Twilio sends the same answer again: the same offer, in the language asked for.
    assert str(caller.speak(offer, words)) == str(again)
    # One crisis, one alert: asking for a language raises nothing more.
    assert alerts(phone.line) == ["crisis"]
    # 3 there is the crisis line, its notice in the language asked for.
    transfer = caller.press(again, "3")
    assert [n.text for n in transfer.all("Number")] == [CRISIS_NUMBER]
    assert transfer.one("Say").attrib["language"] == SPEECH_LANGUAGE[OTHER[language]]


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_language_key_at_the_crisis_offer_is_the_offer_in_the_other_language(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, language)
    for spoken in (False, True):
        # Pressed, or said as a number alone ("eight", "ocho").
        said = {"en": "eight", "es": "ocho"}[language]
        again = caller.speak(offer, said) if spoken else caller.press(offer, "8")
        offered_in(again, the_call(phone.line, caller).id, OTHER[language])
        assert the_call(phone.line, caller).state == "crisis_offer"


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_worried_callers_offer_is_said_again_in_the_language_asked_for(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in() if language == "en" else spanish_menu(caller)
    offer = caller.speak(menu, WORRIED_WORDS[language])
    call_id = the_call(phone.line, caller).id
    offered_in(offer, call_id, language, "worried")
    again = caller.press(offer, "8")
    offered_in(again, call_id, OTHER[language], "worried")
    call = the_call(phone.line, caller)
    assert (call.crisis, call.menu_choice) == (None, "someone_else")


def test_the_offer_after_a_failed_transfer_is_said_again_in_spanish(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    failed = caller.dial_ends(caller.press(caller.dial_in(), "3"), "failed")
    call_id = the_call(phone.line, caller).id
    offered_in(failed, call_id, "en", "failed")
    again = caller.speak(failed, "español")
    offered_in(again, call_id, "es", "failed")
    # "otra vez" there is the crisis line again, as the Spanish offer says.
    assert [n.text for n in caller.speak(again, "otra vez").all("Number")] == [CRISIS_NUMBER]
    assert the_call(phone.line, caller).crisis_transfers == 2


def test_asking_for_a_person_in_spanish_at_the_english_crisis_offer_rings_in_spanish(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(crisis_offer(caller, "en"), "quiero hablar con alguien")
    # A crisis call rings everyone free at once; Spanish speakers only while any is free.
    assert rung(ring) == [lines.RIA]
    call = the_call(phone.line, caller)
    assert (call.language, call.state) == ("es", "ringing")


# -- 4. a plea for help at the menu is asking for a person -------------------------------------


@pytest.mark.parametrize("words", ["help me", "I need help.", "Please help", "help", "Help me!"])
def test_a_plea_for_help_at_the_menu_rings_a_peer(tmp_path: Path, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(caller.dial_in(), words)
    assert sorted(rung(ring)) == sorted([lines.SAM, lines.RIA])
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_choice, call.language) == ("ringing", "peer", "en")
    assert call.crisis is None and call.menu_attempts == 0


@pytest.mark.parametrize("words", ["ayuda", "ayúdame", "necesito ayuda", "Ayúdenme, por favor."])
@pytest.mark.parametrize("menu_language", ["en", "es"])
def test_a_plea_for_help_in_spanish_rings_a_peer_in_spanish(
    tmp_path: Path, words: str, menu_language: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in() if menu_language == "en" else spanish_menu(caller)
    assert rung(caller.speak(menu, words)) == [lines.RIA]
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_choice, call.language) == ("ringing", "peer", "es")


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "help me, I want to end my life"),
        ("en", "please help, I'm going to kill myself"),
        ("es", "ayuda, me quiero morir"),
    ],
)
def test_a_plea_for_help_with_crisis_words_is_the_crisis_offer(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), words)
    offered_in(offer, the_call(phone.line, caller).id, language)
    assert the_call(phone.line, caller).crisis is not None
    assert alerts(phone.line) == ["crisis"]


@pytest.mark.parametrize(
    ("menu_language", "words"),
    [
        ("en", "I don't need help, just the group times"),
        ("en", "I do not need help. Group times please."),
        ("es", "no necesito ayuda, solo los horarios de los grupos"),
    ],
)
def test_help_negated_is_not_a_plea(tmp_path: Path, menu_language: str, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in() if menu_language == "en" else spanish_menu(caller)
    times = caller.speak(menu, words)
    assert times.verbs == ["Gather", "Redirect"], times
    assert times.one("Gather").attrib["language"] == SPEECH_LANGUAGE[menu_language]
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_choice) == ("menu", "groups")
    assert not times.all("Dial")


def test_help_alone_negated_is_no_choice(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = caller.speak(caller.dial_in(), "I don't need help")
    assert menu.spoken().startswith("Sorry, that is not one of the choices.")
    assert the_call(phone.line, caller).state == "menu"


# -- 5. speech recognition is hinted the number words the menu takes ---------------------------

# The number words each language's menu takes as keys, and the crisis line said digit by digit.
NUMBER_HINTS = {
    "en": ("one", "two", "three", "four", "eight", "nine", "nine eight eight"),
    "es": ("uno", "dos", "tres", "cuatro", "ocho", "nueve", "nueve ocho ocho"),
}
HELP_HINTS = {"en": "help", "es": "ayuda"}


def hints(twiml: Twiml) -> list[str]:
    """Return the phrases an answer's <Gather> hints to speech recognition."""
    return [hint.strip() for hint in twiml.one("Gather").attrib["hints"].split(",")]


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_menu_and_the_crisis_offer_hint_the_number_words(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in() if language == "en" else spanish_menu(caller)
    offer = caller.speak(menu, CRISIS_WORDS[language])
    for gather in (menu, offer):
        hinted = hints(gather)
        for words in NUMBER_HINTS[language]:
            assert words in hinted, (words, hinted)
        assert HELP_HINTS[language] in hinted


@pytest.mark.parametrize("words", [w for words in NUMBER_HINTS.values() for w in words])
def test_every_number_word_hinted_is_a_key_when_said_alone(words: str) -> None:
    keys, speech = heard("", words)
    assert keys in DIGITS or speech == "988", (words, keys, speech)
