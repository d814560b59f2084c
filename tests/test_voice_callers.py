"""The voice line under real callers (issue 17), on PostgreSQL and Redis servers.

Every test drives the line as Twilio does: signed webhooks, each TwiML answer parsed and its
URLs followed, and only the requests Twilio would send (no status callback unless said).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select, update

from peerline.app import create_app
from peerline.service import calls
from peerline.service.models import ACTIVE, Conversation, SafetyEvent, Supporter, utcnow
from peerline.service.segments import count
from peerline.service.services import LineServices
from peerline.service.settings import SettingsError
from peerline.service.voice.models import (
    BRIDGING,
    CALLBACK,
    CALLING_SUPPORTER,
    Call,
    CallbackRequest,
    CallLeg,
)
from tests.support import lines
from tests.support.chat import run_jobs, texts_to
from tests.support.line import make_settings
from tests.support.seed import add_contact
from tests.support.servers import PostgresServer, RedisServer
from tests.support.voice import (
    TORONTO,
    Phone,
    Twiml,
    alerts,
    closed_line_file,
    supporter_command,
    the_call,
    voice_app,
    voice_line,
)

pytestmark = pytest.mark.servers

LINE_NUMBER = "+15550100000"
# Twilio's text-to-speech reads about two and a half words a second.
WORDS_PER_SECOND = 2.5
# The goal: a person within 15 seconds when a supporter answers within 5.
RING_SECONDS = 5.0


class Lines:
    """Make lines on the PostgreSQL and Redis servers, and close them after the test."""

    def __init__(self, tmp_path: Path, postgres: PostgresServer, redis: Redis) -> None:
        self.tmp_path, self.postgres, self.redis = tmp_path, postgres, redis
        self.made: list[LineServices] = []

    def __call__(
        self, line_file: str = lines.TWO_ON, env: dict[str, str] | None = None, **extra: Any
    ) -> Phone:
        """Return Twilio's side of a new line."""
        env = {"DATABASE_URL": self.postgres.create_database(), **(env or {})}
        where = self.tmp_path / uuid.uuid4().hex[:8]
        line = voice_line(where, line_file, env=env, redis=self.redis, **extra)
        assert line.db.is_postgres
        self.made.append(line)
        return Phone(line, voice_app(line))


@pytest.fixture
def make(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Lines]:
    """Return a maker of lines on the servers, Redis emptied first."""
    redis = Redis.from_url(redis_server.url)
    redis.flushall()
    maker = Lines(tmp_path, postgres_server, redis)
    yield maker
    for line in maker.made:
        line.db.engine.dispose()
    redis.close()


@pytest.fixture
def phone(make: Lines) -> Phone:
    """Return a line where Sam (English) and Ria (Spanish and English) are always on shift."""
    return make()


def on_calls(line: LineServices) -> set[int]:
    """Return who counts as on a call now."""
    with line.db.session() as session:
        return calls.supporters_on_calls(session)


def sid_of(line: LineServices, name: str) -> int:
    """Return a supporter's id by name."""
    with line.db.session() as session:
        return session.scalars(select(Supporter.id).where(Supporter.name == name)).one()


def numbers(twiml: Twiml) -> list[str]:
    """Return the numbers a <Dial> rings."""
    return sorted((n.text or "") for n in twiml.all("Number"))


def start_chat(phone: Phone, texter: str = lines.TEXTER) -> str:
    """Have a texter start an SMS chat; return the number of the supporter who took it."""
    phone.hooks.sms(texter, "yes")
    run_jobs(phone.line)
    offered = next(
        n for n in (lines.SAM, lines.RIA) if "#take" in " ".join(texts_to(phone.line, n))
    )
    phone.hooks.sms(offered, "#take")
    run_jobs(phone.line)
    return offered


# -- 1. crisis words on a call -------------------------------------------------------------

CRISIS_WORDS = "I have no one to talk to and I want to end my life"


