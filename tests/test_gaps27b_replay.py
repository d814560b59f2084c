"""A chat handed back is replayed to whoever takes it: every text they were not shown, once
(session 27b).

The replay to another supporter began at the last acceptance, by each text's arrival time:
what the texter wrote before that (their first words in the queue, which the first supporter
read on taking the chat) never reached a second supporter, and a supporter who takes back a
chat someone else had in between lost what was written between their own #pass and the other
supporter's #take. What each supporter was shown is read from the offers they accepted and
handed back, and from whether each text was shown live (inbound_messages.relayed). Texts
driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from peerline.service.models import utcnow
from peerline.service.routing import PASS_HOLD
from peerline.service.runtime import run_matching
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import run_jobs, texts_to
from tests.support.line import Webhooks, sqlite_line

WAITING = "first words while waiting"
TO_SAM = "this one sam read live"
PASSED = "written after sam passed"
TO_RIA = "this one ria read live"
AFTER_RIA = "written after ria passed"


@pytest.fixture
def line(tmp_path: Path) -> Iterator[LineServices]:
    """Return a line where Sam and Ria are always on shift."""
    with sqlite_line(tmp_path, lines.TWO_ON) as line:
        yield line


def read_by(line: LineServices, number: str, words: str) -> int:
    """Return how many times a supporter was sent the texter's words (live or replayed)."""
    return sum(text.count(f": {words}") for text in texts_to(line, number))


def take(line: LineServices, hooks: Webhooks, number: str) -> None:
    """Have a supporter take the offer the line made them."""
    run_jobs(line)
    assert "#take" in texts_to(line, number)[-1], texts_to(line, number)[-1]
    hooks.sms(number, "#take")
    run_jobs(line)


def sam_then_ria(line: LineServices, hooks: Webhooks) -> None:
    """Sam takes the chat, reads one text live and hands it back; Ria takes it."""
    hooks.sms(lines.RIA, "#away")
    hooks.sms(lines.TEXTER, "yes")
    hooks.sms(lines.TEXTER, WAITING)
    take(line, hooks, lines.SAM)
    hooks.sms(lines.TEXTER, TO_SAM)
    hooks.sms(lines.SAM, "#pass")
    hooks.sms(lines.TEXTER, PASSED)
    hooks.sms(lines.RIA, "#back")
    take(line, hooks, lines.RIA)


def test_another_supporter_is_replayed_the_whole_chat_before_them(
    line: LineServices, hooks: Webhooks
) -> None:
    sam_then_ria(line, hooks)
    assert read_by(line, lines.SAM, WAITING) == 1 and read_by(line, lines.SAM, TO_SAM) == 1
    # Ria was shown nothing of it: all of it, once each, the first words in the queue too.
    for words in (WAITING, TO_SAM, PASSED):
        assert read_by(line, lines.RIA, words) == 1, (words, texts_to(line, lines.RIA))


def test_a_supporter_taking_back_a_chat_someone_else_had_reads_what_they_missed_once(
    line: LineServices, hooks: Webhooks
) -> None:
    sam_then_ria(line, hooks)
    hooks.sms(lines.TEXTER, TO_RIA)
    hooks.sms(lines.RIA, "#pass")
    hooks.sms(lines.TEXTER, AFTER_RIA)
    # Both hold (each passed within the hold): the round at its end offers Sam.
    run_matching(line, now=utcnow() + PASS_HOLD + timedelta(seconds=1))
    take(line, hooks, lines.SAM)
    # What Sam read before (on taking it first, and live) is not sent again; what was
    # written while he was gone, in the queue or to Ria, is sent once.
    for words in (WAITING, TO_SAM, PASSED, TO_RIA, AFTER_RIA):
        assert read_by(line, lines.SAM, words) == 1, (words, texts_to(line, lines.SAM))
    assert read_by(line, lines.RIA, TO_RIA) == 1 and read_by(line, lines.RIA, AFTER_RIA) == 0
