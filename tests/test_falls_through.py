"""Issue 14, points 2, 3, 4, 5 and 9, one by one: the flows as pure functions, then each point
through signed webhooks against real PostgreSQL and Redis, jobs run by an RQ worker."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import select

from peerline.flows import effects as fx
from peerline.flows import texter
from peerline.service import segments
from peerline.service.context import COMBINE_SEGMENTS
from peerline.service.crisis import priority_of
from peerline.service.job_queue import redis_client
from peerline.service.models import (
    Alert,
    AuditEvent,
    Block,
    Contact,
    Conversation,
    InboundMessage,
    Offer,
    SafetyEvent,
    Supporter,
)
from peerline.service.runtime import Runtime
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, queued, run_jobs, take_chat, texts_to
from tests.support.console import Console
from tests.support.line import LineBuilder, Webhooks, load_line_file, make_line, make_settings
from tests.support.seed import add_coordinator
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.servers

OPEN = texter.LineStatus(open_now=True, position=1, wait_minutes=5)
SHUT = texter.LineStatus(open_now=False, next_opening="tomorrow at 9:00 AM (EST)")
CRISIS = "i want to kill myself"


def keys(outcome: texter.Outcome) -> list[str]:
    """Return the catalogue keys an outcome replies with."""
    return [e.key for e in outcome.effects if isinstance(e, fx.Reply)]


# -- the flows, pure -------------------------------------------------------------------------


@pytest.mark.parametrize("stage", [texter.NEW, texter.WELCOMED, texter.CLOSED, texter.RATING])
def test_crisis_outside_a_chat_joins_the_queue_without_yes(stage: str) -> None:
    outcome = texter.decide(texter.TexterState(stage=stage), OPEN, CRISIS, crisis="suicide")
    assert outcome.stage == texter.QUEUED
    assert fx.RaiseSafety("detector", "suicide") in outcome.effects
    assert fx.JoinQueue() in outcome.effects
    assert keys(outcome) == ["crisis", "crisis_queued"]


def test_crisis_first_in_spanish_and_on_a_closed_line() -> None:
    spanish = texter.decide(
        texter.TexterState(), OPEN, "no quiero vivir mas", crisis="suicide", crisis_language="es"
    )
    assert fx.SetLanguage("es") in spanish.effects and spanish.stage == texter.QUEUED
    shut = texter.decide(texter.TexterState(), SHUT, CRISIS, crisis="suicide")
    assert shut.stage == texter.WELCOMED and keys(shut) == ["crisis_closed", "closed"]
    assert fx.JoinQueue() not in shut.effects


def test_help_and_language_words_in_a_chat_are_relayed() -> None:
    active = texter.TexterState(stage=texter.ACTIVE, supporter_name="Sam")
    for word in ("HELP", "info", "Ayuda"):
        outcome = texter.decide(active, OPEN, word)
        assert outcome.effects == [fx.Relay(word), fx.Reply("help_in_chat")]
    assert texter.decide(active, OPEN, "please help me").effects == [fx.Relay("please help me")]
    assert fx.Relay("spanish") in texter.decide(active, OPEN, "spanish").effects
    # Outside a chat HELP is still the carrier's keyword.
    assert keys(texter.decide(texter.TexterState(stage=texter.WELCOMED), OPEN, "HELP")) == ["help"]


def test_pictures_are_named_never_relayed_empty() -> None:
    active = texter.TexterState(stage=texter.ACTIVE)
    alone = texter.decide(active, OPEN, "", media=1)
    assert alone.effects == [fx.Notify("picture_came"), fx.Reply("picture_not_passed")]
    with_words = texter.decide(active, OPEN, "look at this", media=2)
    assert with_words.effects[0] == fx.Relay("look at this", picture=True)
    in_queue = texter.decide(texter.TexterState(stage=texter.QUEUED), OPEN, "", media=1)
    assert in_queue.effects == [fx.Reply("picture_not_passed")]


def test_an_opt_out_word_mid_chat_ends_it_as_an_opt_out() -> None:
    outcome = texter.decide(texter.TexterState(stage=texter.ACTIVE), OPEN, "END")
    assert outcome.effects == [
        fx.SetOptOut(True),
        fx.EndChat(by="texter", ask_rating=False, opted_out=True),
    ]


# -- on real servers -------------------------------------------------------------------------


@pytest.fixture
def build(
    tmp_path: Path,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    app_for: Callable[[LineServices], Flask],
) -> Iterator[LineBuilder]:
    """Return a builder of a line on PostgreSQL and Redis, from a line file and settings."""
    made: list[LineServices] = []

    def make(text: str = lines.ON_CALL, **env: str) -> tuple[LineServices, Webhooks]:
        Redis.from_url(redis_server.url).flushall()
        settings = make_settings(
            tmp_path,
            DATABASE_URL=postgres_server.create_database(),
            REDIS_URL=redis_server.url,
            **env,
        )
        line = make_line(settings, redis_client(redis_server.url))
        load_line_file(line, text)
        made.append(line)
        return line, Webhooks(app_for(line).test_client(), line.settings)

    yield make
    for line in made:
        line.db.engine.dispose()


def lines_to(line: LineServices, number: str, alias: str) -> list[str]:
    """Return the texter's words as the supporter reads them: one per line, prefix dropped."""
    said = "\n".join(texts_to(line, number)).split("\n")
    return [s.split(": ", 1)[1] for s in said if re.match(rf"^(\[SAFETY\] )?{alias}: ", s)]


