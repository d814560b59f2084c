"""A queued texter's text reads when they were last told their place in one query (session
27b): all place texts, then again without the crisis welcome, were two. The answers are the
ones the waiting and safety tests check; here, how many times the step asks. Texts driven by
signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import texts_to
from tests.support.line import Webhooks

PLACE_READ = "max(outbound_messages.created_at)"


@pytest.fixture
def place_reads(line: LineServices) -> Iterator[list[str]]:
    """Yield the statements that read when a texter was last told something, as they run."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        statement = str(args[2])
        if PLACE_READ in statement:
            seen.append(statement)

    event.listen(line.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(line.db.engine, "before_cursor_execute", count)


@pytest.mark.parametrize("first", ["yes", "i want to kill myself"])
def test_a_queued_texters_text_reads_when_they_were_told_their_place_once(
    line: LineServices, hooks: Webhooks, place_reads: list[str], first: str
) -> None:
    hooks.sms(lines.SAM, "#away")  # nobody takes them: they stay in line
    hooks.sms(lines.TEXTER, first)
    told = len(texts_to(line, lines.TEXTER))
    place_reads.clear()
    hooks.sms(lines.TEXTER, "is anyone there?")
    assert len(place_reads) == 1, place_reads
    assert "FILTER (WHERE" in place_reads[0], place_reads[0]
    # After the crisis welcome alone, a question to the line is still answered.
    assert (len(texts_to(line, lines.TEXTER)) > told) == (first != "yes")
