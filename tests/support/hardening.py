"""A line on real PostgreSQL and Redis, with a fake Twilio, for the hardening tests (issue 16)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis

from peerline.service.services import LineServices
from tests.support import lines
from tests.support.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio
from tests.support.line import Webhooks, load_line_file, make_line, make_settings
from tests.support.voice import voice_app

TWILIO_ENV = {
    "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
    "TWILIO_PHONE_NUMBER": "+15550100000",
}


@dataclass
class Deployed:
    """A line, its web app, a poster of signed webhooks, and the fake Twilio it talks to."""

    line: LineServices
    app: Flask
    hooks: Webhooks
    twilio: FakeTwilio


@contextmanager
def deploy(
    tmp_path: Path, postgres: Any, redis_server: Any, line_file: str = lines.ALWAYS_OPEN
) -> Iterator[Deployed]:
    """Run a line on a fresh PostgreSQL database, a flushed real Redis and a fake Twilio."""
    redis = Redis.from_url(redis_server.url)
    redis.flushall()
    with FakeTwilio(auto_status=False) as twilio:
        settings = make_settings(
            tmp_path,
            DATABASE_URL=postgres.create_database(),
            REDIS_URL=redis_server.url,
            TWILIO_API_BASE_URL=twilio.base_url,
            **TWILIO_ENV,
        )
        line = make_line(settings, redis)
        load_line_file(line, line_file)
        app = voice_app(line)
        try:
            yield Deployed(line, app, Webhooks(app.test_client(), line.settings), twilio)
        finally:
            line.db.engine.dispose()


@pytest.fixture
def deployed(tmp_path: Path, postgres_server: Any, redis_server: Any) -> Iterator[Deployed]:
    """Return a line where Sam is always on shift, on real servers."""
    with deploy(tmp_path, postgres_server, redis_server) as d:
        yield d
