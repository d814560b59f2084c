"""Lanes (issue 19): the sender's budget goes to crisis and chats first, no worker sleeps for a
slot, matching never waits behind sends, and the carrier's rate holds at the Twilio server."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from fakeredis import FakeRedis
from sqlalchemy import select, update

from peerline.app import create_app
from peerline.service import lanes, outbox
from peerline.service.carrier import carrier_backlog
from peerline.service.context import Context
from peerline.service.models import Alert, Offer, OutboundMessage, utcnow
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import run_jobs
from tests.support.deploy import LINE_NUMBER, Deployment, deployed
from tests.support.fake_twilio import FakeTwilio
from tests.support.hardening import TWILIO_ENV
from tests.support.line import Webhooks, load_line_file, make_line, make_settings
from tests.support.servers import PostgresServer, RedisServer

CRISIS_WORDS = "i want to kill myself"


def test_every_purpose_has_the_lane_the_issue_orders() -> None:
    assert lanes.lane_of("crisis") == lanes.lane_of("someone_else") == lanes.CRISIS
    assert lanes.lane_of("relay") == lanes.lane_of("connected") == lanes.CHAT
    assert lanes.lane_of("offer") == lanes.lane_of("offer_priority") == lanes.OFFER
    assert lanes.lane_of("welcome") == lanes.lane_of("queued") == lanes.REPLY
    assert lanes.lane_of("still_waiting") == lanes.lane_of("reply_nudge") == lanes.WAIT
    assert lanes.lane_of("group_reminder") == lanes.lane_of("shift_reminder") == lanes.FANOUT
    assert lanes.CRISIS < lanes.CHAT < lanes.OFFER < lanes.REPLY < lanes.WAIT < lanes.FANOUT


def _slow_line(tmp_path: Path, line_file: str = lines.ALWAYS_OPEN) -> tuple[LineServices, Webhooks]:
    """Return a line whose number sends one segment a second, and its webhooks."""
    line = make_line(make_settings(tmp_path, PEERLINE_SEND_RATES="long_code=1"), FakeRedis())
    load_line_file(line, line_file)
    return line, Webhooks(create_app(line=line).test_client(), line.settings)


def _free_the_sender(line: LineServices) -> None:
    """Forget the senders' spent budget, as if their next slot had come."""
    for key in line.redis.scan_iter("peerline:ratelimit:*"):
        line.redis.delete(key)


def _sent_in_order(line: LineServices) -> list[OutboundMessage]:
    with line.db.session() as session:
        rows = session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.sent_at.is_not(None))
            .order_by(OutboundMessage.sent_at, OutboundMessage.id)
        ).all()
        session.expunge_all()
        return list(rows)


def test_the_pump_sends_the_best_lane_first_and_keeps_each_persons_order(tmp_path: Path) -> None:
    line, hooks = _slow_line(tmp_path)
    # Welcomes for four new texters take the free slot and queue; then a crisis text.
    for n in range(4):
        hooks.sms(f"+1647555{7000 + n}", "hello")
    run_jobs(line)
    hooks.sms("+16475557100", CRISIS_WORDS)
    run_jobs(line)
    assert line.lanes.waiting(LINE_NUMBER) >= 4
    for _ in range(20):
        _free_the_sender(line)
        if outbox.pump(line, LINE_NUMBER) == 0 and line.lanes.waiting(LINE_NUMBER) == 0:
            break
    sent = _sent_in_order(line)
    crisis_at = next(i for i, m in enumerate(sent) if m.purpose == "crisis")
    crisis_person = sent[crisis_at].to_hash
    # Of everyone else's texts, only the welcome that held the slot went before the crisis
    # text; the crisis texter's own earlier texts (if any) go before it, in order.
    others_before = [m for m in sent[:crisis_at] if m.to_hash != crisis_person]
    assert len(others_before) <= 1, [(m.purpose, m.lane) for m in sent]
    for who in {m.to_hash for m in sent}:
        ids = [m.id for m in sent if m.to_hash == who]
        assert ids == sorted(ids)
    assert line.lanes.waiting(LINE_NUMBER) == 0


