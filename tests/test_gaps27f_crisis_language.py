"""Crisis words plainly in the other language switch a welcomed texter (session 27f).

A tester's texter wrote "hi" (the English welcome), then "creo que no. me quiero morir, ya no
aguanto mas": the crisis text went out in English, the conversation stayed English and the
priority offer went to the English speaker first. Crisis words at first contact are answered
in the language the detector found them in, and several words of it switch the texter; a
short crisis text in the other language is answered in it once, as other short texts are.
Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from peerline.flows import effects as fx
from peerline.flows import texter
from peerline.service.models import Conversation
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import run_jobs, texts_to
from tests.support.line import LineBuilder, line_builder

SPANISH_CRISIS = "creo que no. me quiero morir, ya no aguanto mas"
ENGLISH_CRISIS = "i dont think so. i want to die, i cant take it anymore"
OPEN = texter.LineStatus(open_now=True, position=1, wait_minutes=5)


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines; Sam (English) and Ria (Spanish and English) on shift."""
    return line_builder(tmp_path, app_for, lines.TWO_ON)


def language(line: LineServices) -> str:
    """Return the texter's conversation's language."""
    with line.db.session() as session:
        return session.scalars(select(Conversation.language)).one()


def offers(line: LineServices, phone: str) -> list[str]:
    """Return the offers of a chat sent to a supporter."""
    return [t for t in texts_to(line, phone) if "waits to talk" in t or "espera" in t]


def test_spanish_crisis_after_an_english_welcome_switches(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, SPANISH_CRISIS)
    crisis = texts_to(line, lines.TEXTER)[1]
    assert "Tu vida importa" in crisis and "988" in crisis
    assert "te escribira" in texts_to(line, lines.TEXTER)[2]
    assert language(line) == "es"
    run_jobs(line)
    assert offers(line, lines.RIA) and not offers(line, lines.SAM)  # the Spanish speaker first


def test_english_crisis_after_a_spanish_welcome_switches(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.TEXTER, "hola")
    hooks.sms(lines.TEXTER, ENGLISH_CRISIS)
    crisis = texts_to(line, lines.TEXTER)[1]
    assert "Tu vida importa" not in crisis and "988" in crisis
    assert language(line) == "en"


def test_a_short_crisis_text_in_the_other_language_switches_nothing() -> None:
    # An English texter whose words said English: "me quiero morir" is answered in Spanish,
    # this once, and their language stays.
    welcomed = texter.TexterState(stage=texter.WELCOMED, earlier_languages=("en",))
    outcome = texter.decide(
        welcomed, OPEN, "me quiero morir", crisis="suicide", crisis_language="es"
    )
    assert not any(isinstance(e, fx.SetLanguage) for e in outcome.effects)
    replies = [e for e in outcome.effects if isinstance(e, fx.Reply)]
    assert [(r.key, r.language) for r in replies] == [("crisis", "es"), ("crisis_queued", "es")]


def test_a_clear_crisis_text_switches_a_welcomed_texter() -> None:
    welcomed = texter.TexterState(stage=texter.WELCOMED, earlier_languages=("en",))
    outcome = texter.decide(welcomed, OPEN, SPANISH_CRISIS, crisis="suicide", crisis_language="es")
    assert outcome.effects[0] == fx.SetLanguage("es")
    assert outcome.stage == texter.QUEUED
