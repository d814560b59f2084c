"""Words just after a chat are about it (session 27c).

A tester found what a texter writes just after a chat answered coldly and never passed on:
after the rating question, "were at the er now. thx" got "Good to hear from you again. Reply
YES..."; "ok" got silence and the later "5" got the welcome back, the rating lost. Now, within
minutes of the end, a 1-5 still rates the chat, other words get a short, warm answer and reach
the supporter who had the chat (while on shift), marked as after it; crisis words take the
crisis path. And a chat flagged for crisis ends with where to turn in an emergency. Driven by
signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, select

from peerline.service.models import Alert, Block, Contact, ContactRecord, Conversation, utcnow
from peerline.service.runtime import Inbound, receive_sms
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, take_chat, texts_to
from tests.support.line import Webhooks, load_line_file

ER = "were at the er now. thx"
NOTE = "(The chat has ended: a reply here won't reach them.)"


def purposes(line: LineServices, phone: str) -> list[str]:
    """Return the purposes of the texts written to a number, oldest first."""
    return [m["purpose"] for m in outbox(line, phone)]


def alias_of(line: LineServices) -> str:
    """Return the only texter's alias."""
    with line.db.session() as session:
        return session.scalars(select(Contact.alias)).one()


def chat_then_done(line: LineServices, hooks: Webhooks) -> None:
    """Have the texter chat with Sam, and Sam end it (#done): they are asked to rate it."""
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "thanks for listening tonight")
    hooks.sms(lines.SAM, "#done")
    assert purposes(line, lines.TEXTER)[-2:] == ["supporter_ended", "ask_rating"]


def the_chat(line: LineServices) -> Conversation:
    """Return the texter's chat (the first conversation)."""
    with line.db.session() as session:
        return session.scalars(select(Conversation).order_by(Conversation.id)).first()


def test_news_after_the_rating_question_reaches_the_supporter_and_a_rating_still_counts(
    line: LineServices, hooks: Webhooks
) -> None:
    chat_then_done(line, hooks)
    to_sam = len(texts_to(line, lines.SAM))
    hooks.sms(lines.TEXTER, ER)
    answer = texts_to(line, lines.TEXTER)[-1]
    assert purposes(line, lines.TEXTER)[-1] == "after_chat_passed", answer
    assert answer.startswith("Thank you for telling us. We've passed this on to Sam."), answer
    assert "GROUPS" not in answer and "Good to hear from you again" not in answer
    (passed,) = texts_to(line, lines.SAM)[to_sam:]
    assert passed == f"[{alias_of(line)}, after your chat] {ER} {NOTE}", passed
    # The rating they were asked for still counts after other words.
    hooks.sms(lines.TEXTER, "5")
    assert purposes(line, lines.TEXTER)[-1] == "thanks_rating"
    chat = the_chat(line)
    assert (chat.rating, chat.state) == (5, "closed")
    with line.db.session() as session:
        record = session.scalars(select(ContactRecord)).one()
        assert record.texter_rating == 5
    # The words are kept with the chat, and nothing else started.
    with line.db.session() as session:
        assert session.scalar(select(Conversation.id).where(Conversation.id != chat.id)) is None


def test_ok_then_a_number_still_rates_the_chat(line: LineServices, hooks: Webhooks) -> None:
    chat_then_done(line, hooks)
    told, to_sam = len(texts_to(line, lines.TEXTER)), len(texts_to(line, lines.SAM))
    hooks.sms(lines.TEXTER, "ok")
    assert len(texts_to(line, lines.TEXTER)) == told  # a nod: let be
    hooks.sms(lines.TEXTER, "5")
    assert purposes(line, lines.TEXTER)[told:] == ["thanks_rating"]
    assert the_chat(line).rating == 5
    hooks.sms(lines.TEXTER, "5")  # a double tap: counted once, not welcomed
    assert purposes(line, lines.TEXTER)[told:] == ["thanks_rating"]
    assert len(texts_to(line, lines.SAM)) == to_sam


