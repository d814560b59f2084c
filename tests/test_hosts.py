"""A day in miniature on several hosts: two web and two worker hosts in their own network
namespaces, PostgreSQL and Redis (master, replica, three Sentinels) on a data host, the
local Twilio and a load balancer on the bridge. Chats, a crisis, a group reminder fan-out,
the Redis master killed mid-conversation, a worker host cut off and plugged back in; then
every text once and in order, the send rate kept across hosts (exactly, on the slots the
limiter granted, which each send tells the provider), and no double match.

Root only (CI runs as root): with CI=true a missing `ip` or root fails the test, never skips.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rq import Queue
from sqlalchemy import select

from peerline.service import job_paths
from peerline.service.job_queue import QUEUE_NAME
from peerline.service.models import ACCEPTED, Conversation, Group, Offer
from peerline.service.redis_connect import connect
from peerline.service.settings import from_env
from tests.support import lines
from tests.support.deploy import LINE_NUMBER, Deployment
from tests.support.fake_twilio import FakeTwilio
from tests.support.line import load_line_file, make_line
from tests.support.netns import Balancer, Network, require_root_and_ip
from tests.support.sentinel import SentinelSet
from tests.support.servers import PostgresServer, free_port, start_postgres

pytestmark = pytest.mark.servers

RATE = 5  # segments a second, for every host together
MICROS = 1_000_000
TEXTER_3 = "+14165550197"
SUBSCRIBERS = [f"+1647555{6000 + n}" for n in range(12)]


def _quiet_hours_elsewhere(timezone: str) -> str:
    """Return quiet hours that do not include now (the reminders must go out)."""
    now = datetime.now(ZoneInfo(timezone))
    start, end = now + timedelta(hours=6), now + timedelta(hours=7)
    return f"{start:%H:%M}-{end:%H:%M}"


class _DataPostgres(PostgresServer):
    """PostgreSQL run on the data host (as the postgres user, inside its namespace)."""

    prefix: list[str] = []

    def _command(self) -> list[str]:
        return [*self.prefix, "setpriv", "--reuid=postgres", "--regid=postgres",
                "--clear-groups", *super()._command()]  # fmt: skip


class Hosts:
    """The processes of each host, started with the same environment."""

    def __init__(self, net: Network, env: dict[str, str], logs: Path) -> None:
        self.net, self.env, self.logs = net, env, logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, host: str, *command: str) -> None:
        instance = self.logs / host
        instance.mkdir(exist_ok=True)  # each host its own disk
        with (self.logs / f"{host}.log").open("wb") as log:
            self.procs[host] = subprocess.Popen(
                [*self.net.prefix(host), sys.executable, *command],
                env={**os.environ, **self.env, "PEERLINE_INSTANCE": str(instance)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def logs_tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
            for p in sorted(self.logs.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def day() -> Iterator[tuple[Deployment, Hosts, SentinelSet, Network]]:
    """Build the hosts, the data host's servers, and the line running on them."""
    require_root_and_ip()
    with ExitStack() as stack:
        net = stack.enter_context(Network())
        data = net.add_host("db")
        web = [net.add_host("w1"), net.add_host("w2")]
        net.add_host("k1")
        net.add_host("k2")
        logs = Path(tempfile.mkdtemp(prefix="peerline-hosts-"))
        stack.callback(shutil.rmtree, logs, ignore_errors=True)
        redis = SentinelSet(host=data, prefix=net.prefix("db")).start()
        stack.callback(redis.close)
        postgres = _start_data_postgres(net, data)
        stack.callback(postgres.close)
        twilio = FakeTwilio(host=net.gateway).start()
        stack.callback(twilio.stop)
        port = free_port()
        balancer = Balancer(net.gateway, [(address, port) for address in web])
        stack.callback(balancer.close)
        base = f"http://{net.gateway}:{balancer.address[1]}"
        env = {
            "DATABASE_URL": postgres.create_database(),
            **redis.env,
            "SECRET_KEY": "hosts-secret",
            "PUBLIC_BASE_URL": base,
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_PHONE_NUMBER": LINE_NUMBER,
            "TWILIO_API_BASE_URL": twilio.base_url,
            "PEERLINE_SEND_RATES": f"long_code={RATE},toll_free={RATE},short_code={RATE}",
            "PEERLINE_SHIFT_CHAT_CAP": "1",
            "PEERLINE_SWEEP_STALE_SECONDS": "3",
            "PEERLINE_QUIET_HOURS": _quiet_hours_elsewhere("America/Toronto"),
            "PEERLINE_INSTANCE": str(logs / "test"),
        }
        settings = from_env(env)
        line = make_line(settings, connect(settings))
        stack.callback(line.db.engine.dispose)
        load_line_file(line, lines.TWO_ON)
        hosts = Hosts(net, env, logs)
        stack.callback(hosts.stop)
        for name, address in (("w1", web[0]), ("w2", web[1])):
            hosts.start(name, "-m", "gunicorn", "--bind", f"{address}:{port}", "--workers", "1",
                        "--threads", "4", "--control-socket", str(logs / name / "gunicorn.ctl"),
                        "peerline.app:create_app()")  # fmt: skip
        for name in ("k1", "k2"):
            hosts.start(name, "-m", "peerline", "worker", "--sweep-every", "2")
        d = Deployment(line, twilio, base, env, logs)
        d.worker_logs = hosts.logs_tail  # type: ignore[method-assign]
        _wait_serving(d, hosts)
        yield d, hosts, redis, net