def test_the_dashboard_shows_what_waits_for_the_carrier_by_lane(tmp_path: Path) -> None:
    line, hooks = _slow_line(tmp_path)
    for n in range(3):
        hooks.sms(f"+1647555{7200 + n}", "hello")  # two-segment welcomes, one at a time
    with line.db.session() as session:
        backlog = {row.lane: row for row in carrier_backlog(session, line)}
    reply = backlog["reply"]
    assert reply.texts >= 2 and reply.segments == 2 * reply.texts
    # One segment a second, less the limiter's margin: each two-segment welcome about 2 s.
    assert reply.segments <= reply.clear_seconds <= reply.segments * 1.1
    assert backlog["crisis"].texts == 0 and backlog["crisis"].clear_seconds == 0


def test_a_chat_text_that_waits_over_30_s_alerts_the_on_call_coordinator_once(
    tmp_path: Path,
) -> None:
    on_call = lines.ALWAYS_OPEN.replace("languages: [en]\n", "languages: [en]\n    on_call: true\n")
    line, hooks = _slow_line(tmp_path, on_call)
    hooks.sms(lines.TEXTER, "yes")
    _drain(line)
    hooks.sms(lines.SAM, "#take")
    _drain(line)
    # The carrier is busy for a minute; the texter writes twice, the texts wait.
    line.limiter.reserve(LINE_NUMBER, 60, max_wait=None)
    hooks.sms(lines.TEXTER, "are you there")
    with line.db.session() as session:
        session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.purpose == "relay")
            .values(created_at=utcnow() - timedelta(seconds=40))
        )
    run_jobs(line)
    for _ in range(3):
        outbox.pump(line, LINE_NUMBER)
    with line.db.session() as session:
        alerts = session.scalars(select(Alert).where(Alert.kind == "relay_delay")).all()
        assert len(alerts) == 1
        told = session.scalars(
            select(OutboundMessage).where(OutboundMessage.purpose == "relay_delay_alert")
        ).all()
        assert len(told) == 1 and told[0].lane == lanes.CRISIS
    # Chat texts go quickly again: the episode ends, and a later one alerts again.
    outbox._relay_waited(line, 1.0)
    outbox._relay_waited(line, 45.0)
    with line.db.session() as session:
        assert len(session.scalars(select(Alert).where(Alert.kind == "relay_delay")).all()) == 2


def _drain(line: LineServices) -> None:
    """Run the jobs and send everything written so far, slot by slot."""
    for _ in range(40):
        run_jobs(line)
        _free_the_sender(line)
        outbox.pump(line, LINE_NUMBER)
        if not line.lanes.waiting(LINE_NUMBER):
            return
    raise AssertionError("texts still waiting for the sender")


# -- the deployed line: two worker processes, PostgreSQL, Redis, the local Twilio server -----

RATE = 2.0  # segments a second from the line's number


def _arrived(d: Deployment, number: str, pattern: str) -> float | None:
    """Return when the first text to a number containing `pattern` reached the Twilio server."""
    for message, (at, _) in zip(d.twilio.messages, d.twilio.arrival_log(), strict=True):
        if message["to"] == number and pattern in (message["body"] or ""):
            return at
    return None


