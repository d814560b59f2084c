"""The voice line by signed webhooks, as Twilio sends them: menu, screened ringing, whisper,
accept, voicemail, and the unhappy paths; every TwiML answer parsed and checked."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from rq import Queue
from sqlalchemy import select, update

from peerline.service import calls
from peerline.service.context import transaction
from peerline.service.job_queue import QUEUE_NAME
from peerline.service.models import (
    Alert,
    AuditEvent,
    Block,
    Contact,
    OutboundMessage,
    Supporter,
    utcnow,
)
from peerline.service.services import LineServices
from peerline.service.settings import SettingsError
from peerline.service.voice import voicemail
from peerline.service.voice.models import Call, CallbackRequest, CallLeg
from tests.support import lines
from tests.support.chat import outbox, run_jobs, texts_to
from tests.support.servers import PostgresServer
from tests.support.voice import (
    TORONTO,
    Caller,
    Phone,
    Twiml,
    closed_line_file,
    the_call,
    voice_app,
    voice_line,
)

LINE_NUMBER = "+15550100000"


@pytest.fixture
def line(tmp_path: Path) -> LineServices:
    """Return a line where Sam and Ria are always on shift, ringing all at once."""
    return voice_line(tmp_path)


@pytest.fixture
def phone(line: LineServices) -> Phone:
    """Return Twilio's side of calls to the line."""
    return Phone(line, voice_app(line))


def supporter_id(line: LineServices, name: str) -> int:
    """Return a supporter's id by name."""
    with line.db.session() as session:
        return session.scalars(select(Supporter.id).where(Supporter.name == name)).one()


def on_calls(line: LineServices) -> set[int]:
    """Return who counts as on a call now."""
    with line.db.session() as session:
        return calls.supporters_on_calls(session)


def ringing(caller: Caller) -> Twiml:
    """Dial in and choose to talk with a peer."""
    return caller.press(caller.dial_in(), "1")


def unanswered(caller: Caller, outcome: str) -> Twiml:
    """Ring the supporters for a call, end every leg with `outcome` (busy, no-answer) and
    return what the caller hears when the round ends."""
    ring = ringing(caller)
    for leg in caller.legs(ring):
        leg.status(outcome)
    return caller.dial_ends(ring, outcome)


# -- the menu ----------------------------------------------------------------------------


def test_greeting_and_menu_are_a_gather_with_keys_and_speech(phone: Phone) -> None:
    twiml = phone.call(lines.TEXTER).dial_in()
    assert twiml.verbs == ["Gather", "Redirect"]
    gather = twiml.one("Gather")
    assert gather.attrib["input"] == "dtmf speech"
    assert gather.attrib["numDigits"] == "1"
    assert gather.attrib["language"] == "en-US"
    assert "español" in gather.attrib["hints"] and "groups" in gather.attrib["hints"]
    assert gather.attrib["action"].endswith("/webhooks/voice/call/1/menu/en/0")
    assert twiml.one("Redirect").text == gather.attrib["action"]
    says = [(say.attrib["language"], say.text or "") for say in gather.findall("Say")]
    # The line's name, then at once the Spanish offer, in Spanish, then 911 and the one key.
    assert says[:4] == [
        ("en-US", "Peerline peer support."),
        ("es-US", "Para español, oprima 8."),
        ("en-US", "In danger? Call 9 1 1."),
        ("en-US", "To talk with a peer, press 1."),
    ]
    assert "press 3" in says[4][1]
    assert "not counsellors or a crisis service" in twiml.spoken()