def _start_data_postgres(net: Network, address: str) -> PostgresServer:
    plain = start_postgres()  # initdb and a first start as the fixtures do; then move it
    plain.stop()
    server = _DataPostgres(plain.bindir, plain.tmpdir, free_port(), None)
    server.prefix = net.prefix("db")
    server.host = address
    with (server.datadir / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {net.subnet}.0/24 trust\n")  # the private test network
    server.start()
    return server


def _wait_serving(d: Deployment, hosts: Hosts) -> None:
    def booted() -> bool:
        logs = [(hosts.logs / f"{h}.log").read_bytes() for h in ("w1", "w2")]
        return all(b"Booting worker" in log for log in logs)

    d.wait_until(booted, timeout=30, what="gunicorn on both web hosts")
    time.sleep(2)  # each worker imports the app after it boots


def _said(d: Deployment, supporter: str, alias: str) -> list[str]:
    """Return what a texter said as their supporter received it, line by line, in order."""
    return [
        line.removeprefix(f"{alias}: ")
        for body in d.bodies_to(supporter)
        for line in body.splitlines()
        if line.startswith(f"{alias}: ")
    ]


def _match(d: Deployment, texter: str, taken: list[str]) -> tuple[str, str]:
    """Bring a texter into a chat; return their supporter's number and their alias (the
    aliases of chats taken already are in `taken`)."""
    d.sms(texter, "hello")
    d.wait_for_text(texter, "not counsellors or a crisis service")
    d.sms(texter, "YES")

    def offered() -> tuple[str, str] | None:
        for supporter in (lines.SAM, lines.RIA):
            for body in d.bodies_to(supporter):
                if "#take" in body and body.split()[0] not in taken:
                    return supporter, body.split()[0]
        return None

    d.wait_until(lambda: offered() is not None, timeout=30, what=f"an offer for {texter}")
    found = offered()
    assert found is not None
    taken.append(found[1])
    d.sms(found[0], "#take")
    d.wait_for_text(texter, "connected with", timeout=30)
    return found


def _most_segments_in(twilio: FakeTwilio, seconds: float) -> int:
    """Return the most segments the provider accepted in any window of `seconds`."""
    sent = sorted((twilio.accepted_at[m["sid"]], int(m["num_segments"])) for m in twilio.messages)
    return max(
        (sum(n for at, n in sent[i:] if at < start + seconds) for i, (start, _) in enumerate(sent)),
        default=0,
    )


def _slots_by_sender(twilio: FakeTwilio) -> dict[str, list[tuple[int, int, str]]]:
    """Return each sender's sends as (granted slot in microseconds, segments, SID), by slot."""
    slots: dict[str, list[tuple[int, int, str]]] = {}
    for m in twilio.messages:
        sender = m["messaging_service_sid"] or m["from"]
        slots.setdefault(sender, []).append(
            (twilio.slot_of[m["sid"]], int(m["num_segments"]), m["sid"])
        )
    return {sender: sorted(sends) for sender, sends in slots.items()}


def _most_scheduled_in(sends: list[tuple[int, int, str]], seconds: int) -> int:
    """Return the most segments one sender's slots put in any window of `seconds`: a text's
    k-th segment k / RATE after its slot (a long text holds its sender for its length)."""
    step = MICROS // RATE
    times = sorted(slot + k * step for slot, n, _ in sends for k in range(n))
    most, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - seconds * MICROS:  # the window (at - seconds, at]
            first += 1
        most = max(most, last - first + 1)
    return most


def test_a_day_on_several_hosts(day: tuple[Deployment, Hosts, SentinelSet, Network]) -> None:
    d, hosts, redis, net = day
    taken: list[str] = []
    began = time.monotonic()
    for number in SUBSCRIBERS:
        assert d.sms(number, "remind") == 200
    supporter_a, alias_a = _match(d, lines.TEXTER, taken)
    supporter_b, alias_b = _match(d, lines.TEXTER_2, taken)
    assert supporter_a != supporter_b
    # A crisis, while both supporters are busy.
    d.sms(TEXTER_3, "I want to kill myself")
    d.wait_for_text(TEXTER_3, "You matter, and help is there", timeout=30)

    said_a, said_b, replies_a = [], [], []

    def talk(n: int) -> None:
        said_a.append(f"a{n} it has been a long week")
        said_b.append(f"b{n} thanks for listening")
        d.sms(lines.TEXTER, said_a[-1])
        d.sms(lines.TEXTER_2, said_b[-1])
        if n % 2:
            replies_a.append(f"I hear you ({n})")
            d.sms(supporter_a, replies_a[-1])

    for n in range(1, 4):
        talk(n)
        time.sleep(0.3)
    # The Redis master dies mid-conversation; the texts keep coming.
    _, heir = redis.kill_master()
    killed, killed_at = time.monotonic(), time.time()
    for n in range(4, 9):
        talk(n)
        time.sleep(0.4)
    redis.wait_promoted(heir)
    failover = time.monotonic() - killed

    # The evening's group reminder fans out, and a worker host loses its link meanwhile.
    with d.line.db.session() as session:
        group_id = session.scalars(select(Group.id)).first()
    starts = int((datetime.now(UTC) + timedelta(hours=2)).timestamp())
    Queue(QUEUE_NAME, connection=d.line.redis).enqueue(
        job_paths.job("group_reminder"), group_id, starts, job_id=f"group-{group_id}-{starts}"
    )
    net.cut("k1")
    for n in range(9, 13):
        talk(n)
        time.sleep(0.5)
    time.sleep(4)
    net.restore("k1")

    d.wait_for_text(supporter_a, f"{alias_a}: {said_a[-1]}$", timeout=60)
    d.wait_for_text(supporter_b, f"{alias_b}: {said_b[-1]}$", timeout=60)
    d.wait_for_text(lines.TEXTER, f"{replies_a[-1]}".replace("(", r"\(").replace(")", r"\)"))
    for number in SUBSCRIBERS:
        d.wait_for_text(number, "^Reminder:", timeout=60)
    elapsed = time.monotonic() - began

    # Every text once, in order.
    assert _said(d, supporter_a, alias_a) == ["hello", *said_a], hosts.logs_tail()
    assert _said(d, supporter_b, alias_b) == ["hello", *said_b], hosts.logs_tail()
    heard = [
        line.split(": ", 1)[1]
        for body in d.bodies_to(lines.TEXTER)
        for line in body.splitlines()
        if line.split(": ", 1)[-1].startswith("I hear you")
    ]
    assert heard == replies_a, d.bodies_to(lines.TEXTER)
    for number in SUBSCRIBERS:
        assert sum(b.startswith("Reminder:") for b in d.bodies_to(number)) == 1
    assert sum("You matter" in b for b in d.bodies_to(TEXTER_3)) == 1
    bodies = [(m["to"], m["body"]) for m in d.twilio.messages]
    assert len(bodies) == len(set(bodies)), "a text went out twice"
    # No double match: each texter connected once, each conversation to one supporter.
    for texter in (lines.TEXTER, lines.TEXTER_2):
        assert sum("connected with" in b for b in d.bodies_to(texter)) == 1
    with d.line.db.session() as session:
        accepted = list(session.scalars(select(Offer).where(Offer.status == ACCEPTED)))
        assert len(accepted) == len({o.conversation_id for o in accepted}) == 2
        chats = session.scalars(select(Conversation).where(Conversation.supporter_id.is_not(None)))
        assert len({c.supporter_id for c in chats}) == 2
    # The send rate, across both worker hosts and the failover, on the slots the limiter
    # granted (each send tells the provider its slot, which it records with the send).
    assert not [m["sid"] for m in d.twilio.messages if m["sid"] not in d.twilio.slot_of]
    # No send went before its slot (Redis and the provider read this machine's one clock).
    early = [
        sid for sid, slot in d.twilio.slot_of.items() if d.twilio.accepted_at[sid] * MICROS < slot
    ]
    assert not early, early
    senders = _slots_by_sender(d.twilio)
    for sends in senders.values():
        # Each slot leaves the one before it its segments' time at the rate, exactly.
        for (slot, n, _), (after, _, sid) in zip(sends, sends[1:], strict=False):
            assert after - slot >= n * MICROS // RATE, (sid, after - slot, n)
    slots = {w: max(_most_scheduled_in(s, w) for s in senders.values()) for w in (1, 5)}
    assert slots[1] <= RATE and slots[5] <= 5 * RATE, slots
    # Both worker hosts sent, and sends were granted on both sides of the failover.
    assert len({d.twilio.client_of[sid] for sid in d.twilio.slot_of} - {net.gateway}) == 2
    after_kill = sum(slot >= killed_at * MICROS for slot in d.twilio.slot_of.values())
    assert 0 < after_kill < len(d.twilio.slot_of)
    # How long the line's number sent nothing around the failover (the promotion, then the
    # limiter's fence of 10 segments' time on the new master).
    line_slots = [slot for slot, _, _ in senders[LINE_NUMBER]]
    paused = max(b - a for a, b in zip(line_slots, line_slots[1:], strict=False)) / MICROS
    # Arrivals, for information: they also carry this shared machine's scheduling delays.
    most = {w: _most_segments_in(d.twilio, w) for w in (1, 5)}
    lateness = sorted(
        d.twilio.accepted_at[sid] - slot / MICROS for sid, slot in d.twilio.slot_of.items()
    )
    print(
        f"\nseveral hosts: failover {failover:.1f}s, {len(d.twilio.messages)} texts sent "
        f"({after_kill} after the kill; the line's number paused {paused:.1f}s), "
        f"{len(SUBSCRIBERS)} reminders; rate {RATE}/s: most "
        f"segments on slots in any 1 s {slots[1]}, in any 5 s {slots[5]}; on arrival {most[1]} "
        f"and {most[5]}; slot to arrival median {lateness[len(lateness) // 2] * 1000:.0f} ms, "
        f"max {lateness[-1] * 1000:.0f} ms; day played in {elapsed:.0f}s"
    )