def test_more_words_reach_the_supporter_and_are_answered_once(
    line: LineServices, hooks: Webhooks
) -> None:
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "bye")  # the texter ends it: asked to rate it
    told, to_sam = len(texts_to(line, lines.TEXTER)), len(texts_to(line, lines.SAM))
    hooks.sms(lines.TEXTER, "thanks sam!")
    hooks.sms(lines.TEXTER, "feeling a bit better, going to sleep")
    hooks.sms(lines.TEXTER, "night")
    assert purposes(line, lines.TEXTER)[told:] == ["thanks_no_rating", "after_chat_passed"]
    passed = texts_to(line, lines.SAM)[to_sam:]
    assert [p.split("] ", 1)[1].removesuffix(f" {NOTE}") for p in passed] == [
        "thanks sam!",
        "feeling a bit better, going to sleep",
        "night",
    ]


def test_off_shift_the_words_are_kept_and_the_answer_promises_no_one(
    line: LineServices, hooks: Webhooks
) -> None:
    chat_then_done(line, hooks)
    load_line_file(line, lines.NEVER_OPEN)  # Sam's shifts are gone: Sam is off shift now
    to_sam = len(texts_to(line, lines.SAM))
    hooks.sms(lines.TEXTER, ER)
    assert purposes(line, lines.TEXTER)[-1] == "after_chat"
    assert "Sam" not in texts_to(line, lines.TEXTER)[-1]
    assert len(texts_to(line, lines.SAM)) == to_sam


def test_crisis_words_after_the_chat_take_the_crisis_path(
    line: LineServices, hooks: Webhooks
) -> None:
    chat_then_done(line, hooks)
    hooks.sms(lines.TEXTER, "actually i still want to die")
    assert purposes(line, lines.TEXTER)[-2:] == ["crisis", "crisis_queued"]
    with line.db.session() as session:
        states = [c.state for c in session.scalars(select(Conversation).order_by(Conversation.id))]
        assert states == ["closed", "queued"]
        assert [a.kind for a in session.scalars(select(Alert))] == ["crisis"]


def test_after_the_window_words_are_welcomed_as_before(line: LineServices, hooks: Webhooks) -> None:
    chat_then_done(line, hooks)
    later = utcnow() + timedelta(minutes=31)
    number = line.settings.twilio_phone_number
    receive_sms(line, Inbound("SM" + uuid.uuid4().hex, lines.TEXTER, number, ER), now=later)
    assert purposes(line, lines.TEXTER)[-1] == "welcome_back"


def test_a_chat_flagged_for_crisis_ends_with_where_to_turn(
    line: LineServices, hooks: Webhooks
) -> None:
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "i want to kill myself")
    hooks.sms(lines.SAM, "#done")
    ended = [m["body"] for m in outbox(line, lines.TEXTER) if m["purpose"] == "supporter_ended"]
    assert len(ended) == 1 and "in an emergency call 911, or call or text 988" in ended[0]
    assert ended[0].startswith("Sam has ended the chat. Thanks for talking with us today.")


def test_an_ordinary_chat_ends_as_before(line: LineServices, hooks: Webhooks) -> None:
    chat_then_done(line, hooks)
    ended = [m["body"] for m in outbox(line, lines.TEXTER) if m["purpose"] == "supporter_ended"]
    assert "emergency" not in ended[0]


def test_words_after_a_blocked_chat_never_reach_its_supporter(
    line: LineServices, hooks: Webhooks
) -> None:
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.SAM, "#block")
    with line.db.session() as session:  # a coordinator lifts the block at once
        session.execute(delete(Block))
    to_sam = len(texts_to(line, lines.SAM))
    hooks.sms(lines.TEXTER, "why did you do that")
    # Answered as anyone minutes after the line's menu is (the welcome came with their YES).
    assert purposes(line, lines.TEXTER)[-1] == "menu_again"
    assert len(texts_to(line, lines.SAM)) == to_sam
