"""Routing a coordinator can trust: ranking, re-offers, auto-away, strategies, the relay pool,
timers while waiting, and the rota behind it all."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakeredis import FakeRedis
from sqlalchemy import event, func, select, update

from peerline.app import create_app
from peerline.console.dashboard import read_live
from peerline.flows.catalogue import Catalogue
from peerline.service import linefile, linesync, routing, segments
from peerline.service.availability import load_line_rotas
from peerline.service.calls import STALE_AFTER, supporters_on_calls
from peerline.service.models import Alert, Contact, Conversation, Offer, Supporter, utcnow
from peerline.service.runtime import Runtime, expire_offer, run_matching
from peerline.service.services import LineServices
from peerline.service.voice.models import Call, CallLeg
from tests.support import lines
from tests.support.chat import outbox, run_jobs, take_chat, texts_to
from tests.support.line import (
    LineBuilder,
    Webhooks,
    load_line_file,
    make_line,
    make_settings,
    sqlite_line,
)
from tests.support.seed import add_contact

RELAY_A, RELAY_B = "+15550100001", "+15550100002"


def pending_offers(line: LineServices) -> list[tuple[int, str]]:
    """Return (conversation id, supporter name) of every pending offer."""
    with line.db.session() as session:
        rows = session.execute(
            select(Offer.conversation_id, Supporter.name)
            .join(Supporter, Supporter.id == Offer.supporter_id)
            .where(Offer.status == "pending")
            .order_by(Offer.id)
        )
        return [(cid, name) for cid, name in rows]


def test_spanish_texter_goes_to_spanish_speaker(build: LineBuilder) -> None:
    line, hooks = build(lines.TWO_ON)
    hooks.sms(lines.TEXTER, "hola")
    assert "apoyo entre pares" in texts_to(line, lines.TEXTER)[0]
    hooks.sms(lines.TEXTER, "si")
    run_jobs(line)
    assert [name for _, name in pending_offers(line)] == ["Ria"]


def test_spanish_texter_goes_to_anyone_with_a_note(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN)
    hooks.sms(lines.TEXTER, "ESPAÑOL")
    hooks.sms(lines.TEXTER, "sí")
    run_jobs(line)
    assert "writes in Spanish; no Spanish speaker is free" in texts_to(line, lines.SAM)[-1]


def chat(hooks: Webhooks, line: LineServices, texter: str, supporter: str) -> None:
    """Run a chat from YES to BYE between a texter and a supporter who takes it."""
    take_chat(line, hooks, texter, supporter)
    hooks.sms(texter, "bye")
    hooks.sms(texter, "5")


def test_fairness_prefers_fewest_chats_this_shift(build: LineBuilder) -> None:
    line, hooks = build(lines.TWO_ON)
    chat(hooks, line, lines.TEXTER, lines.SAM)  # Sam ranks first on a tie
    hooks.sms(lines.TEXTER_2, "yes")
    run_jobs(line)
    assert [name for _, name in pending_offers(line)] == ["Ria"]


def test_returning_texter_can_ask_for_the_same_supporter(build: LineBuilder) -> None:
    line, hooks = build(lines.TWO_ON)
    chat(hooks, line, lines.TEXTER_2, lines.SAM)  # Sam now has more chats than Ria
    chat(hooks, line, lines.TEXTER, lines.RIA)
    chat(hooks, line, "+14165550197", lines.RIA)  # and now Ria has more than Sam
    hooks.sms(lines.TEXTER, "yes")
    assert "Reply SAME to ask for Ria again" in texts_to(line, lines.TEXTER)[-1]
    hooks.sms(lines.TEXTER, "same")
    assert "we will ask Ria first" in texts_to(line, lines.TEXTER)[-1]
    run_jobs(line)
    # They asked for Ria again (their consent): her offer says when they last talked.
    offer = texts_to(line, lines.RIA)[-1]
    # Ria reads Spanish first (issue 21: a supporter's texts in their language).
    assert "vuelve: hablaste con esta persona hace menos de un dia" in offer, offer
    hooks.sms(lines.RIA, "#pass")
    run_jobs(line)
    # Offered to Sam, who is not the one they asked for: "returning", without details.
    assert [name for _, name in pending_offers(line)] == ["Sam"]
    assert "(just joined the line, returning texter)" in texts_to(line, lines.SAM)[-1]
    assert "you talked with them" not in texts_to(line, lines.SAM)[-1]


def test_per_shift_cap_protects_supporters(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN, PEERLINE_SHIFT_CHAT_CAP="1")
    chat(hooks, line, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER_2, "yes")
    run_jobs(line)
    assert pending_offers(line) == []


def test_expired_offers_set_a_supporter_away(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN, PEERLINE_AUTO_AWAY_AFTER="2")
    for texter in (lines.TEXTER, lines.TEXTER_2):
        hooks.sms(texter, "yes")
        run_jobs(line)
        with line.db.session() as session:
            offer = session.scalars(select(Offer).where(Offer.status == "pending")).one()
            offer_id, expires = offer.id, offer.expires_at
        expire_offer(line, offer_id, now=expires)
    assert "missed 2 offers in a row" in texts_to(line, lines.SAM)[-1]
    with line.db.session() as session:
        assert session.scalars(select(Supporter)).one().away
    run_jobs(line)
    assert pending_offers(line) == []  # away, and neither texter is re-offered to Sam
    hooks.sms(lines.SAM, "#back")
    assert "Welcome back" in texts_to(line, lines.SAM)[-1]


def test_crisis_flagged_conversations_go_first(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN)
    hooks.sms(lines.TEXTER, "yes")
    hooks.sms(lines.TEXTER_2, "yes")
    with line.db.session() as session:
        later = session.scalars(select(Conversation).order_by(Conversation.id.desc())).first()
        assert later is not None
        later.priority, later_id = 1, later.id
    run_jobs(line)
    assert [cid for cid, _ in pending_offers(line)] == [later_id]
    assert texts_to(line, lines.SAM)[-1].startswith("PRIORITY:")


def test_several_at_once_first_take_wins(build: LineBuilder) -> None:
    line, hooks = build(lines.TWO_ON, PEERLINE_OFFER_STRATEGY="several")
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    assert sorted(name for _, name in pending_offers(line)) == ["Ria", "Sam"]
    hooks.sms(lines.RIA, "#take")
    assert "connected with Ria" in texts_to(line, lines.TEXTER)[-1]
    assert "Someone else already took that chat" in texts_to(line, lines.SAM)[-1]
    told = texts_to(line, lines.SAM)
    hooks.sms(lines.SAM, "#take")
    assert texts_to(line, lines.SAM) == told  # that was his answer; no "no offer" after it


POOL_LINE = lines.ALWAYS_OPEN.replace(
    "    languages: [en]\n", "    languages: [en]\n    capacity: 2\n"
)


def test_relay_pool_gives_each_chat_its_own_number(build: LineBuilder) -> None:
    line, hooks = build(POOL_LINE, TWILIO_RELAY_NUMBERS=f"{RELAY_A},{RELAY_B}")
    hooks.sms(lines.TEXTER, "yes")
    hooks.sms(lines.TEXTER_2, "yes")
    run_jobs(line)
    offers = [m for m in outbox(line, lines.SAM) if m["purpose"] == "offer"]
    assert {m["from"] for m in offers} == {RELAY_A, RELAY_B}
    for offer in offers:
        hooks.sms(lines.SAM, "#take", To=offer["from"])
    first = next(m for m in offers if m["from"] == RELAY_A)["body"].split()[0]
    hooks.sms(lines.SAM, "hello from A", To=RELAY_A)
    hooks.sms(lines.SAM, "hello from B", To=RELAY_B)
    to_texters = {n: texts_to(line, n) for n in (lines.TEXTER, lines.TEXTER_2)}
    owner_a = next(n for n, texts in to_texters.items() if "Sam: hello from A" in texts)
    assert "Sam: hello from B" not in to_texters[owner_a]
    assert any("Sam: hello from B" in texts for texts in to_texters.values())
    # Texters only ever hear from the line number; the texter's words reach Sam on their thread.
    assert {m["from"] for n in to_texters for m in outbox(line, n)} == {
        line.settings.twilio_phone_number
    }
    hooks.sms(owner_a, "thanks")
    relayed = outbox(line, lines.SAM)[-1]
    assert (relayed["from"], relayed["body"]) == (RELAY_A, f"{first}: thanks")


ON_CALL_LINE = lines.ALWAYS_OPEN.replace(
    "    languages: [en]\n", "    languages: [en]\n    on_call: true\n"
)


def test_wait_updates_and_unmatched_alert(build: LineBuilder) -> None:
    line, hooks = build(
        ON_CALL_LINE,
        PEERLINE_WAIT_UPDATE_SECONDS="60",
        PEERLINE_UNMATCHED_ALERT_SECONDS="150",
    )
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    hooks.sms(lines.SAM, "#take")  # Sam is busy from now on
    hooks.sms(lines.TEXTER_2, "yes")
    with line.db.session() as session:
        waiting = session.scalars(select(Conversation).where(Conversation.state == "queued")).one()
        waiting_id, queued_at = waiting.id, waiting.queued_at
    assert queued_at is not None

    def tick(seconds: int) -> None:
        with line.db.session() as session:
            Runtime(line, session, queued_at + timedelta(seconds=seconds)).queue_tick(waiting_id)

    tick(30)
    assert len(texts_to(line, lines.TEXTER_2)) == 2  # welcome+queued only
    tick(61)
    assert (
        "Still looking for a peer for you. You are number 1" in texts_to(line, lines.TEXTER_2)[-1]
    )
    tick(62)
    assert len(texts_to(line, lines.TEXTER_2)) == 3  # not twice for one interval
    tick(151)
    tick(152)
    with line.db.session() as session:
        alerts = session.scalars(select(Alert)).all()
        assert [a.kind for a in alerts] == ["unmatched"]
    assert texts_to(line, lines.SAM)[-1].startswith("Peerline alert:")
    # A tick is scheduled in Redis for every waiting conversation.
    scheduled = [j for j in line.job_queue.queue.scheduled_job_registry.get_job_ids()]
    assert any(j.startswith(f"queue-tick-{waiting_id}-") for j in scheduled)


def test_closed_line_offers_a_text_when_it_opens(build: LineBuilder) -> None:
    tz = ZoneInfo("America/Toronto")
    day = (utcnow().astimezone(tz) + timedelta(days=2)).date()
    text = (
        lines.NEVER_OPEN + f'    cover:\n      - {{date: "{day}", start: "09:00", end: "17:00"}}\n'
    )
    line, hooks = build(text)
    hooks.sms(lines.TEXTER, "yes")
    assert "Reply NOTIFY" in texts_to(line, lines.TEXTER)[-1]
    hooks.sms(lines.TEXTER, "notify")
    assert "we will text you when" in texts_to(line, lines.TEXTER)[-1]
    scheduled = line.job_queue.queue.scheduled_job_registry.get_job_ids()
    assert [j.split("-")[:2] for j in scheduled] == [["notify", "open"]]
    with line.db.session() as session:
        conversation = session.scalars(select(Conversation)).one()
        opening = line.job_queue.queue.scheduled_job_registry.get_scheduled_time(scheduled[0])
        assert opening.astimezone(tz).date() == day and opening.astimezone(tz).hour == 9
        Runtime(line, session, opening + timedelta(minutes=1)).notify_open(conversation.id)
    assert "Peerline is open now" in texts_to(line, lines.TEXTER)[-1]


def test_calendar_feed(build: LineBuilder) -> None:
    line, hooks = build(lines.TWO_ON)
    with line.db.session() as session:
        token = session.scalars(select(Supporter.calendar_token)).first()
    response = hooks.client.get(f"/calendar/{token}.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    body = response.get_data(as_text=True)
    assert "BEGIN:VEVENT" in body and "TZID:America/Toronto" in body
    assert hooks.client.get("/calendar/" + "x" * 32 + ".ics").status_code == 404


FULL_FILE = """\
timezone: Europe/London
holidays: GB-ENG
supporters:
  - name: Sam
    phone: "+442079460101"
    languages: [en, es]
    capacity: 2
    takes_calls: false
    on_call: true
    shifts:
      - {days: [mon, wed, fri], start: "09:00", end: "17:00"}
      - {days: [sat], start: "22:00", end: "02:00", run_on_holidays: true}
    cover:
      - {date: "2026-12-27", start: "10:00", end: "14:00"}
    time_off:
      - {from: "2026-12-24", to: "2026-12-26"}
  - name: Ria
    phone: "+442079460102"
    active: false
