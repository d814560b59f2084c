"""Masked call-backs (#call): the real twilio SDK places the call against the local Twilio
REST server, which posts signed status callbacks to the app served over HTTP."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fakeredis import FakeRedis
from rq import Queue
from sqlalchemy import select, update
from werkzeug.serving import make_server

from peerline.service import calls
from peerline.service.job_queue import QUEUE_NAME
from peerline.service.models import Alert, Supporter, utcnow
from peerline.service.runtime import Runtime
from peerline.service.services import LineServices
from peerline.service.voice.models import Call, CallbackRequest
from tests.support import lines
from tests.support.chat import run_jobs, texts_to
from tests.support.fake_twilio import FakeTwilio
from tests.support.servers import free_port
from tests.support.voice import (
    Caller,
    Phone,
    Twiml,
    call_fields,
    closed_line_file,
    supporter_command,
    voice_app,
    voice_line,
)

LINE_NUMBER = "+15550100000"


@dataclass
class Deployment:
    """A line served over HTTP, talking to the local Twilio REST server."""

    line: LineServices
    twilio: FakeTwilio
    phone: Phone
    base_url: str


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """Serve Twilio's REST API locally."""
    fake = FakeTwilio(auto_status=False).start()
    yield fake
    fake.stop()
    assert fake.server_errors == []


def deploy(tmp_path: Path, twilio: FakeTwilio, line_file: str) -> Iterator[Deployment]:
    """Start the app over HTTP with Twilio credentials pointing at the local server."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**twilio.env(LINE_NUMBER), "PUBLIC_BASE_URL": base_url}
    line = voice_line(tmp_path, line_file, env=env, redis=FakeRedis())
    app = voice_app(line)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Deployment(line, twilio, Phone(line, app), base_url)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        line.db.engine.dispose()


@pytest.fixture
def closed(tmp_path: Path, twilio: FakeTwilio) -> Iterator[Deployment]:
    """Return a deployment where nobody is on shift and Sam is on call."""
    yield from deploy(tmp_path, twilio, closed_line_file())


@pytest.fixture
def open_line(tmp_path: Path, twilio: FakeTwilio) -> Iterator[Deployment]:
    """Return a deployment where Sam and Ria are always on shift."""
    yield from deploy(tmp_path, twilio, lines.TWO_ON)


def leave_voicemail(d: Deployment) -> tuple[Caller, str]:
    """Call the closed line, leave a voicemail, and return the caller and its reference."""
    caller = d.phone.call(lines.TEXTER)
    message = caller.press(caller.dial_in(), "1")
    caller.recorded(message, seconds=31)
    caller.status("completed", 58)
    with d.line.db.session() as session:
        return caller, session.scalars(select(CallbackRequest.reference)).one()


class Outbound:
    """Twilio's side of the call-back the line placed: the requests it makes to our URLs."""

    def __init__(self, d: Deployment, record: dict[str, object]) -> None:
        self.d = d
        self.sid = str(record["sid"])
        self.params = d.twilio.message_params(self.sid)

    def fields(self, **extra: str) -> dict[str, str]:
        """Return what Twilio sends about this outbound call."""
        return call_fields(
            self.sid,
            self.d.twilio.account_sid,
            "outbound-api",
            extra,
            From=LINE_NUMBER,
            To=self.params["To"][0],
        )

    def answered(self) -> Twiml:
        """The supporter picks up: Twilio fetches the call's Url."""
        return self.d.phone.check(self.d.phone.post(self.params["Url"][0], self.fields()))

    def press(self, twiml: Twiml, digits: str) -> Twiml:
        """The supporter presses keys at a <Gather>."""
        action = twiml.one("Gather").attrib["action"]
        return self.d.phone.check(self.d.phone.post(action, self.fields(Digits=digits)))

    def dial_ends(self, twiml: Twiml, status: str, seconds: int | None = None) -> Twiml:
        """The bridged <Dial> ends."""
        fields = self.fields(DialCallStatus=status)
        if seconds is not None:
            fields["DialCallDuration"] = str(seconds)
        action = twiml.one("Dial").attrib["action"]
        return self.d.phone.check(self.d.phone.post(action, fields))


