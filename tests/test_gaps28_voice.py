"""A caller who tells of someone else's danger is alerted and whispered as that (session 28).

"my daughter took pills" at the menu got the worried caller's offer, but on call was texted
that the caller "may be in crisis (an attempt may be under way) on a phone call", and the
supporter who answered after the caller asked for a peer heard "They may be in crisis.": both
read someone else's emergency as the caller's own. Driven by signed webhooks, TwiML parsed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox
from tests.support.voice import (
    Caller,
    Twiml,
    alerts,
    closed_line_file,
    is_transfer,
    menu_of,
    offered_in,
    phone_for,
    the_call,
)


def alert_texts(line: LineServices) -> list[str]:
    """Return the alert texts to Ria (on call), oldest first."""
    return [m["body"] for m in outbox(line, lines.RIA) if m["purpose"] == "safety_alert_call"]


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", "my daughter took pills"), ("es", "mi hija se tomo unas pastillas")],
)
def test_someone_elses_attempt_is_alerted_and_whispered_as_theirs(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(menu_of(caller, language), words)
    call = the_call(phone.line, caller)
    offered_in(offer, call.id, language, "worried")
    assert alerts(phone.line) == ["crisis"]
    (alert,) = alert_texts(phone.line)
    # Ria reads Spanish first: the alert is in her words either way.
    assert "otra persona en peligro" in alert, alert
    assert "puede estar en crisis" not in alert, alert
    # A caller waits on the phone, not in the texting queue: no "Fila: 0 esperando".
    assert "Fila" not in alert and alert.endswith("Mira la consola."), alert
    ring = caller.press(offer, "1")
    legs = caller.legs(ring)
    assert legs, ring
    whisper = legs[0].answer().spoken()
    assert "They are worried about someone else at risk." in whisper, whisper
    assert "They may be in crisis." not in whisper, whisper


def test_the_callers_own_crisis_is_still_whispered_as_theirs(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(menu_of(caller, "en"), "i took all my pills")
    offered_in(offer, the_call(phone.line, caller).id, "en", "attempt")
    (alert,) = alert_texts(phone.line)
    assert "puede estar en crisis" in alert, alert
    legs = caller.legs(caller.press(offer, "1"))
    whisper = legs[0].answer().spoken()
    assert "They may be in crisis." in whisper and "someone else" not in whisper, whisper


# -- a crisis caller silent at the message tone is put through to 988, not hung up on ----------


def after_record(caller: Caller, message: Twiml) -> Twiml:
    """Let the <Record> end with nothing said: Twilio goes on to the verb after it."""
    assert message.one("Record") is not None
    return caller.stay_silent(message)


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", "I have the pills in my hand"), ("es", "quiero morirme, ya no aguanto")],
)
def test_a_crisis_caller_nobody_answered_and_silent_at_the_tone_goes_to_988(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(menu_of(caller, language), words)
    answer = caller.stay_silent(offer)
    while not answer.all("Record"):  # each round rung and unanswered (Ria, then Sam)
        for leg in caller.legs(answer):
            leg.status("no-answer")
        answer = caller.dial_ends(answer, "no-answer")
    message = answer
    transfer = after_record(caller, message)
    assert is_transfer(transfer), transfer
    assert "Goodbye" not in transfer.spoken() and "Adiós" not in transfer.spoken()
    call = the_call(phone.line, caller)
    assert (call.state, call.crisis_transfers) == ("transferred", 1)
    # Twilio sends the redirect again (a retry): the same transfer, not a second one.
    again = after_record(caller, message)
    assert is_transfer(again), again
    assert the_call(phone.line, caller).crisis_transfers == 1


def test_a_crisis_caller_on_a_closed_line_silent_at_the_tone_goes_to_988(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), "I don't want to be here anymore")
    message = caller.stay_silent(offer)
    transfer = after_record(caller, message)
    assert is_transfer(transfer), transfer
    assert transfer.spoken().startswith("Our peer supporters cannot answer right now, so we are")


def test_anyone_else_silent_at_the_tone_hears_goodbye(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    message = caller.press(caller.dial_in(), "1")
    # Nothing after the <Record> but goodbye, in the same document: no step to a transfer.
    verbs = message.verbs
    assert verbs[verbs.index("Record") + 1 :] == ["Say", "Hangup"], message
    assert "We did not get a message" in message.spoken() and not message.all("Redirect")


def test_a_crisis_caller_whose_empty_recording_is_posted_goes_to_988(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    caller = phone.call(lines.TEXTER)
    message = caller.stay_silent(caller.speak(caller.dial_in(), "I have the pills in my hand"))
    # Twilio posts the action with a zero-length recording (a key pressed at once).
    transfer = caller.recorded(message, seconds=0)
    assert is_transfer(transfer), transfer


# -- an attempt under way hears 911 now and Poison Control first, as the texts say it ----------

ATTEMPT_FIRST = {
    "en": "If you have taken pills or poison, or you are hurt, please hang up and call 9 1 1 now",
    "es": "Si tomó pastillas o veneno, o está herido, por favor cuelgue y llame al 9 1 1 ahora",
}
POISON = "1 8 0 0, 2 2 2, 1 2 2 2"


@pytest.mark.parametrize(
    ("language", "words", "line_file"),
    [
        ("en", "um I took like a whole bottle of my pills like an hour ago", lines.ON_CALL),
        ("en", "I already took the pills", lines.ON_CALL),
        ("es", "me tomé todas las pastillas", lines.ON_CALL),
        ("en", "I already took the pills", None),
    ],
    ids=["bottle", "took", "tomé", "closed"],
)
def test_an_attempt_under_way_hears_911_now_and_poison_control_first(
    tmp_path: Path, language: str, words: str, line_file: str | None
) -> None:
    phone = phone_for(tmp_path, line_file or closed_line_file())
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(menu_of(caller, language), words)
    offered_in(offer, the_call(phone.line, caller).id, language, "attempt")
    said = offer.spoken()
    assert said.startswith(ATTEMPT_FIRST[language]), said
    assert POISON in said and "3" in said, said
    assert the_call(phone.line, caller).crisis == "attempt"


def test_softer_crisis_words_hear_the_offer_as_before(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), "I don't want to be here anymore")
    said = offer.spoken()
    assert said.startswith("It sounds like things are really hard right now"), said
    assert POISON not in said


# -- an emergency told, the caller's or someone's with them: 911 at once, then the menu --------

DANGER_911 = {
    "en": "If you are in danger, hang up and call 9 1 1 now.",
    "es": "Si está en peligro, cuelgue y llame al 9 1 1 ahora.",
}


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "my son isn't breathing"),
        ("en", "my mom is unconscious"),
        ("en", "I'm having chest pains"),
        ("en", "I'm not safe at home"),
        ("en", "my boyfriend is hitting me and I'm scared"),
        ("es", "mi hijo no respira"),
        ("es", "no estoy a salvo en mi casa"),
        ("es", "mi mamá se desmayó y no despierta"),
    ],
)
def test_an_emergency_told_is_told_to_call_911_at_once(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    answer = caller.speak(menu_of(caller, language), words)
    said = [say.text or "" for say in answer.one("Gather").iter("Say")]
    assert said[0] == DANGER_911[language], said
    assert not answer.all("Dial")
    call = the_call(phone.line, caller)
    assert (call.state, call.menu_attempts, call.language) == ("menu", 0, language)


@pytest.mark.parametrize(
    "words", ["I'm safe, I just want to talk", "he is not unconscious, can I talk to someone"]
)
def test_safety_denied_is_no_emergency(tmp_path: Path, words: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(caller.dial_in(), words)
    assert ring.all("Dial") and not is_transfer(ring), ring


@pytest.mark.parametrize(
    ("words", "language"),
    [("operator", "en"), ("representative", "en"), ("human please", "en"), ("operador", "es")],
)
def test_asking_for_an_operator_rings_a_peer(tmp_path: Path, words: str, language: str) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(caller.dial_in(), words)
    assert ring.all("Dial") and not is_transfer(ring), ring
    call = the_call(phone.line, caller)
    assert (call.menu_choice, call.language) == ("peer", language)


@pytest.mark.parametrize(
    ("language", "words"), [("es", "quiero desaparecer"), ("es", "tengo un arma")]
)
def test_short_spanish_crisis_words_at_the_menu_get_the_crisis_offer(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(menu_of(caller, language), words)
    offered_in(offer, the_call(phone.line, caller).id, language)
    assert alerts(phone.line) == ["crisis"]


# -- a crisis caller still on the line when the peer's call ends hears where to turn ----------


def bridged_then_ended(caller: Caller, offer: Twiml, seconds: int) -> Twiml:
    """Stay on after the offer, let the first supporter rung take the call, and end the bridge
    from their side."""
    ring = caller.stay_silent(offer)
    peer = caller.legs(ring)[0]
    peer.press(peer.answer(), "1")
    assert peer.status("in-progress").status_code == 204
    assert peer.status("completed", seconds).status_code == 204
    return caller.dial_ends(ring, "completed", seconds, DialCallSid=peer.sid, DialBridged="true")


@pytest.mark.parametrize(
    ("language", "words", "first"),
    [
        ("en", "I have the pills in my hand", "The call has ended. If you are in danger"),
        ("es", "quiero morirme, ya no aguanto", "La llamada terminó. Si está en peligro"),
    ],
)
def test_a_crisis_callers_peer_call_ending_says_where_to_turn_and_3(
    tmp_path: Path, language: str, words: str, first: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(menu_of(caller, language), words)
    after = bridged_then_ended(caller, offer, 15)
    assert after.spoken().startswith(first), after.spoken()
    assert after.verbs[-1] == "Hangup" and "3" in after.spoken()
    assert is_transfer(caller.press(after, "3"))


def test_anyone_elses_peer_call_ending_is_goodbye(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    ring = caller.press(caller.dial_in(), "1")
    sam = next(leg for leg in caller.legs(ring) if leg.to == lines.SAM)
    sam.press(sam.answer(), "1")
    assert sam.status("in-progress").status_code == 204
    goodbye = caller.dial_ends(ring, "completed", 200, DialCallSid=sam.sid, DialBridged="true")
    assert goodbye.verbs == ["Say", "Hangup"] and "9 1 1" not in goodbye.spoken()
