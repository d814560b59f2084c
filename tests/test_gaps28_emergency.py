"""A texter telling of another person's medical emergency hears 911 now, plainly (session 28).

A tester's "my brother overdosed hes not breathing" got "Worried about someone? If they may be
in danger now, call 911..." once, and "hello?? hes still not breathing what do i do" got
nothing; "my mom took a bunch of pills and wont wake up" got the crisis text meant for the
texter ("You matter...") and on call read "may be in crisis (is making preparations)"; "my dad
collapsed and isnt breathing" was welcomed and not queued. Driven by signed webhooks.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from peerline.flows.emergency import NAMED, SIGNS, read_emergency
from peerline.service import segments
from peerline.service.models import Conversation, InboundMessage
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, run_jobs, take_chat, texts_sent_earlier, texts_to
from tests.support.line import Webhooks

NOW = {"en": "Call 911 now for them", "es": "Llama al 911 ya por esa persona"}


def told(line: LineServices, phone: str) -> list[tuple[str, str]]:
    """Return (purpose, body) of the texts written to a number, oldest first."""
    return [(m["purpose"], m["body"]) for m in outbox(line, phone)]


@pytest.mark.parametrize(
    ("words", "language"),
    [
        ("my brother overdosed hes not breathing", "en"),
        ("my mom took a bunch of pills and wont wake up", "en"),
        ("my dad collapsed and isnt breathing", "en"),
        ("my gf just cut herself really deep theres so much blood", "en"),
        ("mi mama se tomo muchas pastillas y no despierta", "es"),
        ("por favor alguien ayudeme no respira", "es"),
    ],
)
def test_another_persons_emergency_hears_911_now_first_and_joins_the_line(
    line: LineServices, hooks: Webhooks, words: str, language: str
) -> None:
    hooks.sms(lines.TEXTER, words)
    sent = told(line, lines.TEXTER)
    assert sent[0][0] == "someone_else_emergency", sent
    assert sent[0][1].startswith(NOW[language]) and "1-800-222-1222" in sent[0][1]
    assert segments.count(sent[0][1]) == 1, sent[0][1]
    assert not any(body.startswith(("You matter", "Tu vida importa")) for _, body in sent)
    assert not any(purpose == "someone_else" for purpose, _ in sent), sent
    with line.db.session() as session:
        chat = session.scalars(select(Conversation)).one()
        assert chat.state == "queued" and chat.priority > 0
        assert session.scalars(select(InboundMessage.someone_else)).one()
    run_jobs(line)
    (offer,) = [b for p, b in told(line, lines.SAM) if p == "offer_priority"]
    assert "Someone else" in offer, offer


def test_told_again_after_it_arrived_it_is_said_again(line: LineServices, hooks: Webhooks) -> None:
    hooks.sms(lines.TEXTER, "my brother overdosed hes not breathing")
    hooks.sms(lines.TEXTER, "hello?? hes still not breathing what do i do")  # a second on
    assert [p for p, _ in told(line, lines.TEXTER)].count("someone_else_emergency") == 1
    texts_sent_earlier(line, 90)
    hooks.sms(lines.TEXTER, "still not breathing what do i do")  # named before: still theirs
    sent = told(line, lines.TEXTER)
    assert [p for p, _ in sent].count("someone_else_emergency") == 2, sent
    assert not any(p == "someone_else" for p, _ in sent), sent


def test_in_a_chat_the_supporter_reads_it_as_someone_elses(
    line: LineServices, hooks: Webhooks
) -> None:
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "wait my roommate just collapsed, shes not breathing")
    assert texts_to(line, lines.TEXTER)[-1].startswith(NOW["en"])
    to_sam = "\n".join(texts_to(line, lines.SAM))
    assert "shes not breathing" in to_sam and "SOMEONE ELSE" in to_sam.upper(), to_sam


@pytest.mark.parametrize(
    "words",
    [
        "i cant breathe",
        "im not breathing right, panic attack",
        "my dad collapsed on the couch after work lol",
        "she wont wake up for school again ugh",
        "he overdosed on sugar lol",
        "my son is still not breathing well with this cold",
        "no respira bien por la gripe pobre",
    ],
)
def test_everyday_words_are_no_emergency(words: str) -> None:
    assert read_emergency(words) is None


def test_whose_emergency_the_words_name() -> None:
    assert read_emergency("my dad isnt breathing") == NAMED
    assert read_emergency("mi hijo no respira") == NAMED  # the verb says whose
    assert read_emergency("still not breathing what do i do") == SIGNS
