"""Helpers for the voice tests: calls driven by signed webhooks, every TwiML answer checked.

Twilio's side of a call is played here by hand, request by request, with the fields Twilio
sends; each answer is parsed with xml.etree and checked for structure before a test looks
at it: known verbs only, and every URL absolute, on PUBLIC_BASE_URL, under /webhooks/voice/,
posted to, and routed by the app.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fakeredis import FakeRedis
from flask import Flask
from redis import Redis
from sqlalchemy import select
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.test import TestResponse

from peerline import console
from peerline.app import create_app
from peerline.service import calls
from peerline.service.models import (
    ACTIVE,
    Alert,
    Base,
    Contact,
    Conversation,
    SafetyEvent,
    Supporter,
    utcnow,
)
from peerline.service.runtime import Runtime
from peerline.service.services import LineServices
from peerline.service.voice.models import Call
from peerline.webhooks import voice
from tests.support import lines
from tests.support.chat import texts_to
from tests.support.line import Webhooks, load_line_file, make_line, make_settings

VOICE = "/webhooks/voice"
TORONTO = ZoneInfo("America/Toronto")
VERBS = frozenset(
    {"Response", "Say", "Gather", "Dial", "Number", "Record", "Redirect", "Hangup", "Pause"}
)
URL_ATTRIBUTES = {
    "action": "method",
    "url": "method",
    "statusCallback": "statusCallbackMethod",
    "recordingStatusCallback": "recordingStatusCallbackMethod",
}

# The crisis line a crisis transfer dials on a US or Canadian line that names none (988).
CRISIS_NUMBER = "+18002738255"
# The language of each menu's <Say> and speech recognition.
SPEECH_LANGUAGE = {"en": "en-US", "es": "es-US"}
# What a caller says of their own crisis, and of someone else's, by language.
CRISIS_WORDS = {
    "en": "I have no one to talk to and I want to end my life",
    "es": "no tengo a nadie y quiero quitarme la vida",
}
WORRIED_WORDS = {"en": "my friend wants to kill herself", "es": "mi amiga se quiere matar"}
# How each offer starts, by language.
OFFER_STARTS = {
    "crisis": {"en": "It sounds like things are really hard", "es": "Parece que las cosas"},
    "worried": {"en": "Worried about someone?", "es": "¿Le preocupa alguien?"},
    # An attempt under way (session 28): 911 now and Poison Control first.
    "attempt": {"en": "If you have taken pills or poison", "es": "Si tomó pastillas o veneno"},
    "failed": {
        "en": "We could not connect you to the crisis line.",
        "es": "No pudimos conectarle con la línea de crisis.",
    },
}
# The line's other language.
OTHER = {"en": "es", "es": "en"}


def voice_line(
    tmp_path: Path,
    line_file: str = lines.TWO_ON,
    *,
    env: dict[str, str] | None = None,
    redis: Redis | None = None,
    **extra: Any,
) -> LineServices:
    """Return a migrated line with the voice tables, a line file loaded and voice settings."""
    settings = make_settings(tmp_path, **(env or {})).with_changes(extra=extra)
    line = make_line(settings, redis if redis is not None else FakeRedis())
    # The lead's migration will create these; until then create_all adds only what is missing.
    Base.metadata.create_all(line.db.engine)
    load_line_file(line, line_file)
    return line


@contextmanager
def phone_on_servers(
    tmp_path: Path, database_url: str, redis_url: str, line_file: str = lines.TWO_ON
) -> Iterator[Phone]:
    """Yield Twilio's side of a line on real PostgreSQL and Redis (emptied first)."""
    redis = Redis.from_url(redis_url)
    redis.flushall()
    line = voice_line(tmp_path, line_file, env={"DATABASE_URL": database_url}, redis=redis)
    try:
        yield Phone(line, voice_app(line))
    finally:
        line.db.engine.dispose()
        redis.close()


def voice_app(line: LineServices) -> Flask:
    """Return the web app for a line with the voice blueprint registered."""
    app = create_app(line=line)
    if "voice" not in app.blueprints:
        app.register_blueprint(voice.bp)
        # Registered after the console bound CSRF protection: exempt it as create_app does
        # for the webhooks it registers itself (Twilio signs these requests instead).
        csrf = getattr(console, "csrf", None)
        if csrf is not None:
            csrf.exempt(voice.bp)
    return app


def phone_for(
    tmp_path: Path, line_file: str = lines.ON_CALL, *, env: dict[str, str] | None = None
) -> Phone:
    """Return Twilio's side of a line (Sam and Ria on shift, Ria on call and the one who speaks
    Spanish, by default)."""
    line = voice_line(tmp_path, line_file, env=env)
    return Phone(line, voice_app(line))


