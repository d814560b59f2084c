"""Inbound texts wait in Redis for the drain jobs: encrypted, in order, once, and never lost."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fakeredis import FakeRedis
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from peerline.service import inbound
from peerline.service.inbound import FAILED_KEY, InboundQueue, shard_of
from peerline.service.services import LineServices
from peerline.service.models import InboundMessage, utcnow
from peerline.service.spool import SPOOL_KEY, UNREADABLE_KEY
from peerline.service.job_queue import INBOUND_QUEUE_NAME, QUEUE_NAME
from peerline.workers import jobs
from tests.support import lines
from tests.support.line import (
    Webhooks,
    drain_inbound,
    load_line_file,
    make_line,
    make_settings,
    outbox,
)


def inbound_rows(line: LineServices) -> int:
    """Return how many inbound texts the database has recorded."""
    with line.db.session() as session:
        return int(session.scalar(select(func.count(InboundMessage.id))) or 0)


def queued_jobs(line: LineServices) -> list[str]:
    """Return the function names of the RQ jobs waiting in the line's queue."""
    return [
        job.func_name
        for name in (INBOUND_QUEUE_NAME, QUEUE_NAME)
        for job in Queue(name, connection=line.redis).get_jobs()
    ]


def test_webhook_takes_the_text_into_redis_encrypted_and_a_drain_steps_it(
    line: LineServices, hooks: Webhooks
) -> None:
    assert hooks.sms(lines.TEXTER, "hello, I need someone", drain=False).status_code == 200
    assert inbound_rows(line) == 0  # nothing stepped yet: the webhook only took it in
    assert line.inbound.size() == 1
    waiting = InboundQueue.keys(shard_of(lines.TEXTER))[0]
    stored = b"".join(line.redis.lrange(waiting, 0, -1))
    assert b"need someone" not in stored and lines.TEXTER[1:].encode() not in stored
    # One drain job was scheduled for the shard, however many texts come before it runs.
    hooks.sms(lines.TEXTER, "are you there?", drain=False)
    assert queued_jobs(line).count("peerline.workers.jobs.drain_inbound") == 1

    assert drain_inbound() == 2
    assert inbound_rows(line) == 2 and line.inbound.size() == 0
    assert any("not counsellors" in m["body"] for m in outbox(line, lines.TEXTER))


def test_a_retried_webhook_is_stepped_once(line: LineServices, hooks: Webhooks) -> None:
    hooks.sms(lines.TEXTER, "hello", sid="SM" + "1" * 32, drain=False)
    hooks.sms(lines.TEXTER, "hello", sid="SM" + "1" * 32, drain=False)
    assert line.inbound.size() == 2
    drain_inbound()
    assert inbound_rows(line) == 1
    assert len(outbox(line, lines.TEXTER)) == 1


def test_a_shard_is_drained_by_one_job_at_a_time_in_order(line: LineServices, hooks: Webhooks) -> None:
    shard = shard_of(lines.TEXTER)
    lock = InboundQueue.keys(shard)[3]
    for n in range(5):
        hooks.sms(lines.TEXTER, f"text {n}", drain=False)
    line.redis.set(lock, "another drain")
    assert jobs.drain_inbound(shard) == 0  # the holder of the lock will look again
    line.redis.delete(lock)
    assert jobs.drain_inbound(shard) == 5
    with line.db.session() as session:
        bodies = [
            line.vault.decrypt(row.body_enc)
            for row in session.scalars(select(InboundMessage).order_by(InboundMessage.id))
        ]
    assert bodies == [f"text {n}" for n in range(5)]


def test_a_text_left_by_a_drain_that_died_goes_first(line: LineServices, hooks: Webhooks) -> None:
    shard = shard_of(lines.TEXTER)
    waiting, taking, _, _ = InboundQueue.keys(shard)
    hooks.sms(lines.TEXTER, "first", drain=False)
    hooks.sms(lines.TEXTER, "second", drain=False)
    line.redis.lmove(waiting, taking, "LEFT", "RIGHT")  # a drain took "first", then died
    assert jobs.drain_inbound(shard) == 2
    with line.db.session() as session:
        rows = session.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
        assert [line.vault.decrypt(r.body_enc) for r in rows] == ["first", "second"]


def test_an_entry_that_cannot_be_stepped_is_kept_aside_and_others_go_on(
    line: LineServices, hooks: Webhooks
) -> None:
    shard = shard_of(lines.TEXTER)
    line.redis.rpush(InboundQueue.keys(shard)[0], "not a token")
    hooks.sms(lines.TEXTER, "hello", drain=False)
    assert jobs.drain_inbound(shard) == 2
    assert line.inbound.failed() == 1 and line.redis.lrange(FAILED_KEY, 0, -1) == [b"not a token"]
    assert inbound_rows(line) == 1


def test_a_long_drain_hands_over_to_a_successor(line: LineServices, hooks: Webhooks) -> None:
    for n in range(5):
        hooks.sms(lines.TEXTER, f"text {n}", drain=False)
    Queue(INBOUND_QUEUE_NAME, connection=line.redis).empty()
    shard = shard_of(lines.TEXTER)
    assert line.inbound.drain(shard, lambda fields: None, batch=2) == 2
    assert line.inbound.size() == 3
    assert queued_jobs(line) == ["peerline.workers.jobs.drain_inbound"]


