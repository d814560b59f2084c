"""What a tester calling the line found: a crisis caller who stays on keeps the crisis line, a
failed crisis transfer is not the end, and callers are named, heard and answered in their own
language. Driven by signed webhooks, as Twilio sends them; every TwiML answer parsed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from peerline.service.groups import upcoming_text
from peerline.service.models import Alert, Contact
from tests.support import lines
from tests.support.chat import texts_to
from tests.support.voice import (
    CRISIS_NUMBER,
    CRISIS_WORDS,
    SPEECH_LANGUAGE,
    TORONTO,
    Caller,
    Twiml,
    alerts,
    closed_line_file,
    phone_for,
    safety_events,
    the_call,
    voice_line,
)

# Where to turn and the one key, as a crisis call hears them when nobody can answer.
WHERE_TO_TURN = {
    "en": "If you are in danger, call 9 1 1. To be put through to the 9 8 8 crisis line now, "
    "press 3.",
    "es": "Si está en peligro, llame al 9 1 1. Para pasar ahora a la línea de crisis 9 8 8, "
    "oprima 3.",
}
TRANSFER_FAILED = {
    "en": "We could not connect you to the crisis line.",
    "es": "No pudimos conectarle con la línea de crisis.",
}


def gather_words(twiml: Twiml) -> str:
    """Return what is said inside the answer's <Gather>."""
    return " ".join((say.text or "") for say in twiml.one("Gather").iter("Say"))


def crisis_then_stay(caller: Caller, language: str) -> Twiml:
    """Say crisis words at the menu, then stay on the line after the crisis offer."""
    offer = caller.speak(caller.dial_in(), CRISIS_WORDS[language])
    assert offer.one("Gather").attrib["language"] == SPEECH_LANGUAGE[language]
    return caller.stay_silent(offer)


# -- 1. a crisis caller who stays on keeps the crisis line ---------------------------------


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_crisis_caller_at_a_closed_line_hears_where_to_turn_before_the_beep(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), CRISIS_WORDS[language])
    message = caller.stay_silent(offer)
    assert message.verbs == ["Gather", "Record", "Redirect"]  # session 28: silence -> 988
    gather = message.one("Gather")
    # Its skip step names the crisis transfers so far, none: a 3 sent again is known.
    assert gather.attrib["action"].endswith(f"/call/{the_call(phone.line, caller).id}/now/0")
    said = gather_words(message)
    # Where to turn is said by the offer just before (it says nobody can answer, session 27),
    # then the voicemail prompt that leads to the beep, without saying it all again.
    assert WHERE_TO_TURN[language] in offer.spoken()
    assert WHERE_TO_TURN[language] not in said
    after_the_tone = "After the tone" if language == "en" else "Después del tono"
    assert after_the_tone in said
    # 3 there puts them through to the crisis line, as the menu's 3 does.
    transfer = caller.press(message, "3")
    assert transfer.verbs == ["Gather", "Dial"]
    assert [n.text for n in transfer.all("Number")] == [CRISIS_NUMBER]
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_choice, call.outcome) == (
        "transferred",
        "crisis",
        "crisis_transfer",
    )
    # A key pressed during the transfer notice, even 3 again, only skips the notice.
    assert caller.press(transfer, "3").verbs == ["Dial"]


