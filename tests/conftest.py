"""Shared fixtures: lines on SQLite or real servers, signed webhooks, jobs run by RQ."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakeredis import FakeRedis
from flask import Flask

from peerline.app import create_app
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.line import Webhooks, load_line_file, make_line, make_settings
from tests.support.servers import postgres_server, redis_server  # noqa: F401  (fixtures)


@pytest.fixture
def demo_line(tmp_path: Path) -> Iterator[LineServices]:
    """Return a line on SQLite and in-memory Redis with the demo line file loaded."""
    line = make_line(make_settings(tmp_path), FakeRedis())
    load_line_file(line)
    yield line
    line.db.engine.dispose()


@pytest.fixture
def app_for() -> Callable[[LineServices], Flask]:
    """Return a function that builds the web app for a line."""

    def build(line: LineServices) -> Flask:
        return create_app(line=line)

    return build


@pytest.fixture
def demo_hooks(demo_line: LineServices, app_for: Callable[[LineServices], Flask]) -> Webhooks:
    """Return a poster of signed webhooks to the demo line."""
    return Webhooks(app_for(demo_line).test_client(), demo_line.settings)


@pytest.fixture
def always_open_line(tmp_path: Path) -> LineServices:
    """Return a line on SQLite and in-memory Redis where Sam is always on shift."""
    line = make_line(make_settings(tmp_path), FakeRedis())
    load_line_file(line, lines.ALWAYS_OPEN)
    return line


@pytest.fixture
def line(always_open_line: LineServices) -> LineServices:
    """Return the line a test works on: always open, unless its module defines its own."""
    return always_open_line


@pytest.fixture
def hooks(line: LineServices, app_for: Callable[[LineServices], Flask]) -> Webhooks:
    """Return a poster of signed webhooks to the `line` fixture's line."""
    return Webhooks(app_for(line).test_client(), line.settings)