def test_the_sweep_schedules_a_drain_that_was_lost(line: LineServices, hooks: Webhooks) -> None:
    hooks.sms(lines.TEXTER, "hello", drain=False)
    Queue(INBOUND_QUEUE_NAME, connection=line.redis).empty()  # the drain job was lost
    scheduled = InboundQueue.keys(shard_of(lines.TEXTER))[2]
    line.redis.delete(scheduled)  # ...and its flag expired
    assert jobs.sweep()["draining"] == 1
    assert "peerline.workers.jobs.drain_inbound" in queued_jobs(line)
    assert jobs.sweep()["draining"] == 0  # already scheduled: not twice


def test_without_redis_the_webhook_steps_the_text_itself(
    tmp_path: Path, app_for: Callable[[LineServices], Flask]
) -> None:
    # Nothing listens on port 1: every Redis call fails at once.
    line = make_line(make_settings(tmp_path), Redis(port=1, socket_connect_timeout=0.2))
    load_line_file(line, lines.ALWAYS_OPEN)
    hooks = Webhooks(app_for(line).test_client(), line.settings)
    assert hooks.sms(lines.TEXTER, "hello", drain=False).status_code == 200
    assert inbound_rows(line) == 1
    assert any("not counsellors" in m["body"] for m in outbox(line, lines.TEXTER))


def test_numbers_spread_over_the_shards() -> None:
    shards = {shard_of(f"+1416555{n:04d}") for n in range(200)}
    assert shards == set(range(inbound.SHARDS))


def test_texts_kept_aside_can_be_put_back(line: LineServices, hooks: Webhooks) -> None:
    calls: list[str] = []

    def broken(fields: dict[str, str]) -> None:
        calls.append(fields["message_sid"])
        raise RuntimeError("a bug in stepping")

    hooks.sms(lines.TEXTER, "hello", drain=False)
    line.redis.rpush(FAILED_KEY, "not a token")
    assert line.inbound.drain(shard_of(lines.TEXTER), broken) == 1
    assert len(calls) == 1 and line.inbound.failed() == 2 and line.inbound.size() == 0
    # Fixed: the readable text goes back to its shard and is stepped; the other stays aside.
    assert line.inbound.retry_failed() == 1
    assert line.inbound.failed() == 1
    drain_inbound()
    assert inbound_rows(line) == 1


def test_texts_put_back_go_first_in_the_order_they_came(line: LineServices, hooks: Webhooks) -> None:
    shard = shard_of(lines.TEXTER)

    def broken(fields: dict[str, str]) -> None:
        raise RuntimeError("a bug in stepping")

    hooks.sms(lines.TEXTER, "first", drain=False)
    hooks.sms(lines.TEXTER, "second", drain=False)
    assert line.inbound.drain(shard, broken) == 2 and line.inbound.failed() == 2
    hooks.sms(lines.TEXTER, "third", drain=False)  # came after them, still waiting
    assert line.inbound.retry_failed() == 2
    assert line.inbound.failed() == 0 and line.inbound.size() == 3
    drain_inbound()
    with line.db.session() as session:
        rows = session.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
        assert [line.vault.decrypt(r.body_enc) for r in rows] == ["first", "second", "third"]