def test_voicemail_call_back_journey(closed: Deployment) -> None:
    d = closed
    caller, reference = leave_voicemail(d)
    digits = re.sub(r"\D", "", reference)
    supporter_command(d.line, "Sam", f" vm{digits}")  # typed loosely: "#call vm4821"
    assert texts_to(d.line, lines.SAM)[-1].startswith("Calling your phone now.")
    with d.line.db.session() as session:
        request = session.scalars(select(CallbackRequest)).one()
        assert (request.status, request.attempts) == ("calling", 1)

    run_jobs(d.line)  # places the call, and sends the texts, through the real SDK
    (placed,) = d.twilio.calls
    assert (placed["to"], placed["from"]) == (lines.SAM, LINE_NUMBER)
    outbound = Outbound(d, placed)
    assert outbound.params["Url"] == [f"{d.base_url}/webhooks/voice/callback/2/answer"]
    assert outbound.params["StatusCallback"] == [f"{d.base_url}/webhooks/voice/callback/2/status"]
    assert outbound.params["StatusCallbackEvent"] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]
    # A second run of the job (a retry, or the sweep) never rings Sam twice.
    assert calls.place_call(d.line, 2) is None
    assert len(d.twilio.calls) == 1

    assert d.twilio.send_call_status(outbound.sid, "ringing") == 204
    whisper = outbound.answered()
    assert whisper.verbs == ["Gather", "Hangup"]
    assert whisper.spoken().startswith("Peerline call-back to ")
    assert f"about voicemail {reference}" in whisper.spoken()
    bridge = outbound.press(whisper, "1")
    assert bridge.verbs == ["Say", "Dial"]
    dial = bridge.one("Dial")
    assert dial.attrib["callerId"] == LINE_NUMBER  # the caller sees the line, not Sam
    assert [n.text for n in dial.findall("Number")] == [lines.TEXTER]
    assert d.twilio.send_call_status(outbound.sid, "in-progress") == 204
    with d.line.db.session() as session:
        sam = session.scalars(select(Supporter.id).where(Supporter.name == "Sam")).one()
        assert calls.supporters_on_calls(session) == {sam}

    done = outbound.dial_ends(bridge, "completed", 95)
    assert done.verbs == ["Say", "Hangup"]
    assert d.twilio.send_call_status(outbound.sid, "completed", duration=110) == 204
    assert d.twilio.send_call_status(outbound.sid, "ringing") == 204  # late: changes nothing
    with d.line.db.session() as session:
        call = session.get(Call, 2)
        assert call is not None
        assert (call.direction, call.state, call.outcome) == ("callback", "ended", "connected")
        assert (call.talk_seconds, call.duration_seconds, call.status) == (95, 110, "completed")
        assert session.scalars(select(CallbackRequest.status)).one() == "done"
        assert calls.supporters_on_calls(session) == set()
        (alert,) = session.scalars(select(Alert)).all()
        assert (alert.kind, alert.resolved_by) == ("voicemail", "call-back by Sam")
    # Sam never saw the caller's number, in any text.
    for body in texts_to(d.line, lines.SAM):
        assert lines.TEXTER[-7:] not in re.sub(r"\D", "", body)
    assert d.twilio.callback_errors == []


def test_chat_call_back_when_the_supporter_does_not_answer(open_line: Deployment) -> None:
    d = open_line
    d.phone.hooks.sms(lines.TEXTER, "yes")
    run_jobs(d.line)
    offered = next(n for n in (lines.SAM, lines.RIA) if "#take" in " ".join(texts_to(d.line, n)))
    name = "Sam" if offered == lines.SAM else "Ria"
    d.phone.hooks.sms(offered, "#take")
    supporter_command(d.line, name, "", in_chat=True)
    assert texts_to(d.line, lines.TEXTER)[-1] == (
        f"{name} will call you from this number in a moment. Your numbers stay private."
    )
    run_jobs(d.line)
    (placed,) = d.twilio.calls
    assert placed["to"] == offered
    assert d.twilio.send_call_status(str(placed["sid"]), "no-answer") == 204
    assert texts_to(d.line, offered)[-1].startswith("The call to ")
    assert "your phone did not answer. Reply #call to try again." in texts_to(d.line, offered)[-1]
    with d.line.db.session() as session:
        call = session.scalars(select(Call)).one()
        assert (call.state, call.outcome) == ("ended", "supporter_no_answer")
        assert calls.supporters_on_calls(session) == set()


def test_a_refused_call_back_is_reported_and_reopened(closed: Deployment) -> None:
    d = closed
    _, reference = leave_voicemail(d)
    supporter_command(d.line, "Sam", reference)
    d.twilio.fail_next(400, 21215)
    assert calls.place_call(d.line, 2) is None
    assert texts_to(d.line, lines.SAM)[-1].startswith("Peerline could not place the call")
    with d.line.db.session() as session:
        call = session.get(Call, 2)
        assert call is not None
        assert (call.state, call.error_code) == ("failed", 21215)
        assert session.scalars(select(CallbackRequest.status)).one() == "open"
    # Reopened: #call works again.
    supporter_command(d.line, "Sam", reference)
    run_jobs(d.line)
    assert len(d.twilio.calls) == 1


