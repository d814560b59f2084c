"""Someone else's danger is never read as the texter's own crisis (session 27e).

A worried texter ("my friend just told me she is going to kill herself tonight") then STOP
alerted on call that the texter "may be in crisis (has a plan) and has just opted out", and a
texter queued over a friend's pills was offered as "Crisis: an attempt may be under way", as if
both were the texter's own. Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from peerline.service.models import Alert
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, run_jobs, take_chat
from tests.support.line import LineBuilder, line_builder

WORRIED = "my friend just told me she is going to kill herself tonight, what do i do"


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines; Sam and Ria on shift, Ria on call (taking no chats)."""
    return line_builder(tmp_path, app_for, lines.ON_CALL)


def alert_kinds(line: LineServices) -> list[str]:
    """Return the kinds of the alerts, oldest first."""
    with line.db.session() as session:
        return list(session.scalars(select(Alert.kind).order_by(Alert.id)))


def test_stop_after_someone_elses_danger_is_no_opt_out_in_crisis(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.RIA, "#away")
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, WORRIED)
    assert alert_kinds(line) == ["crisis"]  # the friend's danger, said as someone else's
    hooks.sms(lines.TEXTER, "STOP")
    assert alert_kinds(line) == ["crisis"]
    left = [m["body"] for m in outbox(line, lines.SAM) if m["purpose"] == "texter_opted_out"]
    assert len(left) == 1 and "on-call coordinator has been told" not in left[0], left


def test_stop_after_own_crisis_following_a_worry_still_alerts(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.RIA, "#away")
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, WORRIED)
    hooks.sms(lines.TEXTER, "and honestly i want to kill myself too")
    hooks.sms(lines.TEXTER, "STOP")
    assert alert_kinds(line)[-1] == "crisis_opted_out", alert_kinds(line)


def test_an_offer_over_someone_elses_danger_says_whose_it_is(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.RIA, "#away")
    hooks.sms(lines.TEXTER, "my friend just took a whole bottle of pills")
    run_jobs(line)
    (offer,) = [m["body"] for m in outbox(line, lines.SAM) if m["purpose"] == "offer_priority"]
    assert "Someone else: an attempt may be under way." in offer, offer
    assert "Crisis: an attempt" not in offer


def test_an_offer_of_the_texters_own_crisis_reads_as_before(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.RIA, "#away")
    hooks.sms(lines.TEXTER, "i just took all my pills")
    run_jobs(line)
    (offer,) = [m["body"] for m in outbox(line, lines.SAM) if m["purpose"] == "offer_priority"]
    assert "Crisis: an attempt may be under way." in offer, offer
