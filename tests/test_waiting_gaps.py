"""What a tester playing texters and supporters found while waiting: the words that look like
STOP, questions to the line while in it, the wait it tells, #pass on a one-person shift, the
texts replayed on a re-take, and the coordinator told when the line is left with nobody."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from peerline.service.models import Contact, Conversation
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import texts_to
from tests.support.line import Webhooks

# -- words that look like an opt-out but are none to carriers --------------------------------


def conversations(line: LineServices) -> int:
    """Return how many conversations the line holds."""
    with line.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Conversation)) or 0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("PARAR", "Para dejar de recibir mensajes, responde STOP"),
        ("alto", "Para dejar de recibir mensajes, responde STOP"),
        ("stop pls", "To stop getting texts from Peerline, reply STOP"),
        ("Stop please!", "To stop getting texts from Peerline, reply STOP"),
    ],
)
def test_a_stop_that_carriers_do_not_know_is_told_how_to_stop_and_not_enrolled(
    line: LineServices, hooks: Webhooks, body: str, expected: str
) -> None:
    hooks.sms(lines.TEXTER, body)
    told = texts_to(line, lines.TEXTER)
    assert len(told) == 1 and told[0].startswith(expected), told
    assert "Reply YES" not in told[0] and "Responde SI" not in told[0]
    assert conversations(line) == 0  # no welcome, no conversation
    with line.db.session() as session:
        assert not session.scalars(select(Contact.opted_out)).one()  # and no opt-out either


def test_a_stop_like_word_in_the_queue_keeps_the_place_and_says_how_to_stop(
    line: LineServices, hooks: Webhooks
) -> None:
    hooks.sms(lines.TEXTER, "hola")
    hooks.sms(lines.TEXTER, "si")
    hooks.sms(lines.TEXTER, "basta")
    assert texts_to(line, lines.TEXTER)[-1].startswith("Para dejar de recibir mensajes")
    with line.db.session() as session:
        assert session.scalars(select(Conversation.state)).one() == "queued"


def test_a_real_stop_is_still_an_opt_out(line: LineServices, hooks: Webhooks) -> None:
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "STOP")
    with line.db.session() as session:
        assert session.scalars(select(Contact.opted_out)).one()