groups:
  - name: Evening group
    days: [tue]
    start: "19:00"
    minutes: 90
    skip_holidays: GB-ENG
    join: "https://example.org/evening"
    cancelled: ["2026-12-29"]
"""


def test_line_file_round_trips_through_the_database(tmp_path: Path) -> None:
    line = make_line(make_settings(tmp_path), FakeRedis())
    spec = linefile.parse(FULL_FILE, "GB")
    with line.db.session() as session:
        assert linesync.import_line(session, line.vault, spec).changed
    with line.db.session() as session:
        assert not linesync.import_line(session, line.vault, spec).changed
    with line.db.session() as session:
        exported = linesync.export_line(session, line.vault, "UTC")
    assert exported == spec
    assert linefile.parse(linefile.dump(exported), "GB") == spec


def test_no_sms_offers_to_supporters_on_a_call_or_who_take_calls_only(build: LineBuilder) -> None:
    calls_only = lines.TWO_ON.replace(
        f'phone: "{lines.RIA}"\n', f'phone: "{lines.RIA}"\n    takes_sms: false\n'
    )
    line, hooks = build(calls_only)
    with line.db.session() as session:
        sam = session.scalars(select(Supporter).where(Supporter.name == "Sam")).one()
        call = Call(call_sid="CA" + "9" * 32, direction="inbound", state="ringing")
        session.add(call)
        session.flush()
        session.add(CallLeg(call_id=call.id, supporter_id=sam.id, round=1))
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    assert pending_offers(line) == []  # Sam is on a call, Ria takes calls only
    with line.db.session() as session:
        for call in session.scalars(select(Call)):
            call.ended_at = utcnow()
    run_jobs(line)  # nothing queued a new round yet: the next event (or the sweep) does
    hooks.sms(lines.TEXTER, "still there?")
    run_matching(line)
    assert [name for _, name in pending_offers(line)] == ["Sam"]


# -- what a matching round costs ----------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def any_db_line(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LineServices]:
    """Return a line with Sam and Ria on shift, on SQLite and on PostgreSQL (which locks)."""
    env = {}
    if request.param == "postgresql":
        env["DATABASE_URL"] = request.getfixturevalue("postgres_server").create_database()
    with sqlite_line(tmp_path, lines.TWO_ON, **env) as line:
        yield line


def queue_texters(line: LineServices, count: int, *, crisis: bool = False) -> list[int]:
    """Put texters in the queue, oldest first; return their conversations' ids."""
    ids = []
    with line.db.session() as session:
        first = session.scalar(select(func.count()).select_from(Contact)) or 0
        for n in range(first, first + count):
            phone = f"+1647555{3000 + n}"
            contact = add_contact(session, line.vault, phone, f"Q{n}")
            conversation = Conversation(
                contact_id=contact.id,
                state="queued",
                priority=1 if crisis else 0,
                queued_at=utcnow() - timedelta(minutes=30) + timedelta(seconds=n),
            )
            session.add(conversation)
            session.flush()
            ids.append(conversation.id)
    return ids


