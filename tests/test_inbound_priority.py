"""A crisis text is stepped ahead of other people's waiting texts, its sender's order kept."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from rq import Queue
from sqlalchemy import select

from peerline.service import inbound
from peerline.service.inbound import URGENT_KEY, InboundQueue, shard_of
from peerline.service.job_queue import INBOUND_QUEUE_NAME
from peerline.service.models import InboundMessage, OutboundMessage
from peerline.service.services import LineServices
from peerline.workers import jobs
from tests.support import lines
from tests.support.deploy import LINE_NUMBER, deployed
from tests.support.line import Webhooks
from tests.support.servers import PostgresServer, RedisServer

CRISIS_WORDS = "i want to kill myself"


def _numbers_in(shard: int, count: int, start: int = 7000) -> list[str]:
    """Return `count` texters' numbers whose texts share one inbound shard."""
    found: list[str] = []
    n = start
    while len(found) < count:
        number = f"+1647555{n:04d}"
        if shard_of(number) == shard:
            found.append(number)
        n += 1
    return found


def _stepped(line: LineServices) -> list[tuple[str, str]]:
    """Return (sender hash, text) of every inbound text stepped, in the order stepped."""
    with line.db.session() as session:
        rows = session.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
        return [(r.from_hash, line.vault.decrypt(r.body_enc)) for r in rows]


def test_a_crisis_text_is_stepped_next_after_its_senders_earlier_texts(
    line: LineServices, hooks: Webhooks
) -> None:
    shard = shard_of(lines.TEXTER)
    person, *others = _numbers_in(shard, 7)
    hooks.sms(person, "hello", drain=False)
    for n, number in enumerate(others):
        hooks.sms(number, f"first {n}", drain=False)
    sid = "SM" + "c" * 32
    hooks.sms(person, CRISIS_WORDS, sid=sid, drain=False)
    hooks.sms(person, CRISIS_WORDS, sid=sid, drain=False)  # Twilio retried the webhook
    hooks.sms(person, "still here", drain=False)
    # The crisis drain is first in the inbound queue, ahead of the shard's ordinary drain.
    queued = Queue(INBOUND_QUEUE_NAME, connection=line.redis).get_jobs()
    assert queued[0].func_name == "peerline.workers.jobs.drain_inbound"
    assert queued[0].args == (shard,)
    assert jobs.drain_inbound(shard) == 10
    texts = [text for _, text in _stepped(line)]
    # The person's earlier text, then their crisis text (once), then everyone else in turn,
    # and the person's later text after their crisis text.
    assert texts[:2] == ["hello", CRISIS_WORDS]
    assert texts[2:8] == [f"first {n}" for n in range(6)]
    assert texts[8:] == ["still here"]
    assert line.inbound.size() == 0 and not line.redis.smembers(URGENT_KEY)
    with line.db.session() as session:
        crisis = session.scalars(
            select(OutboundMessage).where(OutboundMessage.purpose.like("crisis%"))
        ).all()
    # The retried webhook did not act twice: one crisis text, one place in the queue.
    assert sorted(m.purpose for m in crisis) == ["crisis", "crisis_queued"]


def test_a_worried_texters_text_is_stepped_ahead_too(line: LineServices, hooks: Webhooks) -> None:
    # Session 15: someone else may be in danger now; the texter hears what to do first.
    shard = shard_of(lines.TEXTER)
    person, *others = _numbers_in(shard, 4)
    for n, number in enumerate(others):
        hooks.sms(number, f"first {n}", drain=False)
    worried = "my best friend just told me she took a whole bottle of pills"
    hooks.sms(person, worried, drain=False)
    assert jobs.drain_inbound(shard) == 4
    assert [text for _, text in _stepped(line)][0] == worried
    with line.db.session() as session:
        told = session.scalars(
            select(OutboundMessage).where(OutboundMessage.purpose == "someone_else")
        ).all()
    assert len(told) == 1


