"""Health, readiness and Prometheus metrics: what a load balancer and a scraper see."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from fakeredis import FakeRedis
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from sqlalchemy import select

from peerline.app import create_app
from peerline.service.job_queue import redis_client
from peerline.service.models import Offer, utcnow
from peerline.service.runtime import expire_offer
from peerline.service.services import LineServices
from peerline.service.transport import TwilioTransport
from tests.support import lines
from tests.support.chat import run_jobs
from tests.support.fake_twilio import FakeTwilio
from tests.support.line import Webhooks, load_line_file, make_line, make_settings
from tests.support.servers import PostgresServer, RedisServer, free_port

TOKEN = "scrape-token-for-tests"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(text: str) -> Samples:
    """Parse Prometheus text into {(sample name, labels): value}."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """Return one sample's value, 0 when it is not there."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz_answers_while_the_process_runs(line: LineServices) -> None:
    response = create_app(line=line).test_client().get("/healthz")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


@pytest.mark.servers
def test_readyz_is_ready_with_database_and_redis(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=postgres_server.create_database())
    line = make_line(settings, redis_client(redis_server.url))
    response = create_app(line=line).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "redis": "ok"}
    line.db.engine.dispose()


@pytest.mark.servers
def test_readyz_is_503_when_redis_is_unreachable(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=postgres_server.create_database())
    line = make_line(settings, redis_client(f"redis://127.0.0.1:{free_port()}/0"))
    response = create_app(line=line).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["database"] == "ok"
    assert response.json["redis"] == "ConnectionError"
    line.db.engine.dispose()


