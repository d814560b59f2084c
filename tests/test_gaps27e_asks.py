"""Words after the welcome that ask for a person are a YES (session 27e).

A tester's texter wrote "hi" (the welcome), "how does this work" (the short answer), then "I've
been feeling so lonely... can someone talk to me" and "talk to someone": silence, and never
queued. On a closed line, after the closed answer, "when can i talk to someone" and "hello?"
got silence too. Now a plain request for a person, or a story, joins the line as YES would; other
words get the short answer each time. Driven by signed webhooks, as Twilio sends them.
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
from tests.support.chat import outbox, texts_sent_earlier
from tests.support.line import LineBuilder, line_builder

LONELY = "I've been feeling so lonely lately and nobody listens... can someone talk to me"


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines; Sam and Ria on shift, Ria on call."""
    return line_builder(tmp_path, app_for, lines.ON_CALL)


def purposes(line: LineServices) -> list[str]:
    """Return the purposes of the texts to the texter, oldest first."""
    return [m["purpose"] for m in outbox(line, lines.TEXTER)]


def state(line: LineServices) -> str:
    """Return the texter's conversation's state."""
    with line.db.session() as session:
        return session.scalars(select(Conversation.state)).one()


def test_a_story_asking_for_someone_after_the_menu_joins_the_line(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "how does this work")
    assert purposes(line) == ["welcome", "menu_again"]
    hooks.sms(lines.TEXTER, LONELY)
    assert purposes(line)[-1] == "queued", purposes(line)
    assert state(line) == "queued"


def test_talk_to_someone_after_the_menu_joins_the_line(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "how does this work")
    hooks.sms(lines.TEXTER, "talk to someone")
    assert purposes(line) == ["welcome", "menu_again", "queued"]
    assert state(line) == "queued"


def test_other_words_after_the_short_answer_are_answered_not_met_with_silence(
    build: LineBuilder,
) -> None:
    line, hooks = build()
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "how does this work")
    texts_sent_earlier(line, 30)  # the short answer read, half a minute on (session 28)
    hooks.sms(lines.TEXTER, "hello?")
    assert purposes(line) == ["welcome", "menu_again", "menu_again"]
    assert state(line) == "welcomed"


def test_a_closed_line_answers_every_question_after_the_closed_text(build: LineBuilder) -> None:
    line, hooks = build(lines.NEVER_OPEN)
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "yes")
    hooks.sms(lines.TEXTER, "when can i talk to someone")
    hooks.sms(lines.TEXTER, "hello?")
    assert purposes(line) == ["welcome", *["closed_no_shifts"] * 3], purposes(line)