def test_a_retried_call_webhook_acts_once(line: LineServices, phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    first, again = caller.dial_in(), caller.dial_in()
    assert str(first) == str(again)
    with line.db.session() as session:
        assert len(session.scalars(select(Call)).all()) == 1


def test_repeat_and_spanish(phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    repeated = caller.press(menu, "9")
    assert "Welcome" not in repeated.spoken() and "press 1" in repeated.spoken()
    spanish = caller.press(repeated, "8")
    assert str(caller.press(repeated, "8")) == str(spanish)  # a retry does not switch back
    gather = spanish.one("Gather")
    assert gather.attrib["language"] == "es-US"
    assert "oprima 1" in spanish.spoken()
    assert "For English, press 8" in spanish.spoken()
    assert {say.attrib["voice"] for say in gather.findall("Say")} == {"Polly.Lupe", "Polly.Joanna"}
    english = caller.speak(spanish, "English please")
    assert english.one("Gather").attrib["language"] == "en-US"


def test_saying_espanol_switches_to_spanish(phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    spanish = caller.speak(caller.dial_in(), "Español")
    assert spanish.one("Gather").attrib["language"] == "es-US"
    assert "Llame al 9 1 1" in spanish.spoken()  # the Spanish emergency notice
    ring = caller.speak(spanish, "quiero hablar con un compañero")
    # The phones ring at once: nothing said between the choice and the ringing.
    assert ring.verbs == ["Dial"]


def test_a_wrong_key_and_silence(line: LineServices, phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    wrong = caller.press(menu, "7")
    assert wrong.spoken().startswith("Sorry, that is not one of the choices.")
    assert "press 1" in wrong.spoken()  # the options said once more
    # A wrong key then silence: no third menu, a person (the old menu looped for ever).
    rung = caller.stay_silent(wrong)
    assert rung.verbs == ["Gather", "Dial"]
    assert rung.spoken().startswith("Connecting you with a peer supporter now.")
    caller.status("completed", 30)
    silent = phone.call(lines.TEXTER_2)
    once = silent.stay_silent(silent.dial_in())
    assert once.spoken().startswith("Sorry, we did not hear a choice.")
    assert silent.stay_silent(once).verbs == ["Gather", "Dial"]


def test_group_times_are_read_without_links_and_can_be_texted(
    line: LineServices, phone: Phone
) -> None:
    caller = phone.call(lines.TEXTER)
    groups = caller.press(caller.dial_in(), "2")
    spoken = groups.spoken()
    assert "Online peer support group" in spoken
    assert "http" not in spoken
    assert "press 4" in spoken
    texted = caller.press(groups, "4")
    assert texted.spoken().startswith("We have sent you a text message with the group times.")
    caller.press(groups, "4")  # pressed again, or a retried request: one text only
    (body,) = texts_to(line, lines.TEXTER)
    assert body.startswith("Peerline groups: Online peer support group")
    assert "https://example.org/groups" in body


def test_an_opted_out_caller_is_not_offered_texts(line: LineServices, phone: Phone) -> None:
    phone.hooks.sms(lines.TEXTER, "STOP")
    caller = phone.call(lines.TEXTER)
    groups = caller.press(caller.dial_in(), "2")
    assert "press 4" not in groups.spoken()
    assert caller.press(groups, "4").spoken().startswith("Sorry, that is not one")
    assert texts_to(line, lines.TEXTER) == []


def test_crisis_line_transfer(phone: Phone, tmp_path: Path) -> None:
    caller = phone.call(lines.TEXTER)
    transfer = caller.press(caller.dial_in(), "3")
    assert transfer.verbs == ["Gather", "Dial"]
    dial = transfer.one("Dial")
    # A full number from the line's own number: 988 may not route from the provider.
    assert dial.attrib["callerId"] == LINE_NUMBER
    assert [n.text for n in dial.findall("Number")] == ["+18002738255"]
    failed = caller.dial_ends(transfer, "failed")
    assert "dial 9 8 8 yourself" in failed.spoken() and "press 3" in failed.spoken()
    # Not the end of the call: the crisis line again (3), or staying on for a person.
    assert failed.verbs == ["Gather", "Redirect"]
    assert failed.one("Redirect").text.endswith("/call/1/connect")
    with phone.line.db.session() as session:
        call = session.scalars(select(Call)).one()
        assert (call.menu_choice, call.outcome) == ("crisis", "crisis_transfer_failed")
        assert (call.state, call.crisis) == ("crisis_offer", "crisis")


def test_the_crisis_number_is_configurable(tmp_path: Path) -> None:
    line = voice_line(tmp_path, voice_crisis_number="1 (800) 273-8255")
    phone = Phone(line, voice_app(line))
    caller = phone.call(lines.TEXTER)
    transfer = caller.speak(caller.dial_in(), "crisis line please")
    assert transfer.one("Number").text == "+18002738255"
    done = caller.dial_ends(transfer, "completed", 600)
    assert done.verbs == ["Hangup"]


def test_crisis_words_in_the_menu_are_met_and_connected(phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), "I want to kill myself")
    assert offer.verbs == ["Gather", "Redirect"]
    assert "9 8 8 crisis line now, press 3" in offer.spoken()
    ring = caller.stay_silent(offer)  # staying on the line rings the supporters
    assert ring.verbs == ["Dial"]


# -- ringing, whisper, accept ------------------------------------------------------------


def test_whole_call_journey(line: LineServices, phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    ring = ringing(caller)
    assert ring.verbs == ["Dial"]  # the caller pressed 1: the phones ring at once
    dial = ring.one("Dial")
    assert dial.attrib["callerId"] == LINE_NUMBER  # masked: supporters see the line
    assert dial.attrib["answerOnBridge"] == "true"
    assert dial.attrib["timeout"] == "20"
    assert dial.attrib["action"].endswith("/webhooks/voice/call/1/dial/1")
    numbers = ring.all("Number")
    assert sorted(n.text for n in numbers) == sorted([lines.SAM, lines.RIA])  # type: ignore[type-var]
    for number in numbers:
        assert number.attrib["statusCallbackEvent"] == "initiated ringing answered completed"
        assert re.search(r"/webhooks/voice/leg/\d+/whisper$", number.attrib["url"])
    sam, ria = sorted(caller.legs(ring), key=lambda leg: leg.to != lines.SAM)
    for leg in (sam, ria):
        assert leg.status("initiated").status_code == 204
        assert leg.status("ringing").status_code == 204
    assert on_calls(line) == {supporter_id(line, "Sam"), supporter_id(line, "Ria")}

    whisper = sam.answer()
    assert whisper.verbs == ["Gather", "Hangup"]
    gather = whisper.one("Gather")
    assert (gather.attrib["numDigits"], gather.attrib["input"]) == ("1", "dtmf")
    assert whisper.spoken() == "Peerline call. Press 1."
    bridged = sam.press(whisper, "1")
    # No <Hangup> and no <Dial>: the whisper document ends and Twilio bridges the call.
    assert bridged.verbs == []
    assert ria.status("canceled").status_code == 204
    assert sam.status("in-progress").status_code == 204
    assert on_calls(line) == {supporter_id(line, "Sam")}

    assert sam.status("completed", 312).status_code == 204
    goodbye = caller.dial_ends(ring, "completed", 312, DialCallSid=sam.sid, DialBridged="true")
    assert goodbye.verbs == ["Say", "Hangup"]
    assert caller.status("completed", 365).status_code == 204
    assert on_calls(line) == set()

    call = the_call(line, caller)
    assert (call.state, call.outcome, call.menu_choice) == ("ended", "connected", "peer")
    assert call.supporter_id == supporter_id(line, "Sam")
    assert (call.talk_seconds, call.duration_seconds, call.status) == (312, 365, "completed")
    legs = {leg.supporter_id: leg for leg in call.legs}
    assert legs[supporter_id(line, "Sam")].accepted
    assert legs[supporter_id(line, "Sam")].leg_sid == sam.sid
    assert legs[supporter_id(line, "Ria")].outcome == "taken"
    # Nobody was texted anything but Sam's debrief invite after the call (issue 21), and no
    # number crossed over.
    assert [(m["to"], m["purpose"]) for m in outbox(line)] == [(lines.SAM, "debrief_invite")]
    assert lines.TEXTER not in outbox(line)[0]["body"]


def test_a_retried_menu_choice_rings_the_same_legs(line: LineServices, phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    first, again = caller.press(menu, "1"), caller.press(menu, "1")
    assert str(first) == str(again)
    with line.db.session() as session:
        assert len(session.scalars(select(CallLeg)).all()) == 2


def test_a_supporter_who_does_not_press_1_is_hung_up_on(line: LineServices, phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    ring = ringing(caller)
    sam, ria = sorted(caller.legs(ring), key=lambda leg: leg.to != lines.SAM)
    declined = sam.press(sam.answer(), "2")
    assert declined.verbs == ["Hangup"]
    ria.press(ria.answer(), "1")
    call = the_call(line, caller)
    assert call.supporter_id == supporter_id(line, "Ria")
    outcomes = {leg.supporter_id: leg.outcome for leg in call.legs}
    assert outcomes[supporter_id(line, "Sam")] == "declined"


def test_two_supporters_pressing_1_at_once_only_one_is_connected(
    line: LineServices, phone: Phone
) -> None:
    caller = phone.call(lines.TEXTER)
    ring = ringing(caller)
    sam, ria = caller.legs(ring)
    sam_whisper, ria_whisper = sam.answer(), ria.answer()
    assert sam.press(sam_whisper, "1").verbs == []
    late = ria.press(ria_whisper, "1")
    assert late.verbs == ["Say", "Hangup"]
    assert "Another peer supporter has taken this call" in late.spoken()


def test_a_voicemail_box_answering_ring_all_rings_the_others_again(
    line: LineServices, phone: Phone
) -> None:
    caller = phone.call(lines.TEXTER)
    ring = ringing(caller)
    sam, ria = sorted(caller.legs(ring), key=lambda leg: leg.to != lines.SAM)
    # Sam's phone is off: his voicemail answers at once, hears the whisper, presses nothing.
    sam.answer()
    sam.status("completed", 9)
    ria.status("canceled")
    again = caller.dial_ends(ring, "completed", 9)
    assert "still trying" in again.spoken()
    assert [n.text for n in again.all("Number")] == [lines.RIA]
    assert again.one("Dial").attrib["action"].endswith("/dial/2")


def test_sequential_strategy_no_answer_then_voicemail(tmp_path: Path) -> None:
    line = voice_line(tmp_path, voice_strategy="sequential", voice_ring_seconds="15")
    phone = Phone(line, voice_app(line))
    caller = phone.call(lines.TEXTER)
    first = ringing(caller)
    assert [n.text for n in first.all("Number")] == [lines.SAM]
    assert first.one("Dial").attrib["timeout"] == "15"
    (sam,) = caller.legs(first)
    sam.status("no-answer")
    second = caller.dial_ends(first, "no-answer")
    assert [n.text for n in second.all("Number")] == [lines.RIA]
    (ria,) = caller.legs(second)
    ria.status("busy")
    message = caller.dial_ends(second, "busy")
    assert message.verbs == ["Gather", "Record", "Say", "Hangup"]
    assert message.spoken().startswith("We could not reach a peer supporter just now.")
    record = message.one("Record")
    assert record.attrib["maxLength"] == "120"
    assert record.attrib["finishOnKey"] == "#"
    assert record.attrib["recordingStatusCallbackEvent"] == "completed absent"
    call = the_call(line, caller)
    assert (call.state, call.outcome, call.round) == ("voicemail", "no_answer", 2)
    assert sorted(leg.outcome or "" for leg in call.legs) == ["busy", "no-answer"]


def test_ring_all_busy_everywhere_goes_to_voicemail(line: LineServices, phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    message = unanswered(caller, "busy")
    assert "Record" in message.verbs
    assert message.spoken().startswith("We could not reach a peer supporter just now.")


def test_who_gets_rung(tmp_path: Path) -> None:
    line = voice_line(tmp_path)
    phone = Phone(line, voice_app(line))
    ria = supporter_id(line, "Ria")
    with line.db.session() as session:
        session.execute(update(Supporter).where(Supporter.id == ria).values(takes_calls=False))
    ring = ringing(phone.call(lines.TEXTER))
    assert [n.text for n in ring.all("Number")] == [lines.SAM]
    # Sam is now being rung: a second caller finds nobody free.
    second = ringing(phone.call(lines.TEXTER_2))
    assert second.spoken().startswith("All our peer supporters are busy right now.")
    assert "Record" in second.verbs


def test_a_supporter_in_an_sms_chat_is_rung_only_when_the_line_allows_it(tmp_path: Path) -> None:
    for allowed, expected in ((False, [lines.RIA]), (True, [lines.SAM, lines.RIA])):
        line = voice_line(tmp_path / str(allowed), voice_calls_during_chat=allowed)
        phone = Phone(line, voice_app(line))
        phone.hooks.sms(lines.TEXTER_2, "yes")
        run_jobs(line)
        (offered,) = [
            n for n in (lines.SAM, lines.RIA) if any("#take" in b for b in texts_to(line, n))
        ]
        phone.hooks.sms(offered, "#take")
        ring = ringing(phone.call(lines.TEXTER))
        numbers = [n.text for n in ring.all("Number")]
        if allowed:
            assert sorted(numbers) == sorted(expected)  # type: ignore[type-var]
        else:
            assert numbers == [n for n in (lines.SAM, lines.RIA) if n != offered]


def test_a_spanish_caller_rings_spanish_speakers_first(tmp_path: Path) -> None:
    line = voice_line(tmp_path, voice_strategy="sequential")
    phone = Phone(line, voice_app(line))
    caller = phone.call(lines.TEXTER)
    spanish = caller.press(caller.dial_in(), "8")
    ring = caller.press(spanish, "1")
    assert [n.text for n in ring.all("Number")] == [lines.RIA]
    (ria,) = caller.legs(ring)
    assert ria.answer().spoken() == "Peerline, Spanish caller. Press 1."


def test_a_caller_hanging_up_while_it_rings_frees_the_supporters(
    line: LineServices, phone: Phone
) -> None:
    caller = phone.call(lines.TEXTER)
    ring = ringing(caller)
    assert len(on_calls(line)) == 2
    assert caller.status("completed", 21).status_code == 204
    assert on_calls(line) == set()
    (leg, _) = caller.legs(ring)
    assert "no longer waiting" in leg.answer().spoken()
    assert caller.dial_ends(ring, "no-answer").verbs[-1] == "Hangup"
    call = the_call(line, caller)
    assert (call.state, call.outcome) == ("ended", "hung_up_while_ringing")


# -- nobody there: voicemail --------------------------------------------------------------


def test_closed_line_says_when_it_opens_and_takes_a_voicemail(tmp_path: Path) -> None:
    line = voice_line(tmp_path, closed_line_file())
    phone = Phone(line, voice_app(line))
    caller = phone.call(lines.TEXTER)
    message = ringing(caller)
    spoken = message.spoken()
    back = utcnow().astimezone(TORONTO).date() + timedelta(days=3)
    assert spoken.startswith("Our peer supporters are not on shift right now.")
    # Midnight is named by the night it ends (session 28: "on Tuesday at 12:00 AM").
    eve = back - timedelta(days=1)
    assert f"The line next opens on {eve.strftime('%A')} night at midnight" in spoken
    assert "will call you back from this number when the line opens" in spoken
    saved = caller.recorded(message, seconds=23, sid="RE" + "a" * 32)
    assert saved.verbs == ["Say", "Hangup"]
    # Session 27: this test line places no calls (embedded, no Twilio endpoint), so the last
    # words promise no call-back; the SMS offers a text conversation instead.
    assert saved.spoken().startswith("Thank you for calling Peerline")

    with line.db.session() as session:
        request = session.scalars(select(CallbackRequest)).one()
        reference, url_enc = request.reference, request.recording_url_enc
        assert re.fullmatch(r"VM-\d{4}", reference)
        assert (request.status, request.recording_seconds) == ("open", 23)
        assert url_enc is not None and "api.twilio.com" not in url_enc  # encrypted at rest
        assert session.scalars(select(Alert.kind)).all() == ["voicemail"]
    # Nobody on shift: the on-call supporter hears of it, by reference and never by number.
    (notice,) = texts_to(line, lines.SAM)
    assert notice.startswith(f"Peerline voicemail {reference} from ")
    assert "cannot place calls, so no #call" in notice  # session 27: no calls placed here
    assert lines.TEXTER[-7:] not in re.sub(r"\D", "", notice)
    assert "api.twilio.com" not in notice
    # The caller is offered a text conversation, in the SMS.
    (offer,) = texts_to(line, lines.TEXTER)
    assert "reply YES to text with a peer" in offer
    assert len(offer) <= 306

    # The recording's own status callback, and a retried action, act no more.
    assert caller.recording_status(message, "RE" + "a" * 32, seconds=23).status_code == 204
    assert str(caller.recorded(message, seconds=23, sid="RE" + "a" * 32)) == str(saved)
    # Nor does a retried request from before the recording: it hears where the call is now.
    assert caller.dial_in().spoken().startswith("Thank you. Your message is saved")
    assert len(texts_to(line, lines.SAM)) == 1 and len(texts_to(line, lines.TEXTER)) == 1
    caller.status("completed", 61)
    call = the_call(line, caller)
    assert (call.state, call.outcome, call.duration_seconds) == ("ended", "voicemail", 61)


def test_recording_status_may_arrive_before_the_action(line: LineServices, tmp_path: Path) -> None:
    closed = voice_line(tmp_path / "closed", closed_line_file())
    phone = Phone(closed, voice_app(closed))
    caller = phone.call(lines.TEXTER)
    message = ringing(caller)
    assert caller.recording_status(message, "RE" + "b" * 32).status_code == 204
    caller.recorded(message, sid="RE" + "b" * 32)
    with closed.db.session() as session:
        (request,) = session.scalars(select(CallbackRequest)).all()
        assert request.recording_sid == "RE" + "b" * 32
    assert len(texts_to(closed, lines.SAM)) == 1


def test_silence_leaves_no_voicemail(tmp_path: Path) -> None:
    line = voice_line(tmp_path, closed_line_file())
    phone = Phone(line, voice_app(line))
    caller = phone.call(lines.TEXTER)
    message = ringing(caller)
    assert caller.recording_status(message, "RE" + "c" * 32, status="absent", seconds=0)
    caller.status("completed", 30)
    with line.db.session() as session:
        assert session.scalars(select(CallbackRequest)).all() == []
        # Nothing recorded: a missed call for the coordinators, and no text to the caller.
        assert session.scalars(select(Call.outcome)).one() == "missed"
        assert session.scalars(select(Alert.kind)).all() == ["missed_call"]
    assert outbox(line) == []


@pytest.mark.parametrize("shown_as", ["anonymous", "+266696687", "Restricted", ""])
def test_a_withheld_number_cannot_leave_a_voicemail(tmp_path: Path, shown_as: str) -> None:
    line = voice_line(tmp_path, closed_line_file())
    phone = Phone(line, voice_app(line))
    caller = phone.call(None)
    menu = phone.check(phone.post("/webhooks/voice", caller.params(From=shown_as)))
    message = caller.press(menu, "1")
    assert "Record" not in message.verbs
    assert "Your number is hidden" in message.spoken()
    assert message.verbs[-1] == "Hangup"


def test_no_shifts_at_all(tmp_path: Path) -> None:
    line = voice_line(tmp_path, lines.NEVER_OPEN)
    phone = Phone(line, voice_app(line))
    message = ringing(phone.call(lines.TEXTER))
    assert message.spoken().startswith("Our peer supporters are not on shift right now.")
    assert "opens" not in message.spoken()
    assert "Record" in message.verbs


def test_an_opted_out_caller_leaves_a_voicemail_but_gets_no_text(tmp_path: Path) -> None:
    line = voice_line(tmp_path, closed_line_file())
    phone = Phone(line, voice_app(line))
    phone.hooks.sms(lines.TEXTER, "STOP")
    caller = phone.call(lines.TEXTER)
    caller.recorded(ringing(caller))
    assert texts_to(line, lines.TEXTER) == []
    assert len(texts_to(line, lines.SAM)) == 1
    with line.db.session() as session:
        assert session.scalars(select(Contact.opted_out)).one() is True


def test_voicemail_notice_goes_to_supporters_on_shift(line: LineServices, phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    message = unanswered(caller, "no-answer")
    caller.recorded(message)
    assert len(texts_to(line, lines.SAM)) == 1 and len(texts_to(line, lines.RIA)) == 1


def test_only_coordinators_read_the_recording_url(tmp_path: Path) -> None:
    line = voice_line(tmp_path, closed_line_file())
    phone = Phone(line, voice_app(line))
    caller = phone.call(lines.TEXTER)
    caller.recorded(ringing(caller), sid="RE" + "d" * 32)
    with line.db.session() as session:
        request_id = session.scalars(select(CallbackRequest.id)).one()
        url = calls.recording_url_for_coordinator(line, session, request_id, "coord@example.org")
    assert url is not None and url.endswith("RE" + "d" * 32)
    with line.db.session() as session:
        (event,) = session.scalars(select(AuditEvent)).all()
        assert (event.actor, event.action) == ("coord@example.org", "voicemail.listen")
        bodies = [line.vault.decrypt(m.body_enc) for m in session.scalars(select(OutboundMessage))]
    assert all("Recordings" not in body for body in bodies)


def test_blocked_numbers_hear_where_to_turn_and_nothing_else(tmp_path: Path) -> None:
    line = voice_line(tmp_path)
    phone = Phone(line, voice_app(line))
    with line.db.session() as session:
        session.add(Block(phone_hash=line.vault.lookup_hash(lines.TEXTER), created_by="test"))
    twiml = phone.call(lines.TEXTER).dial_in()
    assert twiml.verbs == ["Say", "Hangup"]
    assert "9 8 8" in twiml.spoken()


# -- status callbacks and bad input ------------------------------------------------------


def test_status_callbacks_never_go_backwards(line: LineServices, phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    ring = ringing(caller)
    leg = caller.legs(ring)[0]
    assert leg.status("completed", 40).status_code == 204
    assert leg.status("ringing").status_code == 204  # late
    assert leg.status("completed", 40).status_code == 204  # twice
    assert caller.status("completed", 50).status_code == 204
    assert caller.status("in-progress").status_code == 204
    call = the_call(line, caller)
    assert (call.status, call.duration_seconds) == ("completed", 50)
    statuses = {x.leg_sid: x.status for x in call.legs}
    assert statuses[leg.sid] == "completed"


def test_status_for_an_unknown_call_is_accepted_and_ignored(phone: Phone) -> None:
    assert phone.call(lines.TEXTER).status("completed", 3).status_code == 204


def test_unsigned_or_tampered_requests_are_refused(phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    params = caller.params()
    assert phone.hooks.post("/webhooks/voice", params, signed=False).status_code == 403
    assert phone.hooks.post("/webhooks/voice/status", params, signed=False).status_code == 403
    caller.dial_in()
    forged = phone.hooks.client.post(
        "/webhooks/voice/call/1/menu/en",
        data={**params, "Digits": "1"},
        headers={"X-Twilio-Signature": "bm90IGl0"},
    )
    assert forged.status_code == 403


@pytest.mark.parametrize(
    ("path", "drop", "extra", "reason"),
    [
        ("/webhooks/voice", "CallSid", {}, "CallSid is required"),
        ("/webhooks/voice", "From", {}, "From is required"),
        ("/webhooks/voice/status", "", {"CallStatus": "sleeping"}, "not a Twilio call status"),
        ("/webhooks/voice/status", "", {"CallDuration": "ten"}, "whole number of seconds"),
        ("/webhooks/voice/status", "CallStatus", {}, "CallStatus is required"),
        ("/webhooks/voice/call/1/dial/1", "", {}, "DialCallStatus is required"),
        ("/webhooks/voice/call/99/menu/en", "", {"Digits": "1"}, "is not call 99"),
        ("/webhooks/voice/call/1/menu/fr", "", {"Digits": "1"}, "not a language of the line"),
        ("/webhooks/voice/leg/99/whisper", "", {}, "no leg 99"),
    ],
)
def test_bad_input_gets_400_with_a_reason(
    phone: Phone, path: str, drop: str, extra: dict[str, str], reason: str
) -> None:
    caller = phone.call(lines.TEXTER)
    caller.dial_in()
    params = {k: v for k, v in caller.params(**extra).items() if k != drop}
    response = phone.hooks.post(path, params)
    assert response.status_code == 400
    assert reason in response.get_json()["reason"]


def test_a_webhook_about_another_call_is_refused(phone: Phone) -> None:
    first, second = phone.call(lines.TEXTER), phone.call(lines.TEXTER_2)
    first.dial_in()
    second.dial_in()
    response = phone.hooks.post("/webhooks/voice/call/1/menu/en", second.params(Digits="1"))
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("voice_strategy", "shout", "must be ring_all or sequential"),
        ("voice_ring_seconds", "2", "between 5 and 600"),
        ("voice_crisis_number", "call 988", "not a number to dial"),
        ("voice_voicemail_seconds", "lots", "not a whole number"),
    ],
)
def test_voice_settings_are_checked_strictly(
    line: LineServices, key: str, value: str, reason: str
) -> None:
    line.settings = line.settings.with_changes(extra={key: value})
    with pytest.raises(SettingsError, match=reason):
        calls.voice_settings(line)


def test_every_sms_the_voice_line_sends_fits_two_segments() -> None:
    prompts = calls.Prompts.load()
    gsm = set(
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    )
    params = {
        "reference": "VM-123456",
        "alias": "K77",
        "seconds": 120,
        "language": "Spanish",
        "name": "Samantha-Louise",
        "groups": "",
        "words": "",
    }
    for language in prompts.languages():
        for key in prompts.texts[language]:
            if key.startswith("sms_"):
                text = prompts.text(language, key, **params)
                assert set(text) <= gsm, (language, key)
                assert len(text) <= 306, (language, key)


def test_voicemail_references_never_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = voice_line(tmp_path, closed_line_file())
    phone = Phone(line, voice_app(line))
    draws = iter([4821, 4821, 4821, 1234])
    # Only the references' draws: aliases draw from `secrets` too, and may collide on their own.
    monkeypatch.setattr(voicemail, "secrets", SimpleNamespace(randbelow=lambda _n: next(draws)))
    for number in (lines.TEXTER, lines.TEXTER_2):
        caller = phone.call(number)
        caller.recorded(ringing(caller))
    with line.db.session() as session:
        references = session.scalars(select(CallbackRequest.reference)).all()
    assert sorted(references) == ["VM-1234", "VM-4821"]


def test_a_leg_we_never_heard_the_end_of_stops_counting_after_hours(
    line: LineServices, phone: Phone
) -> None:
    ringing(phone.call(lines.TEXTER))
    assert len(on_calls(line)) == 2
    with line.db.session() as session:
        later = utcnow() + calls.STALE_AFTER + timedelta(minutes=1)
        assert calls.supporters_on_calls(session, later) == set()


def test_a_call_back_is_only_queued_when_its_transaction_commits(line: LineServices) -> None:
    queue = Queue(QUEUE_NAME, connection=line.redis)
    with pytest.raises(RuntimeError), transaction(line) as rt:
        rt.after_commit.calls.append(41)
        raise RuntimeError("the flow failed after asking for a call")
    assert queue.job_ids == []
    with transaction(line) as rt:
        rt.after_commit.calls.append(42)
        assert queue.job_ids == []  # not before the commit
    assert queue.job_ids == ["place-call-42"]


@pytest.mark.parametrize(
    ("digits", "speech", "expected"),
    [
        ("1", "", "peer"),
        ("3", "peer", "crisis"),  # keys win over words
        ("", "I'd like to talk to someone", "peer"),
        ("", "group meetings", "groups"),
        ("", "this is an emergency, I need help", "crisis"),
        ("", "Español", "es"),
        ("", "en inglés por favor", "en"),
        ("", "can you say that again", "repeat"),
        ("", "banana", None),
        ("5", "", None),
    ],
)
def test_menu_choices_from_keys_and_words(digits: str, speech: str, expected: str | None) -> None:
    assert calls.parse_choice(digits, speech) == expected


@pytest.mark.servers
def test_call_journey_and_voicemail_on_postgresql(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    env = {"DATABASE_URL": postgres_server.create_database()}
    line = voice_line(tmp_path, env=env)
    assert line.db.is_postgres
    try:
        phone = Phone(line, voice_app(line))
        caller = phone.call(lines.TEXTER)
        ring = ringing(caller)
        sam, ria = sorted(caller.legs(ring), key=lambda leg: leg.to != lines.SAM)
        sam_whisper, ria_whisper = sam.answer(), ria.answer()
        assert ria.press(ria_whisper, "1").verbs == []
        assert "Another peer" in sam.press(sam_whisper, "1").spoken()
        ria.status("completed", 200)
        caller.dial_ends(ring, "completed", 200)
        caller.status("completed", 230)
        call = the_call(line, caller)
        assert (call.outcome, call.supporter_id, call.talk_seconds) == (
            "connected",
            supporter_id(line, "Ria"),
            200,
        )

        second = phone.call(lines.TEXTER_2)
        ring = ringing(second)
        for leg in second.legs(ring):
            leg.status("no-answer")
        second.recorded(second.dial_ends(ring, "no-answer"))
        with line.db.session() as session:
            assert session.scalars(select(CallbackRequest.status)).one() == "open"
        assert on_calls(line) == set()
    finally:
        line.db.engine.dispose()