def test_crisis_words_at_a_closed_line_get_crisis_help_an_alert_and_a_marked_voicemail(
    make: Lines,
) -> None:
    phone = make(closed_line_file())
    line = phone.line
    assert line.crisis.detect(CRISIS_WORDS).matched
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), CRISIS_WORDS)
    # The crisis line at once, before anything about shifts or messages.
    assert offer.verbs == ["Gather", "Redirect"]
    assert "call 9 1 1" in offer.spoken() and "9 8 8 crisis line now, press 3" in offer.spoken()
    assert "not on shift" not in offer.spoken()
    # The on-call coordinator (Sam) is alerted.
    (alert_text,) = texts_to(line, lines.SAM)
    assert alert_text.startswith("Peerline safety alert:") and "phone call" in alert_text
    assert alerts(line) == ["crisis"]
    # Staying on: nobody on shift, so a message; it reaches supporters marked as a crisis.
    message = caller.stay_silent(offer)
    assert "Record" in message.verbs
    caller.recorded(message, seconds=20)
    with line.db.session() as session:
        request = session.scalars(select(CallbackRequest)).one()
        assert request.crisis is not None
        assert session.scalars(select(SafetyEvent.category)).all() == ["voice_menu"]
    sent = texts_to(line, lines.SAM)
    assert any(t.startswith(f"CRISIS: voicemail {request.reference} from ") for t in sent)
    assert "crisis_voicemail" in alerts(line)


def test_spanish_crisis_words_get_the_crisis_offer_in_spanish(phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), "no tengo a nadie y quiero quitarme la vida")
    assert offer.one("Gather").attrib["language"] == "es-US"
    assert "línea de crisis 9 8 8, oprima 3" in offer.spoken()
    ring = caller.stay_silent(offer)
    assert numbers(ring) == [lines.RIA]  # Spanish speakers first, a crisis or not
    (ria,) = caller.legs(ring)
    assert ria.answer().spoken() == "Peerline, Spanish caller. They may be in crisis. Press 1."


def test_a_crisis_caller_can_take_the_crisis_line_at_once(phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), "I want to kill myself")
    transfer = caller.press(offer, "3")
    assert transfer.one("Number").text == "+18002738255"
    assert the_call(phone.line, caller).outcome == "crisis_transfer"


def test_a_crisis_call_goes_to_the_front_of_the_ring_and_the_whisper_says_so(make: Lines) -> None:
    # One at a time for ordinary calls, and Ria in an SMS chat: neither holds a crisis call.
    phone = make(voice_strategy="sequential")
    line = phone.line
    start_chat(phone, lines.TEXTER_2)
    plain = phone.call(lines.TEXTER)
    assert len(plain.press(plain.dial_in(), "1").all("Number")) == 1
    plain.status("completed", 9)

    caller = phone.call(lines.TEXTER)
    ring = caller.stay_silent(caller.speak(caller.dial_in(), CRISIS_WORDS))
    assert numbers(ring) == sorted([lines.SAM, lines.RIA])  # everyone free, at once
    whisper = caller.legs(ring)[0].answer()
    assert whisper.spoken() == "Peerline call. They may be in crisis. Press 1."
    assert "crisis" in alerts(line)


@pytest.mark.parametrize(
    ("speech", "expected"),
    [
        ("I'm not in crisis, I just want to talk", "peer"),
        ("no es una emergencia, quiero hablar con alguien", "es"),  # Spanish: switch
        ("I don't want groups, I want to talk to someone", "peer"),
        ("crisis line please", "crisis"),
        ("I need someone, this is an emergency", "crisis"),
        ("hablar", "es"),
    ],
)
def test_menu_words_understand_negation(speech: str, expected: str) -> None:
    assert calls.parse_choice("", speech, "en") == expected
    if expected == "es":
        assert calls.parse_choice("", speech, "es") == "peer"


