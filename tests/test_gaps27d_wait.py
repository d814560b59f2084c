"""The wait a texter is told is honest (session 27d).

A tester's texters heard waits that ran short: "about 2 min" and offered after 4 min, "about
3 min" and 5.8 min waited, after a run of very short chats (the estimate is half a recent
chat shared among those taking chats); and "hello??" while an offer of them was already out
heard "number 1 in line (about 3 min)" and was connected 2 s later. Now a texter whose offer
is out is told at most what is left of it, and a chat going on is counted on to last at least
half a typical chat, then an offer's time. Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from peerline.service.models import Offer, OutboundMessage
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import run_jobs, take_chat, texts_to
from tests.support.line import Webhooks


def told_minutes(text: str) -> int:
    """Return the minutes a place-in-line text gives."""
    found = re.search(r"\(about (\d+) min\)", text)
    assert found is not None, text
    return int(found.group(1))


def test_a_texter_whose_offer_is_out_hears_at_most_what_is_left_of_it(
    line: LineServices, hooks: Webhooks
) -> None:
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    with line.db.session() as session:
        assert session.scalars(select(Offer).where(Offer.status == "pending")).one()
        # Told their place some minutes ago, so a question to the line is answered now.
        for told in session.scalars(
            select(OutboundMessage).where(OutboundMessage.purpose == "queued")
        ):
            told.created_at -= timedelta(minutes=4)
    # Sam is being asked: the texter is not told half a chat (10 min here), nor that nobody
    # is available.
    hooks.sms(lines.TEXTER, "hello??")
    answer = texts_to(line, lines.TEXTER)[-1]
    assert answer.startswith("Yes, we're here. You are number 1 in line"), answer
    timeout = line.settings.offer_timeout_seconds / 60
    assert 1 <= told_minutes(answer) <= timeout, answer
    hooks.sms(lines.SAM, "#take")
    assert "connected with Sam" in texts_to(line, lines.TEXTER)[-1]


def test_after_very_short_chats_the_wait_is_not_hopeful(
    line: LineServices, hooks: Webhooks
) -> None:
    # Three chats that ended within seconds, as a tester's did on the simulator.
    for n in range(3):
        texter = f"+1647555{7000 + n}"
        take_chat(line, hooks, texter, lines.SAM)
        hooks.sms(lines.SAM, "#done")
    take_chat(line, hooks, lines.TEXTER, lines.SAM)  # Sam is busy from now
    hooks.sms(lines.TEXTER_2, "yes")
    told = told_minutes(texts_to(line, lines.TEXTER_2)[-1])
    # Half of a chat counted as 10 minutes at least (offers.MIN_CHAT_MINUTES), then an
    # offer's time, at most a time-out (it said "about 1 min").
    assert 5 <= told <= 5 + line.settings.offer_timeout_seconds / 60, told
