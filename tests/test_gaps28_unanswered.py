"""A chat flagged for safety that its supporter never answered (session 28).

"i want to die" in a chat Sam never answered went back to the queue after the idle time with
the ordinary "your peer supporter couldn't answer" and on call heard the ordinary "got no
reply": nothing said that someone who may be in crisis had been left an hour unanswered, and
the texter heard nothing of 911 or 988. Now both say so, and both go in the crisis lane.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from peerline.service import lanes, segments
from peerline.service.models import Alert, Conversation
from peerline.service.runtime import Runtime
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, take_chat
from tests.support.line import LineBuilder, line_builder


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines: Sam and Ria on shift, Ria on call."""
    return line_builder(tmp_path, app_for, lines.ON_CALL)


def sent(line: LineServices, phone: str) -> list[tuple[str, str]]:
    """Return (purpose, body) of every text written to a number, oldest first."""
    return [(m["purpose"], m["body"]) for m in outbox(line, phone)]


def tick_later(line: LineServices, minutes: float) -> None:
    """Run the one active chat's timer as if some minutes had passed."""
    with line.db.session() as session:
        chat = session.scalars(select(Conversation.id).where(Conversation.state == "active")).one()
        runtime = Runtime(line, session, datetime.now(UTC) + timedelta(minutes=minutes))
        runtime.chat_tick(chat)
    runtime.after_commit.dispatch(line)


@pytest.mark.parametrize(
    ("words", "flagged"),
    [("i want to die", True), ("me quiero morir", True), ("hello? anyone?", False)],
)
def test_an_unanswered_chat_says_so_as_its_words_deserve(
    build: LineBuilder, words: str, flagged: bool
) -> None:
    line, hooks = build()
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, words)
    told = len(sent(line, lines.TEXTER))
    tick_later(line, 61)
    purpose, body = sent(line, lines.TEXTER)[told]
    assert body.startswith(("Sorry: your peer supporter couldn't answer", "Lo sentimos")), body
    if flagged:
        assert purpose == "chat_unanswered_crisis" and "911" in body and "988" in body, body
        assert lanes.lane_of(purpose) == lanes.CRISIS
        assert segments.count(body) <= 2, body
    else:
        assert purpose == "chat_unanswered" and "911" not in body, body
    alerts = [(p, b) for p, b in sent(line, lines.RIA) if "got no reply" in b or "no tuvo" in b]
    assert len(alerts) == 1, sent(line, lines.RIA)
    purpose, alert = alerts[0]
    if flagged:
        # Ria reads Spanish first.
        assert purpose == "crisis_unanswered_alert" and "marcado/a por seguridad" in alert
        assert alert.startswith("Alerta de seguridad de Peerline:"), alert
    else:
        assert purpose == "unanswered_alert" and "seguridad" not in alert, alert
    with line.db.session() as session:
        (detail,) = session.scalars(select(Alert.detail).where(Alert.kind == "unanswered"))
    assert ("flagged for safety" in detail) is flagged, detail
