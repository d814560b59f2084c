"""DELETE erases the person everywhere, after STOP too: the schema and Redis are walked."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import String, Text, select

from peerline.flows import effects as fx
from peerline.flows import texter
from peerline.service.inbound import FAILED_KEY, shard_of
from peerline.service.models import Base, Contact, Conversation
from peerline.service.spool import SPOOL_KEY
from peerline.service.voice.models import Call, CallbackRequest
from tests.support import lines
from tests.support.chat import run_jobs, texts_to
from tests.support.flows import OPEN
from tests.support.hardening import Deployed, deploy
from tests.support.line import drain_inbound
from tests.support.voice import Phone, closed_line_file, supporter_command

WORDS = "it is so hard today"
# Tables whose rows belong to the line, not to a texter: a texter's data never goes there.
NOT_A_TEXTERS = {"supporters", "coordinators", "alembic_version"}


@pytest.fixture
def closed(tmp_path: Path, postgres_server: Any, redis_server: Any) -> Iterator[Deployed]:
    """Return a line nobody is on shift on (Sam is on call), on real servers."""
    with deploy(tmp_path, postgres_server, redis_server, closed_line_file()) as d:
        yield d


def traces(d: Deployed, phone: str, recording: str, reference: str) -> list[str]:
    """Return what leads back to the person: their number, its hashes, their voice and words."""
    return [phone, phone[2:], *d.line.vault.lookup_hashes(phone), recording, reference, WORDS]


def readable(d: Deployed, value: Any) -> list[str]:
    """Return a stored value as text, and decrypted when one of the line's keys opens it."""
    if isinstance(value, bytes):
        try:
            value = zlib.decompress(value)  # RQ keeps job data compressed
        except zlib.error:
            pass
        value = value.decode("utf-8", "replace")
    text = str(value)
    out = [text]
    try:
        out.append(d.line.vault.decrypt(text))
    except (ValueError, TypeError):
        pass
    return out


def schema_leftovers(d: Deployed, found: list[str]) -> list[str]:
    """Walk every table and text column the models declare; return where a trace is left."""
    left = []
    with d.line.db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name in NOT_A_TEXTERS:
                continue
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            if not columns:
                continue
            for row in connection.execute(select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    for text in readable(d, value):
                        left += [
                            f"{table.name}.{column.name}: {trace[:12]}"
                            for trace in found
                            if trace and trace in text
                        ]
    return left


def redis_leftovers(d: Deployed, found: list[str]) -> list[str]:
    """Walk every Redis key and value; return where a trace is left."""
    redis = Redis.from_url(d.line.settings.redis_url or "")
    left = []
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key).decode()
        values: list[Any] = [key]
        if kind == "string":
            values.append(redis.get(key))
        elif kind == "list":
            values += redis.lrange(key, 0, -1)
        elif kind == "hash":
            values += [v for pair in redis.hgetall(key).items() for v in pair]
        elif kind == "set":
            values += list(redis.smembers(key))
        elif kind == "zset":
            values += redis.zrange(key, 0, -1)
        for value in values:
            for text in readable(d, value):
                left += [f"redis {key!r}: {t[:12]}" for t in found if t and t in text]
    return left