def one_round(line: LineServices) -> tuple[list[tuple[int, str, str]], int]:
    """Run a matching round and roll it back; return (conversation, supporter, alias) of each
    offer and how many statements the round sent."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with line.db.session() as session:
        # The rotas as a busy line has them: cached since the last change to the rota.
        load_line_rotas(session, line.settings.line_timezone)
    session = line.db.sessions()
    event.listen(line.db.engine, "before_cursor_execute", count)
    try:
        offers = Runtime(line, session).match()
        made = [(o.conversation_id, o.supporter.name, o.alias) for o in offers]
    finally:
        event.remove(line.db.engine, "before_cursor_execute", count)
        session.rollback()
        session.close()
    # SQLite's BEGIN IMMEDIATE is a statement too; PostgreSQL's BEGIN is not counted.
    return made, len([s for s in statements if s != "BEGIN IMMEDIATE"])


def test_a_round_costs_the_same_few_statements_however_long_the_queue(
    any_db_line: LineServices,
) -> None:
    line = any_db_line
    oldest = queue_texters(line, 3)
    crisis = queue_texters(line, 1, crisis=True)
    offers, statements = one_round(line)
    # Crisis first, then the oldest; Sam and Ria tie on everything but their ids.
    assert offers == [(crisis[0], "Sam", "Q3"), (oldest[0], "Ria", "Q0")]
    # The line's settings, the candidates (and, on SQLite, their recent matches), one read per
    # priority level of the queue, then per offer: lock and read the supporter, write the
    # offer (counting their load again), write the text; the kinds of crisis the round's
    # priority offers name are read once for them all (session 27f; one an offer in 27c).
    per_round = 2 if line.db.is_postgres else 3
    assert statements == per_round + 2 + 3 * len(offers) + 1
    queue_texters(line, 40)
    queue_texters(line, 5, crisis=True)
    longer_queue = one_round(line)  # the first round was rolled back: Q3 still waits
    assert [alias for _, _, alias in longer_queue[0]] == ["Q3", "Q44"]
    # Both offers from the crisis level now, their kinds read in one statement (session 27f:
    # one statement fewer than when each offer read its own).
    assert longer_queue[1] == per_round + 1 + 3 * 2 + 1


def expired_offers(line: LineServices, conversation_id: int, *names: str) -> None:
    """Record offers of a conversation that timed out, to supporters by name, in that order."""
    with line.db.session() as session:
        for name in names:
            supporter = session.scalars(select(Supporter).where(Supporter.name == name)).one()
            session.add(
                Offer(
                    conversation_id=conversation_id,
                    supporter_id=supporter.id,
                    status="expired",
                    expires_at=utcnow(),
                )
            )
            session.flush()


def test_a_texter_one_supporter_missed_goes_to_another_who_is_free(
    any_db_line: LineServices,
) -> None:
    line = any_db_line
    missed, first, _ = queue_texters(line, 3)
    expired_offers(line, missed, "Sam")
    offers, _ = one_round(line)
    # Sam is skipped for them while Ria can take it; Sam takes the next in line.
    assert [(cid, name) for cid, name, _ in offers] == [(missed, "Ria"), (first, "Sam")]


def test_a_texter_everyone_free_missed_goes_round_again(any_db_line: LineServices) -> None:
    # This test used to say such a texter is passed over for ever: that stranded them.
    line = any_db_line
    missed, first, _ = queue_texters(line, 3)
    expired_offers(line, missed, "Ria", "Sam")
    offers, statements = one_round(line)
    # Nobody free is left who has not had it: it goes round again, first to whoever had it
    # longest ago (Ria), and keeps its place at the front of the line.
    assert [(cid, name) for cid, name, _ in offers] == [(missed, "Ria"), (first, "Sam")]
    assert statements == (2 if line.db.is_postgres else 3) + 1 + 3 * 2


def test_a_round_with_nobody_free_reads_one_waiting_row_at_most(any_db_line: LineServices) -> None:
    line = any_db_line
    queue_texters(line, 3)
    with line.db.session() as session:
        session.execute(update(Supporter).values(away=True))
    # The line's settings and the candidates; then whether anyone waits in danger now (who
    # may take a pending offer's place, runtime.offers._make_way): one row at most, by index.
    assert one_round(line) == ([], 3)


def test_routing_agrees_with_calls_on_who_is_on_a_call(any_db_line: LineServices) -> None:
    line = any_db_line
    now = utcnow()
    stale = now - STALE_AFTER - timedelta(minutes=1)
    legs = {  # (leg status, leg ended, call ended, leg created)
        "ringing": (None, None, None, now),
        "talking": ("in-progress", None, None, now),
        "completed": ("completed", None, None, now),
        "leg ended": ("in-progress", now, None, now),
        "call ended": ("in-progress", None, now, now),
        "stale leg": ("ringing", None, None, stale),
    }
    callbacks = {  # (state, ended, created)
        "calling back": ("dialing", None, now),
        "callback failed": ("failed", None, now),
        "callback ended": ("connected", now, now),
        "stale callback": ("connected", None, stale),
    }
    with line.db.session() as session:
        ids: dict[str, int] = {}
        for n, name in enumerate([*legs, *callbacks, "inbound call", "idle"]):
            supporter = Supporter(
                name=name, phone_hash=f"calls-{n}", phone_enc=line.vault.encrypt("+1")
            )
            session.add(supporter)
            session.flush()
            ids[name] = supporter.id
        for name, (status, leg_ended, call_ended, created) in legs.items():
            call = Call(direction="inbound", state="ringing", ended_at=call_ended)
            session.add(call)
            session.flush()
            session.add(
                CallLeg(
                    call_id=call.id,
                    supporter_id=ids[name],
                    round=1,
                    status=status,
                    ended_at=leg_ended,
                    created_at=created,
                )
            )
        for name, (state, ended, created) in callbacks.items():
            session.add(
                Call(
                    direction="callback",
                    state=state,
                    supporter_id=ids[name],
                    ended_at=ended,
                    created_at=created,
                )
            )
        # An inbound call's supporter is on it through its leg, which is what calls counts.
        session.add(Call(direction="inbound", state="connected", supporter_id=ids["inbound call"]))
    with line.db.session() as session:
        expected = supporters_on_calls(session, now)
        found = set(
            session.scalars(
                select(Supporter.id).where(routing._on_a_call()),
                {"calls_since": now - STALE_AFTER},
            )
        )
    assert found == expected == {ids["ringing"], ids["talking"], ids["calling back"]}


# -- nobody stranded, honest waits, one alert for a stuck queue, a truthful dashboard ---------


def offer_of(line: LineServices) -> tuple[int, Any]:
    """Return the only pending offer's id and when it times out."""
    with line.db.session() as session:
        offer = session.scalars(select(Offer).where(Offer.status == "pending")).one()
        return offer.id, offer.expires_at