def connect(line: LineServices, hooks: Webhooks, texter_phone: str = lines.TEXTER) -> str:
    """Bring a texter into a chat with Sam; return their alias."""
    take_chat(line, hooks, texter_phone, lines.SAM)
    run_jobs(line)
    took = [t for t in texts_to(line, lines.SAM) if t.startswith("You are now chatting with")]
    found = re.search(r"with ([A-Z]\d+)", took[-1])
    assert found is not None
    return found.group(1)


def chat_id(line: LineServices) -> int:
    """Return the id of the one conversation in a chat."""
    with line.db.session() as session:
        return session.scalars(select(Conversation.id).where(Conversation.state == "active")).one()


def tick(line: LineServices, conversation_id: int, minutes: float) -> int | None:
    """Run a chat's timer as if some minutes had passed."""
    with line.db.session() as session:
        later = datetime.now(UTC) + timedelta(minutes=minutes)
        runtime = Runtime(line, session, later)
        following = runtime.chat_tick(conversation_id)
    runtime.after_commit.dispatch(line)
    return following


def test_a_burst_in_a_chat_reaches_the_supporter_whole(build: LineBuilder) -> None:
    line, hooks = build()  # the flood rule at its default, 12 a minute
    alias = connect(line, hooks)
    words = [f"burst {n}" for n in range(25)]
    words[12] = "i have pills with me and i want to die"
    for text in words:
        hooks.sms(lines.TEXTER, text)  # nothing sent meanwhile: a worker far behind
    to_sam = texts_to(line, lines.SAM)
    assert lines_to(line, lines.SAM, alias) == words  # every word, once, in order
    relays = [t for t in to_sam if t.startswith((f"{alias}: ", "[SAFETY]"))]
    assert len(relays) < len(words) and all(segments.count(t) <= COMBINE_SEGMENTS for t in relays)
    assert any(s.startswith("[SAFETY] ") and "pills" in s for s in "\n".join(to_sam).split("\n"))
    to_texter = texts_to(line, lines.TEXTER)
    assert len([t for t in to_texter if "988" in t and "matter" in t]) == 1
    assert not any("writing fast" in t or "slow down" in t for t in to_texter)
    with line.db.session() as session:
        assert session.scalars(select(SafetyEvent.category)).all() == ["means"]
    run_jobs(line)
    assert {m["status"] for m in outbox(line, lines.SAM)} == {"sent"}