def test_call_command_refusals(closed: Deployment) -> None:
    d = closed
    _, reference = leave_voicemail(d)
    supporter_command(d.line, "Sam", "VM-0000" if reference != "VM-0000" else "VM-0001")
    assert texts_to(d.line, lines.SAM)[-1].startswith("No voicemail VM-000")
    supporter_command(d.line, "Sam", "")
    assert texts_to(d.line, lines.SAM)[-1].startswith("Use #call in a chat")
    supporter_command(d.line, "Sam", reference)
    # While Sam is calling back, nobody else can, and Sam cannot start another call.
    with d.line.db.session() as session:
        session.execute(update(Supporter).values(on_call=True))
        session.add(
            Supporter(
                name="Ria",
                phone_hash=d.line.vault.lookup_hash(lines.RIA),
                phone_enc=d.line.vault.encrypt(lines.RIA),
            )
        )
    supporter_command(d.line, "Ria", reference)
    assert texts_to(d.line, lines.RIA)[-1] == f"{reference} is being called back by Sam right now."
    supporter_command(d.line, "Sam", reference)
    assert texts_to(d.line, lines.SAM)[-1].endswith("is being called back by Sam right now.")


def test_a_supporter_on_a_call_cannot_start_another(open_line: Deployment) -> None:
    d = open_line
    caller = d.phone.call(lines.TEXTER_2)
    ring = caller.press(caller.dial_in(), "1")
    assert len(ring.all("Number")) == 2
    with d.line.db.session() as session:
        session.add(
            CallbackRequest(
                reference="VM-4821", contact_id=_contact(d.line, lines.TEXTER), created_at=utcnow()
            )
        )
    supporter_command(d.line, "Sam", "VM-4821")
    assert (
        texts_to(d.line, lines.SAM)[-1]
        == "You are on a call already. Try #call again when it ends."
    )


def _contact(line: LineServices, number: str) -> int:
    with line.db.session() as session:
        runtime = Runtime(line, session)
        return runtime.contact_for(number).id


def test_no_calls_in_embedded_mode(tmp_path: Path) -> None:
    line = voice_line(tmp_path, closed_line_file())
    phone = Phone(line, voice_app(line))
    caller = phone.call(lines.TEXTER)
    caller.recorded(caller.press(caller.dial_in(), "1"))
    with line.db.session() as session:
        reference = session.scalars(select(CallbackRequest.reference)).one()
    supporter_command(line, "Sam", reference)
    # Session 27: the caller was texted to reply YES (no call-back promised), and Sam hears so.
    assert texts_to(line, lines.SAM)[-1].startswith("This line cannot place calls")
    with line.db.session() as session:
        assert session.scalars(select(Call.direction)).all() == ["inbound"]


def test_lost_placement_jobs_are_enqueued_again(closed: Deployment) -> None:
    d = closed
    _, reference = leave_voicemail(d)
    supporter_command(d.line, "Sam", reference)
    queue = Queue(QUEUE_NAME, connection=d.line.redis)
    queue.empty()  # Redis lost the job
    assert calls.catch_up(d.line) == 0  # too recent to call lost
    later = utcnow().replace(microsecond=0)
    assert calls.catch_up(d.line, later + timedelta(minutes=1)) == 1
    assert queue.job_ids == ["place-call-2"]
    run_jobs(d.line)
    assert len(d.twilio.calls) == 1


def test_a_call_back_whose_end_was_never_heard_does_not_block_the_voicemail(
    closed: Deployment,
) -> None:
    d = closed
    _, reference = leave_voicemail(d)
    supporter_command(d.line, "Sam", reference)
    run_jobs(d.line)
    # Twilio's callbacks for that call were lost: hours later it still says "calling".
    with d.line.db.session() as session:
        session.execute(
            update(Call)
            .where(Call.direction == "callback")
            .values(created_at=utcnow() - calls.STALE_AFTER - timedelta(minutes=5))
        )
    supporter_command(d.line, "Sam", reference)
    assert texts_to(d.line, lines.SAM)[-1].startswith("Calling your phone now.")
    run_jobs(d.line)
    assert len(d.twilio.calls) == 2