def closed_line_file() -> str:
    """Return a line file where Sam is on time off today and the next two days (on call)."""
    today = utcnow().astimezone(TORONTO).date()
    back = today + timedelta(days=3)
    return f"""\
timezone: America/Toronto
supporters:
  - name: Sam
    phone: "{lines.SAM}"
    on_call: true
    shifts:
      - {{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "24:00"}}
    time_off:
      - {{from: "{today.isoformat()}", to: "{(back - timedelta(days=1)).isoformat()}"}}
"""


def call_fields(
    sid: str, account_sid: str, direction: str, extra: dict[str, str], **who: str
) -> dict[str, str]:
    """Return the fields Twilio posts about a call in progress, `extra` overriding them."""
    return {
        "CallSid": sid,
        "AccountSid": account_sid,
        **who,
        "CallStatus": "in-progress",
        "Direction": direction,
        "ApiVersion": "2010-04-01",
        **extra,
    }


class Twiml:
    """A parsed TwiML answer that passed the structural checks."""

    def __init__(self, root: ET.Element) -> None:
        self.root = root

    @property
    def verbs(self) -> list[str]:
        """Return the top-level verbs, in order."""
        return [child.tag for child in self.root]

    def spoken(self) -> str:
        """Return every <Say>, joined."""
        return " ".join((say.text or "") for say in self.root.iter("Say"))

    def one(self, tag: str) -> ET.Element:
        """Return the only element with a tag."""
        found = list(self.root.iter(tag))
        assert len(found) == 1, f"expected one <{tag}>, found {len(found)}: {self}"
        return found[0]

    def all(self, tag: str) -> list[ET.Element]:
        """Return every element with a tag."""
        return list(self.root.iter(tag))

    def __str__(self) -> str:
        return ET.tostring(self.root, encoding="unicode")


class Phone:
    """Play Twilio's side of calls to the line: post what Twilio posts, check what comes back."""

    def __init__(self, line: LineServices, app: Flask) -> None:
        self.line = line
        self.app = app
        self.hooks = Webhooks(app.test_client(), line.settings)
        self.base = line.settings.public_base_url

    def path_of(self, url: str) -> str:
        """Return the path of a voice URL, checking it is one Twilio can call and sign."""
        assert url.startswith(self.base + VOICE + "/"), f"{url} is not a voice step URL"
        path = url[len(self.base) :]
        adapter = self.app.url_map.bind("localhost")
        try:
            adapter.match(path, method="POST")
        except (NotFound, MethodNotAllowed) as exc:
            raise AssertionError(f"no POST route for {url}") from exc
        return path

    def check(self, response: TestResponse) -> Twiml:
        """Parse a TwiML answer and check its structure."""
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/xml"
        root = ET.fromstring(response.get_data())
        assert root.tag == "Response"
        for element in root.iter():
            assert element.tag in VERBS, f"unexpected <{element.tag}>"
            for name, method in URL_ATTRIBUTES.items():
                if name in element.attrib:
                    self.path_of(element.attrib[name])
                    assert element.attrib.get(method) == "POST", f"{name} of <{element.tag}>"
            if element.tag == "Redirect":
                self.path_of(element.text or "")
                assert element.attrib.get("method") == "POST"
            if element.tag == "Say":
                assert element.attrib.get("voice") and element.attrib.get("language")
                assert (element.text or "").strip()
        return Twiml(root)

    def post(self, url_or_path: str, params: dict[str, str]) -> TestResponse:
        """Post signed form fields to a voice URL (absolute) or path."""
        path = self.path_of(url_or_path) if url_or_path.startswith("http") else url_or_path
        return self.hooks.post(path, params)

    def call(self, caller: str | None, sid: str | None = None) -> Caller:
        """Return a caller about to dial the line."""
        return Caller(self, caller, sid)