def test_chat_texts_are_joined_only_while_it_saves_a_segment_and_never_past_two(
    build: LineBuilder,
) -> None:
    line, hooks = build()
    alias = connect(line, hooks)
    short = [f"short {n}" for n in range(6)]
    full = "x" * 150  # one segment on its own, with the alias in front
    two = "z" * 200  # two segments on its own: a short text joins it, still two
    words = [
        *short,
        full,
        "after the long one",
        two,
        "and this",
        *[f"then {n} " + "y" * 60 for n in range(8)],
    ]
    for text in words:
        hooks.sms(lines.TEXTER, text)  # nothing sent meanwhile: a worker far behind
    assert lines_to(line, lines.SAM, alias) == words  # every word, once, in order
    relays = [t for t in texts_to(line, lines.SAM) if t.startswith(f"{alias}: ")]
    sizes = [segments.count(t) for t in relays]
    assert max(sizes) == COMBINE_SEGMENTS == 2  # a long code's slot held 2 s at most
    # The short ones went together; the 150 characters did not join them (no segment saved).
    assert relays[0].count("\n") == len(short) - 1
    assert relays[1] == f"{alias}: {full}"
    assert two in relays[2] and relays[2].endswith("and this") and sizes[2] == 2
    # Fewer segments than one text each.
    assert sum(sizes) < sum(segments.count(f"{alias}: {w}") for w in words)


def test_every_word_written_in_the_queue_reaches_the_supporter(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN)
    hooks.sms(lines.TEXTER, "hi, is anyone there")
    hooks.sms(lines.TEXTER, "yes")
    words = [f"waiting {n}: " + "it has been a long night " * 3 for n in range(20)]
    for text in words:
        hooks.sms(lines.TEXTER, text)
    hooks.sms(lines.TEXTER, "", NumMedia="1")  # a picture while waiting
    assert texts_to(line, lines.TEXTER)[-1].startswith("Pictures can't be passed on")
    waits = [t for t in texts_to(line, lines.TEXTER) if t.startswith("You are still in line")]
    # They heard their place on YES; it is not repeated for every text (at most once a while).
    assert len(waits) <= 1
    run_jobs(line)
    hooks.sms(lines.SAM, "#take")
    alias = texts_to(line, lines.SAM)[-1].split(": ")[0]
    picture = "[sent a picture; pictures can't be passed on]"
    assert lines_to(line, lines.SAM, alias) == ["hi, is anyone there", *words, picture]
    assert all(segments.count(t) <= 4 for t in texts_to(line, lines.SAM))


def test_crisis_first_text_goes_first_in_line(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN)
    connect(line, hooks, lines.TEXTER_2)  # Sam is busy: the queue is real
    hooks.sms("+14165550197", "yes")
    hooks.sms(lines.TEXTER, CRISIS)
    first = texts_to(line, lines.TEXTER)
    assert "988" in first[0] and "will text you here" in first[1] and "BYE" in first[1]
    assert "number 1 in line" in first[1]  # ahead of the texter who said YES first
    assert not any("Reply YES" in t for t in first)
    hooks.sms(lines.TEXTER, "please hurry")
    hooks.sms(lines.TEXTER, "hello?")
    assert not any("Reply YES" in t for t in texts_to(line, lines.TEXTER))
    with line.db.session() as session:
        waiting = queued(session)
        # The crisis goes ahead at its category's priority (crisis.priority_of), above 0.
        assert [c.priority > 0 for c in waiting] == [True, False]
        assert waiting[0].contact.phone_hash == line.vault.lookup_hash(lines.TEXTER)
    hooks.sms(lines.TEXTER_2, "bye")
    run_jobs(line)
    assert texts_to(line, lines.SAM)[-1].startswith("PRIORITY")
    hooks.sms(lines.SAM, "#take")
    alias = texts_to(line, lines.SAM)[-1].split(": ")[0].removeprefix("[SAFETY] ")
    assert lines_to(line, lines.SAM, alias) == [CRISIS, "please hurry", "hello?"]
    # The words that raised the flag are marked so (session 17), the rest are not.
    said = "\n".join(texts_to(line, lines.SAM))
    assert f"[SAFETY] {alias}: {CRISIS}" in said and f"\n{alias}: please hurry" in said