def test_with_one_supporter_a_missed_offer_comes_round_again(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN)
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    offer_id, expires = offer_of(line)
    expire_offer(line, offer_id, now=expires)
    # Nobody else can take it: it comes straight back to Sam, and he is told why, not that it
    # went to someone else.
    assert [name for _, name in pending_offers(line)] == ["Sam"]
    told = texts_to(line, lines.SAM)[-1]
    assert "Your offer timed out; everyone free has had it, so it comes back." in told
    assert not any("gone to someone else" in t for t in texts_to(line, lines.SAM))
    hooks.sms(lines.SAM, "#take")
    assert "connected with Sam" in texts_to(line, lines.TEXTER)[-1]


def test_a_passed_offer_goes_to_the_next_free_supporter_and_only_then_comes_back(
    build: LineBuilder,
) -> None:
    line, hooks = build(lines.TWO_ON)
    hooks.sms(lines.TEXTER_2, "yes")
    run_jobs(line)
    hooks.sms(lines.SAM, "#take")  # Sam is busy with the first texter
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    assert [name for _, name in pending_offers(line)] == ["Ria"]
    hooks.sms(lines.RIA, "#pass")
    run_jobs(line)
    # Nobody else is free, but Ria's #pass holds for a while: the texter waits (it came back
    # to her 30 ms later, which made #pass useless on a one-person shift).
    assert pending_offers(line) == []
    with line.db.session() as session:
        session.execute(
            update(Offer)
            .where(Offer.status == "declined")
            .values(resolved_at=utcnow() - routing.PASS_HOLD - timedelta(seconds=1))
        )
    run_matching(line)  # the round scheduled for when the hold ends
    # Once it no longer holds, the texter comes back to Ria, who hears why (in Spanish, her
    # first).
    assert [name for _, name in pending_offers(line)] == ["Ria"]
    assert "Todos los libres ya la tuvieron, asi que te vuelve a tocar." in texts_to(
        line, lines.RIA
    )[-1]
    hooks.sms(lines.SAM, "#done")  # Sam is free, after Ria's offer was made: it is hers
    run_jobs(line)
    assert [name for _, name in pending_offers(line)] == ["Ria"]
    offer_id, expires = offer_of(line)
    expire_offer(line, offer_id, now=expires)
    assert [name for _, name in pending_offers(line)] == ["Sam"]
    assert "vencio y paso a otra persona" in texts_to(line, lines.RIA)[-1]
    assert "comes round to you again" not in texts_to(line, lines.SAM)[-1]