@pytest.mark.servers
def test_readyz_is_503_when_the_database_is_unreachable(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    url = postgres_server.create_database()
    line = make_line(make_settings(tmp_path, DATABASE_URL=url), redis_client(redis_server.url))
    line.db.engine.dispose()
    # The same line, its database now a port where nothing listens.
    gone = url.replace(f":{postgres_server.port}/", f":{free_port()}/")
    away = LineServices(
        line.settings.with_changes(database_url=gone), Redis.from_url(redis_server.url)
    )
    before = _counter_total("peerline_backend_errors_total", backend="database")
    response = create_app(line=away).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["database"] == "OperationalError"
    assert response.json["redis"] == "ok"
    assert _counter_total("peerline_backend_errors_total", backend="database") > before


def _counter_total(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_are_off_without_a_token_and_closed_without_the_right_one(
    line: LineServices,
) -> None:
    assert create_app(line=line).test_client().get("/metrics").status_code == 404
    with_token = line.settings.with_changes(metrics_token=TOKEN)
    client = create_app(line=LineServices(with_token, line.redis, database=line.db)).test_client()
    assert client.get("/metrics").status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert client.get("/metrics", headers=wrong).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_metrics_after_a_journey(tmp_path: Path) -> None:
    with FakeTwilio() as twilio:
        settings = make_settings(
            tmp_path,
            PEERLINE_METRICS_TOKEN=TOKEN,
            TWILIO_ACCOUNT_SID=twilio.account_sid,
            TWILIO_AUTH_TOKEN=twilio.auth_token,
            TWILIO_PHONE_NUMBER="+15005550006",
            TWILIO_API_BASE_URL=twilio.base_url,
        )
        line = make_line(settings, FakeRedis(), TwilioTransport(settings))
        load_line_file(line, lines.ALWAYS_OPEN)
        client = create_app(line=line).test_client()
        hooks = Webhooks(client, settings)
        auth = {"Authorization": f"Bearer {TOKEN}"}

        def metrics() -> Samples:
            response = client.get("/metrics", headers=auth)
            assert response.status_code == 200
            return scrape(response.get_data(as_text=True))

        before = metrics()
        hooks.sms(lines.TEXTER, "hi")
        hooks.sms(lines.TEXTER, "yes")
        # Waiting: the welcome, the place in line and the offer are texts not yet sent.
        waiting = metrics()
        # The welcome and the place in line are replies to a texter not yet in a chat.
        pending = value(waiting, "peerline_outbox_texts", status="pending", lane="reply")
        assert pending >= 2
        assert value(waiting, "peerline_texts_waiting", queue="peerline") >= 1
        run_jobs(line)  # sends, and offers the chat to Sam
        with line.db.session() as session:
            offer = session.scalars(select(Offer)).one()
        expire_offer(line, offer.id, now=utcnow() + timedelta(minutes=5))
        hooks.sms(lines.TEXTER, "I want to kill myself")
        twilio.opted_out.add(lines.TEXTER_2)
        hooks.sms(lines.TEXTER_2, "hello")  # the welcome meets 21610: they opted out
        bad = client.post("/webhooks/sms", data={"MessageSid": "SM1", "From": lines.TEXTER})
        assert bad.status_code == 403
        run_jobs(line)
        after = metrics()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    endpoint = "sms.inbound"
    assert grew("peerline_webhooks_total", endpoint=endpoint, outcome="queued") == 4
    assert grew("peerline_webhooks_total", endpoint=endpoint, outcome="bad_signature") == 1
    assert grew("peerline_texts_sent_total") == len(twilio.messages) > 3
    assert grew("peerline_send_errors_total", code="21610") == 1
    assert grew("peerline_time_to_first_offer_seconds_count") == 1
    assert grew("peerline_offers_expired_total") == 1
    assert grew("peerline_crisis_flags_total", source="detector") == 1
    # Everything sent: nothing waits any more.
    for lane in ("crisis", "chat", "offer", "reply", "wait", "fanout"):
        assert value(after, "peerline_outbox_texts", status="pending", lane=lane) == 0
    assert value(after, "peerline_texts_waiting", queue="peerline") == 0
    assert value(after, "peerline_texts_waiting", queue="inbound-texts") == 0


@pytest.mark.servers
def test_gunicorn_workers_add_up_in_multiprocess_mode(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'line.db'}",
        "REDIS_URL": redis_server.url,
        "SECRET_KEY": "gunicorn-test",
        "PEERLINE_INSTANCE": str(tmp_path),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "gunicorn-test-token",
        "TWILIO_PHONE_NUMBER": "+15550100000",
        "PEERLINE_METRICS_TOKEN": TOKEN,
        "PORT": str(port),
        "WEB_CONCURRENCY": "3",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    make_line(make_settings(tmp_path, DATABASE_URL=env["DATABASE_URL"]), FakeRedis())
    log_path = tmp_path / "gunicorn.log"
    log = log_path.open("wb")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:peerline.gunicorn_conf",
         "peerline.app:create_app()"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline and web.poll() is None, "gunicorn did not start"
                time.sleep(0.2)
        # Unsigned webhooks, spread over the workers by the kernel: each is refused (403).
        for _ in range(12):
            request = urllib.request.Request(base + "/webhooks/sms", data=b"MessageSid=SM1")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=5)
            assert refused.value.code == 403
            refused.value.close()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        scraped = urllib.request.Request(base + "/metrics", headers=auth)
        with urllib.request.urlopen(scraped, timeout=5) as response:
            samples = scrape(response.read().decode())
        # Every worker's count is in the one answer, whichever worker gave it.
        refused_count = value(
            samples, "peerline_webhooks_total", endpoint="sms.inbound", outcome="bad_signature"
        )
        assert refused_count == 12
        assert len(list((tmp_path / "metrics").glob("counter_*.db"))) >= 2
        # A calendar feed's token (and any query) never reaches the access log.
        feed = "/calendar/Zq3xY_8kPwR2-mN5tV7bC1dF4gH6jK9L.ics?from=%2B14165550100"
        with pytest.raises(urllib.error.HTTPError) as unknown:
            urllib.request.urlopen(base + feed, timeout=5)
        assert unknown.value.code == 404
        unknown.value.close()
    finally:
        web.terminate()
        web.wait(timeout=30)
        log.close()
    logged = log_path.read_text()
    assert '"GET /calendar/[token].ics" 404' in logged, logged[-2000:]
    assert "Zq3xY" not in logged and "14165550100" not in logged
