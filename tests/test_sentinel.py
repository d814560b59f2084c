"""Redis through Sentinel: the line follows a failover without a restart, and a text taken
while the master dies is neither lost nor doubled (real master, replica and three Sentinels)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from redis import Redis
from redis.exceptions import AuthenticationError, ConnectionError, ReadOnlyError, TimeoutError
from redis.sentinel import MasterNotFoundError
from rq import Queue
from sqlalchemy import func, select

from peerline.service import job_paths
from peerline.service.job_queue import QUEUE_NAME
from peerline.service.models import InboundMessage
from peerline.service.ratelimit import FENCE_SEGMENTS, LONG_CODE, SendRateLimiter
from peerline.service.redis_connect import connect, sentinel_options
from peerline.service.settings import SettingsError, from_env
from tests.support import lines
from tests.support.deploy import Deployment, deployed
from tests.support.sentinel import SentinelSet
from tests.support.servers import PostgresServer

SID = "SM" + "0a" * 16
BASE_ENV = {"DATABASE_URL": "sqlite:///unused.db", "SECRET_KEY": "k"}
LINE, OTHER = "+14165550100", "+14165550101"
T = TypeVar("T")


@pytest.mark.parametrize(
    "env, problem",
    [
        ({"REDIS_SENTINELS": "10.0.0.1:26379"}, "set together"),
        ({"REDIS_SENTINEL_MASTER": "peerline"}, "set together"),
        ({"REDIS_SENTINELS": "10.0.0.1", "REDIS_SENTINEL_MASTER": "p"}, "not host:port"),
        ({"REDIS_SENTINELS": "a:1,b:99999", "REDIS_SENTINEL_MASTER": "p"}, "not host:port"),
        ({"REDIS_SENTINELS": "a:1", "REDIS_SENTINEL_MASTER": "p", "REDIS_WAIT_MS": "x"}, "whole"),
    ],
)
def test_sentinel_settings_are_checked(env: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        from_env({**BASE_ENV, **env})


def test_sentinel_settings_take_only_database_and_password_from_the_url() -> None:
    settings = from_env(
        {
            **BASE_ENV,
            "REDIS_SENTINELS": "10.0.0.1:26379, [::1]:26380",
            "REDIS_SENTINEL_MASTER": "peerline",
        }
    )
    assert settings.redis_sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert settings.redis_wait_ms == 500  # a replica is waited for by default
    assert settings.redis_url == "redis://peerline/0"
    assert from_env(BASE_ENV).redis_wait_ms == 0


@pytest.fixture
def line_on_sentinels(
    tmp_path: Path, postgres_server: PostgresServer, sentinel_set: SentinelSet
) -> Iterator[Deployment]:
    """The line deployed against the Sentinels; the caller starts workers."""
    with deployed(
        tmp_path,
        postgres_server,
        sentinel_set,
        lines.ALWAYS_OPEN,
        # Work lost with the master is rebuilt from the database within seconds.
        PEERLINE_SWEEP_STALE_SECONDS="2",
    ) as d:
        yield d


def relayed(d: Deployment, alias: str) -> list[str]:
    """Return what the texter said, as the supporter received it, in order."""
    return [
        line.removeprefix(f"{alias}: ")
        for body in d.bodies_to(lines.SAM)
        for line in body.splitlines()
        if line.startswith(f"{alias}: ")
    ]


def _chat(d: Deployment) -> str:
    d.sms(lines.TEXTER, "hello")
    d.wait_for_text(lines.TEXTER, "not counsellors or a crisis service")
    d.sms(lines.TEXTER, "YES")
    alias = d.wait_for_text(lines.SAM, r"#take within 2 min").split()[0]
    d.sms(lines.SAM, "#take")
    d.wait_for_text(lines.TEXTER, "connected with Sam")
    return alias


@pytest.mark.servers
def test_the_line_follows_a_failover_without_a_restart(
    line_on_sentinels: Deployment, sentinel_set: SentinelSet
) -> None:
    d = line_on_sentinels
    d.start_worker("--sweep-every", "1")
    alias = _chat(d)
    d.sms(lines.TEXTER, "before 1")
    d.wait_for_text(lines.SAM, f"^{alias}: before 1$")

    _, heir = sentinel_set.kill_master()
    killed = time.monotonic()
    said = [f"during {n}" for n in range(1, 7)]
    for text in said:
        # Every webhook answers 200 at once, master or none: each text is in Redis on a
        # replica, or in the database, before Twilio hears it was taken.
        assert d.sms(lines.TEXTER, text) == 200
        time.sleep(0.4)
    sentinel_set.wait_promoted(heir)
    promoted = time.monotonic() - killed
    d.sms(lines.SAM, "still here")
    d.wait_for_text(lines.TEXTER, r"^Sam: still here$", timeout=40)
    d.wait_for_text(lines.SAM, f"{alias}: during 6$", timeout=40)
    recovered = time.monotonic() - killed

    # Texts that waited reach the supporter together, one line each: once each, in order.
    assert relayed(d, alias) == ["hello", "before 1", *said], d.worker_logs()
    with d.line.db.session() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 11
    # RQ's scheduler follows too: a job scheduled on the new master runs.
    job = Queue(QUEUE_NAME, connection=d.line.redis).enqueue_in(
        timedelta(seconds=1), job_paths.MATCH_QUEUE, result_ttl=60
    )
    scheduled = time.monotonic()
    d.wait_until(lambda: job.get_status(refresh=True) == "finished", 90, "a scheduled job")
    late = time.monotonic() - scheduled
    print(
        f"\nsentinel failover: promoted after {promoted:.1f}s, chat whole after "
        f"{recovered:.1f}s, a job scheduled after it ran after {late:.1f}s"
    )


@pytest.mark.servers
def test_a_text_no_replica_took_is_in_the_database_before_the_answer(
    line_on_sentinels: Deployment, sentinel_set: SentinelSet
) -> None:
    d = line_on_sentinels
    # No worker yet: whatever is in the database when the webhook answers, the web put there.
    replica = sentinel_set.replica
    assert replica._proc is not None
    replica._proc.send_signal(signal.SIGSTOP)  # the replica hangs: WAIT gets no answer
    try:
        started = time.monotonic()
        assert d.sms(lines.TEXTER, "hello", sid=SID) == 200
        waited = time.monotonic() - started
        with d.line.db.session() as session:
            sids = list(session.scalars(select(InboundMessage.message_sid)))
        assert sids == [SID]
        assert waited < 5
        # The master, which may still hold the text in its list, dies before replicating.
        _, heir = sentinel_set.kill_master()
    finally:
        replica._proc.send_signal(signal.SIGCONT)
    sentinel_set.wait_promoted(heir)
    d.start_worker("--sweep-every", "1")
    d.wait_for_text(lines.TEXTER, "not counsellors or a crisis service")
    d.sms(lines.TEXTER, "YES")
    d.wait_for_text(lines.SAM, r"#take within 2 min")
    welcome = [b for b in d.bodies_to(lines.TEXTER) if "not counsellors" in b]
    assert len(welcome) == 1


def _retrying(call: Callable[[], T], seconds: float = 15.0) -> T:
    """Call until Redis answers (a client finds the new master on its next connection)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except (ConnectionError, TimeoutError, ReadOnlyError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _fail_over_keeping(servers: SentinelSet, redis: Redis, key: str) -> float:
    """Kill the master once the replica has `key`; check the client reads it from the new
    master, and return the seconds the promotion took."""
    servers.wait_on_replica(key)
    _, heir = servers.kill_master()
    promoted = servers.wait_promoted(heir)
    assert _retrying(lambda: redis.get(key)) == b"1"
    return promoted


@pytest.mark.servers
def test_a_slot_the_dead_master_never_replicated_is_not_granted_again(
    sentinel_set: SentinelSet,
) -> None:
    settings = from_env({**BASE_ENV, **sentinel_set.env})
    rate = 0.05  # a segment every 20 s: longer than the failover, so a lost slot would show
    limiter = SendRateLimiter(
        connect(settings), {LONG_CODE: rate}, sender_types={LINE: LONG_CODE, OTHER: LONG_CODE},
        fence_segments=FENCE_SEGMENTS,
    )  # fmt: skip
    # A fresh Redis has lost nothing: the first slot is at once, and the epoch is recorded.
    assert limiter.reserve(OTHER, 1, max_wait=None).wait == 0
    # The epoch is written with the slot, in one script: both reach the replica together.
    sentinel_set.wait_on_replica(limiter.prefix + OTHER)
    replica = sentinel_set.replica
    assert replica._proc is not None
    replica._proc.send_signal(signal.SIGSTOP)  # replication stalls
    try:
        # The master drops the stalled replica once the socket's buffers are full (a filler
        # fills them): the write below then dies with the master, as a write not yet sent
        # does (a stalled replica alone would still find it in its socket when it wakes).
        with Redis(*sentinel_set.master_address()) as master:
            master.config_set("client-output-buffer-limit", "replica 1 1 0")
            master.set("peerline:test:filler", b"x" * (32 << 20))
            deadline = time.monotonic() + 10
            while master.info("replication")["connected_slaves"]:
                assert time.monotonic() < deadline, "the master kept its stalled replica"
                time.sleep(0.05)
        lost = limiter.reserve(LINE, 1, max_wait=None)  # granted by the master alone
        assert lost.reserved and lost.wait == 0
        _, heir = sentinel_set.kill_master()
    finally:
        replica._proc.send_signal(signal.SIGCONT)
    promoted = sentinel_set.wait_promoted(heir)
    # The new master never heard of that slot: by its own record the sender is free now.
    bare = SendRateLimiter(connect(settings), {LONG_CODE: rate}, sender_types={LINE: LONG_CODE})
    assert _retrying(lambda: bare.free_at(LINE)) is None, (lost, time.time())
    after = _retrying(lambda: limiter.reserve(LINE, 1, max_wait=None))
    interval = (1 + limiter.jitter) / rate
    # The fence holds the sender past anything the dead master could have granted.
    assert after.at >= lost.at + interval, (lost, after)
    assert after.at <= time.time() + FENCE_SEGMENTS * interval + 1
    # Only the first master change fences: the next slot follows the usual pace.
    following = limiter.reserve(LINE, 1, max_wait=None)
    assert following.at == pytest.approx(after.at + interval, abs=0.01)
    print(
        f"\nlost slot fenced: promoted after {promoted:.1f}s; the dead master's slot at "
        f"+0s, the new master's first at +{after.at - lost.at:.0f}s "
        f"(a segment is {interval:.1f}s; without the fence: +{promoted:.0f}s)"
    )


def test_tls_reaches_both_the_sentinels_and_the_master() -> None:
    settings = from_env(
        {
            **BASE_ENV,
            "REDIS_SENTINELS": "10.0.0.1:26379",
            "REDIS_SENTINEL_MASTER": "peerline",
            "REDIS_URL": "rediss://:m%40ster@sentinel/2?ssl_ca_certs=/run/secrets/ca.pem",
            "REDIS_SENTINEL_PASSWORD": "watch",
        }
    )
    to_sentinels, to_master = sentinel_options(settings)
    for options in (to_sentinels, to_master):
        assert options["ssl"] is True
        assert options["ssl_ca_certs"] == "/run/secrets/ca.pem"
    # Each side has its own password; the master's database comes from the URL.
    assert to_sentinels["password"] == "watch"
    assert (to_master["password"], to_master["db"]) == ("m@ster", 2)
    plain = from_env({**BASE_ENV, "REDIS_SENTINELS": "a:1", "REDIS_SENTINEL_MASTER": "p"})
    assert not any("ssl" in options for options in sentinel_options(plain))
    assert "password" not in sentinel_options(plain)[0]
    with pytest.raises(SettingsError, match="REDIS_SENTINELS"):
        from_env({**BASE_ENV, "REDIS_SENTINEL_PASSWORD": "watch"})


@pytest.mark.servers
def test_sentinels_with_their_own_password_lead_to_the_master_and_follow_a_failover() -> None:
    servers = SentinelSet(password="master-secret", sentinel_password="sentinel-secret").start()
    try:
        settings = from_env({**BASE_ENV, **servers.env})
        redis = connect(settings)
        redis.set("peerline:test:auth", "1")
        assert redis.get("peerline:test:auth") == b"1"
        # Without the Sentinels' password no Sentinel names the master; without the master's
        # the master refuses.
        anonymous = {**servers.env}
        del anonymous["REDIS_SENTINEL_PASSWORD"]
        with pytest.raises(MasterNotFoundError):
            connect(from_env({**BASE_ENV, **anonymous})).ping()
        wrong = {**servers.env, "REDIS_URL": "redis://:nope@sentinel/0"}
        with pytest.raises(AuthenticationError):
            connect(from_env({**BASE_ENV, **wrong})).ping()
        # The Sentinels, authenticating to each other and to the master, still fail over.
        promoted = _fail_over_keeping(servers, redis, "peerline:test:auth")
        print(f"\nsentinels with passwords: promoted after {promoted:.1f}s")
    finally:
        servers.close()


@pytest.mark.servers
def test_sentinels_and_master_over_tls_through_a_failover() -> None:
    servers = SentinelSet(password="master-secret", tls=True).start()
    try:
        settings = from_env({**BASE_ENV, **servers.env})
        assert (settings.redis_url or "").startswith("rediss://")
        redis = connect(settings)
        redis.set("peerline:test:tls", "1")
        assert redis.get("peerline:test:tls") == b"1"
        # The same servers refuse a client that does not speak TLS.
        plain = {**servers.env, "REDIS_URL": "redis://:master-secret@sentinel/0"}
        with pytest.raises((ConnectionError, TimeoutError)):
            connect(from_env({**BASE_ENV, **plain})).ping()
        promoted = _fail_over_keeping(servers, redis, "peerline:test:tls")
        print(f"\nsentinels and master over TLS: promoted after {promoted:.1f}s")
    finally:
        servers.close()