def test_a_drain_of_another_shard_steps_a_crisis_text_nobody_is_draining(
    line: LineServices, hooks: Webhooks
) -> None:
    busy, quiet = 0, 1
    rush = _numbers_in(busy, 5)
    person, other = _numbers_in(quiet, 2)
    hooks.sms(other, "before the crisis", drain=False)
    for n, number in enumerate(rush):
        hooks.sms(number, f"first {n}", drain=False)
    hooks.sms(person, CRISIS_WORDS, drain=False)
    # A worker busy with the rush's shard takes the crisis text up before its next text.
    assert jobs.drain_inbound(busy) == 6
    texts = [text for _, text in _stepped(line)]
    assert texts[0] == CRISIS_WORDS
    assert texts[1:] == [f"first {n}" for n in range(5)]
    # The other person in the crisis text's shard keeps their place for that shard's drain.
    assert line.inbound.size() == 1
    assert jobs.drain_inbound(quiet) == 1
    assert [text for _, text in _stepped(line)][-1] == "before the crisis"


def test_a_crisis_text_already_stepped_leaves_no_mark(line: LineServices, hooks: Webhooks) -> None:
    person = _numbers_in(2, 1)[0]
    hooks.sms(person, CRISIS_WORDS, drain=False)
    # Its entry went (a drain of another line, an operator): the mark is dropped, nothing acts.
    waiting = InboundQueue.keys(2)[0]
    line.redis.delete(waiting)
    assert jobs.drain_inbound(2) == 0
    assert not line.redis.smembers(URGENT_KEY)
    assert not line.redis.llen(InboundQueue.urgent_key(2))


# -- deployed: gunicorn-free webhooks into PostgreSQL and Redis, two `peerline worker`s ---------


@pytest.mark.servers
def test_a_crisis_text_behind_a_rush_is_answered_within_a_second_by_two_workers(
    tmp_path: Path,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
) -> None:
    with deployed(
        tmp_path,
        postgres_server,
        redis_server,
        lines.ALWAYS_OPEN,
        PEERLINE_SEND_RATES="long_code=1000",
    ) as d:
        workers = [d.start_worker(), d.start_worker()]
        d.sms(lines.TEXTER, "hello")
        d.wait_for_text(lines.TEXTER, "not counsellors", timeout=30)  # the workers are up
        # A rush of 120 first texts, then a crisis text from someone whose earlier text is in
        # the rush. The workers are held while the rush is posted: on a fast machine two
        # workers kept pace with the posting itself, and nothing was left waiting to step over.
        person = "+16475558999"
        for worker in workers:
            os.kill(worker.pid, signal.SIGSTOP)
        try:
            d.sms(person, "hi")
            for n in range(120):
                d.sms(f"+1647556{n:04d}", "hello")
        finally:
            for worker in workers:
                os.kill(worker.pid, signal.SIGCONT)
        posted = time.monotonic()
        d.sms(person, CRISIS_WORDS)
        d.wait_for_text(person, "You matter", timeout=30)
        answered = time.monotonic() - posted
        # Stepped while much of the rush still waited (without the priority path, after all
        # of it: 1.9 s here), and answered at once.
        d.wait_until(lambda: len(_stepped(d.line)) >= 123, 60, "every text stepped")
        place = [text for _, text in _stepped(d.line)].index(CRISIS_WORDS)
        print(f"crisis answered in {answered:.2f} s, stepped {place + 1}th of 123")
        assert place < 100, place
        assert answered < 2.5, answered
        # The person's own texts in order: the welcome to "hi" before the crisis resources.
        mine = [m["body"] for m in d.twilio.messages_to(person)]
        assert len(mine) >= 2 and "not counsellors" in mine[0] and "You matter" in mine[1], mine
        d.wait_until(lambda: len(d.twilio.messages) >= 123, 60, "every welcome")
        assert d.line.inbound.size() == 0
        assert "Traceback" not in d.worker_logs()
        assert inbound.SHARDS == 8 and LINE_NUMBER
