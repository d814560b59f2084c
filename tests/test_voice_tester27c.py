"""What a reviewer of the session-27 voice changes found: a caller who refuses the menu's
language while naming a choice is answered in the other language, at the menu and at the
crisis offer. Driven by signed webhooks, as Twilio sends them; every TwiML answer parsed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from tests.support import lines
from tests.support.voice import (
    CRISIS_NUMBER,
    OTHER,
    SPEECH_LANGUAGE,
    Phone,
    Twiml,
    closed_line_file,
    crisis_offer,
    menu_of,
    phone_for,
    the_call,
)

# Whom a peer call rings, by the call's language (Ria alone speaks Spanish).
RUNG = {"en": sorted([lines.SAM, lines.RIA]), "es": [lines.RIA]}
# Each language's 911 line, said first when the call turned to it on the way to ringing.
EMERGENCY = {"en": "In danger? Call 9 1 1.", "es": "¿Peligro? Llame al 9 1 1."}
# The first words of each menu.
FIRST_KEY = {"en": "To talk with a peer, press 1.", "es": "Para hablar con alguien, oprima 1."}


def rung_in(twiml: Twiml, language: str) -> list[str]:
    """Check an answer says the 911 line in a language, skippable by a key, then rings;
    return the numbers rung, sorted."""
    assert twiml.verbs == ["Gather", "Dial"], twiml
    (say,) = twiml.one("Gather")
    assert say.text == EMERGENCY[language]
    assert say.attrib["language"] == SPEECH_LANGUAGE[language]
    return sorted(n.text or "" for n in twiml.all("Number"))


def said_in(twiml: Twiml, language: str) -> None:
    """Check an answer speaks a language: every <Say> but the other language's key ("Para
    español, oprima 8."), and every <Gather>'s speech recognition."""
    says = [say for say in twiml.all("Say") if "8." not in (say.text or "")]
    assert says, twiml
    assert all(say.attrib["language"] == SPEECH_LANGUAGE[language] for say in says), twiml
    for gather in twiml.all("Gather"):
        if "speech" in gather.attrib["input"]:
            assert gather.attrib["language"] == SPEECH_LANGUAGE[language], twiml


# -- 1. refusing the menu's language while naming a choice: the choice, in the other one -------

# Words that ask for a person and say the caller does not speak the menu's language.
REFUSING_TALK = {
    "es": (
        "I want to talk, no Spanish",
        "I don't speak Spanish, I want to talk to someone",
        "no spanish please, I need help",
    ),
    "en": (
        "quiero hablar, no english",
        "I don't speak English, I want to talk",
        "no hablo inglés, quiero hablar con alguien",
        "no English, necesito ayuda",
    ),
}


@pytest.mark.parametrize(
    ("language", "words"), [(lang, w) for lang, said in REFUSING_TALK.items() for w in said]
)
def test_a_person_asked_for_while_refusing_the_menus_language_is_rung_in_the_other(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = menu_of(caller, language)
    ring = caller.speak(menu, words)
    other = OTHER[language]
    # The 911 line in the language the caller can hear, then the peers who speak it.
    assert rung_in(ring, other) == RUNG[other]
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_choice, call.language, call.menu_attempts) == (
        "ringing",
        "peer",
        other,
        0,
    )
    # Twilio sends the request again: the same answer, nobody rung twice.
    assert str(caller.speak(menu, words)) == str(ring)
    assert the_call(phone.line, caller).round == 1