@pytest.mark.servers
def test_two_workers_spend_a_long_code_by_lane_at_its_rate(
    tmp_path: Path,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
) -> None:
    with deployed(
        tmp_path,
        postgres_server,
        redis_server,
        lines.ALWAYS_OPEN,
        PEERLINE_SEND_RATES=f"long_code={RATE:g}",
    ) as d:
        d.start_worker()
        d.start_worker()
        # A chat under way, and a texter waiting for Sam.
        d.sms(lines.TEXTER, "yes")
        d.wait_for_text(lines.SAM, "#take")
        d.sms(lines.SAM, "#take")
        d.wait_for_text(lines.TEXTER, "connected|chatting")
        waiting = "+16475557300"
        d.sms(waiting, "yes")
        d.wait_until(lambda: not d.line.lanes.waiting(LINE_NUMBER), 30, "a quiet sender")
        # A rush: 14 new texters (two-segment welcomes: 14 s of the sender's budget)...
        for n in range(14):
            d.sms(f"+1647555{7400 + n}", "hello")
        d.wait_until(lambda: _written(d, "welcome") >= 14, 20, "the welcomes written")
        # ...then a chat text, Sam ends the chat, and a crisis text.
        chat_at = time.time()
        d.sms(lines.TEXTER, "still there?")
        d.wait_until(lambda: _written(d, "relay") >= 1, 10, "the chat text written")
        done_at = time.time()
        d.sms(lines.SAM, "#done")
        crisis_texter = "+16475557499"
        posted = time.time()
        d.sms(crisis_texter, CRISIS_WORDS)
        d.wait_for_text(crisis_texter, "988", timeout=20)
        d.wait_for_text(lines.SAM, "still there", timeout=20)
        # Sam's next offer: written at once (matching does not queue behind sends)...
        d.wait_until(lambda: _offers(d) >= 2, 10, "Sam's next offer")
        with d.line.db.session() as session:
            offered = session.scalars(select(Offer.created_at).order_by(Offer.id.desc())).first()
        assert offered is not None
        assert offered.timestamp() - done_at < 2.0
        # ...and sent ahead of the welcomes.
        d.wait_until(lambda: len(d.twilio.messages_to(lines.SAM)) >= 4, 20, "the offer")
        crisis_in = _arrived(d, crisis_texter, "988")
        relay_in = _arrived(d, lines.SAM, "still there")
        assert crisis_in is not None and relay_in is not None
        assert crisis_in - posted < 3.0
        assert relay_in - chat_at < 5.0
        # Every welcome goes in the end, and no second ever held more than the rate.
        d.wait_until(lambda: not d.line.lanes.waiting(LINE_NUMBER), 60, "the welcomes")
        arrivals = d.twilio.arrival_log(LINE_NUMBER)
        gaps = [f"{b - a:.3f}/{n}" for (a, n), (b, _) in zip(arrivals, arrivals[1:], strict=False)]
        assert d.twilio.busiest_second(LINE_NUMBER, rate=RATE) <= RATE, gaps
        welcomes_after_crisis = [
            m
            for m, (at, _) in zip(d.twilio.messages, d.twilio.arrival_log(), strict=True)
            if at > crisis_in and m["body"].startswith("Peerline: free")
        ]
        assert len(welcomes_after_crisis) >= 8  # the rush waited for the crisis and the chat
        # The workers never slept through a slot: sends took no worker for long.
        assert "Traceback" not in d.worker_logs()


def _written(d: Deployment, purpose: str) -> int:
    with d.line.db.session() as session:
        found = select(OutboundMessage.id).where(OutboundMessage.purpose == purpose)
        return len(session.scalars(found).all())


def _offers(d: Deployment) -> int:
    with d.line.db.session() as session:
        return len(session.scalars(select(Offer.id)).all())


SERVICE_SID = "MG" + "ab" * 16
POOL = ["+15550200001", "+15550200002", "+15550200003"]


def _service_line(tmp_path: Path, twilio: FakeTwilio, **env: str) -> tuple[LineServices, Webhooks]:
    """Return a line sending through a Messaging Service of the local Twilio's pool."""
    twilio.services[SERVICE_SID] = POOL
    settings = make_settings(
        tmp_path,
        TWILIO_API_BASE_URL=twilio.base_url,
        TWILIO_MESSAGING_SERVICE_SID=SERVICE_SID,
        PEERLINE_SERVICE_RATE="1000",
        **env,
        **TWILIO_ENV,
    )
    line = make_line(settings, FakeRedis())
    load_line_file(line, lines.ALWAYS_OPEN)
    return line, Webhooks(create_app(line=line).test_client(), line.settings)


def test_texts_go_through_the_messaging_service_each_person_on_one_number(
    tmp_path: Path,
) -> None:
    with FakeTwilio(auto_status=False) as twilio:
        line, hooks = _service_line(tmp_path, twilio)
        others = ["+16475557601", "+16475557602"]
        for number in [lines.TEXTER, *others]:
            hooks.sms(number, "hello")
        hooks.sms(lines.TEXTER, "yes")
        run_jobs(line)
        # The service's combined rate paces every text from the line.
        assert line.limiter.type_of(SERVICE_SID) == "service"
        assert line.limiter.rate_of(SERVICE_SID) == 1000
        mine = twilio.messages_to(lines.TEXTER)
        assert len(mine) >= 2
        for message in twilio.messages:
            params = twilio.message_params(message["sid"])
            assert params["MessagingServiceSid"] == [SERVICE_SID] and "From" not in params
        # Sticky sender: one number per person, and new people spread over the pool.
        assert len({m["from"] for m in mine}) == 1
        # (Every person, the supporter offered a chat too: with calls to the provider going at
        # once, who is first to reach a number is not fixed.)
        people = {m["to"] for m in twilio.messages}
        assert len(people) >= len(POOL)
        firsts = {twilio.messages_to(n)[0]["from"] for n in people}
        assert firsts == set(POOL)


