"""What a tester found when Twilio sent a voice webhook again, or late: a duplicate never acts
twice, a late end of an earlier crisis transfer is not taken for the current one, and a
first-time caller in crisis is named by the alias their contact gets. Driven by signed
webhooks, as Twilio sends them; every TwiML answer parsed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from peerline.service.models import Contact
from peerline.service.services import LineServices
from peerline.service.voice.models import CallLeg
from tests.support import lines
from tests.support.chat import texts_to
from tests.support.voice import (
    CRISIS_NUMBER,
    CRISIS_WORDS,
    Caller,
    Twiml,
    alert_details,
    alerts,
    closed_line_file,
    contact_alias,
    phone_for,
    safety_events,
    the_call,
)

OFFER_WORDS = {"en": "press 3", "es": "oprima 3"}


def legs_rung(line: LineServices) -> int:
    """Return how many supporters' phones were rung, on every call."""
    with line.db.session() as session:
        return len(session.scalars(select(CallLeg.id)).all())


# -- 1. a retried crisis-words webhook repeats the crisis offer ----------------------------


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_retried_crisis_words_webhook_gets_the_same_crisis_offer(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path)
    line = phone.line
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    offer = caller.speak(menu, CRISIS_WORDS[language])
    assert OFFER_WORDS[language] in offer.spoken()
    # Twilio timed out waiting and posts the same Gather action again: same CallSid, same words.
    again = caller.speak(menu, CRISIS_WORDS[language])
    assert str(again) == str(offer)
    # Nothing acted twice: no phone rang, one alert, one safety event, one text to on call.
    assert legs_rung(line) == 0
    assert the_call(line, caller).state != "ringing"
    assert alerts(line) == ["crisis"]
    assert safety_events(line) == ["voice_menu"]
    assert len(texts_to(line, lines.RIA)) == 1
    # The caller's own answer to the offer is still theirs: 3 puts them through.
    transfer = caller.press(again, "3")
    assert [n.text for n in transfer.all("Number")] == [CRISIS_NUMBER]


def test_crisis_words_said_again_after_the_offer_still_reach_a_peer(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), CRISIS_WORDS["en"])
    # The caller's answer to the offer (not a retry): anything but 3 means a person.
    ring = caller.speak(offer, CRISIS_WORDS["en"])
    assert ring.verbs == ["Dial"]
    assert sorted(n.text or "" for n in ring.all("Number")) == [lines.SAM, lines.RIA]
    # That answer sent again rings the same phones, no more.
    assert str(caller.speak(offer, CRISIS_WORDS["en"])) == str(ring)
    assert legs_rung(phone.line) == 2
    assert alerts(phone.line) == ["crisis"]


def test_a_retried_stay_on_after_the_offer_rings_once(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), CRISIS_WORDS["en"])
    ring = caller.stay_silent(offer)
    assert str(caller.stay_silent(offer)) == str(ring)
    assert legs_rung(phone.line) == 2


