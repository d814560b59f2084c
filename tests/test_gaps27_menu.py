"""No menu twice within minutes (session 27): words written just after the line's "reply
YES..." get a short answer, not the menu again.

A tester's "is anyone there" two seconds after the welcome got a second copy of the menu
(invite), and START then "can i talk to sam again" got two near-identical texts (opted_in,
welcome_back). Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from peerline.service.models import Conversation, utcnow
from peerline.service.runtime import Inbound, receive_sms
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, run_jobs, take_chat, texts_sent_earlier, texts_to
from tests.support.line import LineBuilder, Webhooks

AGAIN = "We're here. Reply YES and a peer supporter, a real person, will read what you wrote"


def purposes(line: LineServices, phone: str) -> list[str]:
    """Return the purposes of the texts written to a number, oldest first."""
    return [m["purpose"] for m in outbox(line, phone)]


def test_is_anyone_there_after_the_welcome_is_answered_not_sent_the_menu_again(
    line: LineServices, hooks: Webhooks
) -> None:
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "is anyone there")
    assert purposes(line, lines.TEXTER) == ["welcome", "menu_again"]
    assert texts_to(line, lines.TEXTER)[-1].startswith(AGAIN)
    # In the same seconds (a burst, written before the answer could be read): once (session
    # 28); asked again once it had arrived: answered again, never silence (session 27e). Both
    # kept for the supporter.
    hooks.sms(lines.TEXTER, "hello??")
    assert purposes(line, lines.TEXTER) == ["welcome", "menu_again"]
    texts_sent_earlier(line, 30)
    hooks.sms(lines.TEXTER, "hello??")
    assert purposes(line, lines.TEXTER) == ["welcome", "menu_again", "menu_again"]
    hooks.sms(lines.TEXTER, "yes")  # what it told them to reply still works
    assert purposes(line, lines.TEXTER)[-1] == "queued"
    run_jobs(line)
    hooks.sms(lines.SAM, "#take")
    relayed = "\n".join(m["body"] for m in outbox(line, lines.SAM) if m["purpose"] == "relay")
    assert "is anyone there" in relayed and "hello??" in relayed, relayed


def test_spanish_words_after_the_welcome_are_answered_in_spanish(
    line: LineServices, hooks: Webhooks
) -> None:
    hooks.sms(lines.TEXTER, "hola")
    hooks.sms(lines.TEXTER, "hay alguien?")
    assert purposes(line, lines.TEXTER) == ["welcome", "menu_again"]
    assert texts_to(line, lines.TEXTER)[-1].startswith("Aqui estamos. Responde SI")


def test_the_menu_comes_again_after_a_few_minutes(line: LineServices, hooks: Webhooks) -> None:
    start = utcnow() - timedelta(minutes=10)
    number = line.settings.twilio_phone_number
    receive_sms(line, Inbound("SM" + uuid.uuid4().hex, lines.TEXTER, number, "hi"), now=start)
    hooks.sms(lines.TEXTER, "hello?")
    assert purposes(line, lines.TEXTER) == ["welcome", "invite"]


def test_start_then_asking_for_the_same_supporter_gets_one_answer_not_two_menus(
    line: LineServices, hooks: Webhooks
) -> None:
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "bye")
    hooks.sms(lines.TEXTER, "STOP")
    hooks.sms(lines.TEXTER, "START")
    told = len(texts_to(line, lines.TEXTER))
    assert purposes(line, lines.TEXTER)[-1] == "opted_in"
    hooks.sms(lines.TEXTER, "can i talk to sam again")
    (answer,) = texts_to(line, lines.TEXTER)[told:]
    assert answer.startswith("We're here. Reply SAME to ask for Sam again, or YES"), answer
    assert purposes(line, lines.TEXTER)[-1] == "menu_again_same"
    hooks.sms(lines.TEXTER, "same")
    assert purposes(line, lines.TEXTER)[-1] == "same_ok"
    with line.db.session() as session:
        latest = session.scalars(select(Conversation).order_by(Conversation.id.desc())).first()
        assert latest is not None and latest.state == "queued"


def test_with_nobody_on_shift_the_answer_says_when_the_line_opens(build: LineBuilder) -> None:
    line, hooks = build(lines.NEVER_OPEN)
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "is anyone there?")
    assert purposes(line, lines.TEXTER) == ["welcome", "closed_no_shifts"]
