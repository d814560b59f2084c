"""STOP after crisis words reaches on call (session 27c).

A tester's texter wrote crisis words in a chat, then STOP: the supporter heard the texter left
and nobody else did, while the line could no longer text them. Now the on-call coordinators
are alerted, by alias, that a texter who may be in crisis opted out, once a conversation.
Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from peerline.flows.catalogue import Catalogue, Phrase
from peerline.service import segments
from peerline.service.models import Alert, Contact
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, take_chat, texts_to
from tests.support.line import LineBuilder, line_builder
from tests.support.staff_texts import LONG_NAME, longest_crisis_kind

CRISIS = "i want to kill myself"


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines; Sam and Ria on shift, Ria on call (reading Spanish)."""
    return line_builder(tmp_path, app_for, lines.ON_CALL)


def alerts(line: LineServices, kind: str = "crisis_opted_out") -> list[Alert]:
    """Return the alerts of one kind, oldest first."""
    with line.db.session() as session:
        found = session.scalars(select(Alert).where(Alert.kind == kind).order_by(Alert.id))
        return list(found)


def alias_of(line: LineServices) -> str:
    """Return the only texter's alias."""
    with line.db.session() as session:
        return session.scalars(select(Contact.alias)).one()


def test_stop_after_crisis_words_in_a_chat_alerts_on_call_once(build: LineBuilder) -> None:
    line, hooks = build()
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, CRISIS)
    told_ria = len(texts_to(line, lines.RIA))
    hooks.sms(lines.TEXTER, "STOP")
    alias = alias_of(line)
    (alert,) = alerts(line)
    assert alert.detail.startswith(f"{alias}: may be in crisis (has thoughts of suicide)")
    assert "opted out (STOP) of a chat with Sam" in alert.detail, alert.detail
    new = texts_to(line, lines.RIA)[told_ria:]
    assert len(new) == 1, new
    # Ria reads Spanish first: by alias, in her words, never the texter's number.
    assert new[0].startswith(f"Alerta de seguridad de Peerline: {alias} puede estar en crisis")
    assert "acaba de darse de baja (STOP) de un chat con Sam" in new[0], new[0]
    assert lines.TEXTER not in new[0] and lines.TEXTER[2:] not in new[0]
    # Sam hears the texter left, and that on call knows.
    left = [m for m in outbox(line, lines.SAM) if m["purpose"] == "texter_opted_out"]
    assert len(left) == 1 and "the on-call coordinator has been told" in left[0]["body"]
    # A second opt-out word changes nothing: once a conversation.
    hooks.sms(lines.TEXTER, "END")
    assert len(alerts(line)) == 1
    assert len(texts_to(line, lines.RIA)) == told_ria + 1


def test_an_opt_out_word_in_line_after_crisis_words_alerts_on_call(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.SAM, "#away")
    hooks.sms(lines.RIA, "#away")  # nobody takes the chat: the texter waits in line
    hooks.sms(lines.TEXTER, CRISIS)  # a first text in crisis joins the line at once
    hooks.sms(lines.TEXTER, "quit")
    (alert,) = alerts(line)
    assert "has just opted out (STOP): the line can no longer text them" in alert.detail
    # They leave the line with that word: not counted among those waiting.
    assert "Fila: 0 esperando" in texts_to(line, lines.RIA)[-1]


def test_stop_without_crisis_words_alerts_nobody(build: LineBuilder) -> None:
    line, hooks = build()
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "thanks for listening")
    hooks.sms(lines.TEXTER, "STOP")
    assert alerts(line) == []
    left = [m for m in outbox(line, lines.SAM) if m["purpose"] == "texter_opted_out"]
    assert len(left) == 1 and "on-call" not in left[0]["body"]


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_alert_fits_two_segments(language: str) -> None:
    catalogue = Catalogue.load()
    kind = longest_crisis_kind(catalogue, language)
    for what in ("alert_what_stopped", "alert_what_stopped_chat"):
        text = catalogue.render(
            language,
            "safety_alert",
            alias="K7777",
            what=Phrase(what, {"kind": kind, "name": LONG_NAME}),
            queue=140,
        )
        assert segments.count(text) <= 2, (len(text), text)
