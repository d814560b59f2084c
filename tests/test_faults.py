"""Faults that happen in production, injected into real servers: nothing is lost, nothing is
sent twice, and each person reads their messages in the order they were written."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from peerline.service import inbound
from peerline.service.models import OutboundMessage
from tests.support import lines
from tests.support.deploy import Deployment, deployed
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.servers
FAST = {
    "PEERLINE_SWEEP_STALE_SECONDS": "1",
    "PEERLINE_SEND_LOCK_SECONDS": "4",
    "PEERLINE_SEND_RETRY_SECONDS": "1,1,2,2,3",
}
WORKER = ("--sweep-every", "1")


@pytest.fixture
def d(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Deployment]:
    """Deploy the line with one fast-sweeping worker."""
    with deployed(tmp_path, postgres_server, redis_server, lines.ALWAYS_OPEN, **FAST) as line:
        line.start_worker(*WORKER)
        yield line


def into_chat(d: Deployment) -> str:
    """Bring the texter into a chat with Sam; return the texter's alias."""
    d.sms(lines.TEXTER, "yes")
    offer = d.wait_for_text(lines.SAM, "#take within")
    d.sms(lines.SAM, "#take")
    d.wait_for_text(lines.TEXTER, "connected with Sam")
    return offer.split()[0]


def relayed(d: Deployment, to: str, prefix: str) -> list[str]:
    """Return the relayed texts a number received, in order, that start with a prefix (a
    texter's texts still waiting to go to their supporter are sent together, one a line)."""
    return [b for b in "\n".join(d.bodies_to(to)).split("\n") if b.startswith(prefix)]


def test_redis_stopped_mid_conversation(d: Deployment, redis_server: RedisServer) -> None:
    alias = into_chat(d)
    redis_server.stop()
    try:
        for n in range(3):
            started = time.monotonic()
            assert d.sms(lines.TEXTER, f"texter says {n}") == 200
            assert time.monotonic() - started < 5  # Twilio gives up after 15 s
        for n in range(2):
            assert d.sms(lines.SAM, f"sam says {n}") == 200
    finally:
        redis_server.start()
    d.wait_for_text(lines.SAM, "texter says 2$", timeout=30)
    d.wait_for_text(lines.TEXTER, "sam says 1$", timeout=30)
    time.sleep(1.5)  # room for a duplicate to show itself
    assert relayed(d, lines.SAM, f"{alias}: texter says") == [
        f"{alias}: texter says {n}" for n in range(3)
    ]
    assert relayed(d, lines.TEXTER, "Sam: sam says") == [f"Sam: sam says {n}" for n in range(2)]


def test_worker_killed_mid_send(d: Deployment) -> None:
    into_chat(d)
    d.twilio.delay_next(2.5)  # the next API call hangs, then Twilio accepts it anyway
    d.sms(lines.SAM, "are you still there?")
    time.sleep(1.0)  # the worker is now inside the API call
    d.kill_workers()

    def state() -> str:
        with d.line.db.session() as session:
            return (
                session.scalars(
                    select(OutboundMessage.status).order_by(OutboundMessage.id.desc())
                ).first()
                or ""
            )

    assert state() == "sending"
    d.start_worker(*WORKER)
    d.wait_until(lambda: state() in ("sent", "delivered"), 30, "the reconciled message")
    d.sms(lines.SAM, "and after the crash")
    d.wait_for_text(lines.TEXTER, "and after the crash$")
    time.sleep(1.5)
    assert relayed(d, lines.TEXTER, "Sam:") == [
        "Sam: are you still there?",
        "Sam: and after the crash",
    ]


def test_api_fails_with_500_then_429_then_succeeds(d: Deployment) -> None:
    into_chat(d)
    d.twilio.fail_next(500)
    d.twilio.fail_next(429)
    d.sms(lines.SAM, "first")
    d.sms(lines.SAM, "second")
    d.wait_for_text(lines.TEXTER, "second$", timeout=30)
    time.sleep(1.5)
    assert relayed(d, lines.TEXTER, "Sam:") == ["Sam: first", "Sam: second"]
    posts = [
        r["status"]
        for r in d.twilio.requests
        # Both may go joined in one SMS, each on its own line (issue 19): the first leads.
        if r["method"] == "POST" and r["params"].get("Body", [""])[0].startswith("Sam: first")
    ]
    assert posts[:2] == [500, 429] and posts[-1] == 201


def test_database_stopped_while_webhooks_arrive(
    d: Deployment, postgres_server: PostgresServer
) -> None:
    alias = into_chat(d)
    retried = "SM" + uuid.uuid4().hex
    postgres_server.stop()
    try:
        assert d.sms(lines.TEXTER, "while the database is down 1") == 200
        assert (
            d.sms(lines.TEXTER, "while the database is down 2", path="/webhooks/sms/fallback")
            == 200
        )
        # Twilio retries (or calls the fallback URL) with the same MessageSid.
        assert d.sms(lines.TEXTER, "while the database is down 3", sid=retried) == 200
        assert d.sms(lines.TEXTER, "while the database is down 3", sid=retried) == 200
        # The texts wait in Redis, encrypted, for the database; none is stepped twice.
        assert d.line.inbound.size() == 4
        shard = inbound.shard_of(lines.TEXTER)
        kept = d.line.redis.lrange(inbound.InboundQueue.keys(shard)[0], 0, -1)
        assert not any(b"while the database" in entry for entry in kept)
        time.sleep(4)  # drains try again meanwhile, and keep what they could not step
        assert d.line.inbound.size() == 4
    finally:
        postgres_server.start()
    d.wait_for_text(lines.SAM, "down 3$", timeout=30)
    time.sleep(1.5)
    assert relayed(d, lines.SAM, f"{alias}: while") == [
        f"{alias}: while the database is down {n}" for n in (1, 2, 3)
    ]
    assert d.line.inbound.size() == 0
    assert d.line.spool.size() == 0  # status callbacks that came meanwhile were replayed
