"""What a tester calling the line found (session 26): spoken numbers are keys, a crisis
transfer that ends at once is not a bare hang-up, a crisis caller gone before reaching anyone
is a missed call for on call, and no phone number is texted from a transcript. Driven by
signed webhooks, as Twilio sends them; every TwiML answer parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import lines
from tests.support.voice import (
    CRISIS_WORDS,
    Caller,
    Phone,
    Twiml,
    alert_details,
    closed_line_file,
    contact_alias,
    is_transfer,
    phone_for,
    the_call,
    voicemail_summary,
)


def crisis_offer(caller: Caller, language: str) -> Twiml:
    """Say crisis words at the English menu: the crisis offer, in their language."""
    offer = caller.speak(caller.dial_in(), CRISIS_WORDS[language])
    assert offer.one("Gather").attrib["action"].endswith(f"/offer/{language}")
    return offer


# -- 1. spoken numbers are the keys they name ----------------------------------------------


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "three"),
        ("en", "3"),
        ("en", "Three."),
        ("en", "press three"),
        ("es", "tres"),
        ("es", "3"),
        ("es", "Tres."),
        ("en", "nine eight eight"),
        ("es", "nueve ocho ocho"),
    ],
)
def test_a_spoken_three_at_the_crisis_offer_is_the_crisis_line(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    transfer = caller.speak(crisis_offer(caller, language), words)
    assert is_transfer(transfer), transfer
    assert the_call(phone.line, caller).state == "transferred"


@pytest.mark.parametrize(
    "words",
    [
        "three",
        "3",
        "Three.",
        "nine eight eight",
        "nueve ocho ocho",
        "No, Nueve ocho ocho por favor",
    ],
)
def test_a_spoken_three_at_the_menu_is_the_crisis_line(tmp_path: Path, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    assert is_transfer(caller.speak(caller.dial_in(), words))


@pytest.mark.parametrize("words", ["tres", "3", "número tres"])
def test_a_spoken_three_at_the_spanish_menu_is_the_crisis_line(tmp_path: Path, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    assert is_transfer(caller.speak(caller.press(caller.dial_in(), "8"), words))


@pytest.mark.parametrize("words", ["one", "1", "One.", "uno"])
def test_a_spoken_one_at_the_menu_rings_a_peer(tmp_path: Path, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(caller.dial_in(), words)
    assert ring.verbs[-1] == "Dial" and not is_transfer(ring)
    assert "not one of the choices" not in ring.spoken()
    assert the_call(phone.line, caller).state == "ringing"


@pytest.mark.parametrize(("words", "key"), [("two", "2"), ("dos", "2"), ("nine", "9")])
def test_other_spoken_numbers_are_their_keys(tmp_path: Path, words: str, key: str) -> None:
    phone = phone_for(tmp_path)
    spoken, pressed = phone.call(lines.TEXTER), phone.call(lines.TEXTER)
    said, keyed = spoken.speak(spoken.dial_in(), words), pressed.press(pressed.dial_in(), key)
    assert said.spoken() == keyed.spoken()
    assert "not one of the choices" not in said.spoken()


def test_a_spoken_eight_switches_the_language(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    caller.speak(caller.dial_in(), "eight")
    assert the_call(phone.line, caller).language == "es"


def test_a_number_in_a_sentence_is_not_a_key(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    # "one" in a longer answer is no key ("I need someone to talk to" is the peer's words).
    ring = caller.speak(caller.dial_in(), "I need someone to talk to")
    assert ring.verbs[-1] == "Dial" and not is_transfer(ring)


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "try again"),
        ("en", "again"),
        ("en", "again please"),
        ("en", "yes, try the crisis line again"),
        ("es", "otra vez"),
        ("es", "intentar otra vez"),
        ("es", "tres"),
        ("en", "three"),
    ],
)
def test_again_after_a_failed_transfer_is_the_crisis_line_again(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    transfer = caller.press(crisis_offer(caller, language), "3")
    again = caller.dial_ends(transfer, "no-answer")
    assert again.one("Gather").attrib["action"].endswith(f"/offer/{language}")
    second = caller.speak(again, words)
    assert is_transfer(second), second
    call = the_call(phone.line, caller)
    assert (call.state, call.crisis_transfers) == ("transferred", 2)


def test_again_at_the_first_crisis_offer_is_not_a_transfer(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    # Nothing was tried yet: "again" at the first offer keeps the menu's meaning.
    assert not is_transfer(caller.speak(crisis_offer(caller, "en"), "again"))


# -- 2. a crisis transfer that ends at once is not a bare hang-up --------------------------

WHERE_TO_TURN = {
    "en": ("call 9 1 1", "9 8 8", "press 3"),
    "es": ("llame al 9 1 1", "9 8 8", "oprima 3"),
}


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_crisis_transfer_that_ends_at_once_says_where_to_turn_and_offers_3(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    transfer = caller.press(crisis_offer(caller, language), "3")
    short = caller.dial_ends(transfer, "completed", 4)
    # A peer can answer: staying on rings one (tests/test_voice_tester27e.py), no goodbye.
    assert short.verbs == ["Gather", "Redirect"], short
    gather = short.one("Gather")
    assert gather.attrib["action"].endswith(f"/offer/{language}")
    assert all(say.attrib["language"].startswith(language) for say in short.all("Say"))
    said = short.spoken()
    for words in WHERE_TO_TURN[language]:
        assert words in said
    # Twilio sends the dial's end again: the same answer, nothing done twice.
    assert str(caller.dial_ends(transfer, "completed", 4)) == str(short)
    # 3 (or "again") there is the crisis line again.
    again = caller.speak(short, "again" if language == "en" else "otra vez")
    assert is_transfer(again)
    assert the_call(phone.line, caller).crisis_transfers == 2


def test_a_crisis_transfer_from_the_menu_that_ends_at_once_offers_3(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    short = caller.dial_ends(caller.press(caller.dial_in(), "3"), "completed", 12)
    assert short.verbs == ["Gather", "Redirect"]
    assert is_transfer(caller.press(short, "3"))


def test_a_long_crisis_call_ends_with_a_hang_up(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    done = caller.dial_ends(caller.press(caller.dial_in(), "3"), "completed", 600)
    assert done.verbs == ["Hangup"]


def test_a_caller_who_hung_up_on_a_short_crisis_call_hears_nothing_more(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    gone = caller.dial_ends(
        caller.press(caller.dial_in(), "3"), "completed", 5, CallStatus="completed"
    )
    assert gone.verbs == ["Hangup"]
    assert the_call(phone.line, caller).state == "ended"


# -- 3. a crisis caller gone before reaching anyone is a missed call for on call -----------


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_crisis_caller_who_hangs_up_at_the_offer_is_a_missed_call(
    tmp_path: Path, language: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    crisis_offer(caller, language)
    caller.status("completed", 20)
    caller.status("completed", 20)  # Twilio sends it again: one alert
    call = the_call(phone.line, caller)
    assert call.outcome == "hung_up_in_menu"
    (missed,) = alert_details(phone.line, "missed_call")
    assert missed.startswith(f"Missed call from {contact_alias(phone.line)}, who used crisis words")
    assert "5550199" not in missed and "555 0199" not in missed


def test_a_crisis_caller_who_hangs_up_while_supporters_ring_is_a_missed_call(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.stay_silent(crisis_offer(caller, "en"))
    assert ring.verbs[-1] == "Dial"
    caller.dial_ends(ring, "no-answer", CallStatus="completed")
    caller.status("completed", 40)
    assert the_call(phone.line, caller).outcome == "hung_up_while_ringing"
    (missed,) = alert_details(phone.line, "missed_call")
    assert missed.startswith(f"Missed call from {contact_alias(phone.line)}, who used crisis words")


def test_a_hidden_crisis_caller_who_hangs_up_at_the_offer_is_a_missed_call(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(None)
    crisis_offer(caller, "en")
    caller.status("completed", 20)
    (missed,) = alert_details(phone.line, "missed_call")
    assert missed.startswith("Missed call from a caller with a hidden number, who used crisis")


def test_a_caller_not_in_crisis_who_hangs_up_in_the_menu_is_no_missed_call(
    tmp_path: Path,
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    caller.dial_in()
    caller.status("completed", 10)
    assert alert_details(phone.line, "missed_call") == []


# -- 4. no phone number is texted from a voicemail's transcript -----------------------------


def closed_phone(tmp_path: Path) -> Phone:
    """Return Twilio's side of a line where Sam is on call and on time off (voicemail)."""
    return phone_for(tmp_path, closed_line_file())


@pytest.mark.parametrize(
    "words",
    [
        "hola necesito hablar, mi numero es 416 555 9005, gracias",
        "please call me back at 416-555-9005 tonight, I'm 25 and it's after 5",
        "my number is +1 (416) 555.9005 or 4165559005 thanks",
        "call 5559005 please",
    ],
)
def test_a_transcripts_phone_numbers_are_not_texted_to_staff(tmp_path: Path, words: str) -> None:
    summary = voicemail_summary(closed_phone(tmp_path), words)
    assert "[number]" in summary, summary
    for digits in ("9005", "555"):
        assert digits not in summary, summary
    if "I'm 25" in words:
        assert "I'm 25 and it's after 5" in summary  # short numbers are no phone number