def test_a_supporter_passed_over_is_offered_the_texter_alongside(build: LineBuilder) -> None:
    line, hooks = build(lines.TWO_ON)
    take_chat(line, hooks, lines.TEXTER_2, lines.SAM)
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)  # offered to Ria
    hooks.sms(lines.SAM, "#done")  # Sam is free from now
    offer_id, expires = offer_of(line)
    with line.db.session() as session:
        offer = session.get(Offer, offer_id)
        assert offer is not None
        # Ria's offer is made again a minute after Sam became free (a round that ranked her
        # first): Sam would sit free while the texter waits on her for a whole time-out more.
        offer.created_at = utcnow() + timedelta(minutes=1)
    run_matching(line, now=utcnow() + timedelta(minutes=1))
    assert [name for _, name in pending_offers(line)] == ["Ria", "Sam"]
    assert "Another peer has this offer too: the first #take wins." in texts_to(line, lines.SAM)[-1]
    hooks.sms(lines.SAM, "#take")
    assert "Otra persona ya tomo esa conversacion" in texts_to(line, lines.RIA)[-1]  # Spanish


def test_the_place_in_line_counts_who_joined_at_the_same_moment(any_db_line: LineServices) -> None:
    line = any_db_line
    ids = queue_texters(line, 3)
    with line.db.session() as session:
        same = utcnow() - timedelta(minutes=1)
        conversations = [session.get(Conversation, cid) for cid in ids]
        for conversation in conversations:
            assert conversation is not None
            conversation.queued_at = same
        session.flush()
        places = [routing.queue_position(session, c) for c in conversations if c is not None]
    assert places == [1, 2, 3]


