"""A texter flagged in crisis who erases their data: on call hears it, as after STOP (session 28).

A tester's texter in crisis sent BORRAR twice mid-chat: the supporter heard they left and erased
their texts, on call nothing, while a STOP from them alerts on call (the line can no longer
reach them either way). Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, take_chat
from tests.support.line import LineBuilder, line_builder


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines: Sam and Ria on shift, Ria on call (reading Spanish first)."""
    return line_builder(tmp_path, app_for, lines.ON_CALL)


def erased_alerts(line: LineServices) -> list[str]:
    """Return the alerts texted to Ria that say a texter erased their data."""
    return [m["body"] for m in outbox(line, lines.RIA) if "BORRAR" in m["body"]]


def test_erasing_after_crisis_words_alerts_on_call_once(build: LineBuilder) -> None:
    line, hooks = build()
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "i want to kill myself")
    hooks.sms(lines.TEXTER, "DELETE")
    assert erased_alerts(line) == []  # asked to confirm first
    hooks.sms(lines.TEXTER, "DELETE")
    (alert,) = erased_alerts(line)
    assert alert.startswith("Alerta de seguridad de Peerline:"), alert
    assert "acaba de borrar su numero y sus mensajes" in alert, alert
    assert lines.TEXTER not in alert and "kill" not in alert


def test_erasing_without_crisis_words_alerts_nobody(build: LineBuilder) -> None:
    line, hooks = build()
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "thanks for listening")
    hooks.sms(lines.TEXTER, "DELETE")
    hooks.sms(lines.TEXTER, "DELETE")
    assert erased_alerts(line) == []