def test_not_in_crisis_is_put_through_to_a_peer_and_crisis_words_are_not(phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    ring = caller.speak(caller.dial_in(), "I'm not in crisis, I just want to talk")
    assert ring.verbs == ["Dial"]  # a peer, not the crisis line
    other = phone.call(lines.TEXTER_2)
    offer = other.speak(other.dial_in(), CRISIS_WORDS)
    assert "press 3" in offer.spoken()  # not the plain connecting prompt


# -- 2. a hang-up while the phones ring ---------------------------------------------------


@pytest.mark.parametrize("dial_status", ["no-answer", "canceled"])
def test_a_hang_up_while_ringing_frees_everyone_without_a_status_callback(
    phone: Phone, dial_status: str
) -> None:
    line = phone.line
    caller = phone.call(lines.TEXTER)
    ring = caller.press(caller.dial_in(), "1")
    assert on_calls(line) == {sid_of(line, "Sam"), sid_of(line, "Ria")}
    # A texter who asks meanwhile waits: everyone is being rung.
    phone.hooks.sms(lines.TEXTER_2, "yes")
    run_jobs(line)
    assert not any("#take" in t for t in texts_to(line, lines.SAM) + texts_to(line, lines.RIA))
    # The caller hangs up: Twilio posts the <Dial> action first, with CallStatus completed,
    # and (no status URL set) nothing after it.
    answer = caller.dial_ends(ring, dial_status, CallStatus="completed")
    assert answer.verbs == ["Hangup"]  # no second round rung for nobody
    assert on_calls(line) == set()
    call = the_call(line, caller)
    assert (call.state, call.outcome, call.status) == (
        "ended",
        "hung_up_while_ringing",
        "completed",
    )
    assert call.round == 1 and all(leg.ended_at for leg in call.legs)
    # The waiting texter is offered to a supporter now, and the next caller is rung.
    run_jobs(line)
    offered = [n for n in (lines.SAM, lines.RIA) if any("#take" in t for t in texts_to(line, n))]
    assert offered
    # Whoever takes the chat, the other is free again (an offer made to both alongside, which
    # matching may do when both became free at once, ends with the take): the next caller is
    # rung.
    phone.hooks.sms(offered[0], "#take")
    run_jobs(line)
    nxt = phone.call("+14165550177")
    assert nxt.press(nxt.dial_in(), "1").verbs == ["Dial"]


def test_a_caller_hanging_up_after_talking_is_ended_by_the_dial_action(phone: Phone) -> None:
    line = phone.line
    caller = phone.call(lines.TEXTER)
    ring = caller.press(caller.dial_in(), "1")
    sam, ria = sorted(caller.legs(ring), key=lambda leg: leg.to != lines.SAM)
    sam.press(sam.answer(), "1")
    ria.status("canceled")
    ended = caller.dial_ends(ring, "completed", 300, CallStatus="completed")
    assert ended.verbs == ["Hangup"]
    call = the_call(line, caller)
    assert (call.state, call.outcome, call.talk_seconds) == ("ended", "connected", 300)
    assert on_calls(line) == set()


def test_every_caller_step_reads_call_status(phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    gone = phone.check(
        phone.post(
            menu.one("Gather").attrib["action"], caller.params(CallStatus="completed", Digits="1")
        )
    )
    assert gone.verbs == ["Hangup"]
    call = the_call(phone.line, caller)
    assert (call.state, call.outcome) == ("ended", "hung_up_in_menu")
    assert call.legs == []


# -- 3. Spanish callers --------------------------------------------------------------------


def test_pressing_8_gives_the_spanish_greeting_and_spanish_speakers_ring_first(
    phone: Phone,
) -> None:
    caller = phone.call(lines.TEXTER)
    first = caller.dial_in()
    says = first.one("Gather").findall("Say")
    assert says[1].attrib["language"] == "es-US"  # right after the line's name
    spanish = caller.press(first, "8")
    assert spanish.one("Gather").attrib["language"] == "es-US"
    assert "¿Peligro? Llame al 9 1 1." in spanish.spoken()
    ring = caller.press(spanish, "1")
    assert numbers(ring) == [lines.RIA]  # Sam is free too, but speaks no Spanish
    (ria,) = caller.legs(ring)
    assert ria.answer().spoken() == "Peerline, Spanish caller. Press 1."


def test_english_only_supporters_ring_for_spanish_only_when_no_speaker_is_free(
    phone: Phone,
) -> None:
    line = phone.line
    with line.db.session() as session:
        session.execute(update(Supporter).where(Supporter.name == "Ria").values(away=True))
    caller = phone.call(lines.TEXTER)
    ring = caller.press(caller.press(caller.dial_in(), "8"), "1")
    assert numbers(ring) == [lines.SAM]
    (sam,) = caller.legs(ring)
    assert "No Spanish speaker is free." in sam.answer().spoken()


def test_hablar_at_the_english_menu_switches_to_spanish_and_rings(phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    # Asked in Spanish, acted on as the Spanish menu would (session 27): no menu to answer again,
    # only the 911 line in Spanish (the greeting said it in English), then the ringing.
    ring = caller.speak(caller.dial_in(), "quiero hablar")
    assert ring.verbs == ["Gather", "Dial"]
    assert ring.spoken() == "¿Peligro? Llame al 9 1 1."
    assert [n.text for n in ring.all("Number")] == [lines.RIA]
    assert the_call(phone.line, caller).language == "es"


# -- 4. a person within seconds ------------------------------------------------------------


def words(text: str) -> int:
    """Return how many words text-to-speech reads ("9 1 1" is three)."""
    return len(re.findall(r"\w+", text))


def seconds_until(twiml: Twiml, key_phrase: str) -> float:
    """Return the time a <Gather>'s words take up to the end of the one naming a key."""
    said = 0
    for say in twiml.one("Gather").findall("Say"):
        text = say.text or ""
        if key_phrase in text:
            said += words(text[: text.index(key_phrase) + len(key_phrase)])
            return said / WORDS_PER_SECOND
        said += words(text)
    raise AssertionError(f"{key_phrase!r} never said")


def seconds_before_ringing(twiml: Twiml) -> float:
    """Return what a ring answer says before its <Dial>, and any wait a <Gather> adds."""
    total = 0.0
    for child in twiml.root:
        if child.tag == "Dial":
            return total
        total += sum(words(s.text or "") for s in child.iter("Say")) / WORDS_PER_SECOND
        if child.tag == "Gather":
            total += float(child.attrib.get("timeout", "5"))
    raise AssertionError("no <Dial>")


def time_to_a_person(phone: Phone, spanish: bool) -> dict[str, float]:
    """Follow one call to a supporter's "hello", timing each part from its TwiML."""
    caller = phone.call(lines.TEXTER)
    menu = caller.dial_in()
    parts: dict[str, float] = {}
    if spanish:
        parts["menu"] = seconds_until(menu, "oprima 8")
        menu = caller.press(menu, "8")
        parts["menu"] += seconds_until(menu, "oprima 1")
    else:
        parts["menu"] = seconds_until(menu, "press 1")
    ring = caller.press(menu, "1")
    parts["before ringing"] = seconds_before_ringing(ring)
    parts["ring"] = RING_SECONDS
    leg = caller.legs(ring)[0]
    whisper = leg.answer()
    parts["whisper"] = seconds_until(whisper, "Press 1")
    bridged = leg.press(whisper, "1")
    parts["bridge"] = words(bridged.spoken()) / WORDS_PER_SECOND
    parts["total"] = sum(parts.values())
    caller.status("completed", 60)
    return parts


def test_time_to_a_person_is_under_15_seconds_in_english_and_spanish(phone: Phone) -> None:
    english = time_to_a_person(phone, spanish=False)
    spanish = time_to_a_person(phone, spanish=True)
    print("\ntime to a person (s)     menu  before-ring  ring  whisper  bridge  total")
    for name, parts in (("English", english), ("Spanish", spanish)):
        print(
            f"{name:<24} {parts['menu']:>5.1f} {parts['before ringing']:>12.1f} "
            f"{parts['ring']:>5.1f} {parts['whisper']:>8.1f} {parts['bridge']:>7.1f} "
            f"{parts['total']:>6.1f}"
        )
    assert english["total"] < 15
    assert spanish["total"] < 15
    assert english["before ringing"] == spanish["before ringing"] == 0


def test_every_prompt_before_a_person_can_be_cut_short_by_a_key(phone: Phone) -> None:
    line = phone.line
    caller = phone.call(lines.TEXTER)
    first = caller.press(caller.dial_in(), "1")
    (sam, ria) = caller.legs(first)
    for leg in (sam, ria):
        leg.status("no-answer")
    second = caller.dial_ends(first, "no-answer")
    # Nobody answered: the voicemail prompt sits in a <Gather>; a key goes straight to the beep.
    assert second.verbs[0] == "Gather" and "Record" in second.verbs
    beep = caller.press(second, "5")
    assert beep.verbs[0] == "Record" and "Gather" not in beep.verbs
    # Every <Say> a caller hears before a person is inside a <Gather>.
    crisis = phone.call(lines.TEXTER_2)
    offer = crisis.speak(crisis.dial_in(), CRISIS_WORDS)
    for twiml in (crisis.dial_in(), offer, second):
        # Everything said comes first, inside the <Gather>, before the step's own verb.
        assert twiml.verbs[0] == "Gather" and twiml.verbs[1] != "Say"
    assert the_call(line, caller).state == "voicemail"


# -- 5. no loops, no dead ends -------------------------------------------------------------


@pytest.mark.parametrize("keys", [("7", "0"), ("*", "*"), ("0", "7")])
def test_two_wrong_keys_connect_to_a_peer(phone: Phone, keys: tuple[str, str]) -> None:
    caller = phone.call(lines.TEXTER)
    once = caller.press(caller.dial_in(), keys[0])
    assert once.spoken().startswith("Sorry, that is not one of the choices.")
    assert "press 1" in once.spoken()  # the options once more
    twice = caller.press(once, keys[1])
    assert "Dial" in twice.verbs
    assert "Connecting you with a peer supporter now." in twice.spoken()


def test_a_caller_who_hangs_up_before_the_beep_is_a_missed_call(make: Lines) -> None:
    phone = make(closed_line_file())
    caller = phone.call(lines.TEXTER)
    message = caller.press(caller.dial_in(), "1")
    assert "Record" in message.verbs
    caller.status("completed", 12)  # gone before the beep
    call = the_call(phone.line, caller)
    assert (call.state, call.outcome) == ("ended", "missed")
    assert alerts(phone.line) == ["missed_call"]
    assert texts_to(phone.line, lines.TEXTER) == []  # not set to text: no text


def test_a_missed_call_is_texted_when_the_line_says_so_and_found_without_a_status_url(
    make: Lines,
) -> None:
    phone = make(closed_line_file(), voice_missed_call_text="true")
    caller = phone.call(lines.TEXTER)
    caller.press(caller.dial_in(), "1")
    # No status callback ever comes: the sweep finds the call later.
    calls.catch_up(phone.line, utcnow() + timedelta(minutes=30))
    call = the_call(phone.line, caller)
    assert (call.state, call.outcome) == ("ended", "missed")
    (text,) = texts_to(phone.line, lines.TEXTER)
    assert text.startswith("Peerline: we missed your call.")


def test_the_closed_prompt_says_the_date_when_the_opening_is_over_six_days_away(
    make: Lines,
) -> None:
    today = utcnow().astimezone(TORONTO).date()
    back = today + timedelta(days=9)
    line_file = closed_line_file().replace(
        (today + timedelta(days=2)).isoformat(), (back - timedelta(days=1)).isoformat()
    )
    phone = make(line_file)
    caller = phone.call(lines.TEXTER)
    spoken = caller.press(caller.dial_in(), "1").spoken()
    # The opening is at midnight: named by the night it ends (session 28).
    eve = back - timedelta(days=1)
    night = f"{eve.strftime('%A')}, {eve.strftime('%B')} {eve.day}"
    assert f"opens on the night of {night}, at midnight" in spoken, spoken


# -- 6. rules that hold on texts hold on calls ---------------------------------------------


def test_the_shift_cap_stops_call_rings_too(make: Lines) -> None:
    phone = make(env={"PEERLINE_SHIFT_CHAT_CAP": "1"})
    line = phone.line
    with line.db.session() as session:
        contact = add_contact(session, line.vault, lines.TEXTER_2, "Q1")
        session.add(
            Conversation(
                contact_id=contact.id,
                supporter_id=sid_of(line, "Sam"),
                state="closed",
                language="en",
                matched_at=utcnow() - timedelta(minutes=5),
            )
        )
    caller = phone.call(lines.TEXTER)
    assert numbers(caller.press(caller.dial_in(), "1")) == [lines.RIA]


def test_the_supporter_texting_with_a_caller_is_told_and_rung_first(phone: Phone) -> None:
    line = phone.line
    supporter = start_chat(phone)
    other = lines.RIA if supporter == lines.SAM else lines.SAM
    caller = phone.call(lines.TEXTER)
    ring = caller.press(caller.dial_in(), "1")
    assert numbers(ring) == [supporter]
    told = texts_to(line, supporter)[-1]
    assert "who you are texting with, is calling the line" in told
    (leg,) = caller.legs(ring)
    leg.status("no-answer")
    assert numbers(caller.dial_ends(ring, "no-answer")) == [other]


def test_a_voicemail_another_supporter_already_called_back_is_refused_naming_them(
    make: Lines,
) -> None:
    phone = make(closed_line_file().replace("supporters:", SUPPORTERS, 1))
    line = phone.line
    caller = phone.call(lines.TEXTER)
    caller.recorded(caller.press(caller.dial_in(), "1"))
    with line.db.session() as session:
        request = session.scalars(select(CallbackRequest)).one()
        request.status, request.supporter_id = "done", sid_of(line, "Sam")
        request.completed_at = utcnow()
        reference = request.reference
    supporter_command(line, "Ria", reference)
    # Ria speaks Spanish first: she reads it in Spanish (issue 21).
    assert texts_to(line, lines.RIA)[-1] == f"Sam ya devolvio la llamada {reference}. Esta hecha."
    with line.db.session() as session:
        assert session.scalars(select(Call).where(Call.direction == CALLBACK)).all() == []


SUPPORTERS = f"""supporters:
  - name: Ria
    phone: "{lines.RIA}"
    languages: [es, en]"""


# -- 7. masked call-backs that close the loop ----------------------------------------------


def callback_in(line: LineServices, state: str, sid: str, *, chat: bool = True) -> int:
    """Store a call-back from Sam's chat with the texter, as #call leaves it; return its id."""
    with line.db.session() as session:
        sam = session.scalars(select(Supporter).where(Supporter.name == "Sam")).one()
        contact = add_contact(session, line.vault, lines.TEXTER, "K77")
        conversation = Conversation(
            contact_id=contact.id,
            supporter_id=sam.id,
            state=ACTIVE,
            language="es",
            matched_at=utcnow(),
        )
        session.add(conversation)
        session.flush()
        call = Call(
            call_sid=sid,
            direction=CALLBACK,
            contact_id=contact.id,
            conversation_id=conversation.id if chat else None,
            supporter_id=sam.id,
            language="es",
            state=state,
        )
        session.add(call)
        session.flush()
        return call.id


def post(phone: Phone, path: str, **fields: str) -> Any:
    """Post fields Twilio sends about a call-back to a voice path."""
    params = {
        "AccountSid": phone.line.settings.twilio_account_sid,
        "From": LINE_NUMBER,
        "To": lines.SAM,
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
        **fields,
    }
    return phone.post(f"/webhooks/voice{path}", params)


def test_a_call_back_answered_by_voicemail_is_not_done_and_the_texter_is_told(phone: Phone) -> None:
    line = phone.line
    sid = "CA" + uuid.uuid4().hex
    call_id = callback_in(line, CALLING_SUPPORTER, sid)
    bridge = phone.check(post(phone, f"/callback/{call_id}/connect", CallSid=sid, Digits="1"))
    number = bridge.one("Number")
    assert number.attrib["machineDetection"] == "Enable"
    screen = number.attrib["url"]
    leg = "CA" + uuid.uuid4().hex
    hung = phone.check(
        phone.post(
            screen,
            {
                "CallSid": leg,
                "ParentCallSid": sid,
                "AccountSid": line.settings.twilio_account_sid,
                "AnsweredBy": "machine_end_beep",
                "CallStatus": "in-progress",
            },
        )
    )
    assert hung.verbs == ["Hangup"]
    done = phone.check(
        post(phone, f"/callback/{call_id}/done", CallSid=sid, DialCallStatus="completed")
    )
    assert "voicemail answered" in done.spoken()
    with line.db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None and (call.outcome, call.answered_by) == (
            "machine",
            "machine_end_beep",
        )
    (told,) = texts_to(line, lines.TEXTER)
    assert told.startswith("Lo siento, la llamada de Sam no se pudo completar.")


def test_a_person_answering_a_call_back_is_bridged(phone: Phone) -> None:
    sid = "CA" + uuid.uuid4().hex
    call_id = callback_in(phone.line, BRIDGING, sid)
    fields = {"CallSid": "CA" + uuid.uuid4().hex, "ParentCallSid": sid, "AnsweredBy": "human"}
    assert phone.check(post(phone, f"/callback/{call_id}/screen", **fields)).verbs == []


def test_the_texter_is_told_when_the_supporter_does_not_press_1(phone: Phone) -> None:
    line = phone.line
    sid = "CA" + uuid.uuid4().hex
    call_id = callback_in(line, CALLING_SUPPORTER, sid)
    declined = phone.check(post(phone, f"/callback/{call_id}/connect", CallSid=sid, Digits="7"))
    assert declined.verbs[-1] == "Hangup"
    post(phone, f"/callback/{call_id}/status", CallSid=sid, CallStatus="completed")
    post(phone, f"/callback/{call_id}/status", CallSid=sid, CallStatus="completed")  # again
    (told,) = texts_to(line, lines.TEXTER)
    assert "no se pudo completar" in told and len(told) <= 306


def test_voicemails_are_transcribed_checked_for_crisis_and_summarised_by_reference(
    make: Lines,
) -> None:
    phone = make(closed_line_file())
    line = phone.line
    caller = phone.call(lines.TEXTER)
    message = caller.press(caller.dial_in(), "1")
    record = message.one("Record")
    assert record.attrib["transcribe"] == "true"
    recording = "RE" + "e" * 32
    caller.recorded(message, sid=recording)
    with line.db.session() as session:
        reference = session.scalars(select(CallbackRequest.reference)).one()
    assert texts_to(line, lines.SAM)[-1].startswith(f"Peerline voicemail {reference}")
    words = "Hi it's me. I want to kill myself tonight and I don't know who else to call. " * 3
    assert caller.transcribed(message, recording, words).status_code == 204
    # Twilio sends it again: summarised once only.
    assert caller.transcribed(message, recording, words).status_code == 204
    summary = texts_to(line, lines.SAM)[-1]
    assert summary.startswith(f"CRISIS: voicemail {reference} from ")
    assert "\"Hi it's me. I want to kill myself" in summary
    assert "api.twilio.com" not in summary and "Recordings" not in summary
    assert count(summary) <= 2
    safety_alerts = [t for t in texts_to(line, lines.SAM) if t.startswith("Peerline safety alert")]
    assert len(safety_alerts) == 1
    with line.db.session() as session:
        request = session.scalars(select(CallbackRequest)).one()
        assert request.crisis is not None and request.transcript_enc is not None
        assert "kill" not in request.transcript_enc  # encrypted at rest
    assert "crisis_voicemail" in alerts(line)


# -- 8. a crisis number that works ---------------------------------------------------------


def test_the_crisis_transfer_dials_a_full_number_from_the_line(make: Lines) -> None:
    phone = make(voice_crisis_number="1 (833) 456-4566")
    caller = phone.call(lines.TEXTER)
    transfer = caller.press(caller.dial_in(), "3")
    dial = transfer.one("Dial")
    assert dial.attrib["callerId"] == LINE_NUMBER
    assert [n.text for n in dial.findall("Number")] == ["+18334564566"]
    assert "9 8 8 crisis line" in phone.call(lines.TEXTER_2).dial_in().spoken()  # what is said


@pytest.mark.parametrize(
    ("region", "value", "expected"),
    [
        ("US", None, "+18002738255"),
        ("CA", None, "+18002738255"),
        ("US", "988", "not a full phone number"),
        ("US", "1 (833) 456-4566", "+18334564566"),
        ("GB", None, "no default crisis line for region 'GB'"),
        ("GB", "+44 800 689 5652", "+448006895652"),
    ],
)
def test_the_crisis_number_is_chosen_by_country_and_checked_at_start_up(
    tmp_path: Path, region: str, value: str | None, expected: str
) -> None:
    env = {"PEERLINE_DEFAULT_REGION": region}
    if value is not None:
        env["PEERLINE_CRISIS_LINE_NUMBER"] = value
    settings = make_settings(tmp_path, **env)
    if expected.startswith("+"):
        assert calls.VoiceSettings.from_settings(settings).crisis_number == expected
    else:
        with pytest.raises(SettingsError, match=re.escape(expected)):
            create_app(settings=settings, redis=Redis())  # refused at start-up


def test_legs_rung_for_a_crisis_call_are_recorded(phone: Phone) -> None:
    caller = phone.call(lines.TEXTER)
    caller.stay_silent(caller.speak(caller.dial_in(), CRISIS_WORDS))
    with phone.line.db.session() as session:
        assert len(session.scalars(select(CallLeg)).all()) == 2
        assert session.scalars(select(Call.crisis)).one() is not None


@pytest.mark.parametrize(
    ("path", "fields", "reason"),
    [
        ("/webhooks/voice/call/1/menu/en", {"CallStatus": "asleep"}, "not a Twilio call status"),
        ("/webhooks/voice/call/1/transcription", {}, "TranscriptionStatus is required"),
        ("/webhooks/voice/callback/1/screen", {"AnsweredBy": "human"}, "ParentCallSid"),
        ("/webhooks/voice/call/1/now", {"CallSid": "CA" + "0" * 32}, "is not call 1"),
    ],
)
def test_new_voice_steps_answer_bad_input_with_400(
    phone: Phone, path: str, fields: dict[str, str], reason: str
) -> None:
    caller = phone.call(lines.TEXTER)
    caller.dial_in()
    response = phone.post(path, {**caller.params(), **fields})
    assert response.status_code == 400
    assert reason in response.get_json()["reason"]
