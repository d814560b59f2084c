"""A texter's language does not switch on one word after a neutral text (session 27e).

A queued English texter wrote "hola? hay alguien?" (no switch), then "ok", then "gracias", and
the conversation became Spanish: the neutral "ok" was left out, so "gracias" made two Spanish
texts in a row. Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from peerline.service.models import Conversation
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.line import LineBuilder, line_builder


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines; Sam and Ria on shift, Ria on call."""
    return line_builder(tmp_path, app_for, lines.ON_CALL)


def language(line: LineServices) -> str:
    """Return the texter's conversation's language."""
    with line.db.session() as session:
        return session.scalars(select(Conversation.language)).one()


def test_one_word_after_a_neutral_text_switches_nothing(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.SAM, "#away")
    hooks.sms(lines.RIA, "#away")  # nobody takes the chat: the texter waits in line
    hooks.sms(lines.TEXTER, "hi, I would like to talk to someone please")
    hooks.sms(lines.TEXTER, "yes")
    hooks.sms(lines.TEXTER, "hola? hay alguien?")
    assert language(line) == "en"
    hooks.sms(lines.TEXTER, "ok")
    hooks.sms(lines.TEXTER, "gracias")
    assert language(line) == "en"