def test_a_caller_who_hangs_up_at_the_crisis_offer_is_recorded_as_leaving_the_menu(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    caller.speak(caller.dial_in(), CRISIS_WORDS["en"])
    assert the_call(phone.line, caller).state == "crisis_offer"
    caller.status("completed", 20)
    call = the_call(phone.line, caller)
    assert (call.state, call.outcome) == ("ended", "hung_up_in_menu")


# -- 2. a late end of an earlier crisis transfer is not the current one's -----------------


@pytest.mark.parametrize("late_status", ["no-answer", "busy", "completed"])
def test_a_late_end_of_the_first_crisis_transfer_leaves_the_second_alone(
    tmp_path: Path, late_status: str
) -> None:
    phone = phone_for(tmp_path)
    line = phone.line
    caller = phone.call(lines.TEXTER)
    first = caller.press(caller.dial_in(), "3")
    again = caller.dial_ends(first, "no-answer")
    assert again.spoken().startswith("We could not connect you to the crisis line.")
    second = caller.press(again, "3")
    assert [n.text for n in second.all("Number")] == [CRISIS_NUMBER]
    texted = len(texts_to(line, lines.RIA))

    # The first transfer's end arrives again, late, while the second rings the crisis line.
    late = caller.dial_ends(first, late_status)
    call = the_call(line, caller)
    assert (call.state, call.outcome) == ("transferred", "crisis_transfer")
    # Harmless: where the call is now, said quietly; no "could not connect", no hang-up.
    assert late.verbs == ["Dial"]
    assert late.one("Dial").attrib["action"] == second.one("Dial").attrib["action"]
    assert [n.text for n in late.all("Number")] == [CRISIS_NUMBER]
    assert alerts(line) == ["crisis"] and len(texts_to(line, lines.RIA)) == texted

    # The second transfer's own end is still heard as its own.
    failed = caller.dial_ends(second, "busy")
    assert failed.spoken().startswith("We could not connect you to the crisis line.")
    assert the_call(line, caller).state == "crisis_offer"
    # And the first one's, later still, does not offer the crisis line a third time over it.
    assert str(caller.dial_ends(first, "no-answer")) == str(failed)
    # Each transfer's <Dial> names its own attempt.
    assert first.one("Dial").attrib["action"] != second.one("Dial").attrib["action"]


def test_the_current_crisis_transfers_end_sent_twice_is_acted_on_once(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    transfer = caller.press(caller.dial_in(), "3")
    talked = caller.dial_ends(transfer, "completed", 300)
    assert talked.verbs == ["Hangup"]
    assert str(caller.dial_ends(transfer, "completed", 300)) == str(talked)
    assert alerts(phone.line) == []


def test_a_transfer_dialled_before_attempts_were_counted_still_ends_as_before(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    caller.press(caller.dial_in(), "3")
    call_id = the_call(phone.line, caller).id
    # A <Dial> given out before the deploy names no attempt: it is the call's current one.
    params = caller.params(DialCallStatus="no-answer")
    again = phone.check(phone.post(f"/webhooks/voice/call/{call_id}/crisis", params))
    assert again.spoken().startswith("We could not connect you to the crisis line.")
    assert the_call(phone.line, caller).outcome == "crisis_transfer_failed"


# -- 3. a first-time caller in crisis is named by alias ------------------------------------


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_first_time_callers_crisis_alert_names_them_by_alias(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path, closed_line_file())  # Sam on call, on time off
    line = phone.line
    caller = phone.call(lines.TEXTER)
    message = caller.stay_silent(caller.speak(caller.dial_in(), CRISIS_WORDS[language]))
    alias = contact_alias(line)
    call = the_call(line, caller)
    assert call.contact_id is not None
    (detail,) = alert_details(line, "crisis")
    (text,) = texts_to(line, lines.SAM)
    for said in (detail, text):
        assert alias in said
        assert "a caller" not in said and "una persona que llama" not in said
        assert "5550199" not in said and "555 0199" not in said
    with line.db.session() as session:
        assert session.scalars(select(Contact.language)).one() == language
    # Gone before the beep: the missed call names the same alias.
    assert "Record" in message.verbs
    caller.status("completed", 30)
    (missed,) = alert_details(line, "missed_call")
    assert missed.startswith(f"Missed call from {alias}, who used crisis words")


def test_a_first_time_callers_failed_transfer_alert_names_them_by_alias(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    line = phone.line
    caller = phone.call(lines.TEXTER)
    caller.dial_ends(caller.press(caller.dial_in(), "3"), "busy")
    (detail,) = alert_details(line, "crisis")
    assert contact_alias(line) in detail and "a caller" not in detail
    (text,) = texts_to(line, lines.RIA)
    assert contact_alias(line) in text


def test_a_hidden_callers_crisis_alert_still_says_a_caller(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(None)
    caller.speak(caller.dial_in(), CRISIS_WORDS["en"])
    (detail,) = alert_details(phone.line, "crisis")
    assert detail.startswith("a caller")
    with phone.line.db.session() as session:
        assert session.scalars(select(Contact)).all() == []


# -- 4. one list of words naming suicide; one look-up of a first-time caller's number ------


@pytest.mark.parametrize(
    ("words", "language"),
    [
        ("suicide", "en"),
        ("SUICIDAL", "en"),
        ("suicidio", "es"),
        ("suicida", "es"),
        ("suicidas", "es"),
        ("pensamientos suicidas", "es"),
    ],
)
def test_each_word_naming_suicide_gets_the_offer_in_its_language(
    tmp_path: Path, words: str, language: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), words)
    assert offer.one("Gather").attrib["action"].endswith(f"/offer/{language}")
    assert OFFER_WORDS[language] in offer.spoken()


def test_a_first_time_callers_number_is_looked_up_once_when_their_contact_is_made(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    line = phone.line
    caller = phone.call(lines.TEXTER)
    caller.press(caller.press(caller.dial_in(), "8"), "1")  # in Spanish, to the message prompt
    look_ups: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM contacts" in statement and "phone_hash IN" in statement:
            look_ups.append(statement)

    event.listen(line.db.engine, "before_cursor_execute", seen)
    try:
        caller.status("completed", 12)  # gone before the beep: a missed call, a new contact
    finally:
        event.remove(line.db.engine, "before_cursor_execute", seen)
    assert len(look_ups) == 1
    with line.db.session() as session:
        assert session.scalars(select(Contact.language)).one() == "es"
    (missed,) = alert_details(line, "missed_call")
    assert missed.startswith(f"Missed call from {contact_alias(line)} ")


def test_a_contact_made_by_a_text_during_the_call_keeps_its_language(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    line = phone.line
    caller = phone.call(lines.TEXTER)
    caller.press(caller.press(caller.dial_in(), "8"), "1")  # in Spanish
    phone.hooks.sms(lines.TEXTER, "hello")  # an English text while the call waits
    caller.status("completed", 12)
    with line.db.session() as session:
        assert session.scalars(select(Contact.language)).one() == "en"
    assert the_call(line, caller).contact_id is not None


# -- 5. a wrong key or silence at the menu, sent again, counts once -------------------------


def menu_attempts(line: LineServices, caller: Caller) -> int:
    """Return how many menus the caller let pass without a choice."""
    return the_call(line, caller).menu_attempts


@pytest.mark.parametrize("how", ["wrong key", "silence", "words that are no choice"])
def test_a_retried_first_miss_at_the_menu_is_counted_once(tmp_path: Path, how: str) -> None:
    phone = phone_for(tmp_path)
    line = phone.line
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    answers: dict[str, Callable[[Twiml], Twiml]] = {
        "wrong key": lambda twiml: caller.press(twiml, "7"),
        "silence": caller.stay_silent,
        "words that are no choice": lambda twiml: caller.speak(twiml, "the weather is nice"),
    }
    missed = answers[how]
    first = missed(menu)
    assert first.spoken().startswith("Sorry,")
    # Twilio timed out waiting and sends the same request again: the same menu, no person yet.
    again = missed(menu)
    assert str(again) == str(first)
    assert menu_attempts(line, caller) == 1
    assert (the_call(line, caller).state, legs_rung(line)) == ("menu", 0)
    # The caller's own second miss is still theirs: it connects them, as two misses do.
    rung = missed(again)
    assert rung.spoken().startswith("Connecting you with a peer supporter now.")
    assert the_call(line, caller).state == "ringing"


def test_a_retried_second_miss_at_the_menu_rings_once_with_the_same_words(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    line = phone.line
    caller = phone.call(lines.TEXTER)
    wrong = caller.press(caller.dial_in(), "7")
    rung = caller.stay_silent(wrong)
    assert rung.spoken().startswith("Connecting you with a peer supporter now.")
    assert str(caller.stay_silent(wrong)) == str(rung)
    assert legs_rung(line) == len(rung.all("Number")) == 2
    assert menu_attempts(line, caller) == 2


def test_a_retried_miss_at_a_spanish_menu_is_counted_once(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    spanish = caller.press(caller.dial_in(), "8")
    first = caller.press(spanish, "7")
    assert first.spoken().startswith("Perdón, esa no es una de las opciones.")
    assert str(caller.press(spanish, "7")) == str(first)
    assert menu_attempts(phone.line, caller) == 1


def test_each_menu_names_its_attempt_and_a_choice_keeps_the_count(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    wrong = caller.press(menu, "7")
    action = wrong.one("Gather").attrib["action"]
    assert action != menu.one("Gather").attrib["action"]
    assert wrong.one("Redirect").text == action
    # Group times and the menu said again are choices: their menu is the same attempt's.
    groups = caller.press(wrong, "2")
    assert groups.one("Gather").attrib["action"] == action
    assert caller.press(groups, "9").one("Gather").attrib["action"] == action
    assert menu_attempts(phone.line, caller) == 1


def test_a_menu_given_before_attempts_were_named_counts_as_before(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    caller.dial_in()
    call_id = the_call(phone.line, caller).id
    # A <Gather> handed out before the deploy names no attempt: every miss counts, as it did.
    old = f"/webhooks/voice/call/{call_id}/menu/en"
    first = phone.check(phone.post(old, caller.params(Digits="7")))
    assert first.spoken().startswith("Sorry, that is not one of the choices.")
    rung = phone.check(phone.post(old, caller.params(Digits="7")))
    assert rung.spoken().startswith("Connecting you with a peer supporter now.")


# -- 6. a 3 at a crisis caller's message prompt, sent again, gets the same transfer ---------


# A hidden number has no message prompt now: staying on is put through to the crisis line
# (tests/test_voice_tester27d.py).
@pytest.mark.parametrize("number", [lines.TEXTER], ids=["known"])
def test_a_retried_3_at_the_message_prompt_gets_the_same_transfer(
    tmp_path: Path, number: str | None
) -> None:
    phone = phone_for(tmp_path, closed_line_file())  # Sam on call, on time off
    line = phone.line
    caller = phone.call(number)
    offer = caller.speak(caller.dial_in(), CRISIS_WORDS["en"])
    message = caller.stay_silent(offer)
    # The offer said 3 (and that nobody can answer); the prompt right after it takes 3 still.
    assert "press 3" in offer.spoken()
    texted = len(texts_to(line, lines.SAM))
    transfer = caller.press(message, "3")
    assert transfer.spoken().startswith("We are transferring you to the crisis line now.")
    # Twilio timed out waiting and sends the same 3 again: the same transfer, said the same.
    again = caller.press(message, "3")
    assert str(again) == str(transfer)
    call = the_call(line, caller)
    assert (call.state, call.crisis_transfers) == ("transferred", 1)
    assert alerts(line) == ["crisis"] and safety_events(line) == ["voice_menu"]
    assert len(texts_to(line, lines.SAM)) == texted
    # A key during the transfer's notice still only skips it.
    assert caller.press(transfer, "3").verbs == ["Dial"]


def test_a_3_at_a_message_prompt_given_before_it_named_transfers_is_quiet_as_before(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    caller.press(caller.stay_silent(caller.speak(caller.dial_in(), CRISIS_WORDS["en"])), "3")
    call_id = the_call(phone.line, caller).id
    # The prompt's old step, /now, cannot tell a 3 sent again from a key at the transfer notice.
    old = phone.check(phone.post(f"/webhooks/voice/call/{call_id}/now", caller.params(Digits="3")))
    assert old.verbs == ["Dial"]
    assert the_call(phone.line, caller).crisis_transfers == 1


def test_a_retried_3_at_the_message_prompt_after_a_failed_transfer_transfers_once(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    failed = caller.dial_ends(caller.press(caller.dial_in(), "3"), "busy")
    message = caller.stay_silent(failed)
    # The offer said 3 (and that nobody can answer); the prompt right after it takes 3 still.
    assert "press 3" in failed.spoken()
    second = caller.press(message, "3")
    assert str(caller.press(message, "3")) == str(second)
    assert second.one("Dial").attrib["action"].endswith("/crisis/2")
    assert the_call(phone.line, caller).crisis_transfers == 2
    assert alerts(phone.line) == ["crisis"]
