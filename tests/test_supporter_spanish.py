"""A supporter whose first language is Spanish hears every text of a chat in Spanish (issue 21),
each within two segments, on PostgreSQL and Redis through signed Twilio webhooks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from peerline.service import segments
from tests.support import lines
from tests.support.chat import outbox, run_jobs
from tests.support.servers import PostgresServer, RedisServer
from tests.support.voice import Phone, phone_on_servers

pytestmark = pytest.mark.servers

# Ria alone on shift, Spanish only.
RIA_ALONE = (
    lines.ALWAYS_OPEN.replace("name: Sam", "name: Ria")
    .replace(lines.SAM, lines.RIA)
    .replace("languages: [en]", "languages: [es]")
)
# Words that would give away an English text.
ENGLISH = ("You ", "you ", " the ", "Thank", "waiting to talk", "Reply ", "Welcome")


@pytest.fixture
def phone(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Phone]:
    """Return a line where only Ria, who reads Spanish, is on shift."""
    database = postgres_server.create_database()
    with phone_on_servers(tmp_path, database, redis_server.url, RIA_ALONE) as made:
        yield made


def say(phone: Phone, number: str, text: str) -> list[dict[str, str]]:
    """Text the line from a number, run the jobs, and return what Ria got for it."""
    before = len(outbox(phone.line, lines.RIA))
    phone.hooks.sms(number, text)
    run_jobs(phone.line)
    return outbox(phone.line, lines.RIA)[before:]


def test_a_spanish_speaking_supporter_is_walked_through_a_chat_in_spanish(phone: Phone) -> None:
    catalogue = phone.line.catalogue
    assert say(phone, lines.RIA, "#help")[-1]["body"].startswith("Comandos: #take aceptar")
    assert say(phone, lines.TEXTER, "hello, I need to talk to someone") == []
    [offer] = say(phone, lines.TEXTER, "yes")
    assert offer["purpose"] == "offer"
    assert "espera para hablar (acaba de llegar)" in offer["body"]
    # The texter writes English, which Ria does not speak: she is told so in Spanish.
    assert "(escribe en ingles; nadie libre habla ingles)" in offer["body"]
    assert "Responde #take en" in offer["body"]
    took = say(phone, lines.RIA, "#take")
    assert took[0]["body"].startswith("Ya hablas con")
    # What the texter wrote while waiting reaches her as it was written.
    assert any("I need to talk" in m["body"] for m in took)
    assert say(phone, lines.RIA, "#tkae")[-1]["body"].startswith("Quisiste decir #take?")
    assert say(phone, lines.RIA, "#frob")[-1]["body"].startswith("Comando desconocido #frob")
    ended = say(phone, lines.TEXTER, "bye")
    assert [m["purpose"] for m in ended] == ["texter_ended", "debrief_invite"]
    assert ended[0]["body"].endswith("termino la conversacion. Gracias.")
    assert "Temas:" in ended[1]["body"]
    # Spanish topic words count as the line's topics (soledad: lonely).
    noted = say(phone, lines.RIA, "#note 4 soledad, familia")[-1]
    assert noted["purpose"] == "note_ok" and "lonely, family" in noted["body"]
    assert say(phone, lines.RIA, "#away")[-1]["body"].startswith("Estas ausente")
    assert say(phone, lines.RIA, "#back")[-1]["body"].startswith("Bienvenida/o de vuelta")
    assert say(phone, lines.RIA, "#done")[-1]["body"].startswith("Ahora no estas en una")
    # A second chat she ends herself.
    say(phone, lines.TEXTER_2, "yes")
    say(phone, lines.RIA, "#take")
    done = say(phone, lines.RIA, "#done")
    assert done[0]["body"].startswith("Terminaste la conversacion con")
    texts = outbox(phone.line, lines.RIA)
    for text in texts:
        body, purpose = text["body"], text["purpose"]
        if purpose == "relay":
            continue  # the texter's own words
        assert catalogue.has("es", purpose), purpose
        assert not any(word in body for word in ENGLISH), (purpose, body)
        assert segments.count(body) <= 2, (purpose, body)
