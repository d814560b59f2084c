"""A texter's language changes only on clear evidence (session 27).

A tester's English texter asked "hola? hay alguien?" once while waiting and was Spanish for
good: later offers told supporters "writes in Spanish; no Spanish speaker is free", and the
English texts after it never switched back. Now a texter whose words have said their
language switches on a text clear on its own (naming a language, several words) or two in
a row, either way; a short one in the other language is answered in it, this once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from peerline.service.models import Contact, Conversation, utcnow
from peerline.service.runtime import Inbound, receive_sms, run_matching
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import texts_to
from tests.support.line import Webhooks

HERE_EN = "Yes, we're here. You are number 1 in line"
HERE_ES = "Si, aqui estamos. Eres el numero 1 en la fila"


def sms(line: LineServices, phone: str, body: str, now: datetime) -> None:
    """Take in one text at `now` and run the matching round it may have asked for."""
    receive_sms(
        line,
        Inbound("SM" + uuid.uuid4().hex, phone, line.settings.twilio_phone_number, body),
        now=now,
    )
    run_matching(line, now=now)


def languages(line: LineServices) -> tuple[str, str]:
    """Return the texter's language and their open conversation's."""
    with line.db.session() as session:
        contact = session.scalars(select(Contact)).one()
        chat = session.scalars(select(Conversation).order_by(Conversation.id.desc())).first()
        assert chat is not None
        return contact.language, chat.language


def waiting_in_english(line: LineServices) -> datetime:
    """Put Sam away and an English texter in line; return when they joined."""
    start = utcnow()
    sms(line, lines.SAM, "#away", start)
    sms(line, lines.TEXTER, "hi, I need to talk to someone", start)
    sms(line, lines.TEXTER, "yes", start + timedelta(seconds=10))
    return start


def test_one_short_spanish_question_is_answered_in_spanish_without_switching(
    line: LineServices,
) -> None:
    start = waiting_in_english(line)
    sms(line, lines.TEXTER, "hola? hay alguien?", start + timedelta(minutes=5))
    assert texts_to(line, lines.TEXTER)[-1].startswith(HERE_ES)
    assert languages(line) == ("en", "en")
    sms(line, lines.TEXTER, "hello? anyone?", start + timedelta(minutes=9))
    assert texts_to(line, lines.TEXTER)[-1].startswith(HERE_EN)
    sms(line, lines.SAM, "#back", start + timedelta(minutes=10))
    offer = texts_to(line, lines.SAM)[-1]
    assert "#take" in offer and "Spanish" not in offer, offer


def test_two_spanish_texts_in_a_row_switch_and_clear_english_switches_back(
    line: LineServices,
) -> None:
    start = waiting_in_english(line)
    sms(line, lines.TEXTER, "hola? hay alguien?", start + timedelta(minutes=5))
    sms(line, lines.TEXTER, "necesito hablar", start + timedelta(minutes=5, seconds=20))
    assert languages(line) == ("es", "es")
    # English again, clearly: several words of it.
    back = "hello? is anyone there? I need to talk to someone please"
    sms(line, lines.TEXTER, back, start + timedelta(minutes=9))
    assert languages(line) == ("en", "en")
    assert texts_to(line, lines.TEXTER)[-1].startswith(HERE_EN)


def test_one_clear_spanish_text_switches_an_english_texter(line: LineServices) -> None:
    start = waiting_in_english(line)
    words = "hola, hay alguien? necesito hablar con alguien por favor"
    sms(line, lines.TEXTER, words, start + timedelta(minutes=5))
    assert languages(line) == ("es", "es")
    assert texts_to(line, lines.TEXTER)[-1].startswith(HERE_ES)


def test_a_first_hola_still_gets_spanish(line: LineServices, hooks: Webhooks) -> None:
    hooks.sms(lines.TEXTER, "hola")
    assert texts_to(line, lines.TEXTER)[-1].startswith("Peerline: apoyo entre pares")
    assert languages(line) == ("es", "es")


def test_after_an_english_welcome_a_short_spanish_text_is_answered_once_in_spanish(
    line: LineServices, hooks: Webhooks
) -> None:
    hooks.sms(lines.TEXTER, "hi, I need to talk to someone")
    hooks.sms(lines.TEXTER, "hola que tal")
    # Seconds after the welcome: the short answer (no menu again), in Spanish this once.
    assert texts_to(line, lines.TEXTER)[-1].startswith("Aqui estamos. Responde SI")
    assert languages(line) == ("en", "en")
    hooks.sms(lines.TEXTER, "perdon, no hablo ingles")
    assert texts_to(line, lines.TEXTER)[-1].startswith("Peerline: apoyo entre pares")
    assert languages(line) == ("es", "es")


def test_a_spanish_texter_who_writes_english_plainly_gets_the_welcome_in_english(
    line: LineServices, hooks: Webhooks
) -> None:
    hooks.sms(lines.TEXTER, "hola")
    hooks.sms(lines.TEXTER, "sorry, I don't speak Spanish")
    assert texts_to(line, lines.TEXTER)[-1].startswith("Peerline: free, anonymous")
    assert languages(line) == ("en", "en")
