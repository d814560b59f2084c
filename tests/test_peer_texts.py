"""The line's texts in real use (issue 14, points 6 and 8), on PostgreSQL: what a texter is told
while queued, at the rating question and in Spanish; a supporter's first text and near misses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fakeredis import FakeRedis
from flask import Flask
from sqlalchemy import select

from peerline.service.models import Contact, Conversation, OutboundMessage
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, run_jobs, take_chat
from tests.support.deploy import deployed
from tests.support.line import LineAndHooks, Webhooks, load_line_file, make_line, make_settings
from tests.support.servers import PostgresServer, RedisServer

STORY = (
    "I don't really know why I'm texting. My dad died in March and since then I can't "
    "sleep and I keep snapping at everyone at work"
)


@pytest.fixture
def pg(
    tmp_path: Path, postgres_server: PostgresServer, app_for: Callable[[LineServices], Flask]
) -> Iterator[LineAndHooks]:
    """Return a line on PostgreSQL where Sam is always on shift, and its webhook poster."""
    settings = make_settings(tmp_path, DATABASE_URL=postgres_server.create_database())
    line = make_line(settings, FakeRedis())
    load_line_file(line, lines.ALWAYS_OPEN)
    yield line, Webhooks(app_for(line).test_client(), line.settings)
    line.db.engine.dispose()


def sent(line: LineServices, number: str, purpose: str | None = None) -> list[str]:
    """Return the texts written to a number (of one purpose, if given), oldest first."""
    return [m["body"] for m in outbox(line, number) if purpose in (None, m["purpose"])]


def age_outbox(line: LineServices, minutes: int) -> None:
    """Make every text written so far look `minutes` older, as if time had passed."""
    with line.db.session() as session:
        for message in session.scalars(select(OutboundMessage)):
            message.created_at -= timedelta(minutes=minutes)


def test_a_queued_texter_hears_their_place_once_in_a_while(pg: LineAndHooks) -> None:
    line, hooks = pg
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "yes")
    assert len(sent(line, lines.TEXTER, "queued")) == 1
    for n in range(6):
        hooks.sms(lines.TEXTER, f"are you there {n}")
    # They were just told their place: a burst of texts is not answered text by text.
    assert sent(line, lines.TEXTER, "still_waiting") == []
    age_outbox(line, line.settings.still_waiting_minutes + 1)
    hooks.sms(lines.TEXTER, "hello??")
    hooks.sms(lines.TEXTER, "anyone")
    hooks.sms(lines.TEXTER, "please")
    still = sent(line, lines.TEXTER, "still_waiting")
    assert len(still) == 1 and "number 1" in still[0]
    # Leaving still works while it is quiet.
    hooks.sms(lines.TEXTER, "bye")
    assert "left the line" in sent(line, lines.TEXTER)[-1]


def test_a_long_first_text_is_acknowledged_and_reaches_the_supporter(pg: LineAndHooks) -> None:
    line, hooks = pg
    hooks.sms(lines.TEXTER, STORY)
    (welcome,) = sent(line, lines.TEXTER)
    assert welcome.startswith("Thank you for writing to us") and "read what you wrote" in welcome
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    with line.db.session() as session:
        alias = session.scalars(select(Contact.alias)).one()
    # What the welcome promised: the peer reads what they wrote before YES.
    assert f"{alias}: {STORY}" in sent(line, lines.SAM)
    assert sent(line, lines.TEXTER)[-1].startswith("You're connected with Sam")


def chat_then_bye(line: LineServices, hooks: Webhooks) -> None:
    """Have the texter queue, Sam take the chat and the texter say bye."""
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "bye")
    assert "from 1" in sent(line, lines.TEXTER)[-1]


def test_rating_in_words_and_a_thank_you_at_the_rating_question(pg: LineAndHooks) -> None:
    line, hooks = pg
    chat_then_bye(line, hooks)
    hooks.sms(lines.TEXTER, "five")
    assert sent(line, lines.TEXTER)[-1].startswith("Thank you")
    chat_then_bye(line, hooks)
    hooks.sms(lines.TEXTER, "Thanks!")
    last = sent(line, lines.TEXTER)[-1]
    assert last.startswith("You're welcome") and "Good to hear from you" not in last
    with line.db.session() as session:
        ratings = session.scalars(select(Conversation.rating).order_by(Conversation.id)).all()
        states = session.scalars(select(Conversation.state)).all()
    assert ratings == [5, None]
    assert set(states) == {"closed"}


@pytest.mark.parametrize("first", ["necesito ayuda", "hola", "ayuda por favor", "buenas"])
def test_a_first_text_in_spanish_gets_the_spanish_welcome(pg: LineAndHooks, first: str) -> None:
    line, hooks = pg
    hooks.sms(lines.TEXTER, first)
    (welcome,) = sent(line, lines.TEXTER)
    assert "compañero/a de apoyo" in welcome and "Responde SI" in welcome
    with line.db.session() as session:
        assert session.scalars(select(Contact.language)).one() == "es"
    hooks.sms(lines.TEXTER, "si")
    queued = sent(line, lines.TEXTER)[-1]
    assert "numero 1 en la fila" in queued and "ADIOS" in queued and "BYE" not in queued
    hooks.sms(lines.TEXTER, "adios")
    assert sent(line, lines.TEXTER)[-1].startswith("Has salido de la fila")


def test_a_supporters_near_misses_get_did_you_mean(pg: LineAndHooks) -> None:
    line, hooks = pg
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    for near_miss in ("take", "#tkae"):
        hooks.sms(lines.SAM, near_miss)
        assert sent(line, lines.SAM)[-1].startswith("Did you mean #take?")
    hooks.sms(lines.SAM, "# Take!")
    assert sent(line, lines.SAM)[-1].startswith("Did you mean #take?")
    hooks.sms(lines.SAM, "#Take")
    assert sent(line, lines.TEXTER)[-1].startswith("You're connected with Sam")
    # In a chat a bare "done" is chat text: it reaches the texter, and Sam gets a hint.
    hooks.sms(lines.SAM, "done")
    assert sent(line, lines.TEXTER)[-1] == "Sam: done"
    assert "If you meant the command, text #done" in sent(line, lines.SAM)[-1]
    hooks.sms(lines.SAM, "#done.")
    assert sent(line, lines.SAM)[-1].startswith("Did you mean #done?")
    hooks.sms(lines.SAM, "#done")
    assert "has ended the chat" in sent(line, lines.TEXTER, "supporter_ended")[-1]


ONLY_RIA_ON = f"""\
timezone: America/Toronto
supporters:
  - name: Sam
    phone: "{lines.SAM}"
  - name: Ria
    phone: "{lines.RIA}"
    languages: [es, en]
    shifts:
      - {{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "24:00"}}
