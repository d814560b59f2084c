"""A text joined to a relay while that relay waits for its rate slot goes out with it.

Found by the several-hosts test (tests/test_hosts.py): the sender read the relay's body,
waited for its slot, and sent what it had read, while another process joined the texter's
next text to the same (still pending) row: that text was never sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeredis import FakeRedis
from sqlalchemy import select

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


def test_a_text_joined_during_the_rate_wait_is_sent_with_the_relay(
    chat: tuple[LineServices, Webhooks, Provider, str],
) -> None:
    line, hooks, provider, alias = chat
    hooks.sms(lines.TEXTER, "first")
    with line.db.session() as session:
        relay = session.scalars(
            select(OutboundMessage.id).where(
                OutboundMessage.purpose == "relay", OutboundMessage.status == "pending"
            )
        ).one()
    waited: list[float] = []

    def meanwhile(seconds: float) -> None:
        # While this sender waits for its slot, the texter's next text is stepped elsewhere.
        if not waited:
            hooks.sms(lines.TEXTER, "second")
        waited.append(seconds)

    line.limiter._sleep = meanwhile
    outbox.send(line, relay)
    assert waited, "the relay did not wait for a slot: the test shows nothing"
    to_sam = [body for to, body in provider.sent if to == lines.SAM]
    assert to_sam[-1] == f"{alias}: first\n{alias}: second"
    run_jobs(line)  # nothing of the second text is left to send
    assert [body for to, body in provider.sent if to == lines.SAM][-1] == to_sam[-1]
