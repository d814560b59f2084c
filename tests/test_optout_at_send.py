"""Opt-out holds at the moment of sending: a STOP while a text waits for its slot stops it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from peerline.service import outbox
from peerline.service.models import OUT_FAILED, OutboundMessage
from peerline.service.transport import OPTED_OUT
from peerline.service.voice.models import Call, CallbackRequest
from tests.support import lines
from tests.support.chat import run_jobs, texts_to
from tests.support.hardening import Deployed, deploy, deployed  # noqa: F401
from tests.support.voice import Phone, closed_line_file, supporter_command


def _pending_to(d: Deployed, number: str) -> list[int]:
    with d.line.db.session() as session:
        return list(
            session.scalars(
                select(OutboundMessage.id)
                .where(
                    OutboundMessage.to_hash == d.line.vault.lookup_hash(number),
                    OutboundMessage.status == "pending",
                )
                .order_by(OutboundMessage.id)
            )
        )


def _pump_when_due(d: Deployed) -> None:
    """Do what the sender loop does: take up each due sender at its slot, until none is due."""
    deadline = time.monotonic() + 10
    while (due := d.line.lanes.next_due()) is not None and time.monotonic() < deadline:
        sender, at = due
        time.sleep(max(at - d.line.lanes.server_time(), 0.0))
        if d.line.lanes.take_due(sender):
            outbox.pump(d.line, sender)


def test_a_stop_while_a_text_waits_for_its_slot_stops_it(deployed: Deployed) -> None:  # noqa: F811
    d = deployed
    assert d.hooks.sms(lines.TEXTER, "hello").status_code == 200
    waiting = _pending_to(d, lines.TEXTER)
    assert waiting  # the welcome, written and not yet sent
    # The line's number is busy for the next 1.5 s: the welcome must wait for its slot.
    line_number = d.line.settings.twilio_phone_number
    d.line.limiter.reserve(line_number, 1500, max_wait=None)
    started = time.monotonic()
    outbox.send(d.line, waiting[-1])
    # No worker waits for the slot: the text waits in its sender's lane, due at the slot.
    assert time.monotonic() - started < 1.0
    assert d.line.lanes.next_due() is not None
    assert d.hooks.sms(lines.TEXTER, "STOP").status_code == 200
    _pump_when_due(d)
    assert d.twilio.messages_to(lines.TEXTER) == []
    with d.line.db.session() as session:
        row = session.get(OutboundMessage, waiting[-1])
        assert row is not None
        assert (row.status, row.error_code) == (OUT_FAILED, OPTED_OUT)


def test_a_text_with_no_stop_still_goes_after_its_wait(deployed: Deployed) -> None:  # noqa: F811
    d = deployed
    assert d.hooks.sms(lines.TEXTER, "hello").status_code == 200
    waiting = _pending_to(d, lines.TEXTER)
    d.line.limiter.reserve(d.line.settings.twilio_phone_number, 500, max_wait=None)
    for message_id in waiting:
        outbox.send(d.line, message_id)
    _pump_when_due(d)
    assert len(d.twilio.messages_to(lines.TEXTER)) == len(waiting)


def _leave_voicemail(d: Deployed) -> str:
    caller = Phone(d.line, d.app).call(lines.TEXTER)
    caller.recorded(caller.press(caller.dial_in(), "1"), seconds=20)
    caller.status("completed", 40)
    with d.line.db.session() as session:
        return session.scalars(select(CallbackRequest.reference)).one()


@pytest.fixture
def closed(tmp_path: Path, postgres_server: Any, redis_server: Any) -> Iterator[Deployed]:
    """Return a line nobody is on shift on (Sam is on call), on real servers."""
    with deploy(tmp_path, postgres_server, redis_server, closed_line_file()) as d:
        yield d


def test_a_call_back_is_refused_to_someone_who_texted_stop(closed: Deployed) -> None:
    d = closed
    reference = _leave_voicemail(d)
    assert d.hooks.sms(lines.TEXTER, "STOP").status_code == 200
    supporter_command(d.line, "Sam", reference)
    run_jobs(d.line)
    assert d.twilio.calls == []
    assert texts_to(d.line, lines.SAM)[-1] == f"There is no number to call back for {reference}."


def test_a_stop_after_the_call_command_still_stops_the_call(closed: Deployed) -> None:
    d = closed
    reference = _leave_voicemail(d)
    supporter_command(d.line, "Sam", reference)  # the call is about to be placed
    assert d.hooks.sms(lines.TEXTER, "STOP").status_code == 200
    run_jobs(d.line)
    assert d.twilio.calls == []  # Sam's phone never rang, nobody was dialled
    with d.line.db.session() as session:
        call = session.scalars(select(Call).where(Call.direction == "callback")).one()
        assert call.state == "failed"
