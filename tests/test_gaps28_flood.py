"""A flooding texter on a closed line still hears 911 now when an attempt follows (session 28).

The flood rule withholds an automatic text the texter had in the last ten minutes. It spared
the crisis text's purpose on an open line ("crisis") but not on a closed one
("crisis_closed"), so a texter who wrote fast after the softer crisis text and then said they
had taken their pills heard nothing: the 911-now wording rides on the same purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox
from tests.support.line import LineBuilder, line_builder


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines."""
    return line_builder(tmp_path, app_for, lines.NEVER_OPEN)


def sent(line: LineServices, phone: str) -> list[tuple[str, str]]:
    """Return (purpose, body) of every text written to a number, oldest first."""
    return [(m["purpose"], m["body"]) for m in outbox(line, phone)]


@pytest.mark.parametrize("shift", [lines.NEVER_OPEN, lines.ALWAYS_OPEN], ids=["closed", "open"])
def test_an_attempt_after_a_flood_hears_911_now(build: LineBuilder, shift: str) -> None:
    line, hooks = build(shift)
    hooks.sms(lines.TEXTER, "sometimes i want to die")
    first = sent(line, lines.TEXTER)
    assert first[0][1].startswith("You matter"), first
    for n in range(20):  # a fast typist: past the flood rule's twelve a minute
        hooks.sms(lines.TEXTER, f"i cant stop shaking {n}")
    hooks.sms(lines.TEXTER, "i just took all my pills")
    told = sent(line, lines.TEXTER)
    attempt = [body for _, body in told if body.startswith("Please call 911 now")]
    assert len(attempt) == 1, told
    assert "1-800-222-1222" in attempt[0]
