"""An attempt under way hears 911 now first (session 27c).

A tester's "i took all my pills" got the same soft crisis text as hopelessness ("You matter...
call or text 988"), and the supporter read only "may be in crisis". Now the detector's
`attempt` (pills or poison taken, a cut bleeding) gets 911 now and Poison Control first, in
one segment, English and Spanish, and the offer and the [SAFETY] flag name the kind in words.
Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from peerline.flows.catalogue import Catalogue
from peerline.service import segments
from peerline.service.models import SafetyEvent
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, run_jobs, take_chat, texts_to
from tests.support.line import LineBuilder, line_builder

POISON = "1-800-222-1222"
PILLS = "i took all my pills"


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines; Sam and Ria on shift, Ria on call (reading Spanish)."""
    return line_builder(tmp_path, app_for, lines.ON_CALL)


def sent(line: LineServices, phone: str) -> list[tuple[str, str]]:
    """Return (purpose, body) of every text written to a number, oldest first."""
    return [(m["purpose"], m["body"]) for m in outbox(line, phone)]


@pytest.mark.parametrize(
    ("language", "key", "start"),
    [
        ("en", "crisis_attempt", "Please call 911 now"),
        ("en", "crisis_attempt_closed", "Please call 911 now"),
        ("es", "crisis_attempt", "Por favor llama al 911 ya"),
        ("es", "crisis_attempt_closed", "Por favor llama al 911 ya"),
    ],
)
def test_the_attempt_text_says_911_now_first_in_one_segment(
    language: str, key: str, start: str
) -> None:
    text = Catalogue.load().render(language, key)
    assert text.startswith(start), text
    assert POISON in text and segments.count(text) == 1, (len(text), text)


def test_a_first_text_of_pills_taken_hears_911_now_before_anything_else(
    build: LineBuilder,
) -> None:
    line, hooks = build()
    hooks.sms(lines.TEXTER, PILLS)
    told = sent(line, lines.TEXTER)
    purpose, first = told[0]
    # The crisis text's purpose (its lane, its window), in the words for an attempt.
    assert purpose == "crisis" and first.startswith("Please call 911 now"), told
    assert POISON in first and "You matter" not in told[0][1]
    assert [p for p, _ in told] == ["crisis", "crisis_queued"], told
    run_jobs(line)
    offers = [
        body
        for phone in (lines.SAM, lines.RIA)
        for purpose, body in sent(line, phone)
        if purpose == "offer_priority"
    ]
    assert offers, "nobody was offered the chat"
    for offer in offers:
        # Sam reads English, Ria Spanish first: the kind in each one's words.
        assert (
            "Crisis: an attempt may be under way." in offer
            or "Crisis: puede haber un intento en curso." in offer
        ), offer


def test_pills_taken_in_spanish_hear_it_in_spanish(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.TEXTER, "me tome todas las pastillas")
    purpose, first = sent(line, lines.TEXTER)[0]
    assert purpose == "crisis" and first.startswith("Por favor llama al 911 ya"), first
    assert POISON in first and segments.count(first) == 1


def test_with_nobody_on_shift_the_attempt_text_says_988_is_there(build: LineBuilder) -> None:
    line, hooks = build(lines.NEVER_OPEN)
    hooks.sms(lines.TEXTER, PILLS)
    purpose, first = sent(line, lines.TEXTER)[0]
    assert purpose == "crisis_closed" and first.startswith("Please call 911 now"), first
    assert POISON in first and "988 is there day and night" in first


def test_in_a_chat_the_supporter_reads_the_kind_and_what_the_texter_was_told(
    build: LineBuilder,
) -> None:
    line, hooks = build()
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, PILLS)
    assert texts_to(line, lines.TEXTER)[-1].startswith("Please call 911 now")
    flags = [b for p, b in sent(line, lines.SAM) if p == "safety_flag"]
    assert len(flags) == 1, flags
    assert flags[0].startswith("[SAFETY] ") and "an attempt may be under way" in flags[0]
    assert "call 911 now" in flags[0], flags[0]
    assert segments.count(flags[0]) <= 2


def test_a_softer_crisis_flag_names_its_kind_too(build: LineBuilder) -> None:
    line, hooks = build()
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "sometimes i want to die")
    assert texts_to(line, lines.TEXTER)[-1].startswith("You matter")
    (flag,) = [b for p, b in sent(line, lines.SAM) if p == "safety_flag"]
    assert "may be in crisis (wishes to be dead)" in flag, flag


def test_pills_taken_after_softer_crisis_words_still_hear_911_now_once(
    build: LineBuilder,
) -> None:
    line, hooks = build()
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "sometimes i want to die")
    assert texts_to(line, lines.TEXTER)[-1].startswith("You matter")
    # The resources went out a moment ago; an overdose taken is news that needs 911.
    hooks.sms(lines.TEXTER, "i just took all my pills")
    told = sent(line, lines.TEXTER)
    assert told[-1][0] == "crisis" and told[-1][1].startswith("Please call 911 now"), told
    # Said again within the crisis window: not repeated.
    hooks.sms(lines.TEXTER, "i took them an hour ago")
    assert sent(line, lines.TEXTER) == told
    with line.db.session() as session:
        categories = [e.category for e in session.scalars(select(SafetyEvent))]
    assert categories[:2] == ["wish_dead", "attempt"], categories