def test_the_relay_pool_starts_supporters_on_different_numbers(tmp_path: Path) -> None:
    relays = "+15550100001,+15550100002"
    line = make_line(make_settings(tmp_path, TWILIO_RELAY_NUMBERS=relays), FakeRedis())
    load_line_file(line, lines.TWO_ON)
    hooks = Webhooks(create_app(line=line).test_client(), line.settings)
    hooks.sms(lines.TEXTER, "yes")
    hooks.sms("+16475557701", "yes")
    run_jobs(line)
    with line.db.session() as session:
        offers = session.execute(select(Offer.supporter_id, Offer.relay_number)).all()
    assert len({supporter for supporter, _ in offers}) == 2
    # Each supporter's first chat on a number of their own: the pool carries the sending too.
    assert {number for _, number in offers} == set(relays.split(","))


def test_relay_numbers_send_as_themselves_at_their_own_rate_beside_a_messaging_service(
    tmp_path: Path,
) -> None:
    relays = "+15550100001,+15550100002"
    with FakeTwilio(auto_status=False) as twilio:
        line, hooks = _service_line(
            tmp_path, twilio, TWILIO_RELAY_NUMBERS=relays, PEERLINE_SEND_RATES="long_code=1000"
        )
        # Each relay number spends its own budget; only the line's number spends the service's.
        for relay in relays.split(","):
            assert lanes.sender_for(line.settings, relay) == relay
        assert lanes.sender_for(line.settings, LINE_NUMBER) == SERVICE_SID
        hooks.sms(lines.TEXTER, "yes")
        run_jobs(line)
        hooks.sms(lines.SAM, "#take")
        run_jobs(line)
        hooks.sms(lines.TEXTER, "are you there?")
        run_jobs(line)
        relayed = [m for m in twilio.messages_to(lines.SAM) if "are you there" in m["body"]]
        assert len(relayed) == 1 and relayed[0]["from"] in relays.split(",")
        params = twilio.message_params(relayed[0]["sid"])
        assert "MessagingServiceSid" not in params  # sent as the chat's own number
        # The texter still sees one number: the service's sticky one.
        assert len({m["from"] for m in twilio.messages_to(lines.TEXTER)}) == 1


def test_a_fast_senders_calls_overlap_yet_each_person_reads_their_texts_once_in_order(
    tmp_path: Path,
) -> None:
    with FakeTwilio(auto_status=False) as twilio:
        settings = make_settings(
            tmp_path,
            TWILIO_API_BASE_URL=twilio.base_url,
            PEERLINE_SEND_RATES="long_code=500",
            **TWILIO_ENV,
        )
        line = make_line(settings, FakeRedis())
        people = [f"+1647555{7800 + n}" for n in range(6)]
        with line.db.session() as session:
            context = Context(line, session)
            for round_ in range(5):
                for person in people:
                    # A fan-out text, then (for some) an urgent one: each pulls the earlier along.
                    lane = "group_reminder" if round_ % 2 else "crisis"
                    context.send(
                        to_phone=person,
                        recipient_kind="texter",
                        purpose=lane,
                        text=f"{person[-2:]} text {round_}",
                        conversation_id=None,
                    )
        context.after_commit.dispatch(line)
        run_jobs(line)
        assert outbox.IN_FLIGHT > 1 and line.limiter.rate_of(LINE_NUMBER) >= outbox.FAST_RATE
        for person in people:
            bodies = [m["body"] for m in twilio.messages_to(person)]
            assert bodies == [f"{person[-2:]} text {n}" for n in range(5)]
        with line.db.session() as session:
            statuses = session.scalars(select(OutboundMessage.status)).all()
        assert set(statuses) == {"sent"} and len(statuses) == 30
        assert twilio.busiest_second(LINE_NUMBER, rate=500) <= 500
