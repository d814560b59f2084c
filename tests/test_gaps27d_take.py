"""Losing a race to #take is one text (session 27d).

Offered a texter alongside another supporter, a tester's #take came second: they were told
"Otra persona ya tomo esa conversacion..." (the winner's #take tells the others) and then, in
answer to their own #take, "Ahora no tienes ninguna oferta pendiente.". Now a #take of an
offer that went to someone else while it would still be open, of which they were told, gets
no second answer; a #take long after, or with no offer at all, still hears there is none.
Driven by signed webhooks, as Twilio sends them; Ria reads Spanish first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from peerline.service.models import Offer, Supporter, utcnow
from peerline.service.runtime import run_matching, transaction
from peerline.service.runtime.offers import accept_offer
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import run_jobs, take_chat, texts_to
from tests.support.line import Webhooks, sqlite_line

TAKEN = "Otra persona ya tomo esa conversacion"
NO_OFFER = "Ahora no tienes ninguna oferta pendiente."


@pytest.fixture
def line(tmp_path: Path) -> Iterator[LineServices]:
    """Return a line where Sam and Ria are always on shift."""
    with sqlite_line(tmp_path, lines.TWO_ON) as line:
        yield line


def offered_to_both(line: LineServices, hooks: Webhooks) -> int:
    """Have the texter offered to Ria, then to Sam alongside; return Ria's offer's id."""
    take_chat(line, hooks, lines.TEXTER_2, lines.SAM)
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)  # offered to Ria, Sam being busy
    hooks.sms(lines.SAM, "#done")  # Sam is free from now
    with line.db.session() as session:
        offer = session.scalars(select(Offer).where(Offer.status == "pending")).one()
        # Made again a minute after Sam became free: he is offered them alongside.
        offer.created_at = utcnow() + timedelta(minutes=1)
        offer_id = offer.id
    run_matching(line, now=utcnow() + timedelta(minutes=1))
    run_jobs(line)
    assert "the first #take wins" in texts_to(line, lines.SAM)[-1]
    return offer_id


def test_a_take_that_lost_the_race_gets_one_text(line: LineServices, hooks: Webhooks) -> None:
    offered_to_both(line, hooks)
    hooks.sms(lines.SAM, "#take")
    before = texts_to(line, lines.RIA)
    assert TAKEN in before[-1], before[-1]
    hooks.sms(lines.RIA, "#take")
    run_jobs(line)
    assert texts_to(line, lines.RIA) == before  # nothing more: she has her answer
    assert "connected with Sam" in texts_to(line, lines.TEXTER)[-1]


def test_a_take_stepped_after_the_winner_locked_the_offer_gets_one_text(
    line: LineServices, hooks: Webhooks
) -> None:
    # Ria's #take read her offer as still hers, and found it taken once it held the lock.
    ria_offer = offered_to_both(line, hooks)
    hooks.sms(lines.SAM, "#take")
    before = texts_to(line, lines.RIA)
    with transaction(line) as runtime:
        ria = runtime.session.scalars(select(Supporter).where(Supporter.name == "Ria")).one()
        assert accept_offer(runtime, ria_offer, ria) is False
    assert texts_to(line, lines.RIA) == before


def test_a_take_after_the_offer_would_have_timed_out_hears_there_is_none(
    line: LineServices, hooks: Webhooks
) -> None:
    ria_offer = offered_to_both(line, hooks)
    hooks.sms(lines.SAM, "#take")
    with line.db.session() as session:
        offer = session.get(Offer, ria_offer)
        assert offer is not None
        offer.expires_at = utcnow() - timedelta(seconds=1)
    hooks.sms(lines.RIA, "#take")
    assert texts_to(line, lines.RIA)[-1] == NO_OFFER


def test_a_take_with_no_offer_ever_hears_there_is_none(line: LineServices, hooks: Webhooks) -> None:
    hooks.sms(lines.RIA, "#take")
    assert texts_to(line, lines.RIA)[-1] == NO_OFFER