def test_putting_back_loses_and_doubles_nothing_while_others_touch_the_lists(
    line: LineServices, hooks: Webhooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    shard = shard_of(lines.TEXTER)
    for n in range(4):
        hooks.sms(lines.TEXTER, f"text {n}", drain=False)
    waiting = InboundQueue.keys(shard)[0]
    entries = [line.redis.lpop(waiting) for _ in range(4)]
    line.redis.rpush(FAILED_KEY, *entries[:3])  # three kept aside; the fourth comes later
    read = line.inbound._read
    reads: list[int] = []

    def read_while_others_work(raw: bytes) -> dict[str, str]:
        reads.append(1)
        if len(reads) == 1:
            # Meanwhile another person puts "text 2" back, and a drain keeps "text 3" aside.
            line.redis.lrem(FAILED_KEY, 1, entries[2])
            line.redis.lpush(waiting, entries[2])
            line.redis.rpush(FAILED_KEY, entries[3])
        return read(raw)

    monkeypatch.setattr(line.inbound, "_read", read_while_others_work)
    assert line.inbound.retry_failed() == 2  # "text 2" was already back: not moved twice
    assert [read(raw)["body"] for raw in line.redis.lrange(waiting, 0, -1)] == [
        "text 0",
        "text 1",
        "text 2",
    ]
    assert line.redis.lrange(FAILED_KEY, 0, -1) == [entries[3]]  # waits for the next call
    assert line.inbound.retry_failed() == 1
    drain_inbound()
    assert inbound_rows(line) == 4 and line.inbound.failed() == 0


def test_texts_kept_aside_are_purged_after_the_retention_period(
    line: LineServices, hooks: Webhooks
) -> None:
    old = {
        "message_sid": "SM" + "1" * 32,
        "from_number": lines.TEXTER,
        "to_number": line.settings.twilio_phone_number,
        "body": "weeks ago",
        "received_at": (utcnow() - timedelta(days=line.settings.retention_days + 1)).isoformat(),
    }
    line.redis.rpush(FAILED_KEY, line.vault.encrypt(json.dumps(old)), "not a token")
    hooks.sms(lines.TEXTER, "today", drain=False)
    line.inbound.drain(shard_of(lines.TEXTER), lambda fields: 1 / 0)  # kept aside too
    assert line.inbound.failed() == 3
    assert jobs.sweep()["purged"] >= 1
    # The old text is gone; today's stays for a person to look at, as does the unreadable one.
    left = line.redis.lrange(FAILED_KEY, 0, -1)
    assert len(left) == 2 and b"not a token" in left
    # An entry from before texts carried their arrival is dated by its ciphertext.
    undated = {key: value for key, value in old.items() if key != "received_at"}
    line.redis.rpush(FAILED_KEY, line.vault.encrypt(json.dumps(undated)))
    assert line.inbound.purge_failed(utcnow() - timedelta(minutes=1)) == 0
    assert line.inbound.purge_failed(utcnow() + timedelta(days=1)) == 2
    assert line.redis.lrange(FAILED_KEY, 0, -1) == [b"not a token"]


def test_a_database_outage_keeps_the_text_first_and_schedules_a_retry(
    line: LineServices, hooks: Webhooks
) -> None:
    shard = shard_of(lines.TEXTER)
    hooks.sms(lines.TEXTER, "first", drain=False)
    hooks.sms(lines.TEXTER, "second", drain=False)

    def database_away(fields: dict[str, str]) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    assert line.inbound.drain(shard, database_away) == 0
    assert line.inbound.size() == 2 and line.inbound.failed() == 0
    retries = line.job_queue.inbound_queue.scheduled_job_registry.get_job_ids()
    assert len(retries) == 1 and retries[0].startswith(f"drain-inbound-{shard}-retry-")
    assert jobs.drain_inbound(shard) == 2  # the database is back
    with line.db.session() as session:
        rows = session.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
        assert [line.vault.decrypt(r.body_enc) for r in rows] == ["first", "second"]


def test_a_drain_that_lost_its_lock_leaves_the_shard_alone(line: LineServices, hooks: Webhooks) -> None:
    shard = shard_of(lines.TEXTER)
    waiting, taking, _, lock = InboundQueue.keys(shard)
    for n in range(3):
        hooks.sms(lines.TEXTER, f"text {n}", drain=False)
    stepped: list[str] = []

    def stall(fields: dict[str, str]) -> None:
        stepped.append(fields["body"])
        line.redis.set(lock, "a drain that took over")  # ours expired while this step ran

    assert line.inbound.drain(shard, stall) == 0
    assert stepped == ["text 0"]
    # The lists are the new holder's: the stepped text stays where it was, nothing is lost.
    assert line.redis.llen(taking) == 1 and line.redis.llen(waiting) == 2
    assert line.redis.get(lock) == b"a drain that took over"


def test_a_text_keeps_the_time_the_webhook_took_it_in(line: LineServices, hooks: Webhooks) -> None:
    hooks.sms(lines.TEXTER, "hello", drain=False)
    taken = utcnow()
    time.sleep(0.3)
    drain_inbound()
    with line.db.session() as session:
        row = session.scalars(select(InboundMessage)).one()
        assert row.received_at <= taken


# -- the spool: status callbacks (and texts without Redis) while the database is down ------


def test_the_spool_keeps_webhooks_encrypted_and_sets_unreadable_ones_aside(line: LineServices) -> None:
    form = [("MessageSid", "SM1"), ("From", lines.TEXTER), ("Body", "it is hard today")]
    assert line.spool.put("sms", form) == "redis"
    stored = b"".join(line.redis.lrange(SPOOL_KEY, 0, -1))
    assert b"hard today" not in stored and lines.TEXTER[1:].encode() not in stored
    line.redis.lpush(SPOOL_KEY, "written under a key no longer configured")
    seen: list[dict[str, object]] = []
    assert line.spool.replay(seen.append) == 1
    assert [dict(entry["form"]) for entry in seen] == [dict(form)]  # type: ignore[call-overload]
    assert line.redis.lrange(UNREADABLE_KEY, 0, -1) == [b"written under a key no longer configured"]
    assert line.spool.size() == 0


def test_without_redis_the_spool_writes_an_encrypted_file(tmp_path: Path) -> None:
    line = make_line(make_settings(tmp_path), Redis(port=1, socket_connect_timeout=0.2))
    assert line.spool.put("status", [("MessageSid", "SM2"), ("Body", "private words")]) == "file"
    text = line.spool.path.read_text()
    assert "private words" not in text and text.count("\n") == 1
    line.spool.redis = FakeRedis()  # Redis is back
    seen: list[dict[str, object]] = []
    assert line.spool.replay(seen.append) == 1
    assert seen[0]["kind"] == "status" and not line.spool.path.exists()
