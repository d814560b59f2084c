"""A texter in crisis is asked in their language first, a resting supporter too (session 28).

A tester's Spanish texter flagged in crisis was offered to English-only Sam ("writes in
Spanish; no Spanish speaker is free") while Rosa, who speaks Spanish, rested after a crisis
chat; she was offered them only after Sam's #pass and another texter's offer. Driven by signed
webhooks, as Twilio sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, run_jobs, take_chat
from tests.support.line import LineBuilder, line_builder


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines: Sam (English) and Ria (Spanish and English) on shift."""
    return line_builder(tmp_path, app_for, lines.TWO_ON)


def offers_to(line: LineServices, phone: str) -> list[str]:
    """Return the offers texted to a supporter, oldest first."""
    return [m["body"] for m in outbox(line, phone) if m["purpose"].startswith("offer")]


def ria_rests_after_a_crisis_chat(line: LineServices, hooks: object) -> None:
    """Have Ria take a chat, hear crisis words in it and end it: she rests."""
    hooks.sms(lines.SAM, "#away")  # type: ignore[attr-defined]
    take_chat(line, hooks, lines.TEXTER_2, lines.RIA)  # type: ignore[arg-type]
    hooks.sms(lines.TEXTER_2, "i want to die")  # type: ignore[attr-defined]
    hooks.sms(lines.RIA, "#done")  # type: ignore[attr-defined]
    hooks.sms(lines.SAM, "#back")  # type: ignore[attr-defined]


def test_a_spanish_texter_in_crisis_is_offered_to_the_resting_spanish_speaker_first(
    build: LineBuilder,
) -> None:
    line, hooks = build()
    ria_rests_after_a_crisis_chat(line, hooks)
    to_sam, to_ria = len(offers_to(line, lines.SAM)), len(offers_to(line, lines.RIA))
    hooks.sms(lines.TEXTER, "me quiero morir, ya no aguanto mas")
    run_jobs(line)
    assert len(offers_to(line, lines.RIA)) == to_ria + 1, outbox(line, lines.RIA)[-2:]
    offer = offers_to(line, lines.RIA)[-1]
    # In Ria's Spanish: a priority offer that says she rests and is the best one free for them.
    assert offer.startswith("Prioridad:") and "eres su opcion" in offer, offer
    assert len(offers_to(line, lines.SAM)) == to_sam, offers_to(line, lines.SAM)[-1:]


def test_an_english_texter_in_crisis_still_goes_to_the_free_supporter_first(
    build: LineBuilder,
) -> None:
    line, hooks = build()
    ria_rests_after_a_crisis_chat(line, hooks)
    to_sam, to_ria = len(offers_to(line, lines.SAM)), len(offers_to(line, lines.RIA))
    hooks.sms(lines.TEXTER, "i want to kill myself")
    run_jobs(line)
    assert len(offers_to(line, lines.SAM)) == to_sam + 1
    assert len(offers_to(line, lines.RIA)) == to_ria