def test_group_times_asked_for_while_refusing_spanish_are_said_in_english(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    times = caller.speak(menu_of(caller, "es"), "group times, I don't speak Spanish")
    said_in(times, "en")
    assert not times.all("Dial")
    call = the_call(phone.line, caller)
    assert (call.menu_choice, call.language) == ("groups", "en")


def test_the_crisis_line_asked_for_while_refusing_spanish_is_put_through_in_english(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    transfer = caller.speak(menu_of(caller, "es"), "nine eight eight, no Spanish")
    assert [n.text for n in transfer.all("Number")] == [CRISIS_NUMBER]
    said_in(transfer, "en")
    assert the_call(phone.line, caller).language == "en"


@pytest.mark.parametrize(
    ("language", "words"),
    [("es", "repeat please, I don't speak Spanish"), ("en", "repetir, no hablo inglés")],
)
def test_asking_to_repeat_while_refusing_the_menus_language_is_the_other_menu(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    other = OTHER[language]
    menu = caller.speak(menu_of(caller, language), words)
    said = menu.spoken()
    assert said.startswith(EMERGENCY[other] + " " + FIRST_KEY[other]), said
    call = the_call(phone.line, caller)
    gather = menu.one("Gather")
    assert gather.attrib["action"].endswith(f"/call/{call.id}/menu/{other}/0")
    assert (call.language, call.menu_attempts) == (other, 0)


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("es", "I want to talk to someone, I don't speak Spanish"),
        ("en", "quiero hablar, no english"),
    ],
)
def test_a_person_asked_for_at_the_crisis_offer_while_refusing_its_language(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, language)
    ring = caller.speak(offer, words)
    other = OTHER[language]
    # A crisis call rings everyone free who speaks the caller's language.
    assert rung_in(ring, other) == RUNG[other]
    assert the_call(phone.line, caller).language == other
    assert str(caller.speak(offer, words)) == str(ring)


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", "I want to talk, no Spanish"), ("es", "quiero hablar, no hablo inglés")],
)
def test_refusing_the_other_language_while_naming_a_choice_stays_in_the_menus(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(menu_of(caller, language), words)
    # The 911 line was said in this language by the greeting or menu already: a bare ring.
    assert ring.verbs == ["Dial"]
    assert sorted(n.text or "" for n in ring.all("Number")) == RUNG[language]
    assert the_call(phone.line, caller).language == language


# -- 2. "nobody helps me" is a plea for help, in its forms --------------------------------------

# Not one of the choices, by the menu's language.
NOT_A_CHOICE = {"en": "Sorry, that is not one of", "es": "Perdón, esa no es"}


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "nobody helps me"),
        ("en", "no one is helping me"),
        ("en", "Nobody is helping me."),
        ("en", "no one ever helps"),
        ("es", "nadie me ayuda"),
        ("es", "nadie me está ayudando"),
        ("es", "no me ayuda nadie"),
        ("es", "nunca nadie me ayuda"),
        ("es", "no me quiere ayudar nadie"),
    ],
)
def test_nobody_helping_is_a_plea_that_rings_a_peer(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(menu_of(caller, language), words)
    assert ring.verbs == ["Dial"], ring
    assert sorted(n.text or "" for n in ring.all("Number")) == RUNG[language]
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_choice, call.language, call.menu_attempts) == (
        "ringing",
        "peer",
        language,
        0,
    )


@pytest.mark.parametrize("words", ["no me ayuda nadie", "nunca nadie me ayuda"])
def test_nobody_helping_said_in_spanish_at_the_english_menu_rings_in_spanish(
    tmp_path: Path, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    assert rung_in(caller.speak(caller.dial_in(), words), "es") == RUNG["es"]
    assert the_call(phone.line, caller).language == "es"


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "that was helpful"),
        ("en", "I don't need anyone's help"),
        ("en", "I'm not helping anyone"),
        ("es", "no necesito ayuda de nadie"),
        ("es", "no quiero hablar con nadie"),
        ("es", "soy ayudante"),
    ],
)
def test_help_in_a_longer_word_or_negated_is_still_no_plea(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    missed = caller.speak(menu_of(caller, language), words)
    assert not missed.all("Dial")
    assert missed.spoken().startswith(NOT_A_CHOICE[language]), missed.spoken()
    assert the_call(phone.line, caller).menu_attempts == 1


# -- 3. the rotas are read once an answer ------------------------------------------------------


@contextmanager
def rota_reads(phone: Phone) -> Iterator[list[str]]:
    """Yield the statements that read the line's time zone, holidays and rota version (the
    one query each loading of the rotas makes), as they run."""
    reads: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if "line_settings" in statement and "FROM" in statement.upper():
            reads.append(statement)

    engine = phone.line.db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield reads
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def test_staying_on_at_a_closed_line_reads_the_rotas_once(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    offer = crisis_offer(caller, "en")
    with rota_reads(phone) as reads:
        prompt = caller.stay_silent(offer)
    assert prompt.verbs == ["Gather", "Record", "Redirect"]
    # Who a round would ring and when the line opens come from the same rotas.
    assert len(reads) == 1, reads
