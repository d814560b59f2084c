"""A crisis in a new chat, or a more urgent one, reaches on call again (session 27c).

A tester's texter flagged earlier (maybe wrongly) wrote "sometimes i want to die" in a new chat
and on call heard nothing: the new chat took the earlier flag's time on joining the line, and
the alert was due once in the crisis window whatever was said. Now crisis words alert on call
when this very conversation was not flagged lately, or was flagged for less urgent words only:
once a conversation per level. Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from peerline.service.models import Alert, Conversation
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, take_chat
from tests.support.line import LineBuilder, line_builder


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines; Sam and Ria on shift, Ria on call (reading Spanish)."""
    return line_builder(tmp_path, app_for, lines.ON_CALL)


def crisis_alerts(line: LineServices) -> list[tuple[int | None, str]]:
    """Return (conversation, detail) of the crisis alerts, oldest first."""
    with line.db.session() as session:
        found = session.scalars(select(Alert).where(Alert.kind == "crisis").order_by(Alert.id))
        return [(a.conversation_id, a.detail) for a in found]


def flags_to_sam(line: LineServices) -> list[str]:
    """Return the [SAFETY] flags Sam was texted, oldest first."""
    return [m["body"] for m in outbox(line, lines.SAM) if m["purpose"] == "safety_flag"]


def test_crisis_words_in_a_new_chat_alert_on_call_again(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.RIA, "#away")  # on call, taking no chats
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "i want to kill myself")  # flagged (maybe wrongly: a joke)
    hooks.sms(lines.TEXTER, "bye")  # asked whether they mean it, after crisis words (session 28)
    hooks.sms(lines.TEXTER, "bye")
    hooks.sms(lines.SAM, "#ready")  # no rest after that chat
    take_chat(line, hooks, lines.TEXTER, lines.SAM)  # a new chat, minutes later
    hooks.sms(lines.TEXTER, "sometimes i want to die")
    with line.db.session() as session:
        first, second = session.scalars(select(Conversation.id).order_by(Conversation.id))
    alerts = crisis_alerts(line)
    assert [c for c, _ in alerts] == [first, second], alerts
    assert "(wishes to be dead)" in alerts[1][1]
    assert "may be in crisis (wishes to be dead)" in flags_to_sam(line)[-1]


def test_a_more_urgent_crisis_in_the_same_chat_alerts_again_once(build: LineBuilder) -> None:
    line, hooks = build()
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "sometimes i want to die")
    assert len(crisis_alerts(line)) == 1
    hooks.sms(lines.TEXTER, "i just took all my pills")
    alerts = crisis_alerts(line)
    assert len(alerts) == 2 and "an attempt may be under way" in alerts[1][1], alerts
    assert "an attempt may be under way" in flags_to_sam(line)[-1]
    # The same kind again, or a lesser one, is no news: once a conversation per level.
    hooks.sms(lines.TEXTER, "i took them an hour ago")
    hooks.sms(lines.TEXTER, "i want to die")
    assert len(crisis_alerts(line)) == 2
    assert len(flags_to_sam(line)) == 2
