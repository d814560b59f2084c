"""Serve the console on a real port and drive Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fakeredis import FakeRedis
from werkzeug.serving import make_server

from peerline.app import create_app
from peerline.service.services import LineServices
from tests.support.line import load_line_file, make_line, make_settings
from tests.support.seed import add_coordinator

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _need_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    message = f"{CHROMIUM} is missing: apt-get install chromium"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Return one headless Chromium for the whole session."""
    _need_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("the playwright package is missing: pip install -e '.[test]'")
        pytest.skip("the playwright package is missing")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """Return a fresh page (own cookies) that fails the test on any browser console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(5000)
    page = context.new_page()
    errors: list[str] = []
    # A refused sign-in answers 401 or 429 on purpose; Chromium logs those as errors too.
    expected = ("status of 401", "status of 429")
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not any(e in m.text for e in expected)
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    # A blocked script or style (the Content-Security-Policy) shows up here.
    assert not errors, errors


def _serve(line: LineServices, **config: object) -> Iterator[str]:
    app = create_app(line=line)
    app.config.update(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture
def empty_line(tmp_path: Path) -> Iterator[LineServices]:
    """Return a line with a coordinator, no supporters and no history."""
    line = make_line(make_settings(tmp_path), FakeRedis())
    add_coordinator(line)
    yield line
    line.db.engine.dispose()


@pytest.fixture
def demo_line(tmp_path: Path) -> Iterator[LineServices]:
    """Return a line with the demo rota and a coordinator."""
    line = make_line(make_settings(tmp_path), FakeRedis())
    load_line_file(line)
    add_coordinator(line)
    yield line
    line.db.engine.dispose()


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Return a function that serves a line's console and returns its base URL."""
    running: list[Iterator[str]] = []

    def start(line: LineServices, **config: object) -> str:
        server = _serve(line, **config)
        running.append(server)
        return next(server)

    yield start
    for server in running:
        next(server, None)