def chats_in_the_last_hour(line: LineServices, waits: list[int], minutes: int) -> None:
    """Record chats matched lately, each after a wait of so many minutes, lasting `minutes`."""
    with line.db.session() as session:
        for n, wait in enumerate(waits):
            phone = f"+1647555{5000 + n}"
            contact = add_contact(session, line.vault, phone, f"H{n}")
            matched = utcnow() - timedelta(minutes=60 - n)
            session.add(
                Conversation(
                    contact_id=contact.id,
                    state="closed",
                    queued_at=matched - timedelta(minutes=wait),
                    matched_at=matched,
                    closed_at=matched + timedelta(minutes=minutes),
                )
            )


def test_the_wait_a_texter_hears_comes_from_real_waits_and_who_is_free(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN)
    chats_in_the_last_hour(line, [25, 30, 35, 40], 40)
    hooks.sms(lines.TEXTER, "yes")
    # Sam is free: he is offered them at once; the wait is at most an offer's time.
    assert "number 1 in line (about 2 min)" in texts_to(line, lines.TEXTER)[-1]
    run_jobs(line)
    hooks.sms(lines.SAM, "#take")
    hooks.sms(lines.TEXTER_2, "yes")
    # Sam is busy: lately people waited 30 minutes (the median, the first texter's wait of
    # none included); this used to say "about 2 min".
    assert "number 1 in line (about 30 min)" in texts_to(line, lines.TEXTER_2)[-1]


