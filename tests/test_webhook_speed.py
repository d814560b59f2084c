"""The webhook's short cuts (issue 19) give what the long way gives: numbers, Redis, counts."""

from __future__ import annotations

import json
import random

import phonenumbers
import pytest
from redis import Redis

from peerline.service.inbound import URGENT_KEY, InboundQueue, shard_of
from peerline.service.job_queue import JobQueue
from peerline.service.privacy import BadPhoneNumber, Vault, normalise_phone
from tests.support.servers import RedisServer

TEXTER = "+14165550123"


def by_phonenumbers(raw: str, region: str) -> str | None:
    """Return what phonenumbers makes of a number (E.164 when possible), or None."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalised(raw: str, region: str) -> str | None:
    try:
        return normalise_phone(raw, region)
    except BadPhoneNumber:
        return None


def test_numbers_in_e164_come_out_as_phonenumbers_makes_them() -> None:
    rng = random.Random(19)
    samples = [
        "+1" + str(first) + "".join(rng.choice("0123456789") for _ in range(9))
        for first in range(10)
        for _ in range(300)
    ]
    samples += [
        "+1416555012", "+141655501234", "+1 416 555 0123", "+1416555012a", "+1٤١٦5550123",
        "+447700900123", "+5215512345678", "4165550123", "+1", "",
    ]  # fmt: skip
    for region in ("US", "CA", "GB"):
        for raw in samples:
            assert normalised(raw, region) == by_phonenumbers(raw, region), (raw, region)


@pytest.fixture
def queue(redis_server: RedisServer) -> Redis:
    redis = Redis.from_url(redis_server.url)
    redis.flushall()
    return redis


def test_the_take_in_script_keeps_the_text_and_schedules_one_drain(queue: Redis) -> None:
    vault = Vault(["k"])
    inbound = InboundQueue(queue, vault, JobQueue(queue))
    assert inbound.put(TEXTER, {"body": "one"})
    queue.script_flush()  # as on a master promoted by a failover: no scripts loaded
    assert inbound.put(TEXTER, {"body": "two"})
    waiting, _, scheduled, _ = inbound.keys(shard_of(TEXTER))
    bodies = [inbound._read(raw)["body"] for raw in queue.lrange(waiting, 0, -1)]
    assert bodies == ["one", "two"]
    assert queue.ttl(scheduled) > 0
    assert inbound.job_queue.inbound_queue.count == 1  # the second text found it scheduled
    assert not queue.exists(URGENT_KEY)


def test_a_crisis_text_is_named_urgent_by_the_script(queue: Redis) -> None:
    inbound = InboundQueue(queue, Vault(["k"]), JobQueue(queue))
    assert inbound.put(TEXTER, {"body": "help"}, urgent=True)
    shard = shard_of(TEXTER)
    assert queue.smembers(URGENT_KEY) == {str(shard).encode()}
    assert queue.lrange(inbound.urgent_key(shard), 0, -1) == queue.lrange(
        inbound.keys(shard)[0], 0, -1
    )


def test_waiting_for_a_replica_that_is_not_there_takes_the_text_back(queue: Redis) -> None:
    inbound = InboundQueue(queue, Vault(["k"]), JobQueue(queue), wait_ms=20)
    queue.script_flush()
    assert not inbound.put(TEXTER, {"body": "one"})  # no replica: the webhook steps it itself
    assert queue.llen(inbound.keys(shard_of(TEXTER))[0]) == 0


def test_a_queued_entry_is_sealed_and_read_back_under_rotated_keys(queue: Redis) -> None:
    old = InboundQueue(queue, Vault(["old"]), JobQueue(queue))
    assert old.put(TEXTER, {"body": "i feel so alone tonight"})
    raw = queue.lrange(old.keys(shard_of(TEXTER))[0], 0, -1)[0]
    # Nothing of the words or the number is readable in Redis (it writes its lists to disk).
    assert b"alone" not in raw and TEXTER[2:].encode() not in raw
    # A web process on the newer keys (the old one second) still reads what the old one wrote.
    rotated = InboundQueue(queue, Vault(["new", "old"]), JobQueue(queue))
    assert rotated._read(raw)["body"] == "i feel so alone tonight"
    assert rotated.put(TEXTER, {"body": "still here"})
    assert [
        rotated._read(r)["body"] for r in queue.lrange(rotated.keys(shard_of(TEXTER))[0], 0, -1)
    ] == [
        "i feel so alone tonight",
        "still here",
    ]
    # A key nobody has any more, or a byte changed in Redis, is refused, not misread.
    with pytest.raises(ValueError):
        InboundQueue(queue, Vault(["other"]), JobQueue(queue))._read(raw)
    with pytest.raises(ValueError):
        old._read(raw[:-1] + bytes([raw[-1] ^ 1]))


def test_entries_queued_before_seals_are_still_stepped(queue: Redis) -> None:
    # During a deploy, web processes of the last release push Fernet tokens; workers of the
    # new one read both.
    vault = Vault(["k"])
    inbound = InboundQueue(queue, vault, JobQueue(queue))
    waiting = inbound.keys(shard_of(TEXTER))[0]
    queue.rpush(waiting, vault.encrypt(json.dumps({"from_number": TEXTER, "body": "before"})))
    assert inbound.put(TEXTER, {"from_number": TEXTER, "body": "after"})
    seen: list[str] = []
    assert inbound.drain(shard_of(TEXTER), lambda fields: seen.append(fields["body"])) == 2
    assert seen == ["before", "after"]
