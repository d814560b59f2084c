"""Build test lines, post signed webhooks, run queued jobs and read the outbox."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from fakeredis import FakeRedis
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy.engine import make_url
from werkzeug.test import TestResponse

from peerline.service import linefile, linesync
from peerline.service.crisis_line import LineDetector
from peerline.service.inbound import SHARDS
from peerline.service.migrate import upgrade
from peerline.service.services import LineServices
from peerline.service.settings import Settings, from_env
from peerline.service.transport import Transport, TwilioTransport
from peerline.workers import jobs
from peerline.workers.context import set_line
from tests.support.fake_twilio import FakeTwilio, sign
from tests.support.seed import add_coordinator
from tests.support.servers import PostgresServer, RedisServer

LINE_NUMBER = "+15550100000"
FAST_RATES = "long_code=1000,toll_free=1000,short_code=1000"


def make_settings(tmp_path: Path, **env: str) -> Settings:
    """Return settings for a test line, as the environment would give them."""
    base = {
        "PEERLINE_INSTANCE": str(tmp_path),
        "SECRET_KEY": "test-secret-key",
        # Pacing has tests of its own; here it would only make every journey slow.
        "PEERLINE_SEND_RATES": FAST_RATES,
    }
    base.update(env)
    return from_env(base).with_changes(testing=True)


@cache
def packaged_detector() -> LineDetector:
    """Return this process's detector of the packaged phrases, built once (a line without a
    phrase file of its own never changes it)."""
    return LineDetector(None)


@cache
def _migrated_sqlite() -> Path:
    """Return a SQLite database migrated to head, made once per process, to copy."""
    folder = Path(tempfile.mkdtemp(prefix="peerline-schema-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "migrated.db"
    upgrade(f"sqlite:///{path}")
    return path


def migrate(database_url: str) -> None:
    """Bring the database to head: a new SQLite file is a copy of one migrated already."""
    url = make_url(database_url)
    if url.drivername == "sqlite" and url.database and url.database != ":memory:":
        target = Path(url.database)
        if target.parent.is_dir() and not target.exists():
            shutil.copyfile(_migrated_sqlite(), target)
            return
    upgrade(database_url)


def make_line(settings: Settings, redis: Redis, transport: Transport | None = None) -> LineServices:
    """Migrate the database and return a line that jobs in this process will use."""
    migrate(settings.database_url)
    crisis = None if settings.crisis_file else packaged_detector()
    line = LineServices(settings, redis, transport=transport, crisis=crisis)
    set_line(line)
    return line


def servers_env(
    tmp_path: Path, postgres: PostgresServer, redis: RedisServer, secret: str, **env: str
) -> dict[str, str]:
    """Return the environment of a line on a fresh PostgreSQL database and the real Redis,
    emptied, with sends paced as fast as anything here needs."""
    Redis.from_url(redis.url).flushall()
    return {
        "DATABASE_URL": postgres.create_database(),
        "REDIS_URL": redis.url,
        "SECRET_KEY": secret,
        "PEERLINE_INSTANCE": str(tmp_path),
        "PEERLINE_SEND_RATES": "long_code=1000",
        **env,
    }


def load_line_file(line: LineServices, text: str = linefile.DEMO_LINE_FILE) -> None:
    """Import a line file into the line's database."""
    with line.db.session() as session:
        linesync.import_line(session, line.vault, linefile.parse(text))


@contextmanager
def sqlite_line(
    tmp_path: Path,
    text: str | None = linefile.DEMO_LINE_FILE,
    *,
    coordinator: bool = False,
    **env: str,
) -> Iterator[LineServices]:
    """Yield a line on SQLite and in-memory Redis with a line file loaded (none for None) and,
    if asked, a coordinator; dispose of its database connections after."""
    line = make_line(make_settings(tmp_path, **env), FakeRedis())
    if text is not None:
        load_line_file(line, text)
    if coordinator:
        add_coordinator(line)
    try:
        yield line
    finally:
        line.db.engine.dispose()


def twilio_line(tmp_path: Path, twilio: FakeTwilio, text: str) -> LineServices:
    """Return a line from a line file that sends through the fake Twilio's REST API."""
    settings = make_settings(tmp_path, **twilio.env("+15005550006"))
    line = make_line(settings, FakeRedis(), TwilioTransport(settings))
    load_line_file(line, text)
    return line


def drain_inbound() -> int:
    """Run the texts the webhook took in through the runtime, as the workers' drain jobs
    would; return how many."""
    return sum(jobs.drain_inbound(shard) for shard in range(SHARDS))


class Webhooks:
    """Post form-encoded webhooks signed exactly as Twilio signs them."""

    def __init__(self, client: FlaskClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def post(
        self, path: str, params: dict[str, str], *, signed: bool = True, drain: bool = True
    ) -> TestResponse:
        """Post a webhook, signed unless told not to; step the texts it took in, unless told."""
        url = self.settings.public_base_url + path
        headers = {}
        if signed:
            headers["X-Twilio-Signature"] = sign(url, params, self.settings.twilio_auth_token)
        response = self.client.post(path, data=params, headers=headers)
        if drain and path.startswith("/webhooks/sms") and path != "/webhooks/sms/status":
            drain_inbound()
        return response

    def sms(
        self, sender: str, body: str, sid: str | None = None, *, drain: bool = True, **extra: str
    ) -> TestResponse:
        """Deliver one inbound SMS from a number to the line."""
        params = {
            "MessageSid": sid or "SM" + uuid.uuid4().hex,
            "AccountSid": self.settings.twilio_account_sid,
            "From": sender,
            "To": self.settings.twilio_phone_number,
            "Body": body,
            "NumMedia": "0",
            "ApiVersion": "2010-04-01",
        }
        params.update(extra)
        return self.post("/webhooks/sms", params, drain=drain)


# A fixture that builds a line from a line file and settings, with webhooks to post to it.
# A test line and signed webhooks to post to it.
LineAndHooks = tuple[LineServices, Webhooks]
LineBuilder = Callable[..., LineAndHooks]


def line_builder(
    tmp_path: Path, app_for: Callable[[LineServices], Flask], default: str | None = None
) -> LineBuilder:
    """Return a builder of lines on SQLite and in-memory Redis from a line file (`default`
    unless given) and settings, each with signed webhooks to post to it."""

    def build(text: str | None = None, **env: str) -> LineAndHooks:
        chosen = text if text is not None else default
        if chosen is None:
            raise TypeError("build() needs a line file")
        line = make_line(make_settings(tmp_path, **env), FakeRedis())
        load_line_file(line, chosen)
        return line, Webhooks(app_for(line).test_client(), line.settings)

    return build