def test_nobody_available_is_said_when_everyone_on_shift_is_away_or_at_their_cap(
    build: LineBuilder,
) -> None:
    line, hooks = build(lines.TWO_ON, PEERLINE_SHIFT_CHAT_CAP="1")
    hooks.sms(lines.RIA, "#away")
    chat(hooks, line, lines.TEXTER, lines.SAM)  # Sam has had his one chat this shift
    hooks.sms(lines.TEXTER_2, "yes")
    assert "(nobody is available right now; we keep looking)" in texts_to(line, lines.TEXTER_2)[-1]
    hooks.sms(lines.RIA, "#back")
    hooks.sms("+14165550197", "yes")
    assert "nobody is available" not in texts_to(line, "+14165550197")[-1]


def test_a_stuck_queue_is_one_alert_to_the_on_call_coordinator(build: LineBuilder) -> None:
    line, hooks = build(ON_CALL_LINE, PEERLINE_UNMATCHED_ALERT_SECONDS="60")
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    hooks.sms(lines.SAM, "#take")  # Sam is busy from now on
    waiting = [f"+1647555{6000 + n}" for n in range(4)]
    for phone in waiting:
        hooks.sms(phone, "yes")
    with line.db.session() as session:
        queued = session.execute(
            select(Conversation.id, Conversation.queued_at).where(Conversation.state == "queued")
        ).all()
    before = len(texts_to(line, lines.SAM))
    for minute in (2, 5):
        for cid, queued_at in queued:
            with line.db.session() as session:
                Runtime(line, session, queued_at + timedelta(minutes=minute)).queue_tick(cid)
    with line.db.session() as session:
        alerts = session.scalars(select(Alert)).all()
    assert [a.kind for a in alerts] == ["unmatched"]
    assert alerts[0].detail == "4 waiting, the longest 2 min; 0 free of 1 on shift, 0 away"
    alerts_texted = [t for t in texts_to(line, lines.SAM)[before:] if "Peerline alert" in t]
    assert len(alerts_texted) == 1, alerts_texted  # this used to be one text per texter
    assert alerts_texted[0].startswith("Peerline alert: 4 waiting for a peer")


def test_an_offer_says_how_long_they_waited(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN)
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    assert "(just joined the line)" in texts_to(line, lines.SAM)[-1]
    hooks.sms(lines.SAM, "#pass")
    with line.db.session() as session:
        queued_at = session.scalars(select(Conversation.queued_at)).one()
    assert queued_at is not None
    run_matching(line, now=queued_at + timedelta(minutes=7, seconds=10))
    offer = texts_to(line, lines.SAM)[-1]
    assert "(waiting 7 min)" in offer and "returning" not in offer, offer


def test_the_dashboard_shows_free_only_for_who_can_take_a_chat_and_who_is_away(
    build: LineBuilder,
) -> None:
    line, hooks = build(lines.TWO_ON, PEERLINE_SHIFT_CHAT_CAP="1")

    def live() -> Any:
        with create_app(line=line).app_context(), line.db.session() as session:
            return read_live(session)

    board = live()
    assert board.free == 2 and board.away == []
    chat(hooks, line, lines.TEXTER, lines.SAM)  # Sam has had his one chat this shift
    hooks.sms(lines.RIA, "#away")
    board = live()
    states = {s.name: (s.state, s.free) for s in board.supporters}
    assert states == {
        "Sam": (
            "had 1 chats this shift (the cap; offered only a texter in crisis nobody else free"
            " can take)",
            False,
        ),
        "Ria": ("away", False),
    }
    assert board.free == 0 and board.away == ["Ria"]
    # What the dashboard calls free is who a matching round would offer a chat to.
    hooks.sms(lines.RIA, "#back")
    hooks.sms(lines.TEXTER_2, "yes")
    run_jobs(line)
    assert [name for _, name in pending_offers(line)] == ["Ria"]
    assert live().free == 0


