"""Said once, not once a text, and HELP's menu counted as the menu (session 28).

A tester's bursts after the welcome ("💔", "😭", "🙏"; "hey", "u there?", "hello?") got the
short "We're here. Reply YES..." twice in the same second; "help" then "help me please" got
HELP's answer and then the whole welcome (911 and "reply YES" twice, and the plea not queued);
"HELP" then "yes" got the welcome beside the queue's text, asking for the YES just given.
Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

import pytest

from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox
from tests.support.line import Webhooks


def purposes(line: LineServices, phone: str) -> list[str]:
    """Return the purposes of the texts written to a number, oldest first."""
    return [m["purpose"] for m in outbox(line, phone)]


@pytest.mark.parametrize("burst", [["💔", "😭", "🙏"], ["hey", "u there?", "hello?"]])
def test_a_burst_after_the_welcome_hears_the_short_answer_once(
    line: LineServices, hooks: Webhooks, burst: list[str]
) -> None:
    for text in burst:
        hooks.sms(lines.TEXTER, text)
    assert purposes(line, lines.TEXTER) == ["welcome", "menu_again"]


def test_a_request_in_a_burst_still_joins_the_line(line: LineServices, hooks: Webhooks) -> None:
    for text in ["hi", "hello?", "can someone talk to me"]:
        hooks.sms(lines.TEXTER, text)
    assert purposes(line, lines.TEXTER) == ["welcome", "menu_again", "queued"]


@pytest.mark.parametrize(
    ("first", "then", "answer"),
    [
        ("help", "help me please", "Thanks. We are finding a peer supporter"),
        ("HELP", "yes", "Thanks. We are finding a peer supporter"),
        ("ayuda", "si", "Gracias. Estamos buscando"),
    ],
)
def test_after_helps_answer_a_plea_or_yes_joins_the_line_without_the_welcome(
    line: LineServices, hooks: Webhooks, first: str, then: str, answer: str
) -> None:
    hooks.sms(lines.TEXTER, first)
    hooks.sms(lines.TEXTER, then)
    told = outbox(line, lines.TEXTER)
    assert [m["purpose"] for m in told] == ["help", "queued"], told
    assert told[1]["body"].startswith(answer)
