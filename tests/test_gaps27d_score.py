"""A bare "#note 3" answers the line's question for a chat's missing 1-5 (session 27d).

A supporter's "#note lonely, heavy one" for the chat just ended was kept without a score and
they were asked: "Text #note and the number... and it is added". They had taken the next
chat meanwhile, so their "#note 3" was filed for that chat, not for the one the line asked
about. Now a score alone, within minutes of that question and while it is still the line's
latest word about notes, completes the chat (or call) it asked about, and the answer names
it. A note with topics or words is about the current chat, as before. Driven by signed
webhooks, as Twilio sends them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from peerline.service.models import ContactRecord, Conversation, OutboundMessage
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import run_jobs, take_chat, texts_to
from tests.support.line import Webhooks
from tests.support.voice import Caller, Phone, Twiml, voice_app, voice_line

ASKED = "How did it go, 1 (hard) to 5 (went well)? Text #note and the number"


def alias_of(line: LineServices, texter: str) -> str:
    """Return the alias Sam knows a texter by, from the offer he was sent."""
    offers = [t for t in texts_to(line, lines.SAM) if "is waiting to talk" in t]
    found = re.match(r"(?:PRIORITY: )?([A-Z]\d+) is waiting", offers[-1])
    assert found is not None, offers[-1]
    return found.group(1)


def score_asked_then_next_chat(line: LineServices, hooks: Webhooks) -> tuple[str, str]:
    """Have Sam end a chat, note it without a score (and be asked for one), then take the
    next texter's chat; return the two aliases, the first chat's and the current one's."""
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    first = alias_of(line, lines.TEXTER)
    hooks.sms(lines.SAM, "#done")
    hooks.sms(lines.SAM, "#note lonely, heavy one")
    assert texts_to(line, lines.SAM)[-1].startswith(f"Noted about {first}. {ASKED}")
    take_chat(line, hooks, lines.TEXTER_2, lines.SAM)
    return first, alias_of(line, lines.TEXTER_2)


def scores(line: LineServices) -> list[tuple[int | None, str]]:
    """Return each chat's noted score and topics, in the order the chats began."""
    with line.db.session() as session:
        rows = session.execute(
            select(Conversation.id, ContactRecord.supporter_score, ContactRecord.topics)
            .outerjoin(ContactRecord, ContactRecord.conversation_id == Conversation.id)
            .order_by(Conversation.id)
        ).all()
    return [(score, topics or "") for _, score, topics in rows]


def test_a_score_alone_from_the_next_chat_completes_the_chat_asked_about(
    line: LineServices, hooks: Webhooks
) -> None:
    first, _ = score_asked_then_next_chat(line, hooks)
    hooks.sms(lines.SAM, "#note 3")
    assert scores(line) == [(3, "lonely"), (None, "")]
    answer = texts_to(line, lines.SAM)[-1]
    assert answer.startswith(f"Noted about {first}: 3/5, lonely. Thank you"), answer
    assert not any("Noted" in text for text in texts_to(line, lines.TEXTER_2))
    # Answered once: a second score is about the current chat again.
    hooks.sms(lines.SAM, "#note 4")
    assert scores(line) == [(3, "lonely"), (4, "")]


def test_a_note_with_topics_in_the_next_chat_is_about_that_chat(
    line: LineServices, hooks: Webhooks
) -> None:
    _, current = score_asked_then_next_chat(line, hooks)
    hooks.sms(lines.SAM, "#note 4 family")
    assert scores(line) == [(None, "lonely"), (4, "family")]
    assert texts_to(line, lines.SAM)[-1].startswith(f"Noted about {current}: 4/5, family.")


def test_a_score_long_after_the_question_is_about_the_current_chat(
    line: LineServices, hooks: Webhooks
) -> None:
    _, current = score_asked_then_next_chat(line, hooks)
    with line.db.session() as session:
        for asked in session.scalars(
            select(OutboundMessage).where(OutboundMessage.purpose == "note_ok_no_score")
        ):
            asked.created_at -= timedelta(minutes=11)
    hooks.sms(lines.SAM, "#note 3")
    assert scores(line) == [(None, "lonely"), (3, "")]
    assert texts_to(line, lines.SAM)[-1].startswith(f"Noted about {current}: 3/5.")


def test_once_the_next_chat_ended_a_score_is_about_that_one(
    line: LineServices, hooks: Webhooks
) -> None:
    _, current = score_asked_then_next_chat(line, hooks)
    hooks.sms(lines.SAM, "#done")  # its own invitation to note it comes after the question
    hooks.sms(lines.SAM, "#note 5")
    assert scores(line) == [(None, "lonely"), (5, "")]
    assert texts_to(line, lines.SAM)[-1].startswith(f"Noted about {current}: 5/5.")


def answered_by(caller: Caller, ring: Twiml, number: str) -> None:
    """Have the supporter at `number` take the call and the other phone stop ringing."""
    for leg in caller.legs(ring):
        if leg.to == number:
            leg.press(leg.answer(), "1")
        else:
            leg.status("canceled")


def test_a_score_alone_from_a_chat_completes_the_call_asked_about(tmp_path: Path) -> None:
    line = voice_line(tmp_path, lines.ALWAYS_OPEN)
    phone = Phone(line, voice_app(line))
    caller = phone.call(lines.TEXTER)
    ring = caller.press(caller.dial_in(), "1")
    answered_by(caller, ring, lines.SAM)
    caller.dial_ends(ring, "completed", 300, CallStatus="completed")
    phone.hooks.sms(lines.SAM, "#note lonely, heavy one")
    run_jobs(line)
    assert ASKED in texts_to(line, lines.SAM)[-1]
    take_chat(line, phone.hooks, lines.TEXTER_2, lines.SAM)
    phone.hooks.sms(lines.SAM, "#note 2")
    with line.db.session() as session:
        kept = session.execute(
            select(ContactRecord.call_id, ContactRecord.supporter_score, ContactRecord.topics)
        ).all()
    assert [(score, topics) for call, score, topics in kept if call] == [(2, "lonely")]
    assert all(score is None for call, score, _ in kept if not call)
    assert texts_to(line, lines.SAM)[-1].startswith("Noted about "), texts_to(line, lines.SAM)
    assert ": 2/5, lonely." in texts_to(line, lines.SAM)[-1]