def test_a_crisis_texter_not_yet_queued_is_told_their_place_among_crisis_texters(
    any_db_line: LineServices,
) -> None:
    line = any_db_line
    queue_texters(line, 3)
    queue_texters(line, 1, crisis=True)
    with line.db.session() as session:
        runtime = Runtime(line, session)
        assert runtime.line_status(None, "en").position == 5
        assert runtime.line_status(None, "en", priority=1).position == 2


def test_every_word_written_while_waiting_reaches_the_supporter(build: LineBuilder) -> None:
    line, hooks = build(lines.ALWAYS_OPEN)
    hooks.sms(lines.TEXTER, "yes")
    words = [f"part {n} of what happened" for n in range(8)]
    for text in words:
        hooks.sms(lines.TEXTER, text)
    run_jobs(line)
    hooks.sms(lines.SAM, "#take")
    # Words waiting for one supporter may be joined into one SMS, a line each.
    relayed = [
        row.split(": ", 1)[1]
        for t in texts_to(line, lines.SAM)
        for row in t.splitlines()
        if ": part" in row
    ]
    assert relayed == words  # all eight, in order (this used to keep only the last five)


def test_the_queue_texts_with_nobody_available_fit_two_segments() -> None:
    catalogue = Catalogue.load()
    for language in ("en", "es"):
        wait = catalogue.render(language, "wait_nobody")
        for key in ("queued", "queued_returning"):
            text = catalogue.render(language, key, position=140, wait=wait, name="Alexandra")
            assert segments.count(text) <= 2, (language, key, len(text))


@pytest.mark.servers
def test_who_counts_as_free_is_who_a_matching_round_would_offer_a_chat(
    tmp_path: Path, postgres_server: Any
) -> None:
    names = ["Free", "Away", "OptedOut", "CallsOnly", "Chatting", "Offered", "AtCap", "OnCall"]
    rows = ["timezone: America/Toronto", "supporters:"]
    for n, name in enumerate(names):
        rows += [
            f"  - name: {name}",
            f'    phone: "+1416555{2000 + n}"',
            "    shifts:",
            '      - {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "24:00"}',
        ]
    env = {"DATABASE_URL": postgres_server.create_database(), "PEERLINE_SHIFT_CHAT_CAP": "1"}
    line = make_line(make_settings(tmp_path, **env), FakeRedis())
    load_line_file(line, "\n".join(rows) + "\n")
    waiting = queue_texters(line, 3)
    now = utcnow()
    with line.db.session() as session:
        ids = {s.name: s.id for s in session.scalars(select(Supporter))}
        by_id = {sid: session.get(Supporter, sid) for sid in ids.values()}
        by_id[ids["Away"]].away = True  # type: ignore[union-attr]
        by_id[ids["OptedOut"]].opted_out = True  # type: ignore[union-attr]
        by_id[ids["CallsOnly"]].takes_sms = False  # type: ignore[union-attr]
        chatting = session.get(Conversation, waiting[0])
        assert chatting is not None
        chatting.state, chatting.supporter_id, chatting.matched_at = "active", ids["Chatting"], now
        session.add(
            Offer(
                conversation_id=waiting[1],
                supporter_id=ids["Offered"],
                status="pending",
                expires_at=now + timedelta(minutes=2),
            )
        )
        capped = session.get(Conversation, waiting[2])
        assert capped is not None
        capped.state, capped.supporter_id = "closed", ids["AtCap"]
        capped.matched_at = now - timedelta(minutes=5)
        call = Call(direction="inbound", state="ringing")
        session.add(call)
        session.flush()
        session.add(CallLeg(call_id=call.id, supporter_id=ids["OnCall"], round=1))
    policy = routing.policy_of(line.settings)
    with line.db.session() as session:
        rotas = load_line_rotas(session, line.settings.line_timezone)
        staff = routing.staffing(session, rotas, now, policy)
        pool = routing._pool(session, rotas, now, policy)
        matching = {c.id for c in pool.supporters.values() if routing._has_room(c, pool, policy)}
    free = {sid for sid, s in staff.supporters.items() if s.free}
    assert free == matching == {ids["Free"]}
    assert staff.on_shift == len(names) and staff.away == 1
    # Taking chats: free now, or once their offer or call ends (Chatting's chat is their one
    # chat this shift, the cap here).
    taking = {sid for sid, s in staff.supporters.items() if s.taking_chats}
    assert taking == {ids[n] for n in ("Free", "Offered", "OnCall")}
    line.db.engine.dispose()