def test_any_other_key_at_a_crisis_callers_message_prompt_goes_to_the_beep(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    beep = caller.press(crisis_then_stay(caller, "en"), "5")
    assert beep.verbs == ["Record", "Redirect"]  # session 28: silence -> 988
    assert the_call(phone.line, caller).state == "voicemail"


def test_a_caller_not_in_crisis_pressing_3_at_the_message_prompt_is_put_through(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    message = caller.press(caller.dial_in(), "1")
    assert "press 3" not in message.spoken()
    # The menu said 3 is the crisis line: so it is here too (tests/test_voice_tester27e.py).
    assert [n.text for n in caller.press(message, "3").all("Number")] == [CRISIS_NUMBER]


def test_a_crisis_caller_nobody_answered_hears_where_to_turn(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = crisis_then_stay(caller, "en")
    for leg in caller.legs(ring):
        leg.status("no-answer")
    message = caller.dial_ends(ring, "no-answer")
    said = gather_words(message)
    assert said.startswith("We could not reach a peer supporter just now.")
    assert WHERE_TO_TURN["en"] in said
    assert caller.press(message, "3").one("Number").text == CRISIS_NUMBER


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_crisis_caller_with_a_hidden_number_hears_where_to_turn_before_goodbye(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(None)
    offer = caller.speak(caller.dial_in(), CRISIS_WORDS[language])
    transfer = caller.stay_silent(offer)
    # Where to turn, then that staying on reaches the crisis line, are said by the offer (it
    # says nobody can answer, session 27); staying on is put through to it, never hung up on
    # (tests/test_voice_tester27d.py).
    said = offer.spoken()
    stay = "put you through" if language == "en" else "le pasaremos"
    assert WHERE_TO_TURN[language] in said
    assert said.index(WHERE_TO_TURN[language]) < said.index(stay)
    assert transfer.verbs == ["Gather", "Dial"]
    assert transfer.one("Number").text == CRISIS_NUMBER


def test_a_hidden_number_not_in_crisis_still_hears_only_goodbye(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(None)
    message = caller.press(caller.dial_in(), "1")
    assert message.verbs == ["Say", "Say", "Hangup"]
    assert "press 3" not in message.spoken()


# -- 2. a crisis transfer that fails is not the end ----------------------------------------


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_failed_crisis_transfer_offers_the_crisis_line_again_and_alerts_once(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path)
    line = phone.line
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    if language == "es":
        menu = caller.press(menu, "8")
    transfer = caller.press(menu, "3")
    again = caller.dial_ends(transfer, "failed")
    assert again.verbs == ["Gather", "Redirect"]
    assert again.one("Gather").attrib["language"] == SPEECH_LANGUAGE[language]
    said = again.spoken()
    assert said.startswith(TRANSFER_FAILED[language])
    assert "9 1 1" in said and "9 8 8" in said
    assert ("press 3" if language == "en" else "oprima 3") in said
    assert again.one("Redirect").text.endswith(f"/call/{the_call(line, caller).id}/connect")
    call = the_call(line, caller)
    assert (call.state, call.outcome) == ("crisis_offer", "crisis_transfer_failed")
    assert call.crisis is not None
    # A coordinator hears of the caller who asked for the crisis line and could not reach it.
    assert alerts(line) == ["crisis"]
    assert safety_events(line) == ["voice_transfer_failed"]
    (alert_text,) = texts_to(line, lines.RIA)  # Ria, on call, reads it in Spanish
    assert alert_text.startswith("Alerta de seguridad de Peerline")

    # Twilio sends the same dial's end again: the same answer, nothing done twice.
    assert str(caller.dial_ends(transfer, "failed")) == str(again)
    assert alerts(line) == ["crisis"] and safety_events(line) == ["voice_transfer_failed"]
    assert len(texts_to(line, lines.RIA)) == 1

    # 3 tries the crisis line again; staying on after a second failure rings everyone free.
    second = caller.press(again, "3")
    assert second.one("Number").text == CRISIS_NUMBER
    failed_again = caller.dial_ends(second, "busy")
    assert failed_again.spoken().startswith(TRANSFER_FAILED[language])
    ring = caller.stay_silent(failed_again)
    # Everyone free who speaks the caller's language, at once (Ria alone speaks Spanish).
    rung = [lines.SAM, lines.RIA] if language == "en" else [lines.RIA]
    assert sorted(n.text or "" for n in ring.all("Number")) == rung
    assert alerts(line) == ["crisis"]


def test_a_failed_transfer_of_a_call_already_in_crisis_alerts_no_second_time(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), CRISIS_WORDS["en"])
    again = caller.dial_ends(caller.press(offer, "3"), "no-answer")
    assert again.spoken().startswith(TRANSFER_FAILED["en"])
    assert alerts(phone.line) == ["crisis"]
    assert safety_events(phone.line) == ["voice_menu"]


def test_a_caller_who_hung_up_while_the_crisis_line_rang_hears_nothing_more(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    transfer = caller.press(caller.dial_in(), "3")
    gone = caller.dial_ends(transfer, "no-answer", CallStatus="completed")
    assert gone.verbs == ["Hangup"]
    assert the_call(phone.line, caller).state == "ended"


# -- 3. a known number is never "hidden" ---------------------------------------------------


def test_a_first_time_callers_missed_call_names_them_by_alias(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    line = phone.line
    caller = phone.call(lines.TEXTER)
    assert "Record" in caller.press(caller.dial_in(), "1").verbs
    caller.status("completed", 12)  # gone before the beep
    with line.db.session() as session:
        contact = session.scalars(select(Contact)).one()
        (detail,) = session.scalars(select(Alert.detail).where(Alert.kind == "missed_call"))
    assert the_call(line, caller).contact_id == contact.id
    assert detail.startswith(f"Missed call from {contact.alias} ")
    assert "hidden" not in detail


def test_a_hidden_numbers_missed_call_says_so(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, lines.NEVER_OPEN)
    caller = phone.call(None)
    caller.press(caller.dial_in(), "1")
    caller.status("completed", 12)
    with phone.line.db.session() as session:
        (detail,) = session.scalars(select(Alert.detail).where(Alert.kind == "missed_call"))
        assert session.scalars(select(Contact)).all() == []
    assert detail.startswith("Missed call from a caller with a hidden number ")


# -- 4. and 5. crisis words heard, in the caller's language --------------------------------


@pytest.mark.parametrize(
    ("words", "language"),
    [("suicide", "en"), ("Suicidal.", "en"), ("suicidio", "es"), ("suicida", "es")],
)
def test_naming_suicide_at_the_menu_gets_the_crisis_offer(
    tmp_path: Path, words: str, language: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), words)
    assert offer.verbs == ["Gather", "Redirect"]
    assert offer.one("Gather").attrib["language"] == SPEECH_LANGUAGE[language]
    assert ("press 3" if language == "en" else "oprima 3") in offer.spoken()
    assert the_call(phone.line, caller).crisis is not None
    assert alerts(phone.line) == ["crisis"]


@pytest.mark.parametrize(
    ("words", "language"),
    [
        ("I'm not suicidal, I just want to talk", "en"),
        ("no soy suicida, quiero hablar con alguien", "es"),
        # The word in a longer answer is the detector's to read (a review found these flagged).
        ("my brother died by suicide last year, I want to talk to someone", "en"),
        ("is this the suicide hotline? I want to talk to a person", "en"),
    ],
)
def test_suicide_negated_is_not_crisis_speech(tmp_path: Path, words: str, language: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    if language == "es":
        menu = caller.press(menu, "8")
    ring = caller.speak(menu, words)
    assert ring.verbs == ["Dial"]  # a peer, at once
    assert the_call(phone.line, caller).crisis is None
    assert alerts(phone.line) == []


def test_spanish_crisis_words_without_a_detected_language_get_the_spanish_offer(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    # The detector matches these (wish_dead) without saying their language.
    offer = caller.speak(caller.dial_in(), "ya no aguanto mas quiero desaparecer")
    assert offer.verbs == ["Gather", "Redirect"]
    assert offer.one("Gather").attrib["language"] == "es-US"
    assert "línea de crisis 9 8 8, oprima 3" in offer.spoken()
    assert the_call(phone.line, caller).language == "es"


# -- 6. group times in Spanish -------------------------------------------------------------


def test_group_times_in_spanish_use_spanish_days_and_months(tmp_path: Path) -> None:
    line = voice_line(tmp_path)
    saturday = datetime(2026, 12, 5, 12, 0, tzinfo=TORONTO)
    with line.db.session() as session:
        english = upcoming_text(session, TORONTO, saturday, "en")
        texted = upcoming_text(session, TORONTO, saturday, "es")
        spoken = upcoming_text(session, TORONTO, saturday, "es", spoken=True)
    assert english is not None and "Mon Dec 7 1:00 PM, Fri Dec 11 1:00 PM." in english
    assert texted is not None and "lun 7 dic 13:00, vie 11 dic 13:00." in texted
    assert texted.isascii()  # an SMS: no accents GSM-7 lacks
    assert spoken is not None
    assert "lunes 7 de diciembre a las 13:00, viernes 11 de diciembre a las 13:00." in spoken


def test_a_spanish_caller_hears_and_is_texted_group_times_in_spanish(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    groups = caller.press(caller.press(caller.dial_in(), "8"), "2")
    spoken = groups.spoken()
    assert " a las 13:00" in spoken and " de " in spoken
    for english in ("Mon", "Fri", "PM", "Jan", "Dec"):
        assert f" {english} " not in spoken
    caller.press(groups, "4")
    (text,) = texts_to(phone.line, lines.TEXTER)
    assert text.startswith("Grupos de Peerline: Online peer support group: ")
    assert any(f"{day} " in text for day in ("lun", "vie")) and " 13:00" in text
    assert "Mon" not in text and "Fri" not in text


# -- 7. a Spanish caller's contact speaks Spanish ------------------------------------------


def test_a_spanish_voicemail_callers_new_contact_is_spanish(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    message = caller.press(caller.press(caller.dial_in(), "8"), "1")
    caller.recorded(message)
    with phone.line.db.session() as session:
        assert session.scalars(select(Contact.language)).one() == "es"
    (text,) = texts_to(phone.line, lines.TEXTER)
    assert text.startswith("Peerline: recibimos su mensaje de voz.")


def test_a_known_contacts_language_is_kept_by_a_call(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    phone.hooks.sms(lines.TEXTER, "hello")  # an English texter first
    caller = phone.call(lines.TEXTER)
    message = caller.press(caller.press(caller.dial_in(), "8"), "1")
    caller.recorded(message)
    with phone.line.db.session() as session:
        assert session.scalars(select(Contact.language)).one() == "en"
    assert the_call(phone.line, caller).language == "es"


def test_a_spanish_callers_missed_call_contact_is_spanish(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    caller.press(caller.press(caller.dial_in(), "8"), "1")
    caller.status("completed", 9)
    with phone.line.db.session() as session:
        assert session.scalars(select(Contact.language)).one() == "es"
