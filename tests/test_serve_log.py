"""`peerline serve`'s access log holds no phone number: the simulator asks by number."""

from __future__ import annotations

import logging
import threading
import urllib.request

import pytest
from flask import Flask
from werkzeug.serving import make_server

from peerline.cli import path_only_handler


def test_the_development_servers_access_line_drops_the_query_string(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Flask(__name__)

    @app.get("/simulator/api/messages")
    def messages() -> str:
        return "[]"

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=path_only_handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            url = f"http://127.0.0.1:{server.port}/simulator/api/messages?number=%2B15550104477"
            with urllib.request.urlopen(url, timeout=10) as answer:
                assert answer.read() == b"[]"
            bad = f"http://127.0.0.1:{server.port}/nowhere?number=5550104477"
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(bad, timeout=10)
    finally:
        server.shutdown()
        thread.join(timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("GET /simulator/api/messages HTTP/1.1" in line for line in lines), lines
    assert any("GET /nowhere HTTP/1.1" in line and "404" in line for line in lines), lines
    assert not any("5550104477" in line or "number=" in line for line in lines), lines