"""


def test_a_supporter_added_by_import_hears_the_commands_once_before_any_offer(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    with deployed(tmp_path, postgres_server, redis_server, lines.NEVER_OPEN) as d:
        d.start_worker()
        file = tmp_path / "line.yaml"
        file.write_text(ONLY_RIA_ON, "utf-8")
        env = {**os.environ, **d.env}

        def import_file() -> str:
            return subprocess.run(
                [sys.executable, "-m", "peerline", "import", str(file)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout

        assert "added: Ria" in import_file()
        # Ria speaks Spanish first: her texts are in Spanish (issue 21).
        d.wait_for_text(lines.RIA, r"^Bienvenida/o a Peerline, Ria\. .*#take")
        assert "Nothing changed" in import_file()
        d.sms(lines.TEXTER, "yes")
        d.wait_for_text(lines.RIA, "Responde #take en")
        d.sms(lines.RIA, "#help")
        d.wait_for_text(lines.RIA, "^Comandos:")
        to_ria = d.bodies_to(lines.RIA)
        # Once, first, before the offer; Sam (already on the rota) heard nothing.
        assert [b.startswith("Bienvenida/o a Peerline") for b in to_ria] == [True, False, False]
        assert d.bodies_to(lines.SAM) == []


def test_crisis_words_on_a_closed_line_do_not_say_keep_texting_here(
    tmp_path: Path, postgres_server: PostgresServer, app_for: Callable[[LineServices], Flask]
) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=postgres_server.create_database())
    line = make_line(settings, FakeRedis())
    load_line_file(line, lines.NEVER_OPEN)
    hooks = Webhooks(app_for(line).test_client(), line.settings)
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "i want to kill myself")
    crisis = sent(line, lines.TEXTER, "crisis_closed")
    assert len(crisis) == 1
    assert "988" in crisis[0] and "No peer is on shift" in crisis[0]
    assert not any("keep texting here" in t for t in sent(line, lines.TEXTER))
    # Not repeated within the hour, like the open line's crisis text.
    hooks.sms(lines.TEXTER, "i want to kill myself")
    assert len(sent(line, lines.TEXTER, "crisis_closed")) == 1
    line.db.engine.dispose()


def test_a_full_length_text_is_relayed_whole_in_parts_twilio_takes(pg: LineAndHooks) -> None:
    # Found by a tester: a 1,600-character text (Twilio's most) relayed with "Y37: " before it
    # was 1,605 characters, which Twilio refuses (error 21617): the words would have been lost.
    line, hooks = pg
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    words = " ".join(f"word{n:03d}" for n in range(201))[:1600]
    assert len(words) == 1600
    relays_before = len(sent(line, lines.SAM, "relay"))
    hooks.sms(lines.TEXTER, words)
    parts = sent(line, lines.SAM, "relay")[relays_before:]
    assert len(parts) == 2 and all(len(part) <= 1600 for part in parts)
    alias = parts[0].split(": ", 1)[0]
    assert " ".join(parts) == f"{alias}: {words}"  # cut at a space, nothing lost or doubled
    # The supporter's longest text reaches the texter the same way.
    before = len(sent(line, lines.TEXTER, "relay"))
    hooks.sms(lines.SAM, words)
    back = sent(line, lines.TEXTER, "relay")[before:]
    assert len(back) == 2 and all(len(part) <= 1600 for part in back)
    assert " ".join(back) == f"Sam: {words}"
