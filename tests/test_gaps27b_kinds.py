"""The console names a crisis category in words, as alerts do, never its code (session 27b).

The call-backs page showed a voicemail's stored category as it was kept: "crisis: burden
hopelessn" (16 letters of burden_hopelessness) and "crisis: crisis" for a crisis with no kind
named; the crisis review's form offered "wish dead" and "danger place". Calls driven by signed
webhooks, as Twilio sends them; the pages read as a signed-in coordinator reads them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from peerline.service.models import Conversation
from peerline.service.services import LineServices
from peerline.service.voice.models import CallbackRequest
from tests.support import lines
from tests.support.chat import take_chat
from tests.support.console import Console, signed_in
from tests.support.line import Webhooks, sqlite_line
from tests.support.seed import add_coordinator
from tests.support.voice import Caller, Phone, closed_line_file, voice_app, voice_line


@pytest.fixture
def line(tmp_path: Path) -> Iterator[LineServices]:
    """Return a line where Sam is always on shift, with a coordinator for the console and a
    phrase file of its own (the crisis review's form shows only with one)."""
    phrases = tmp_path / "line_phrases.yaml"
    phrases.write_text("# the line's own phrases\n", encoding="utf-8")
    with sqlite_line(
        tmp_path, lines.ALWAYS_OPEN, coordinator=True, PEERLINE_CRISIS_PHRASES=str(phrases)
    ) as line:
        yield line


CODES = ("hopelessn", "hopelessness", "wish dead", "wish_dead", "crisis: crisis", "_")


def left_a_message(caller: Caller, words: str) -> None:
    """Have a caller say `words` at the menu, stay on through the crisis offer and record."""
    offer = caller.speak(caller.dial_in(), words)
    assert offer.one("Gather").attrib["action"].endswith("/offer/en")
    message = caller.stay_silent(offer)
    assert "Record" in message.verbs
    caller.recorded(message, seconds=20)


def test_the_call_backs_page_names_a_crisis_in_words(tmp_path: Path) -> None:
    line = voice_line(tmp_path, closed_line_file())
    phone = Phone(line, voice_app(line))
    add_coordinator(line)
    left_a_message(phone.call(lines.TEXTER), "I feel like such a burden and there is no hope left")
    left_a_message(phone.call(lines.TEXTER_2), "suicide")
    with line.db.session() as session:
        found = session.execute(select(CallbackRequest.reference, CallbackRequest.crisis))
        kept = {reference: crisis for reference, crisis in found}
    # Stored as before: 16 letters of the category, and "crisis" for none named.
    assert sorted(kept.values()) == ["burden_hopelessn", "crisis"], kept
    page = signed_in(phone.app).get("/console/callbacks/").get_data(as_text=True)
    burden, unnamed = (
        page.split(f'data-reference="{reference}"', 1)[1].split("</th>", 1)[0]
        for reference in sorted(kept, key=lambda r: kept[r])
    )
    assert "crisis: feels a burden, without hope" in burden, burden
    assert "crisis: no details" in unnamed, unnamed
    for row in (burden, unnamed):
        for code in CODES:
            assert code not in row, row


def test_the_crisis_review_offers_categories_in_words(
    line: LineServices, hooks: Webhooks, console: Console
) -> None:
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "gave my guitar to my brother today")
    hooks.sms(lines.SAM, "#alert")
    with line.db.session() as session:
        conversation_id = session.scalars(select(Conversation.id)).one()
    listed = console.get("/console/crisis-review/").get_data(as_text=True)
    assert f"(#{conversation_id})" in listed
    shown = console.post(
        f"/console/crisis-review/{conversation_id}", {"reason": "teaching the detector its miss"}
    )
    assert shown.status_code == 200
    form = shown.get_data(as_text=True).split('name="category"', 1)[1].split("</select>", 1)[0]
    assert '<option value="wish_dead">wishes to be dead</option>' in form, form
    assert '<option value="danger_place">at or heading to a place of danger</option>' in form
    assert ">feels a burden, without hope<" in form
    for code in ("wish dead", "danger place", "burden hopelessness", "active thoughts"):
        assert code not in form, form
