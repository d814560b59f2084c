"""The whole journey against real PostgreSQL and Redis, a real RQ worker process, and the
real twilio SDK sending to a local server that speaks Twilio's REST API."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select
from werkzeug.serving import make_server

from peerline.app import create_app
from peerline.service.line import Line
from peerline.service.models import Conversation, OutboundMessage
from peerline.service.settings import from_env
from tests import lines
from tests.conftest import load_line_file, make_line
from tests.fake_twilio import FakeTwilio, sign
from tests.servers import PostgresServer, RedisServer, free_port

pytestmark = pytest.mark.servers
LINE_NUMBER = "+15550100000"


@dataclass
class Deployment:
    """A line deployed as in production, on this machine."""

    line: Line
    twilio: FakeTwilio
    base_url: str
    worker_log: Path

    def sms(self, sender: str, body: str) -> int:
        """Post an inbound SMS webhook over HTTP, signed as Twilio signs it."""
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": self.twilio.account_sid,
            "From": sender,
            "To": LINE_NUMBER,
            "Body": body,
            "NumMedia": "0",
        }
        url = self.base_url + "/webhooks/sms"
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-Twilio-Signature": sign(url, params, self.twilio.auth_token)},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)

    def bodies_to(self, number: str) -> list[str]:
        """Return the texts the local Twilio received for a number, in order."""
        return [m["body"] for m in self.twilio.messages_to(number)]

    def wait_for_text(self, number: str, pattern: str, timeout: float = 15.0) -> str:
        """Wait until a text matching a pattern reaches a number, and return it."""

        def arrived(messages: list[dict[str, Any]]) -> bool:
            return any(m["to"] == number and re.search(pattern, m["body"] or "") for m in messages)

        self.twilio.wait_for(arrived, timeout, f"a text to {number} matching {pattern!r}")
        return next(b for b in reversed(self.bodies_to(number)) if re.search(pattern, b))


@pytest.fixture
def deployment(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Deployment]:
    """Start the web app over HTTP and a worker process, wired to real servers."""
    Redis.from_url(redis_server.url).flushall()
    port = free_port()
    twilio = FakeTwilio().start()
    env = {
        "DATABASE_URL": postgres_server.create_database(),
        "REDIS_URL": redis_server.url,
        "SECRET_KEY": "integration-secret",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_PHONE_NUMBER": LINE_NUMBER,
        "TWILIO_API_BASE_URL": twilio.base_url,
        "PEERLINE_INSTANCE": str(tmp_path),
    }
    settings = from_env(env)
    line = make_line(settings, Redis.from_url(redis_server.url))
    load_line_file(line, lines.ALWAYS_OPEN)
    server = make_server("127.0.0.1", port, create_app(line=line), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    worker_log = tmp_path / "worker.log"
    with worker_log.open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "peerline", "worker"],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Deployment(line, twilio, env["PUBLIC_BASE_URL"], worker_log)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        server.shutdown()
        thread.join(timeout=5)
        twilio.stop()
        line.db.engine.dispose()
        assert twilio.server_errors == []


def test_whole_journey_on_real_servers(deployment: Deployment) -> None:
    d = deployment
    assert d.sms(lines.TEXTER, "hello") == 200
    d.wait_for_text(lines.TEXTER, "not counsellors or a crisis service")

    d.sms(lines.TEXTER, "YES")
    d.wait_for_text(lines.TEXTER, "number 1 in line")
    offer = d.wait_for_text(lines.SAM, r"#take within 2 min")
    alias = offer.split()[0]

    d.sms(lines.SAM, "#take")
    d.wait_for_text(lines.TEXTER, "connected with Sam")
    d.wait_for_text(lines.SAM, f"You are now chatting with {alias}")

    d.sms(lines.TEXTER, "it has been a hard day")
    d.wait_for_text(lines.SAM, f"^{alias}: it has been a hard day$")
    d.sms(lines.SAM, "I'm here. Want to tell me about it?")
    d.wait_for_text(lines.TEXTER, r"^Sam: I'm here\. Want to tell me about it\?$")

    d.sms(lines.TEXTER, "BYE")
    d.wait_for_text(lines.TEXTER, "from 1 .* to 5")
    d.wait_for_text(lines.SAM, f"{alias} has ended the chat")
    d.sms(lines.TEXTER, "4")
    d.wait_for_text(lines.TEXTER, "Thank you. You can text this number again")

    # Every message left from the line number, once each, and reached its person in order.
    messages = d.twilio.messages
    assert {m["from"] for m in messages} == {LINE_NUMBER}
    to_texter = d.bodies_to(lines.TEXTER)
    assert [b.split(".")[0] for b in to_texter][:2] == [
        "Peerline: free, anonymous peer support by text, from people with lived experience",
        "Thanks",
    ]
    assert len(to_texter) == len(set(to_texter))
    # No message to a supporter carries the texter's number, in any format.
    texter_digits = lines.TEXTER.lstrip("+")
    for body in d.bodies_to(lines.SAM):
        digits = re.sub(r"\D", "", body)
        assert texter_digits[-7:] not in digits and texter_digits[-4:] not in digits

    with d.line.db.session() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.state, conversation.rating) == ("closed", 4)
    # Status callbacks, signed by the local Twilio, carried every message to delivered.
    d.twilio.drain()

    def statuses() -> set[str]:
        with d.line.db.session() as session:
            return set(session.scalars(select(OutboundMessage.status)))

    deadline = time.monotonic() + 10
    while statuses() != {"delivered"} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert statuses() == {"delivered"}, d.worker_log.read_text()[-3000:]