def test_delete_after_stop_erases_every_trace(closed: Deployed) -> None:
    d = closed
    hooks = d.hooks
    # A text, group reminders, a voicemail (with its alert and recording), a text kept aside.
    assert hooks.sms(lines.TEXTER, WORDS).status_code == 200
    assert hooks.sms(lines.TEXTER, "REMIND").status_code == 200
    recording = "RE" + uuid.uuid4().hex
    d.twilio.recordings.add(recording)
    caller = Phone(d.line, d.app).call(lines.TEXTER)
    caller.recorded(caller.press(caller.dial_in(), "1"), seconds=25, sid=recording)
    caller.status("completed", 40)
    with d.line.db.session() as session:
        reference = session.scalars(select(CallbackRequest.reference)).one()
    assert hooks.sms(lines.TEXTER, WORDS + " again", drain=False).status_code == 200
    d.line.inbound.drain(shard_of(lines.TEXTER), lambda fields: 1 / 0)
    assert d.line.redis.llen(FAILED_KEY) == 1
    # A text spooled while the database was away (waiting for `peerline replay`).
    spooled = [("MessageSid", "SM" + uuid.uuid4().hex), ("From", lines.TEXTER), ("Body", WORDS)]
    assert d.line.spool.put("sms", spooled) == "redis"
    run_jobs(d.line)
    found = traces(d, lines.TEXTER, recording, reference)
    before = schema_leftovers(d, found)
    # The walk sees the traces before: calls, call-backs, alerts, messages, contacts.
    for table in ("contacts", "calls", "callback_requests", "alerts", "inbound_messages"):
        assert any(place.startswith(table + ".") for place in before), (table, before)
    assert redis_leftovers(d, found)

    answered = len(d.twilio.messages_to(lines.TEXTER))
    assert hooks.sms(lines.TEXTER, "STOP").status_code == 200
    assert hooks.sms(lines.TEXTER, "DELETE").status_code == 200
    assert hooks.sms(lines.TEXTER, "DELETE").status_code == 200
    run_jobs(d.line)

    assert schema_leftovers(d, found) == []
    assert redis_leftovers(d, found) == []
    assert d.line.redis.llen(SPOOL_KEY) == 0 and d.line.redis.llen(FAILED_KEY) == 0
    assert d.twilio.recordings == set()  # deleted at the provider, through its API
    # Opted out: DELETE is not answered (the README says so).
    assert len(d.twilio.messages_to(lines.TEXTER)) == answered
    with d.line.db.session() as session:
        # Counts stay: the contact, the conversation and the call, anonymous.
        contact = session.scalars(select(Contact)).one()
        assert contact.phone_enc == "" and contact.phone_hash.startswith("erased-")
        assert session.scalars(select(Conversation.messages_in)).all()
        assert session.scalars(select(Call.direction)).all() == ["inbound"]
    # A supporter's #call for the erased voicemail is told so; nobody rings, nothing fails.
    supporter_command(d.line, "Sam", reference)
    run_jobs(d.line)
    assert (
        texts_to(d.line, lines.SAM)[-1]
        == f"No voicemail {reference}. Check the reference, like #call VM-1234."
    )
    assert d.twilio.calls == []


def test_the_walk_covers_every_table_that_can_hold_a_person() -> None:
    tables = {table.name for table in Base.metadata.sorted_tables}
    assert {"contacts", "calls", "callback_requests", "alerts", "group_subscriptions"} <= tables
    assert {"inbound_messages", "outbound_messages", "blocks"} <= tables


def test_delete_twice_after_stop_erases_without_a_reply() -> None:
    stopped = texter.TexterState(stage=texter.CLOSED, opted_out=True)
    first = texter.decide(stopped, OPEN, "DELETE")
    assert first.effects == [fx.RequestErase()]
    pending = texter.TexterState(stage=texter.CLOSED, opted_out=True, erase_pending=True)
    assert texter.decide(pending, OPEN, "delete").effects == [fx.Erase()]


def test_an_erasure_the_provider_cannot_complete_is_kept_aside_whole(closed: Deployed) -> None:
    d = closed
    recording = "RE" + uuid.uuid4().hex
    d.twilio.recordings.add(recording)
    caller = Phone(d.line, d.app).call(lines.TEXTER)
    caller.recorded(caller.press(caller.dial_in(), "1"), seconds=25, sid=recording)
    assert d.hooks.sms(lines.TEXTER, "DELETE").status_code == 200
    run_jobs(d.line)  # the confirmation question goes out
    d.twilio.fail_next(503, times=1)  # Twilio is away when the recording is to be deleted
    assert d.hooks.sms(lines.TEXTER, "DELETE").status_code == 200
    # Nothing half-done: the recording is still there, and so is everything else, to retry.
    assert d.twilio.recordings == {recording}
    assert d.line.inbound.failed() == 1
    with d.line.db.session() as session:
        assert session.scalars(select(Contact.phone_enc)).one() != ""
    assert d.line.inbound.retry_failed() == 1
    drain_inbound()
    assert d.twilio.recordings == set()
    with d.line.db.session() as session:
        assert session.scalars(select(Contact.phone_enc)).one() == ""