class Caller:
    """One inbound call, as Twilio reports it."""

    def __init__(self, phone: Phone, number: str | None, sid: str | None = None) -> None:
        self.phone = phone
        self.number = number
        self.sid = sid or "CA" + uuid.uuid4().hex

    def params(self, **extra: str) -> dict[str, str]:
        """Return the fields Twilio sends with every request about this call."""
        settings = self.phone.line.settings
        caller = self.number or "anonymous"
        line_number = settings.twilio_phone_number
        return call_fields(
            self.sid,
            settings.twilio_account_sid,
            "inbound",
            extra,
            From=caller,
            Caller=caller,
            To=line_number,
            Called=line_number,
        )

    def dial_in(self) -> Twiml:
        """Ring the line: Twilio's first request for the call."""
        return self.phone.check(self.phone.post(VOICE, self.params(CallStatus="ringing")))

    def press(self, twiml: Twiml, digits: str) -> Twiml:
        """Press keys at the <Gather> of an answer."""
        gather = twiml.one("Gather")
        return self.phone.check(
            self.phone.post(gather.attrib["action"], self.params(Digits=digits))
        )

    def speak(self, twiml: Twiml, words: str) -> Twiml:
        """Say words at the <Gather> of an answer."""
        gather = twiml.one("Gather")
        assert "speech" in gather.attrib["input"]
        params = self.params(SpeechResult=words, Confidence="0.9")
        return self.phone.check(self.phone.post(gather.attrib["action"], params))

    def stay_silent(self, twiml: Twiml) -> Twiml:
        """Let the <Gather> time out, so Twilio follows the <Redirect> after it."""
        redirect = twiml.one("Redirect")
        return self.phone.check(self.phone.post(redirect.text or "", self.params()))

    def dial_ends(
        self, twiml: Twiml, status: str, seconds: int | None = None, **extra: str
    ) -> Twiml:
        """Report the end of the <Dial> in an answer, as its action request."""
        dial = twiml.one("Dial")
        params = self.params(DialCallStatus=status, **extra)
        if seconds is not None:
            params["DialCallDuration"] = str(seconds)
        return self.phone.check(self.phone.post(dial.attrib["action"], params))

    def recorded(self, twiml: Twiml, seconds: int = 14, sid: str | None = None) -> Twiml:
        """Finish a <Record>, as its action request."""
        record = twiml.one("Record")
        recording_sid = sid or "RE" + uuid.uuid4().hex
        params = self.params(
            RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{recording_sid}",
            RecordingDuration=str(seconds),
            RecordingSid=recording_sid,
            Digits="#",
        )
        return self.phone.check(self.phone.post(record.attrib["action"], params))

    def recording_status(
        self, twiml: Twiml, recording_sid: str, status: str = "completed", seconds: int = 14
    ) -> TestResponse:
        """Send the <Record>'s recording status callback."""
        record = twiml.one("Record")
        params = {
            "AccountSid": self.phone.line.settings.twilio_account_sid,
            "CallSid": self.sid,
            "RecordingSid": recording_sid,
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{recording_sid}",
            "RecordingStatus": status,
            "RecordingDuration": str(seconds),
            "RecordingChannels": "1",
            "RecordingSource": "RecordVerb",
        }
        return self.phone.post(record.attrib["recordingStatusCallback"], params)

    def transcribed(self, twiml: Twiml, recording_sid: str, words: str) -> TestResponse:
        """Send the <Record>'s transcription callback: Twilio heard `words` in the recording."""
        record = twiml.one("Record")
        params = {
            "CallSid": self.sid,
            "AccountSid": self.phone.line.settings.twilio_account_sid,
            "RecordingSid": recording_sid,
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{recording_sid}",
            "TranscriptionSid": "TR" + "f" * 32,
            "TranscriptionStatus": "completed",
            "TranscriptionText": words,
        }
        return self.phone.post(record.attrib["transcribeCallback"], params)

    def status(self, status: str, seconds: int | None = None) -> TestResponse:
        """Send the call's status callback to /webhooks/voice/status."""
        params = self.params(CallStatus=status)
        if seconds is not None:
            params["CallDuration"] = str(seconds)
        return self.phone.post(VOICE + "/status", params)

    def legs(self, twiml: Twiml) -> list[Leg]:
        """Return the supporters' legs a <Dial> in an answer rings."""
        return [Leg(self, number) for number in twiml.all("Number")]


class Leg:
    """One supporter's phone rung by a <Dial><Number>, as Twilio reports it."""

    def __init__(self, caller: Caller, number: ET.Element) -> None:
        self.caller = caller
        self.phone = caller.phone
        self.to = (number.text or "").strip()
        self.whisper_url = number.attrib["url"]
        self.status_url = number.attrib["statusCallback"]
        self.sid = "CA" + uuid.uuid4().hex

    def params(self, **extra: str) -> dict[str, str]:
        """Return the fields Twilio sends about this child call."""
        settings = self.phone.line.settings
        return call_fields(
            self.sid,
            settings.twilio_account_sid,
            "outbound-dial",
            extra,
            ParentCallSid=self.caller.sid,
            From=settings.twilio_phone_number,
            To=self.to,
        )

    def status(self, status: str, seconds: int | None = None) -> TestResponse:
        """Send this leg's status callback."""
        params = self.params(CallStatus=status, CallbackSource="call-progress-events")
        if seconds is not None:
            params["CallDuration"] = str(seconds)
        return self.phone.post(self.status_url, params)

    def answer(self) -> Twiml:
        """Pick up: Twilio fetches the whisper for this leg."""
        return self.phone.check(self.phone.post(self.whisper_url, self.params()))

    def press(self, whisper: Twiml, digits: str) -> Twiml:
        """Press keys at the whisper."""
        gather = whisper.one("Gather")
        return self.phone.check(
            self.phone.post(gather.attrib["action"], self.params(Digits=digits))
        )


