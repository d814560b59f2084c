"""Staff read a crisis category in words, never its code (session 27).

A missed-call alert read "who used crisis words (wish_dead)", and a crisis with no kind named
(a caller saying "suicide" alone) read "may be in crisis (crisis)". Driven by signed webhooks,
as Twilio sends them; Ria is the on-call coordinator and reads Spanish first.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from peerline.service.models import Alert
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import texts_to
from tests.support.voice import Phone, voice_app, voice_line

CODES = ("wish_dead", "(crisis)", "_")


def phone_for(tmp_path: Path) -> Phone:
    """Return Twilio's side of a line with Sam and Ria on shift, Ria on call."""
    line = voice_line(tmp_path, lines.ON_CALL)
    return Phone(line, voice_app(line))


def alert_details(line: LineServices, kind: str) -> list[str]:
    """Return the console's details of the alerts of a kind, oldest first."""
    with line.db.session() as session:
        return list(
            session.scalars(select(Alert.detail).where(Alert.kind == kind).order_by(Alert.id))
        )


def test_a_missed_call_alert_says_the_crisis_in_words(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), "I just want to be dead")
    assert offer.one("Gather").attrib["action"].endswith("/offer/en")
    caller.status("completed", 20)
    (missed,) = alert_details(phone.line, "missed_call")
    assert "who used crisis words (wishes to be dead)" in missed, missed
    for code in CODES:
        assert code not in missed, missed
    (crisis,) = alert_details(phone.line, "crisis")
    assert "may be in crisis (wishes to be dead) on a phone call" in crisis
    assert "desea estar muerto/a" in texts_to(phone.line, lines.RIA)[-1]


def test_a_crisis_with_no_kind_named_is_said_in_words(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(caller.dial_in(), "suicide")
    assert offer.one("Gather").attrib["action"].endswith("/offer/en")
    (crisis,) = alert_details(phone.line, "crisis")
    assert crisis.endswith("may be in crisis (no details) on a phone call"), crisis
    (told,) = [t for t in texts_to(phone.line, lines.RIA) if "alerta" in t.lower()]
    assert "puede estar en crisis (sin detalles) en una llamada" in told, told
    caller.status("completed", 20)
    (missed,) = alert_details(phone.line, "missed_call")
    assert ", who may be in crisis, who hung up at the crisis offer" in missed, missed
    for text in (crisis, told, missed):
        for code in CODES:
            assert code not in text, text
