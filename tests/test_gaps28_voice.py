"""A caller who tells of someone else's danger is alerted and whispered as that (session 28).

"my daughter took pills" at the menu got the worried caller's offer, but on call was texted
that the caller "may be in crisis (an attempt may be under way) on a phone call", and the
supporter who answered after the caller asked for a peer heard "They may be in crisis.": both
read someone else's emergency as the caller's own. Driven by signed webhooks, TwiML parsed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox
from tests.support.voice import alerts, menu_of, offered_in, phone_for, the_call


def alert_texts(line: LineServices) -> list[str]:
    """Return the alert texts to Ria (on call), oldest first."""
    return [m["body"] for m in outbox(line, lines.RIA) if m["purpose"] == "safety_alert_call"]


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", "my daughter took pills"), ("es", "mi hija se tomo unas pastillas")],
)
def test_someone_elses_attempt_is_alerted_and_whispered_as_theirs(
    tmp_path: Path, language: str, words: str
) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(menu_of(caller, language), words)
    call = the_call(phone.line, caller)
    offered_in(offer, call.id, language, "worried")
    assert alerts(phone.line) == ["crisis"]
    (alert,) = alert_texts(phone.line)
    # Ria reads Spanish first: the alert is in her words either way.
    assert "otra persona en peligro" in alert, alert
    assert "puede estar en crisis" not in alert, alert
    # A caller waits on the phone, not in the texting queue: no "Fila: 0 esperando".
    assert "Fila" not in alert and alert.endswith("Mira la consola."), alert
    ring = caller.press(offer, "1")
    legs = caller.legs(ring)
    assert legs, ring
    whisper = legs[0].answer().spoken()
    assert "They are worried about someone else at risk." in whisper, whisper
    assert "They may be in crisis." not in whisper, whisper


def test_the_callers_own_crisis_is_still_whispered_as_theirs(tmp_path: Path) -> None:
    phone = phone_for(tmp_path)
    caller = phone.call(lines.TEXTER)
    offer = caller.speak(menu_of(caller, "en"), "i took all my pills")
    offered_in(offer, the_call(phone.line, caller).id, "en")
    (alert,) = alert_texts(phone.line)
    assert "puede estar en crisis" in alert, alert
    legs = caller.legs(caller.press(offer, "1"))
    whisper = legs[0].answer().spoken()
    assert "They may be in crisis." in whisper and "someone else" not in whisper, whisper
