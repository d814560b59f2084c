"""Every automatic text to a supporter or the on-call coordinator is in that person's language,
the words inside it too (a crisis category, a day), as the provider receives it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from peerline.flows import effects as fx
from peerline.flows import supporter as supporter_flow
from peerline.flows.catalogue import Catalogue, Phrase
from peerline.service import outbox, segments
from peerline.service.models import Alert, Supporter
from peerline.service.runtime import Inbound, Runtime, receive_sms
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import run_jobs
from tests.support.fake_twilio import FakeTwilio
from tests.support.line import twilio_line
from tests.support.staff_texts import alert_words, crisis_kinds

LINE_NUMBER = "+15005550006"
# Ria is the on-call coordinator; she reads Spanish first, or here English only.
SPANISH_ON_CALL = lines.ON_CALL
ENGLISH_ON_CALL = lines.ON_CALL.replace("languages: [es, en]", "languages: [en]")
DANGER_PLACE = "im on the bridge"
THOUGHTS = "i want to kill myself"


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """Return a fake Twilio the line sends through."""
    with FakeTwilio() as fake:
        yield fake


def text_line(line: LineServices, sender: str, body: str) -> None:
    """Deliver one SMS to the line, as the webhook would, and run the jobs it makes."""
    receive_sms(line, Inbound("SM" + secrets.token_hex(16), sender, LINE_NUMBER, body))
    run_jobs(line)


def alerts_to_ria(twilio: FakeTwilio) -> list[dict[str, Any]]:
    """Return the alerts the provider took for Ria, in either language."""
    return [
        m
        for m in twilio.messages_to(lines.RIA)
        if m["body"].startswith(("Peerline", "Alerta de", "Alerta de seguridad de Peerline"))
    ]


@pytest.mark.parametrize(
    ("line_file", "words", "opening", "kind", "english_kind"),
    [
        (
            SPANISH_ON_CALL,
            DANGER_PLACE,
            "Alerta de seguridad de Peerline: ",
            "puede estar en crisis (esta o va a un lugar de peligro)",
            "place of danger",
        ),
        (
            SPANISH_ON_CALL,
            THOUGHTS,
            "Alerta de seguridad de Peerline: ",
            "puede estar en crisis (tiene pensamientos suicidas)",
            "thoughts of suicide",
        ),
        (
            ENGLISH_ON_CALL,
            DANGER_PLACE,
            "Peerline safety alert: ",
            "may be in crisis (at or heading to a place of danger)",
            "",
        ),
    ],
    ids=["spanish-danger-place", "spanish-thoughts", "english-danger-place"],
)
def test_the_on_call_coordinator_reads_a_crisis_alert_in_their_language(
    tmp_path: Path,
    twilio: FakeTwilio,
    line_file: str,
    words: str,
    opening: str,
    kind: str,
    english_kind: str,
) -> None:
    line = twilio_line(tmp_path, twilio, line_file)
    text_line(line, lines.TEXTER, words)
    [alert] = alerts_to_ria(twilio)
    body = alert["body"]
    assert body.startswith(opening) and kind in body, body
    if english_kind:
        assert english_kind not in body and "crisis (" in body
    assert "_" not in body  # never the category's name in the code
    # The texter's number and words stay out of it, as in every alert.
    assert lines.TEXTER[-7:] not in body and words not in body
    assert int(alert["num_segments"]) <= 2
    with line.db.session() as session:
        # The console keeps its English record of the same alert.
        [record] = session.scalars(select(Alert)).all()
        assert record.kind == "crisis" and "may be in crisis (" in record.detail


def test_a_supporters_alert_and_block_reach_a_spanish_coordinator_in_spanish(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    line = twilio_line(tmp_path, twilio, SPANISH_ON_CALL)
    text_line(line, lines.TEXTER, "yes")
    text_line(line, lines.SAM, "#take")  # Sam ranks first
    text_line(line, lines.SAM, "#alert")
    text_line(line, lines.SAM, "#block")
    raised, blocked = (m["body"] for m in alerts_to_ria(twilio))
    assert raised.startswith("Alerta de seguridad de Peerline: ")
    assert raised.endswith("alerta dada por Sam. Fila: 0 esperando. Mira la consola.")
    assert "bloqueada/o por Sam." in blocked and "blocked by" not in blocked
    # Sam reads English: his own answers stay English.
    assert any(m["body"].startswith("Alert raised about ") for m in twilio.messages_to(lines.SAM))


def test_a_gap_in_the_rota_reaches_a_spanish_coordinator_with_a_spanish_day(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    toronto = ZoneInfo("America/Toronto")
    tomorrow = (datetime.now(toronto) + timedelta(days=1)).date()
    spanish_ria = lines.sam_covers(tomorrow).replace("on_call:", "languages: [es]\n    on_call:")
    line = twilio_line(tmp_path, twilio, spanish_ria)
    start = datetime.combine(tomorrow, datetime.min.time(), toronto).replace(hour=10)
    with line.db.session() as session:
        sam = session.scalars(select(Supporter).where(Supporter.name == "Sam")).one()
        assert Runtime(line, session).shift_reminder(sam.id, start, start + timedelta(hours=4))
    text_line(line, lines.SAM, "#away")
    [gap] = alerts_to_ria(twilio)
    assert gap["body"].startswith("Peerline: Sam no puede cubrir su turno mañana a las 10:00")
    with line.db.session() as session:
        [record] = session.scalars(select(Alert)).all()
        assert "can't make the shift tomorrow at 10:00 AM" in record.detail



@pytest.mark.parametrize(
    ("line_file", "opening"),
    [
        (SPANISH_ON_CALL, "Alerta de Peerline: los mensajes de chat esperan 45 s al operador"),
        (ENGLISH_ON_CALL, "Peerline alert: chat texts are waiting 45 s for the carrier"),
    ],
    ids=["spanish", "english"],
)
def test_the_relay_delay_alert_is_in_the_coordinators_language(
    tmp_path: Path, twilio: FakeTwilio, line_file: str, opening: str
) -> None:
    line = twilio_line(tmp_path, twilio, line_file)
    outbox._relay_waited(line, 45.0)  # chat texts waited 45 s for the carrier
    run_jobs(line)
    [alert] = alerts_to_ria(twilio)
    assert alert["body"].startswith(opening) and int(alert["num_segments"]) <= 2


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_safety_alert_fits_two_segments(language: str) -> None:
    catalogue = Catalogue.load()
    for alias in ("K7777", Phrase("a_caller")):
        for what in alert_words(catalogue, language):
            text = catalogue.render(language, "safety_alert", alias=alias, what=what, queue=140)
            assert segments.count(text) <= 2, (language, len(text), text)


def test_every_crisis_category_has_spanish_words_in_gsm7() -> None:
    catalogue = Catalogue.load()
    spanish, english = crisis_kinds(catalogue, "es"), crisis_kinds(catalogue, "en")
    for es, en in zip(spanish, english, strict=True):
        assert es != en and segments.is_gsm7(es), es  # an accent would make the alert UCS-2



def test_away_in_a_chat_says_so_in_the_supporters_language(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    sam_gone = f'phone: "{lines.SAM}"\n    active: false'
    line = twilio_line(tmp_path, twilio, SPANISH_ON_CALL.replace(f'phone: "{lines.SAM}"', sam_gone))
    text_line(line, lines.TEXTER, "yes")
    text_line(line, lines.RIA, "#take")
    text_line(line, lines.RIA, "#away")
    away = twilio.messages_to(lines.RIA)[-1]["body"]
    assert away.startswith("Estas ausente") and "Sigues en tu conversacion con " in away, away
    assert "You are still" not in away


def test_a_caller_with_a_hidden_number_is_named_in_the_supporters_words() -> None:
    catalogue = Catalogue.load()
    state = supporter_flow.SupporterState(last_alias=Phrase("a_caller"))
    [_, reply] = supporter_flow.decide(state, "#referred").effects
    assert isinstance(reply, fx.Reply)
    spanish = catalogue.render("es", reply.key, **reply.params)
    assert spanish == "Anotado que una persona que llama recibio una derivacion. Gracias."
    assert catalogue.render("en", reply.key, **reply.params).startswith("Noted that a caller was")