def test_a_bare_two_word_first_text_of_pills_taken_goes_first(build: LineBuilder) -> None:
    # Session 20: "took pills" alone got a welcome and a place behind everyone who said YES.
    line, hooks = build(lines.ALWAYS_OPEN)
    connect(line, hooks, lines.TEXTER_2)  # Sam is busy: the queue is real
    hooks.sms("+14165550197", "yes")
    hooks.sms(lines.TEXTER, "took pills")
    hooks.sms(lines.TEXTER, "sorry")
    first = texts_to(line, lines.TEXTER)
    # Pills taken: 911 now first, the words for an attempt under way (session 27c).
    assert "call 911 now" in first[0] and "number 1 in line" in first[1]
    assert not any("Reply YES" in t for t in first)
    with line.db.session() as session:
        assert [c.priority for c in queued(session)] == [priority_of("attempt"), 0]
    # Someone else's, told as bare: the texter hears what to do for them, the flag is raised.
    hooks.sms("+14165550142", "mi hermano tomo pastillas")
    told = texts_to(line, "+14165550142")
    assert told[0].startswith("Te preocupa alguien?") and "llama al 911" in told[0]
    assert "numero 2 en la fila" in told[1]  # behind the texter who took pills, ahead of YES
    with line.db.session() as session:
        assert sorted(c.priority for c in queued(session))[-1] == priority_of("attempt")
        assert len(queued(session)) == 3


def test_crisis_first_text_in_spanish(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN)
    hooks.sms(lines.TEXTER, "no quiero vivir mas")
    sent = texts_to(line, lines.TEXTER)
    assert "988" in sent[0] and "Tu vida importa" in sent[0]
    assert "compañero/a de apoyo te escribira" in sent[1]
    with line.db.session() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.state, conversation.language) == ("queued", "es")


def test_a_flagged_chat_never_closes_itself(build: LineBuilder) -> None:
    line, hooks = build()
    connect(line, hooks)
    hooks.sms(lines.SAM, "hi, I'm Sam")
    hooks.sms(lines.TEXTER, CRISIS)
    chat = chat_id(line)
    to_texter = len(texts_to(line, lines.TEXTER))
    assert tick(line, chat, 61) is not None
    assert "flagged for safety and has been quiet for 61 min" in texts_to(line, lines.SAM)[-1]
    # Ria, on call, reads Spanish first (issue 21).
    assert "lleva 61 min en silencio en la conversacion con Sam" in texts_to(line, lines.RIA)[-1]
    tick(line, chat, 62)  # once a quiet period, not every tick
    tick(line, chat, 63)
    assert sum("has been quiet" in t for t in texts_to(line, lines.SAM)) == 1
    tick(line, chat, 122)
    assert sum("has been quiet" in t for t in texts_to(line, lines.SAM)) == 2
    assert len(texts_to(line, lines.TEXTER)) == to_texter  # nothing says it closed
    with line.db.session() as session:
        assert session.get(Conversation, chat).state == "active"  # type: ignore[union-attr]
        assert [a.kind for a in session.scalars(select(Alert).order_by(Alert.id))] == [
            "crisis",
            "crisis_quiet",
            "crisis_quiet",
        ]


def test_a_chat_flagged_by_alert_stays_open_and_alert_says_what_was_done(
    build: LineBuilder,
) -> None:
    line, hooks = build()
    connect(line, hooks)
    hooks.sms(lines.SAM, "#alert")
    assert "the on-call coordinator has been told" in texts_to(line, lines.SAM)[-1]
    assert "crisis resources have been offered" not in texts_to(line, lines.SAM)[-1]
    assert tick(line, chat_id(line), 61) is not None
    # A line with nobody on call: #alert says so rather than claiming someone was told.
    alone, alone_hooks = build(lines.ALWAYS_OPEN)
    connect(alone, alone_hooks)
    alone_hooks.sms(lines.SAM, "#alert")
    reply = texts_to(alone, lines.SAM)[-1]
    assert "no on-call coordinator" in reply and "has been told" not in reply


