"""What a tester calling the line found next (session 27, the gaps left): asking to hear the
crisis offer again is told the offer, not the menu; words in the other language that name no
choice are told that language's menu; a "no" said as an interjection ("no I need help") or in
"no one" does not negate what follows; a plea for help is the word help or ayuda, not
"helpline" or "helpful", and asking whether this is the helpline is told what the line is; a
caller whose call turns Spanish on the way to ringing hears the 911 line in Spanish first; a
caller who stays on after a crisis offer that said nobody can answer is not told it all again.
Driven by signed webhooks, as Twilio sends them; every TwiML answer parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import lines, voice
from tests.support.voice import (
    CRISIS_NUMBER,
    OTHER,
    SPEECH_LANGUAGE,
    WORRIED_WORDS,
    Caller,
    Twiml,
    alerts,
    closed_line_file,
    crisis_offer,
    menu_of,
    phone_for,
    the_call,
)

# The first words of each menu: the one key for a person.
FIRST_KEY = {"en": "To talk with a peer, press 1.", "es": "Para hablar con alguien, oprima 1."}


def offered_in(twiml: Twiml, call_id: int, language: str, kind: str = "crisis") -> None:
    """Check an answer is the crisis offer of a kind, in a language, waiting at its own step,
    and not the menu."""
    voice.offered_in(twiml, call_id, language, kind)
    assert FIRST_KEY[language] not in twiml.spoken()


# -- 1. asking to hear the crisis offer again is the offer again -------------------------------

# Each way of asking to hear it again, by the offer's language: a word, or key 9.
AGAIN_WORDS = {
    "en": ("repeat", "again", "can you say that again?", "Repeat that please.", "9", "nine"),
    "es": ("repetir", "otra vez", "¿Puede repetir?", "9", "nueve"),
}


def ask_again(caller: Caller, offer: Twiml, words: str) -> Twiml:
    """Press 9 or say words at an offer."""
    return caller.press(offer, words) if words.isdigit() else caller.speak(offer, words)


@pytest.mark.parametrize(
    ("language", "words"), [(lang, w) for lang, said in AGAIN_WORDS.items() for w in said]
)
def test_asking_again_at_the_first_crisis_offer_says_the_offer_again(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, language)
    call_id = the_call(phone.line, caller).id
    offered_in(offer, call_id, language)
    again = ask_again(caller, offer, words)
    # The same offer, in the same language, at the same step: not the menu.
    assert str(again) == str(offer)
    call = the_call(phone.line, caller)
    assert (call.state, call.language, call.crisis_transfers) == ("crisis_offer", language, 0)
    assert call.menu_attempts == 0
    # Nothing more raised; Twilio sending the request again is told the offer again.
    assert str(ask_again(caller, offer, words)) == str(offer)
    assert alerts(phone.line) == ["crisis"]
    # 3 there is still the crisis line; staying on still rings.
    assert [n.text for n in caller.press(again, "3").all("Number")] == [CRISIS_NUMBER]


@pytest.mark.parametrize("language", ["en", "es"])
def test_asking_again_at_the_worried_callers_offer_says_it_again(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(menu_of(caller, language), WORRIED_WORDS[language])
    again = caller.press(offer, "9")
    offered_in(again, the_call(phone.line, caller).id, language, "worried")
    assert str(again) == str(offer)
    call = the_call(phone.line, caller)
    assert (call.state, call.crisis, call.menu_choice) == ("crisis_offer", None, "someone_else")


def test_spanish_asking_again_at_the_english_offer_is_the_offer_in_spanish(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, "en")
    # "otra vez" is Spanish: the caller hears the offer again in the language they spoke.
    again = caller.speak(offer, "otra vez")
    offered_in(again, the_call(phone.line, caller).id, "es")
    assert the_call(phone.line, caller).state == "crisis_offer"


def test_repeat_at_the_offer_after_a_failed_transfer_says_it_and_again_still_means_3(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    failed = caller.dial_ends(caller.press(caller.dial_in(), "3"), "failed")
    call_id = the_call(phone.line, caller).id
    offered_in(failed, call_id, "en", "failed")
    for words in ("9", "repeat"):
        said = ask_again(caller, failed, words)
        offered_in(said, call_id, "en", "failed")
        assert str(said) == str(failed)
    # "again" and "try again" there are the crisis line again, as the offer says.
    transfer = caller.speak(failed, "try again")
    assert [n.text for n in transfer.all("Number")] == [CRISIS_NUMBER]
    assert the_call(phone.line, caller).crisis_transfers == 2


# -- 2. words in the other language that name no choice get that language's menu --------------

# What each menu's caller said, in the other language or refusing the menu's own.
OTHER_WORDS = {
    "en": (
        "no hablo ingles",
        "No hablo inglés.",
        "hablo español",
        "en español por favor",
        "no entiendo nada",
        "hola?",
        "No English.",
    ),
    "es": (
        "i don't speak spanish",
        "English please",
        "I don't understand",
        "sorry, what did you say?",
        "no spanish",
    ),
}
NOT_A_CHOICE = {"en": "Sorry, that is not one of", "es": "Perdón, esa no es"}
# The emergency line the switched menu starts with.
EMERGENCY = {"en": "In danger? Call 9 1 1.", "es": "¿Peligro? Llame al 9 1 1."}


def menu_in(twiml: Twiml, call_id: int, language: str, attempt: int = 0) -> None:
    """Check an answer is the menu in a language, as a caller who chose it hears it first."""
    gather = twiml.one("Gather")
    assert gather.attrib["action"].endswith(f"/call/{call_id}/menu/{language}/{attempt}"), twiml
    assert gather.attrib["language"] == SPEECH_LANGUAGE[language]
    said = twiml.spoken()
    assert said.startswith(EMERGENCY[language] + " " + FIRST_KEY[language]), said
    assert NOT_A_CHOICE[language] not in said and NOT_A_CHOICE[OTHER[language]] not in said


@pytest.mark.parametrize(
    ("language", "words"), [(lang, w) for lang, said in OTHER_WORDS.items() for w in said]
)
def test_words_in_the_other_language_that_name_no_choice_get_its_menu(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = menu_of(caller, language)
    switched = caller.speak(menu, words)
    call = the_call(phone.line, caller)
    menu_in(switched, call.id, OTHER[language])
    # Not a miss: the caller told us their language.
    assert (call.state, call.language, call.menu_attempts) == ("menu", OTHER[language], 0)
    # Twilio sends the request again: the same menu.
    assert str(caller.speak(menu, words)) == str(switched)
    # The menu switched to is answered as any: 1 rings.
    assert caller.press(switched, "1").verbs[-1] == "Dial"


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "banana"),
        ("en", "I don't speak Spanish"),
        ("en", "I don't understand"),
        ("es", "no entiendo nada"),
        ("es", "no hablo inglés"),
    ],
)
def test_words_in_the_menus_own_language_that_name_no_choice_are_still_a_miss(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    missed = caller.speak(menu_of(caller, language), words)
    assert missed.spoken().startswith(NOT_A_CHOICE[language]), missed.spoken()
    call = the_call(phone.line, caller)
    assert (call.language, call.menu_attempts) == (language, 1)


def test_a_retried_switch_after_a_later_miss_is_not_counted_as_a_miss(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    spanish = caller.speak(menu, "no hablo ingles")
    caller.press(spanish, "7")  # a wrong key at the Spanish menu: one miss
    # The English menu's request sent again late: not a miss, so not counted again.
    caller.speak(menu, "no hablo ingles")
    assert the_call(phone.line, caller).menu_attempts == 1


@pytest.mark.parametrize("language", ["en", "es"])
def test_words_in_the_other_language_at_the_crisis_offer_are_the_offer_in_it(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, language)
    words = {"en": "no entiendo, no hablo ingles", "es": "sorry I don't understand"}[language]
    again = caller.speak(offer, words)
    offered_in(again, the_call(phone.line, caller).id, OTHER[language])
    assert alerts(phone.line) == ["crisis"]


# -- 3. a "no" before "I need ..." is an interjection, not a negation --------------------------


def rung(twiml: Twiml) -> list[str]:
    """Return the numbers an answer rings, sorted."""
    assert twiml.verbs[-1] == "Dial", twiml
    return sorted(n.text or "" for n in twiml.all("Number"))


@pytest.mark.parametrize(
    "words",
    [
        "no I need help",
        "no no I need help",
        "No I need help please.",
        "no I want to talk to someone",
        "no I'm not ok I need to talk",
        "no please help me",
        "I have no one to talk to",
        "no one can help me",
    ],
)
def test_a_plea_after_an_interjected_no_rings_a_peer(tmp_path: Path, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(caller.dial_in(), words)
    assert rung(ring) == sorted([lines.SAM, lines.RIA])
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_choice, call.language, call.menu_attempts) == (
        "ringing",
        "peer",
        "en",
        0,
    )


@pytest.mark.parametrize("words", ["no, necesito ayuda", "no, no, necesito ayuda"])
@pytest.mark.parametrize("language", ["en", "es"])
def test_a_spanish_plea_after_no_and_a_comma_rings_a_peer_in_spanish(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    assert rung(caller.speak(menu_of(caller, language), words)) == [lines.RIA]
    assert the_call(phone.line, caller).language == "es"


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "I don't need help"),
        ("en", "no I don't need help"),
        ("en", "no help"),
        ("es", "no necesito ayuda"),
        ("es", "no quiero hablar"),
    ],
)
def test_a_plea_negated_is_still_no_plea(tmp_path: Path, language: str, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    missed = caller.speak(menu_of(caller, language), words)
    assert missed.spoken().startswith(NOT_A_CHOICE[language]), missed.spoken()
    assert not missed.all("Dial")
    assert the_call(phone.line, caller).menu_attempts == 1


def test_again_after_an_interjected_no_at_a_failed_transfer_is_the_crisis_line(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    failed = caller.dial_ends(caller.press(caller.dial_in(), "3"), "failed")
    transfer = caller.speak(failed, "no I want to try again")
    assert [n.text for n in transfer.all("Number")] == [CRISIS_NUMBER]


def test_suicide_named_after_an_interjected_no_is_the_crisis_offer(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), "no I'm suicidal")
    offered_in(offer, the_call(phone.line, caller).id, "en")
    assert alerts(phone.line) == ["crisis"]


# -- 4. a plea for help is the word, not a longer word; a question about the line is answered --

# How each greeting starts (the line's name) and ends (what the line is and is not).
GREETING = {"en": "Peerline peer support.", "es": "Peerline, apoyo entre pares."}
ABOUT = {
    "en": "We are not counsellors or a crisis service.",
    "es": "No somos consejeros ni un servicio de crisis.",
}


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "is this a helpline?"),
        ("en", "Is this the helpline"),
        ("en", "is this the help line?"),
        ("en", "is this a hotline"),
        ("es", "¿es esta la línea de ayuda?"),
        ("es", "es la linea de apoyo"),
    ],
)
def test_asking_whether_this_is_the_helpline_is_told_what_the_line_is(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = menu_of(caller, language)
    answer = caller.speak(menu, words)
    call = the_call(phone.line, caller)
    said = answer.spoken()
    # The greeting again: the line's name, 911, the keys, and that it is not a crisis service.
    assert said.startswith(GREETING[language]), said
    assert EMERGENCY[language] in said and FIRST_KEY[language] in said
    assert ABOUT[language] in said
    assert NOT_A_CHOICE[language] not in said
    assert answer.one("Gather").attrib["action"].endswith(f"/call/{call.id}/menu/{language}/0")
    assert (call.state, call.language, call.menu_attempts) == ("menu", language, 0)
    assert str(caller.speak(menu, words)) == str(answer)


def test_asking_in_spanish_whether_this_is_the_helpline_at_the_english_menu_is_told_in_spanish(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    answer = caller.speak(caller.dial_in(), "¿es esta la línea de ayuda?")
    assert answer.spoken().startswith(GREETING["es"]) and ABOUT["es"] in answer.spoken()
    assert the_call(phone.line, caller).language == "es"


@pytest.mark.parametrize(
    "words",
    ["is this the helpline? I need help", "is this the help line, please help me"],
)
def test_a_plea_with_the_helpline_named_rings_a_peer(tmp_path: Path, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    assert rung(caller.speak(caller.dial_in(), words)) == sorted([lines.SAM, lines.RIA])


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", "that was helpful, thanks"), ("en", "very helpful"), ("es", "soy ayudante")],
)
def test_a_longer_word_holding_help_is_no_plea(tmp_path: Path, language: str, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    missed = caller.speak(menu_of(caller, language), words)
    assert not missed.all("Dial")
    assert missed.spoken().startswith(NOT_A_CHOICE[language]), missed.spoken()


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "help"),
        ("en", "I feel so helpless"),
        ("es", "ayúdenme"),
        ("es", "me pueden ayudar"),
        ("es", "necesito que me ayuden"),
        ("es", "auxilio"),
    ],
)
def test_help_and_its_forms_still_ring_a_peer(tmp_path: Path, language: str, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(menu_of(caller, language), words)
    expected = [lines.RIA] if language == "es" else sorted([lines.SAM, lines.RIA])
    assert rung(ring) == expected


def test_asking_whether_this_is_the_helpline_at_the_crisis_offer_is_the_offer_again(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, "en")
    again = caller.speak(offer, "is this a helpline?")
    assert str(again) == str(offer)
    assert the_call(phone.line, caller).state == "crisis_offer"


# -- 5. a call switched to Spanish on the way to ringing hears the 911 line in Spanish ---------


def spanish_911_then_ring(twiml: Twiml) -> list[str]:
    """Check an answer says the 911 line in Spanish, skippable by a key, then rings; return the
    numbers rung."""
    assert twiml.verbs == ["Gather", "Dial"], twiml
    (say,) = twiml.one("Gather")
    assert say.text == EMERGENCY["es"]
    assert say.attrib["language"] == SPEECH_LANGUAGE["es"]
    return sorted(n.text or "" for n in twiml.all("Number"))


@pytest.mark.parametrize(
    "words", ["quiero hablar con alguien", "quiero hablar con una persona", "necesito ayuda"]
)
def test_a_person_asked_for_in_spanish_at_the_english_menu_hears_911_in_spanish_first(
    tmp_path: Path, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    ring = caller.speak(menu, words)
    assert spanish_911_then_ring(ring) == [lines.RIA]
    call = the_call(phone.line, caller)
    assert (call.language, call.state, call.round) == ("es", "ringing", 1)
    # Twilio sends the request again: the same answer, nobody rung twice.
    assert str(caller.speak(menu, words)) == str(ring)
    assert the_call(phone.line, caller).round == 1
    # A key cuts it short: the same ringing, nothing said.
    assert caller.press(ring, "5").verbs == ["Dial"]


def test_a_person_asked_for_in_spanish_at_the_english_crisis_offer_hears_911_in_spanish(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, "en")
    ring = caller.speak(offer, "quiero hablar con alguien")
    assert spanish_911_then_ring(ring) == [lines.RIA]
    assert str(caller.speak(offer, "quiero hablar con alguien")) == str(ring)


def test_a_spanish_caller_nobody_can_answer_hears_911_in_spanish_before_the_message(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    prompt = caller.speak(caller.dial_in(), "quiero hablar con alguien")
    assert prompt.verbs == ["Gather", "Record", "Say", "Hangup"]
    said = prompt.one("Gather").findall("Say")
    assert said[0].text == EMERGENCY["es"]
    assert said[1].text.startswith("Nuestros compañeros de apoyo no están de turno")
    assert all(say.attrib["language"] == SPEECH_LANGUAGE["es"] for say in said)
    hidden = phone.call(None)
    goodbye = hidden.speak(hidden.dial_in(), "quiero hablar con alguien")
    assert goodbye.spoken().startswith(EMERGENCY["es"] + " Nuestros compañeros"), goodbye.spoken()


@pytest.mark.parametrize(
    ("language", "words"), [("en", "I want to talk to someone"), ("es", "quiero hablar")]
)
def test_a_person_asked_for_in_the_menus_language_is_rung_at_once(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    # The greeting or the menu said 911 in the language of the call already.
    assert caller.speak(menu_of(caller, language), words).verbs == ["Dial"]


# -- 6. staying on after a "nobody can answer" crisis offer is not told it all again -----------

# Right after such an offer: the tone, and nothing the offer said.
AFTER_THE_TONE = {
    "en": "After the tone, please leave your first name and a short message, then hang up or "
    "press the pound key.",
    "es": "Después del tono, deje su nombre y un mensaje corto, y luego cuelgue u oprima la "
    "tecla de numeral.",
}
OPENS = {"en": "The line next opens ", "es": "La línea abre de nuevo "}
# What the offer said, never said again right after it.
SAID_BY_THE_OFFER = {
    "en": ("9 1 1", "press 3", "not on shift", "busy", "call you back", "hidden"),
    "es": ("9 1 1", "oprima 3", "no están de turno", "ocupados", "devolverá", "oculto"),
}
GOODBYE_TOLD = {
    "en": "Please call again later, or text this number any time. Take care. Goodbye.",
    "es": "Por favor, llame más tarde, o escriba a este número cuando quiera. Cuídese. Adiós.",
}


def said_once(offer: Twiml, after: Twiml, language: str) -> str:
    """Check the offer said 911, the words after it say nothing the offer said; return them."""
    assert "9 1 1" in offer.spoken()
    assert offer.one("Redirect").text.endswith("/connect/nobody")
    said = after.spoken()
    for words in SAID_BY_THE_OFFER[language]:
        assert words not in said, (words, said)
    return said


@pytest.mark.parametrize("language", ["en", "es"])
def test_staying_on_after_the_offer_at_a_closed_line_says_when_it_opens_and_the_tone(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, language)
    prompt = caller.stay_silent(offer)
    assert prompt.verbs == ["Gather", "Record", "Redirect"]  # session 28: silence -> 988
    said = said_once(offer, prompt, language)
    (opens, tone) = (say.text or "" for say in prompt.one("Gather").findall("Say"))
    assert opens.startswith(OPENS[language]) and tone == AFTER_THE_TONE[language], said
    # Twilio sends it again: the same prompt.
    assert str(caller.stay_silent(offer)) == str(prompt)
    # 3 there is still the crisis line, though not said again.
    assert [n.text for n in caller.press(prompt, "3").all("Number")] == [CRISIS_NUMBER]


def test_staying_on_after_the_offer_when_everyone_is_away_is_the_tone(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    for number in (lines.SAM, lines.RIA):
        assert phone.hooks.sms(number, "#away").status_code == 200
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, "en")
    prompt = caller.stay_silent(offer)
    # Silence at the tone is the crisis line now (session 28), not a goodbye said here.
    assert said_once(offer, prompt, "en") == AFTER_THE_TONE["en"]
    # A key skips to the beep, as before.
    assert caller.press(prompt, "5").verbs == ["Record", "Redirect"]  # session 28: silence -> 988


@pytest.mark.parametrize("language", ["en", "es"])
def test_staying_on_after_the_offer_with_a_hidden_number_is_put_through_to_the_crisis_line(
    tmp_path: Path, language: str
) -> None:
    # Never hung up on (tests/test_voice_tester27d.py): the crisis line, as the offer said.
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(None)
    offer = crisis_offer(caller, language)
    transfer = caller.stay_silent(offer)
    assert transfer.verbs == ["Gather", "Dial"]
    assert [n.text for n in transfer.all("Number")] == [CRISIS_NUMBER]


def test_staying_on_after_the_worried_callers_offer_is_not_told_it_again(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), WORRIED_WORDS["en"])
    prompt = caller.stay_silent(offer)
    assert said_once(offer, prompt, "en").startswith(OPENS["en"])
    hidden = phone.call(None)
    offer = hidden.speak(hidden.dial_in(), WORRIED_WORDS["en"])
    goodbye = hidden.stay_silent(offer)
    assert goodbye.verbs == ["Say", "Hangup"]
    assert said_once(offer, goodbye, "en") == GOODBYE_TOLD["en"]


def test_an_offer_that_promised_a_peer_is_followed_by_the_whole_prompt_if_nobody_is_left(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, "en")
    assert offer.one("Redirect").text.endswith("/connect")
    # Everyone goes away while the offer is said: the caller was promised Peerline, so they
    # hear why nobody can answer, and 911 and 3 again, before the tone.
    for number in (lines.SAM, lines.RIA):
        assert phone.hooks.sms(number, "#away").status_code == 200
    said = caller.stay_silent(offer).spoken()
    assert said.startswith("All our peer supporters are busy right now. If you are in danger")
    assert "press 3" in said and "call you back" in said
