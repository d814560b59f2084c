"""The whole journey against real PostgreSQL and Redis, a real RQ worker process, and the
real twilio SDK sending to a local server that speaks Twilio's REST API."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from peerline.service.models import Conversation, OutboundMessage
from tests.support import lines
from tests.support.deploy import LINE_NUMBER, Deployment, deployed, play_chat
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.servers


@pytest.fixture
def deployment(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Deployment]:
    """Deploy the line with one worker process."""
    with deployed(tmp_path, postgres_server, redis_server, lines.ALWAYS_OPEN) as d:
        d.start_worker()
        yield d


def test_whole_journey_on_real_servers(deployment: Deployment) -> None:
    d = deployment
    play_chat(d.sms, d.wait_for_text)  # hello to a rating of 4: every step's text awaited

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
    assert statuses() == {"delivered"}, d.worker_logs()