def test_a_chat_the_supporter_never_answered_goes_back_to_the_queue(build: LineBuilder) -> None:
    line, hooks = build()
    alias = connect(line, hooks)
    hooks.sms(lines.TEXTER, "hello? is anyone there")
    chat = chat_id(line)
    assert tick(line, chat, 61) is None
    assert "couldn't answer" in texts_to(line, lines.TEXTER)[-1]
    assert not any("quiet while" in t for t in texts_to(line, lines.TEXTER))
    assert f"{alias} no tuvo respuesta de Sam en 61 min" in texts_to(line, lines.RIA)[-1]
    assert "you are set away" in texts_to(line, lines.SAM)[-1]
    with line.db.session() as session:
        conversation = session.get(Conversation, chat)
        assert conversation is not None and conversation.state == "queued"
        assert session.scalars(select(Supporter).where(Supporter.name == "Sam")).one().away
    run_jobs(line)  # Ria, free, is offered the texter
    assert "#take" in texts_to(line, lines.RIA)[-1]


def test_a_quiet_chat_in_which_both_wrote_still_closes(build: LineBuilder) -> None:
    line, hooks = build()
    connect(line, hooks)
    hooks.sms(lines.SAM, "hi, I'm Sam")
    hooks.sms(lines.TEXTER, "thanks, talk later")
    assert tick(line, chat_id(line), 61) is None
    assert "closed after a quiet while" in texts_to(line, lines.TEXTER)[-1]


def test_help_and_pictures_mid_chat(build: LineBuilder) -> None:
    line, hooks = build()
    alias = connect(line, hooks)
    for word in ("HELP", "info", "AYUDA", "please help me"):
        hooks.sms(lines.TEXTER, word)
        run_jobs(line)
        assert texts_to(line, lines.SAM)[-1] == f"{alias}: {word}"
    helps = [t for t in texts_to(line, lines.TEXTER) if t.startswith("Your message went to Sam")]
    assert len(helps) == 3  # not for "please help me": those are just words
    hooks.sms(lines.TEXTER, "", NumMedia="1", MediaUrl0="https://api.twilio.com/x.jpg")
    assert texts_to(line, lines.SAM)[-1].startswith(f"{alias} sent a picture")
    assert texts_to(line, lines.TEXTER)[-1].startswith("Pictures can't be passed on")
    run_jobs(line)
    hooks.sms(lines.TEXTER, "this is me today", NumMedia="1")
    assert texts_to(line, lines.SAM)[-1].startswith(f"{alias}: this is me today [a picture")
    assert not any(t.rstrip().endswith(f"{alias}:") for t in texts_to(line, lines.SAM))
    assert hooks.sms(lines.TEXTER, "x", NumMedia="lots").status_code == 400


def test_an_opt_out_mid_chat_tells_the_supporter_how_they_can_come_back(build: LineBuilder) -> None:
    line, hooks = build()
    alias = connect(line, hooks)
    before = len(texts_to(line, lines.TEXTER))
    hooks.sms(lines.TEXTER, "END")
    # The after-chat text (issue 21) follows what happened.
    assert f"{alias} sent an opt-out word" in texts_to(line, lines.SAM)[-2]
    assert "START" in texts_to(line, lines.SAM)[-2]
    assert len(texts_to(line, lines.TEXTER)) == before  # Twilio blocks anything from us now
    hooks.sms(lines.TEXTER, "START")
    assert "You'll get texts from Peerline again" in texts_to(line, lines.TEXTER)[-1]


def test_a_blocked_number_in_crisis_gets_the_resources_once_an_hour(build: LineBuilder) -> None:
    line, hooks = build()
    connect(line, hooks)
    hooks.sms(lines.SAM, "#block")
    before = len(texts_to(line, lines.TEXTER))
    hooks.sms(lines.TEXTER, "hello??")
    assert len(texts_to(line, lines.TEXTER)) == before  # still unanswered
    hooks.sms(lines.TEXTER, CRISIS)
    assert "988" in texts_to(line, lines.TEXTER)[-1]
    assert "un numero bloqueado" in texts_to(line, lines.RIA)[-1]  # Ria reads Spanish
    hooks.sms(lines.TEXTER, "i really want to die")
    assert len(texts_to(line, lines.TEXTER)) == before + 1  # once within the hour
    with line.db.session() as session:
        kinds = [a.kind for a in session.scalars(select(Alert))]
        assert kinds.count("blocked_crisis") == 1
        last = session.scalars(select(InboundMessage).order_by(InboundMessage.id.desc())).first()
        assert last is not None and last.sender_kind == "blocked"
    # An hour on, crisis words get the resources again.
    with line.db.session() as session:
        contact = session.scalars(select(Contact)).one()
        contact.crisis_replied_at = datetime.now(UTC) - timedelta(minutes=61)
    hooks.sms(lines.TEXTER, "i want to end my life")
    assert len(texts_to(line, lines.TEXTER)) == before + 2


