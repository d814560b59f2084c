"""A question to the line is answered within a minute (session 27c).

A tester in line asked "is anyone there" and "how long" a minute or two after being told their
place and got silence: answers were held back three minutes after any place text, and silence
reads as nobody there. Now a question is answered unless their place went out within the last
60 seconds, and a burst of questions gets one answer. Texts taken in as the webhook's drain
takes them, at chosen moments.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from peerline.service.models import utcnow
from peerline.service.runtime import Inbound, receive_sms, run_matching
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox


def sms(line: LineServices, body: str, now: datetime) -> None:
    """Take in one text from the texter at `now` and run the matching round it asks for."""
    number = line.settings.twilio_phone_number
    receive_sms(line, Inbound("SM" + uuid.uuid4().hex, lines.TEXTER, number, body), now=now)
    run_matching(line, now=now)


def purposes(line: LineServices) -> list[str]:
    """Return the purposes of the texts written to the texter, oldest first."""
    return [m["purpose"] for m in outbox(line, lines.TEXTER)]


def test_a_question_two_minutes_after_the_place_is_answered_once_a_burst(
    line: LineServices,
) -> None:
    start = utcnow()
    sms(line, "yes", start)  # Sam holds the offer and has not taken it
    assert purposes(line)[-1] == "queued"
    told = len(purposes(line))
    # Two minutes on: three questions within seconds get one answer.
    for seconds, question in ((120, "is anyone there?"), (122, "how long"), (125, "hello??")):
        sms(line, question, start + timedelta(seconds=seconds))
    assert purposes(line)[told:] == ["still_here"]
    # More than a minute after that answer, asking again is answered again.
    sms(line, "still waiting?", start + timedelta(seconds=190))
    assert purposes(line)[told:] == ["still_here", "still_here"]


def test_a_question_right_after_the_place_is_not_told_it_again(line: LineServices) -> None:
    start = utcnow()
    sms(line, "yes", start)
    told = len(purposes(line))
    sms(line, "how long?", start + timedelta(seconds=30))
    assert purposes(line)[told:] == []  # the same answer went out 30 seconds ago
    sms(line, "how long??", start + timedelta(seconds=75))
    assert purposes(line)[told:] == ["still_here"]
