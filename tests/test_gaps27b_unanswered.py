"""A chat handed back because its supporter never replied holds like a #pass (session 27b).

The line hands a chat back to the queue when its supporter wrote nothing for the quiet time
(`timers.chat_tick`): the texter is told another is being found, the supporter is set away.
But nothing held the pair: a #back at once was offered the very texter who had just been
left unanswered. Now the hand-back holds that texter from that supporter for
`routing.pass_hold`, with a #pass's crisis exception (crisis words written since are news to
them). Texts driven by signed webhooks, as Twilio sends them; the chat's quiet time is made to
have passed by moving its record back, and its timer run as the worker runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from peerline.service.models import Conversation, InboundMessage, Offer, Supporter, utcnow
from peerline.service.routing import PASS_HOLD
from peerline.service.runtime import run_matching, transaction
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import run_jobs, take_chat, texts_to
from tests.support.line import Webhooks, sqlite_line

OFFERED = "#take within"


@pytest.fixture
def line(tmp_path: Path) -> Iterator[LineServices]:
    """Return a line where Sam and Ria are always on shift and Ria is on call (and away, so
    Sam is the one supporter taking chats until she is #back)."""
    with sqlite_line(tmp_path, lines.ON_CALL) as line:
        yield line


def left_unanswered(
    line: LineServices, hooks: Webhooks, first: str = "hello? anyone there?"
) -> datetime:
    """Have Sam take the texter's chat and never write; run its timer after the quiet time;
    return when it was handed back."""
    hooks.sms(lines.RIA, "#away")
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, first)
    quiet = timedelta(minutes=line.settings.idle_close_minutes + 1)
    with line.db.session() as session:
        chat = session.scalars(select(Conversation).where(Conversation.state == "active")).one()
        assert chat.matched_at is not None
        chat.matched_at -= quiet
        for message in session.scalars(
            select(InboundMessage).where(InboundMessage.conversation_id == chat.id)
        ):
            message.received_at -= quiet
        chat_id = chat.id
    at = utcnow()
    with transaction(line, at) as runtime:
        assert runtime.chat_tick(chat_id) is None
    run_jobs(line)
    assert "couldn't answer" in texts_to(line, lines.TEXTER)[-1]
    assert "you are set away" in texts_to(line, lines.SAM)[-1]
    return at


def offers_to(line: LineServices, name: str) -> list[str]:
    """Return the states of the offers made to a supporter, oldest first."""
    with line.db.session() as session:
        sid = session.scalars(select(Supporter.id).where(Supporter.name == name)).one()
        return list(
            session.scalars(
                select(Offer.status).where(Offer.supporter_id == sid).order_by(Offer.id)
            )
        )


def test_a_supporter_back_at_once_is_not_offered_the_texter_they_left_unanswered(
    line: LineServices, hooks: Webhooks
) -> None:
    at = left_unanswered(line, hooks)
    offered = sum(OFFERED in t for t in texts_to(line, lines.SAM))
    hooks.sms(lines.SAM, "#back")
    run_jobs(line)
    assert sum(OFFERED in t for t in texts_to(line, lines.SAM)) == offered
    assert "pending" not in offers_to(line, "Sam")
    # Held as a #pass holds: once the hold ends, the texter comes round to Sam again.
    run_matching(line, now=at + PASS_HOLD - timedelta(seconds=5))
    assert "pending" not in offers_to(line, "Sam")
    run_matching(line, now=at + PASS_HOLD + timedelta(seconds=1))
    assert offers_to(line, "Sam")[-1] == "pending"


def test_someone_else_free_is_offered_the_texter_at_once(
    line: LineServices, hooks: Webhooks
) -> None:
    left_unanswered(line, hooks)
    hooks.sms(lines.SAM, "#back")
    hooks.sms(lines.RIA, "#back")
    run_jobs(line)
    assert offers_to(line, "Ria")[-1] == "pending"
    assert "pending" not in offers_to(line, "Sam")


def test_crisis_words_written_since_reach_the_supporter_within_the_hold(
    line: LineServices, hooks: Webhooks
) -> None:
    # The exception a #pass has: crisis words written after the hand-back are news Sam has
    # not had, and with nobody else free he is asked at once.
    left_unanswered(line, hooks)
    hooks.sms(lines.SAM, "#back")
    run_jobs(line)
    assert "pending" not in offers_to(line, "Sam")
    hooks.sms(lines.TEXTER, "i want to kill myself")
    run_jobs(line)
    assert offers_to(line, "Sam")[-1] == "pending"
    assert texts_to(line, lines.SAM)[-1].startswith("PRIORITY: ")


def test_a_texter_already_in_crisis_waits_out_the_hold_when_nobody_else_is_free(
    line: LineServices, hooks: Webhooks
) -> None:
    # What Sam let go was already a texter who may be in crisis: as after a #pass of them,
    # not asked of him again until the hold ends (on call heard of the unanswered chat).
    at = left_unanswered(line, hooks, first="i want to kill myself")
    hooks.sms(lines.SAM, "#back")
    run_jobs(line)
    assert "pending" not in offers_to(line, "Sam")
    assert any("no tuvo respuesta de Sam" in t for t in texts_to(line, lines.RIA))  # Spanish
    run_matching(line, now=at + PASS_HOLD + timedelta(seconds=1))
    assert offers_to(line, "Sam")[-1] == "pending"