def supporter_command(line: LineServices, name: str, argument: str, in_chat: bool = False) -> None:
    """Carry out a supporter's #call as the SMS flow does: in one transaction, then dispatch."""
    with line.db.session() as session:
        runtime = Runtime(line, session)
        supporter = session.scalars(select(Supporter).where(Supporter.name == name)).one()
        chat = (
            session.scalars(
                select(Conversation).where(
                    Conversation.supporter_id == supporter.id, Conversation.state == ACTIVE
                )
            ).one()
            if in_chat
            else None
        )
        calls.call_command(runtime, supporter, chat, argument)
    runtime.after_commit.dispatch(line)


def the_call(line: LineServices, caller: Caller) -> Call:
    """Return the stored call, legs loaded."""
    with line.db.session() as session:
        call = session.scalars(select(Call).where(Call.call_sid == caller.sid)).one()
        _ = [leg.supporter_id for leg in call.legs]
        return call


def alerts(line: LineServices) -> list[str]:
    """Return the kinds of alerts raised, oldest first."""
    with line.db.session() as session:
        return list(session.scalars(select(Alert.kind).order_by(Alert.id)))


def alert_details(line: LineServices, kind: str) -> list[str]:
    """Return the details of the alerts of a kind, oldest first."""
    with line.db.session() as session:
        query = select(Alert.detail).where(Alert.kind == kind).order_by(Alert.id)
        return list(session.scalars(query))


def safety_events(line: LineServices) -> list[str]:
    """Return the safety events' categories, oldest first."""
    with line.db.session() as session:
        return list(session.scalars(select(SafetyEvent.category).order_by(SafetyEvent.id)))


def contact_alias(line: LineServices) -> str:
    """Return the alias of the line's only contact."""
    with line.db.session() as session:
        return session.scalars(select(Contact.alias)).one()


def is_transfer(twiml: Twiml) -> bool:
    """Say whether an answer puts the caller through to the crisis line."""
    return [n.text for n in twiml.all("Number")] == [CRISIS_NUMBER]


def menu_of(caller: Caller, language: str) -> Twiml:
    """Dial in, and choose Spanish (8) for the Spanish menu."""
    menu = caller.dial_in()
    return menu if language == "en" else caller.press(menu, "8")


def crisis_offer(caller: Caller, language: str) -> Twiml:
    """Say crisis words at the menu of a language: the crisis offer, in it."""
    return caller.speak(menu_of(caller, language), CRISIS_WORDS[language])


def offered_in(twiml: Twiml, call_id: int, language: str, kind: str = "crisis") -> None:
    """Check an answer is the crisis offer of a kind, in a language, waiting at its own step."""
    gather = twiml.one("Gather")
    assert gather.attrib["action"].endswith(f"/call/{call_id}/offer/{language}"), twiml
    assert gather.attrib["language"] == SPEECH_LANGUAGE[language]
    assert all(say.attrib["language"] == SPEECH_LANGUAGE[language] for say in twiml.all("Say"))
    assert twiml.spoken().startswith(OFFER_STARTS[kind][language]), twiml.spoken()
    # Staying on: /connect, or /connect/nobody after an offer that said nobody can answer.
    stay = twiml.one("Redirect").text or ""
    assert stay.endswith((f"/call/{call_id}/connect", f"/call/{call_id}/connect/nobody"))


def voicemail_summary(phone: Phone, words: str) -> str:
    """Leave a voicemail on a closed line, Twilio's transcript of it `words`; return the summary
    Sam, on call, is texted."""
    caller = phone.call(lines.TEXTER)
    message = caller.press(caller.dial_in(), "1")
    recording = "RE" + "e" * 32
    caller.recorded(message, sid=recording)
    assert caller.transcribed(message, recording, words).status_code == 204
    return texts_to(phone.line, lines.SAM)[-1]
