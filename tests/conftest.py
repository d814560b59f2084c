"""Shared fixtures: lines on SQLite or real servers, signed webhooks, jobs run by RQ."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from peerline.app import create_app
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.console import Console, signed_in
from tests.support.line import LineBuilder, Webhooks, line_builder, sqlite_line
from tests.support.sentinel import sentinel_set  # noqa: F401  (fixture)
from tests.support.servers import postgres_server, redis_server  # noqa: F401  (fixtures)


@pytest.fixture
def demo_line(tmp_path: Path) -> Iterator[LineServices]:
    """Return a line on SQLite and in-memory Redis with the demo line file loaded."""
    with sqlite_line(tmp_path) as line:
        yield line


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
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines on SQLite and in-memory Redis, from a line file and settings."""
    return line_builder(tmp_path, app_for)


@pytest.fixture
def always_open_line(tmp_path: Path) -> Iterator[LineServices]:
    """Return a line on SQLite and in-memory Redis where Sam is always on shift."""
    with sqlite_line(tmp_path, lines.ALWAYS_OPEN) as line:
        yield line


@pytest.fixture
def line(always_open_line: LineServices) -> LineServices:
    """Return the line a test works on: always open, unless its module defines its own."""
    return always_open_line


@pytest.fixture
def hooks(line: LineServices, app_for: Callable[[LineServices], Flask]) -> Webhooks:
    """Return a poster of signed webhooks to the `line` fixture's line."""
    return Webhooks(app_for(line).test_client(), line.settings)


@pytest.fixture
def app(line: LineServices) -> Flask:
    """Return the web app of the `line` fixture's line, CSRF enforced as in production."""
    app = create_app(line=line)
    assert app.config["WTF_CSRF_ENABLED"]
    return app


@pytest.fixture
def console(app: Flask) -> Console:
    """Return a console client signed in through the form as the line's coordinator."""
    return signed_in(app)
