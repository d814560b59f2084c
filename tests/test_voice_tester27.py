"""What a tester calling the line found (session 27): the crisis offer promises Peerline only
when someone could answer, and otherwise says what staying on leads to; Spanish words at the
English menu are
acted on in Spanish, asking for the other language at the crisis offer is told that offer in
it, not the menu, a plea for help at the menu is asking for a person, and speech recognition
is hinted the number words the menu takes. Driven by signed webhooks, as Twilio sends them;
every TwiML answer parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerline.flows.menu import DIGITS
from peerline.service.voice.spoken import heard
from tests.support import lines
from tests.support.chat import take_chat
from tests.support.voice import (
    CRISIS_NUMBER,
    CRISIS_WORDS,
    OTHER,
    SPEECH_LANGUAGE,
    WORRIED_WORDS,
    Caller,
    Phone,
    Twiml,
    alerts,
    closed_line_file,
    crisis_offer,
    offered_in,
    phone_for,
    the_call,
)

# The other language asked for by name, as each offer's speech recognition may hear it.
NAMES = {"en": ("español", "Spanish", "en español por favor"), "es": ("inglés", "English")}


def spanish_menu(caller: Caller) -> Twiml:
    """Dial in and choose Spanish (8): the Spanish menu."""
    return caller.press(caller.dial_in(), "8")


def rung(twiml: Twiml) -> list[str]:
    """Return the numbers an answer rings, after nothing said (a choice acted on at once)."""
    assert twiml.verbs == ["Dial"], twiml
    return [n.text or "" for n in twiml.all("Number")]


def rung_in_spanish(twiml: Twiml) -> list[str]:
    """Return the numbers an answer rings after the 911 line in Spanish, said to a call just
    switched to Spanish (whose greeting said it in English)."""
    assert twiml.verbs == ["Gather", "Dial"], twiml
    assert twiml.spoken() == "¿Peligro? Llame al 9 1 1."
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
    assert rung_in_spanish(ring) == [lines.RIA]
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
    assert rung_in_spanish(ring) == [lines.RIA]
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
    ring = caller.speak(menu, words)
    assert (rung_in_spanish(ring) if menu_language == "en" else rung(ring)) == [lines.RIA]
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
def test_the_menu_and_the_crisis_offer_hint_the_number_words(tmp_path: Path, language: str) -> None:
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


# -- 1. the crisis offer promises Peerline only when someone could answer ----------------------

STAY_FOR_PEERLINE = {"en": "stay on the line for Peerline", "es": "siga en la línea para Peerline"}
# What the offer says when nobody could answer: where to turn, then what staying on leads to.
WHERE_TO_TURN = {
    "en": ("call 9 1 1", "9 8 8", "press 3"),
    "es": ("llame al 9 1 1", "9 8 8", "oprima 3"),
}
STAY_FOR_A_MESSAGE = {
    "en": "Or stay on the line to leave a message: our peer supporters cannot answer right "
    "now, but one will call you back from this number",
    "es": "O siga en la línea para dejar un mensaje: nuestros compañeros de apoyo no pueden "
    "atenderle ahora, pero uno le devolverá la llamada desde este número",
}
WHEN_OPEN = {"en": "when the line opens.", "es": "cuando abra la línea."}
NO_CALL_BACK = {
    "en": "your number is hidden, so we cannot call you back.",
    "es": "su número está oculto, así que no podemos devolverle la llamada.",
}
AFTER_THE_TONE = {"en": "After the tone", "es": "Después del tono"}


def nobody_offered(offer: Twiml, language: str, opening: bool) -> str:
    """Check a crisis offer made when nobody could answer a caller with a known number: no
    peer promised, where to turn, and a message and a call back for staying on."""
    said = offer.spoken()
    assert STAY_FOR_PEERLINE[language] not in said
    assert all(words in said for words in WHERE_TO_TURN[language]), said
    assert STAY_FOR_A_MESSAGE[language] in said, said
    assert said.endswith(WHEN_OPEN[language]) == opening, said
    return said


def away(phone: Phone, *numbers: str) -> None:
    """Set supporters away, as they do by text."""
    for number in numbers:
        assert phone.hooks.sms(number, "#away").status_code == 200


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_crisis_offer_at_a_closed_line_says_what_staying_on_leads_to(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, language)
    call_id = the_call(phone.line, caller).id
    offered_in(offer, call_id, language)
    nobody_offered(offer, language, opening=True)
    # Twilio sends the call's first request again: what the call hears now, the same offer.
    assert str(caller.dial_in()) == str(offer)
    # Staying on is the message prompt, as the offer said, with 3 for the crisis line still.
    message = caller.stay_silent(offer)
    assert message.verbs == ["Gather", "Record", "Redirect"]  # session 28: silence -> 988
    assert AFTER_THE_TONE[language] in message.spoken()
    # 3 at the offer is the crisis line, as before.
    other = phone.call(lines.TEXTER_2)
    transfer = other.press(crisis_offer(other, language), "3")
    assert [n.text for n in transfer.all("Number")] == [CRISIS_NUMBER]


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_crisis_offer_to_a_hidden_number_nobody_can_answer_promises_no_call_back(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(None)
    offer = crisis_offer(caller, language)
    offered_in(offer, the_call(phone.line, caller).id, language)
    said = offer.spoken()
    assert STAY_FOR_PEERLINE[language] not in said
    assert all(words in said for words in WHERE_TO_TURN[language])
    # Staying on puts a hidden crisis caller through to the crisis line, never a hang-up
    # (tests/test_voice_tester27d.py).
    assert NO_CALL_BACK[language] not in said
    assert STAY_FOR_A_MESSAGE[language] not in said
    transfer = caller.stay_silent(offer)
    assert transfer.verbs == ["Gather", "Dial"]


def test_the_crisis_offer_when_everyone_on_shift_is_away_promises_no_peer(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    away(phone, lines.SAM, lines.RIA)
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, "en")
    # On shift, but nobody to ring: a message and a call back, not "when the line opens".
    nobody_offered(offer, "en", opening=False)
    message = caller.stay_silent(offer)
    # The offer said why nobody can answer: the prompt after it does not say it again.
    assert message.spoken().startswith("After the tone, please leave your first name")
    assert message.one("Record") is not None


def test_the_offer_after_a_failed_transfer_at_a_closed_line_promises_no_peer(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    failed = caller.dial_ends(caller.press(caller.dial_in(), "3"), "failed")
    offered_in(failed, the_call(phone.line, caller).id, "en", "failed")
    said = nobody_offered(failed, "en", opening=True)
    assert "To try the crisis line again, press 3." in said


def test_the_offer_after_everyone_was_rung_and_a_transfer_failed_promises_no_peer(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.stay_silent(crisis_offer(caller, "en"))
    for leg in caller.legs(ring):
        leg.status("no-answer")
    message = caller.dial_ends(ring, "no-answer")
    # 3 at the message prompt, and the crisis line does not connect: everyone on shift was
    # rung already, so staying on is the message prompt again, and the offer says so.
    failed = caller.dial_ends(caller.press(message, "3"), "failed")
    offered_in(failed, the_call(phone.line, caller).id, "en", "failed")
    nobody_offered(failed, "en", opening=False)
    assert caller.stay_silent(failed).one("Record") is not None


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_worried_callers_offer_at_a_closed_line_promises_no_peer(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in() if language == "en" else spanish_menu(caller)
    offer = caller.speak(menu, WORRIED_WORDS[language])
    offered_in(offer, the_call(phone.line, caller).id, language, "worried")
    nobody_offered(offer, language, opening=True)


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_crisis_offer_when_someone_can_answer_is_as_it_was(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, language)
    said = offer.spoken()
    assert said.endswith(STAY_FOR_PEERLINE[language] + "."), said
    assert STAY_FOR_A_MESSAGE[language] not in said
    assert caller.stay_silent(offer).verbs[-1] == "Dial"


def test_what_the_offer_promises_follows_who_would_be_rung(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    line = phone.line
    # Ria is away and Sam is in an SMS chat: a crisis call rings past SMS chats (Sam), a
    # worried caller's call does not (nobody).
    away(phone, lines.RIA)
    take_chat(line, phone.hooks, lines.TEXTER_2, lines.SAM)
    worried = phone.call("+14165550197")
    worry = worried.speak(worried.dial_in(), WORRIED_WORDS["en"])
    offered_in(worry, the_call(line, worried).id, "en", "worried")
    nobody_offered(worry, "en", opening=False)
    assert worried.stay_silent(worry).one("Record") is not None

    in_crisis = phone.call(lines.TEXTER)
    offer = crisis_offer(in_crisis, "en")
    assert offer.spoken().endswith(STAY_FOR_PEERLINE["en"] + ".")
    assert rung(in_crisis.stay_silent(offer)) == [lines.SAM]
