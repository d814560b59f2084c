"""A line on real PostgreSQL and Redis for the hardening tests (issue 16)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis

from peerline.app import create_app
from peerline.service.line import Line
from tests import lines
from tests.conftest import Webhooks, load_line_file, make_line, make_settings

TWILIO_ENV = {
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "hardening-auth-token",
    "TWILIO_PHONE_NUMBER": "+15550100000",
}


@dataclass
class Deployed:
    """A line, its web app, and a poster of signed webhooks."""

    line: Line
    app: Flask
    hooks: Webhooks


@pytest.fixture
def deployed(tmp_path: Path, postgres_server: object, redis_server: object) -> Iterator[Deployed]:
    """Return a line on a fresh PostgreSQL database and a flushed real Redis."""
    redis = Redis.from_url(redis_server.url)  # type: ignore[attr-defined]
    redis.flushall()
    settings = make_settings(
        tmp_path,
        DATABASE_URL=postgres_server.create_database(),  # type: ignore[attr-defined]
        REDIS_URL=redis_server.url,  # type: ignore[attr-defined]
        **TWILIO_ENV,
    )
    line = make_line(settings, redis)
    load_line_file(line, lines.ALWAYS_OPEN)
    app = create_app(line=line)
    try:
        yield Deployed(line, app, Webhooks(app.test_client(), line.settings))
    finally:
        line.db.engine.dispose()
