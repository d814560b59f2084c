"""Asking for the same supporter just after a chat gets the prompt to reply SAME (session 27e).

"Can I talk to Sam again" right after a chat got the after-chat answer ("We've passed this on
to Sam"), not how to ask for Sam. Driven by signed webhooks, as Twilio sends them.
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
    """Return a builder of lines; Sam and Ria on shift, Ria on call."""
    return line_builder(tmp_path, app_for, lines.ON_CALL)


def test_asking_for_sam_just_after_the_chat_gets_the_same_prompt(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.RIA, "#away")
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.SAM, "#done")
    hooks.sms(lines.TEXTER, "Can I talk to Sam again")
    last = outbox(line, lines.TEXTER)[-1]
    assert last["purpose"] == "menu_again_same", last
    assert "Reply SAME to ask for Sam again" in last["body"]
    hooks.sms(lines.TEXTER, "same")
    assert outbox(line, lines.TEXTER)[-1]["purpose"] == "same_ok"


def test_other_words_after_the_chat_are_still_passed_on(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.RIA, "#away")
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.SAM, "#done")
    hooks.sms(lines.TEXTER, "were at the er now")
    assert outbox(line, lines.TEXTER)[-1]["purpose"] == "after_chat_passed"
