"""The console's live page names where each call under way is, in words: a call hearing the
crisis offer too. Calls driven by signed webhooks, as Twilio sends them; the page read as a
signed-in coordinator reads it."""

from __future__ import annotations

from pathlib import Path

from peerline.console.calls import STATE_LABELS
from peerline.service.voice import models
from tests.support import lines
from tests.support.console import signed_in
from tests.support.seed import add_coordinator
from tests.support.voice import Phone, the_call, voice_app, voice_line

CRISIS_WORDS = "I have no one to talk to and I want to end my life"


def test_a_call_hearing_the_crisis_offer_is_named_on_the_live_page(tmp_path: Path) -> None:
    line = voice_line(tmp_path, lines.ON_CALL)
    phone = Phone(line, voice_app(line))
    add_coordinator(line)
    at_menu, offered, transferred = (phone.call(n) for n in (lines.TEXTER, lines.TEXTER_2, None))
    at_menu.dial_in()
    offered.speak(offered.dial_in(), CRISIS_WORDS)
    transferred.press(transferred.dial_in(), "3")
    assert the_call(line, offered).state == models.OFFERED
    page = signed_in(phone.app).get("/console/live").get_data(as_text=True)
    assert "hearing the crisis offer" in page
    assert "at the menu" in page and "sent to the crisis line" in page
    # Not the state's bare name, as a state without a label shows.
    assert "crisis offer" not in page.replace("hearing the crisis offer", "")


def test_every_state_a_call_under_way_can_be_in_has_a_label() -> None:
    under_way = {
        models.MENU,
        models.OFFERED,
        models.RINGING,
        models.CONNECTED,
        models.VOICEMAIL,
        models.TRANSFERRED,
        models.PLACING,
        models.DIALING,
        models.CALLING_SUPPORTER,
        models.BRIDGING,
    }
    assert set(STATE_LABELS) == under_way
    assert STATE_LABELS[models.OFFERED] == "hearing the crisis offer"
