"""A goodbye in a chat flagged for crisis words (session 28).

A tester's texter wrote "im gonna kms", "i have the rope", then "bye" 30 s into the chat: the
only answer was "How was this chat for you, from 1 to 5?", nothing of 911 or 988, and "no wait
i didnt mean bye" came too late. A supporter's #done after an overdose was told asked the same
rating. Now, after crisis words, a BYE reaches the supporter and the texter is asked once; a
second BYE ends the chat with where to turn and no rating. Other chats end as before. Driven
by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

from sqlalchemy import select

from peerline.service.models import Conversation
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, take_chat, texts_to
from tests.support.line import Webhooks


def purposes(line: LineServices, phone: str) -> list[str]:
    """Return the purposes of the texts written to a number, oldest first."""
    return [m["purpose"] for m in outbox(line, phone)]


def chat_state(line: LineServices) -> str:
    """Return the state of the texter's chat."""
    with line.db.session() as session:
        return session.scalars(select(Conversation.state).order_by(Conversation.id)).first()


def flagged_chat(line: LineServices, hooks: Webhooks) -> None:
    """Have the texter chat with Sam and write crisis words there."""
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "i have the rope in my room")
    assert texts_to(line, lines.TEXTER)[-1].startswith("You matter")


def test_bye_after_crisis_words_is_asked_about_and_reaches_the_supporter(
    line: LineServices, hooks: Webhooks
) -> None:
    flagged_chat(line, hooks)
    hooks.sms(lines.TEXTER, "bye")
    assert purposes(line, lines.TEXTER)[-1] == "bye_confirm"
    assert texts_to(line, lines.TEXTER)[-1].startswith("Do you want to end your chat with Sam?")
    assert texts_to(line, lines.SAM)[-1].endswith(": bye"), texts_to(line, lines.SAM)[-1]
    assert chat_state(line) == "active"
    # They did not mean it: the chat goes on, both ways.
    hooks.sms(lines.TEXTER, "no wait i didnt mean bye")
    assert texts_to(line, lines.SAM)[-1].endswith(": no wait i didnt mean bye")
    hooks.sms(lines.SAM, "I'm still here")
    assert texts_to(line, lines.TEXTER)[-1].endswith("I'm still here")


def test_bye_twice_ends_it_with_where_to_turn_and_no_rating(
    line: LineServices, hooks: Webhooks
) -> None:
    flagged_chat(line, hooks)
    hooks.sms(lines.TEXTER, "bye")
    hooks.sms(lines.TEXTER, "bye")
    told = outbox(line, lines.TEXTER)
    assert told[-1]["purpose"] == "texter_ended_crisis", told[-1]
    assert "911" in told[-1]["body"] and "988" in told[-1]["body"]
    assert "ask_rating" not in purposes(line, lines.TEXTER)
    assert any(t.endswith("has ended the chat. Thank you.") for t in texts_to(line, lines.SAM))
    assert chat_state(line) == "closed"


def test_the_supporters_done_after_crisis_words_asks_no_rating(
    line: LineServices, hooks: Webhooks
) -> None:
    flagged_chat(line, hooks)
    hooks.sms(lines.SAM, "#done")
    told = outbox(line, lines.TEXTER)
    assert told[-1]["purpose"] == "supporter_ended" and "911" in told[-1]["body"], told[-1]
    assert "ask_rating" not in purposes(line, lines.TEXTER)
    assert chat_state(line) == "closed"


def test_an_ordinary_chat_ends_at_one_bye_with_the_rating(
    line: LineServices, hooks: Webhooks
) -> None:
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "thanks, that helped. bye")
    hooks.sms(lines.TEXTER, "bye")
    assert purposes(line, lines.TEXTER)[-1] == "ask_rating"
    assert chat_state(line) == "rating"


def test_spanish_bye_after_crisis_words_is_asked_in_spanish(
    line: LineServices, hooks: Webhooks
) -> None:
    hooks.sms(lines.TEXTER, "hola, necesito hablar con alguien")
    take_chat(line, hooks, lines.TEXTER, lines.SAM)  # "yes", then Sam's #take
    hooks.sms(lines.TEXTER, "me quiero morir")
    hooks.sms(lines.TEXTER, "adios")
    assert texts_to(line, lines.TEXTER)[-1].startswith("¿Quieres terminar tu chat con Sam?")
