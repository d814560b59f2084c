"""A text joined to a relay after the sender read it, before it claimed it, goes out with it.

Found by the several-hosts test (tests/test_hosts.py): the sender read the relay's body,
waited for its slot, and sent what it had read, while another process joined the texter's
next text to the same (still pending) row: that text was never sent. With send lanes the
sender no longer sleeps for a slot, but the window between reading a text and claiming it
remains; the claim returns the body as it is then.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeredis import FakeRedis
from sqlalchemy import Connection, select

from peerline.app import create_app
from peerline.service import outbox
from peerline.service.models import OutboundMessage
from peerline.service.services import LineServices
from peerline.service.transport import SimulatorTransport
from tests.support import lines
from tests.support.chat import run_jobs
from tests.support.line import Webhooks, load_line_file, make_line, make_settings
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.servers


class Provider(SimulatorTransport):
    """The provider's end: what was handed over for sending, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send_sms(self, *, to: str, from_: str, body: str, status_callback: str | None) -> str:
        self.sent.append((to, body))
        return super().send_sms(to=to, from_=from_, body=body, status_callback=status_callback)


@pytest.fixture
def chat(
    tmp_path: Path, postgres_server: PostgresServer
) -> Iterator[tuple[LineServices, Webhooks, Provider, str]]:
    """A chat between the texter and Sam on a line that sends one segment a second."""
    settings = make_settings(
        tmp_path,
        DATABASE_URL=postgres_server.create_database(),
        PEERLINE_SEND_RATES="long_code=1,toll_free=1,short_code=1",
    )
    provider = Provider()
    line = make_line(settings, FakeRedis(), provider)
    line.limiter._sleep = lambda seconds: None  # the slots are honoured by the test's clock
    load_line_file(line, lines.ALWAYS_OPEN)
    hooks = Webhooks(create_app(line=line).test_client(), line.settings)
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    offer = next(body for to, body in provider.sent if to == lines.SAM and "#take" in body)
    hooks.sms(lines.SAM, "#take")
    run_jobs(line)
    yield line, hooks, provider, offer.split()[0]
    line.db.engine.dispose()


def _send_all(line: LineServices) -> None:
    """Send what is pending at one segment a second, as the sender loop would."""
    for _ in range(20):
        with line.db.session() as session:
            pending = list(
                session.scalars(
                    select(OutboundMessage.id).where(OutboundMessage.status == "pending")
                )
            )
        if not pending:
            return
        outbox.send_many(line, pending)
        time.sleep(1.05)
    raise AssertionError("texts still pending after 20 s")


def test_a_text_joined_before_the_claim_is_sent_with_the_relay(
    chat: tuple[LineServices, Webhooks, Provider, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    line, hooks, provider, alias = chat
    _send_all(line)
    time.sleep(1.5)  # the sender's last segment drains: the relay's slot is free at once
    hooks.sms(lines.TEXTER, "first")
    with line.db.session() as session:
        relay = session.scalars(
            select(OutboundMessage.id).where(
                OutboundMessage.purpose == "relay", OutboundMessage.status == "pending"
            )
        ).one()
    claims: list[int] = []
    claim = outbox._claim

    def meanwhile(connection: Connection, message_id: int, to_hash: str) -> str | None:
        # Between the sender's read and its claim, the texter's next text is stepped elsewhere.
        if not claims:
            hooks.sms(lines.TEXTER, "second")
        claims.append(message_id)
        return claim(connection, message_id, to_hash)

    monkeypatch.setattr(outbox, "_claim", meanwhile)
    outbox.send(line, relay)
    assert claims == [relay], "the relay was not claimed: the test shows nothing"
    to_sam = [body for to, body in provider.sent if to == lines.SAM]
    assert to_sam[-1] == f"{alias}: first\n{alias}: second"
    run_jobs(line)  # nothing of the second text is left to send
    assert [body for to, body in provider.sent if to == lines.SAM][-1] == to_sam[-1]