def test_the_console_can_lift_a_block(build: LineBuilder) -> None:
    line, hooks = build()
    connect(line, hooks)
    hooks.sms(lines.SAM, "#block")
    add_coordinator(line)
    with line.db.session() as session:
        conversation = session.scalars(select(Conversation.id)).one()
    console = Console(hooks.client)
    assert console.sign_in().status_code == 302
    page = console.get(f"/console/conversations/{conversation}").get_data(as_text=True)
    assert "Lift the block" in page
    url = f"/console/conversations/{conversation}/unblock"
    assert console.post(url, {"reason": "reviewed"}, token=False).status_code == 400  # CSRF
    assert console.post(url, {"reason": "short"}).status_code == 400
    lifted = console.post(url, {"reason": "Reviewed the chat: the block was a mistake"})
    assert lifted.status_code == 302
    with line.db.session() as session:
        assert session.scalars(select(Block)).all() == []
        entry = session.scalars(select(AuditEvent).where(AuditEvent.action == "block.lifted")).one()
        assert "block was a mistake" in entry.detail
    hooks.sms(lines.TEXTER, "hello again")
    assert "Reply YES" in texts_to(line, lines.TEXTER)[-1]  # answered again


def test_crisis_at_the_rating_question_starts_a_new_chat_first_in_line(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN)
    connect(line, hooks)
    hooks.sms(lines.TEXTER, "bye")
    assert "from 1" in texts_to(line, lines.TEXTER)[-1]
    hooks.sms(lines.TEXTER, CRISIS)
    assert "will text you here" in texts_to(line, lines.TEXTER)[-1]
    with line.db.session() as session:
        states = [
            (c.state, c.priority, c.supporter_id is not None)
            for c in session.scalars(select(Conversation).order_by(Conversation.id))
        ]
    crisis = states[0][1]
    assert crisis > 0 and states == [("closed", crisis, True), ("queued", crisis, False)]


def test_a_supporters_picture_is_not_an_empty_relay(build: LineBuilder) -> None:
    line, hooks = build()
    connect(line, hooks)
    before = texts_to(line, lines.TEXTER)
    hooks.sms(lines.SAM, "", NumMedia="1")
    assert texts_to(line, lines.TEXTER) == before
    assert texts_to(line, lines.SAM)[-1].startswith("Pictures can't be passed on")


def test_a_second_crisis_texter_hears_their_true_place(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN)
    connect(line, hooks, lines.TEXTER_2)  # Sam is busy: the queue is real
    hooks.sms(lines.TEXTER, CRISIS)
    hooks.sms("+14165550196", CRISIS)
    assert "number 1 in line" in texts_to(line, lines.TEXTER)[1]
    assert "number 2 in line" in texts_to(line, "+14165550196")[1]


def test_an_attempt_takes_the_newest_pending_offer_on_postgres(build: LineBuilder) -> None:
    # Both supporters hold an offer of an ordinary chat when a texter tells of an attempt
    # under way: the newest offer is withdrawn and its supporter offered the attempt.
    line, hooks = build()
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    hooks.sms(lines.TEXTER_2, "yes")
    run_jobs(line)
    with line.db.session() as session:
        first, second = session.scalars(select(Offer).order_by(Offer.id)).all()
        newest = second.supporter_id
    hooks.sms("+14165550197", "i just took 30 of my sleeping pills")
    run_jobs(line)
    with line.db.session() as session:
        offers = session.scalars(select(Offer).order_by(Offer.id)).all()
        assert [o.status for o in offers] == ["pending", "withdrawn", "pending"]
        assert offers[2].supporter_id == newest
        urgent = session.get(Conversation, offers[2].conversation_id)
        assert urgent is not None and urgent.priority == priority_of("attempt")
        left = session.get(Conversation, offers[1].conversation_id)
        assert left is not None and left.state == "queued"
