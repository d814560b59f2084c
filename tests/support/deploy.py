"""A line deployed as in production on this machine: web over HTTP, worker processes, real
PostgreSQL and Redis, and the local Twilio REST server."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis
from werkzeug.serving import make_server

from peerline.app import create_app
from peerline.service.redis_connect import connect
from peerline.service.services import LineServices
from peerline.service.settings import from_env
from tests.support import lines
from tests.support.fake_twilio import FakeTwilio, sign
from tests.support.line import FAST_RATES, load_line_file, make_line
from tests.support.sentinel import SentinelSet
from tests.support.servers import PostgresServer, RedisServer

LINE_NUMBER = "+15550100000"


@dataclass(eq=False)  # compared and hashed as itself, like any running thing
class Deployment:
    """Drive a deployed line the way Twilio and an operator would."""

    line: LineServices
    twilio: FakeTwilio
    base_url: str
    env: dict[str, str]
    logs: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self, *extra: str) -> subprocess.Popen[bytes]:
        """Start a `peerline worker` process (in its own process group)."""
        log = (self.logs / f"worker-{len(self.workers)}.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "peerline", "worker", *extra],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a kill takes its work-horse children too
        )
        log.close()
        self.workers.append(worker)
        return worker

    def kill_workers(self) -> None:
        """SIGKILL every worker and its children, as a crashed machine would."""
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()

    def stop_workers(self) -> None:
        """Stop every worker politely, then firmly."""
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()

    def worker_logs(self) -> str:
        """Return the tail of every worker's log, for a failing assertion."""
        return "\n".join(p.read_text()[-2000:] for p in sorted(self.logs.glob("worker-*.log")))

    def post(self, path: str, params: dict[str, str]) -> int:
        """Post a webhook over HTTP, signed as Twilio signs it."""
        url = self.base_url + path
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-Twilio-Signature": sign(url, params, self.twilio.auth_token)},
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            return int(response.status)

    def sms(
        self, sender: str, body: str, sid: str | None = None, path: str = "/webhooks/sms"
    ) -> int:
        """Deliver an inbound SMS to the line."""
        params = {
            "MessageSid": sid or "SM" + uuid.uuid4().hex,
            "AccountSid": self.twilio.account_sid,
            "From": sender,
            "To": LINE_NUMBER,
            "Body": body,
            "NumMedia": "0",
        }
        return self.post(path, params)

    def bodies_to(self, number: str) -> list[str]:
        """Return the texts the local Twilio accepted for a number, in order."""
        return [m["body"] for m in self.twilio.messages_to(number)]

    def wait_for_text(self, number: str, pattern: str, timeout: float = 20.0) -> str:
        """Wait until a text matching a pattern reaches a number, and return it."""

        def arrived(messages: list[dict[str, Any]]) -> bool:
            return any(m["to"] == number and re.search(pattern, m["body"] or "") for m in messages)

        try:
            self.twilio.wait_for(arrived, timeout, f"a text to {number} matching {pattern!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker logs ---\n{self.worker_logs()}") from None
        return next(b for b in reversed(self.bodies_to(number)) if re.search(pattern, b))

    def wait_until(self, check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
        """Poll until a condition holds, or fail with the worker logs."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.worker_logs()}")
            time.sleep(0.05)


@contextmanager
def deployed(
    tmp_path: Path,
    postgres: PostgresServer,
    redis: RedisServer | SentinelSet,
    line_file: str,
    **extra_env: str,
) -> Iterator[Deployment]:
    """Deploy a line: migrate, load the line file, serve HTTP; the caller starts workers."""
    with Redis.from_url(redis.url) as client:
        client.flushall()
    # The app's socket listens before its URL is written into the settings: a port picked
    # now and bound later could be taken meanwhile by another server a test starts.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    twilio = FakeTwilio().start()
    env = {
        "DATABASE_URL": postgres.create_database(),
        "REDIS_URL": redis.url,
        "SECRET_KEY": "deployment-secret",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        **twilio.env(LINE_NUMBER),
        "PEERLINE_INSTANCE": str(tmp_path),
        "PEERLINE_SEND_RATES": FAST_RATES,
        **(redis.env if isinstance(redis, SentinelSet) else {}),
        **extra_env,
    }
    settings = from_env(env)
    line = make_line(settings, connect(settings))
    load_line_file(line, line_file)
    server = make_server(
        "127.0.0.1", port, create_app(line=line), threaded=True, fd=listener.fileno()
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    deployment = Deployment(line, twilio, env["PUBLIC_BASE_URL"], env, tmp_path)
    try:
        yield deployment
    finally:
        deployment.stop_workers()
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        listener.close()
        twilio.stop()
        line.db.engine.dispose()
        assert twilio.server_errors == []


def play_chat(sms: Callable[[str, str], object], wait: Callable[[str, str], str]) -> str:
    """Play a texter's chat with Sam, hello to a rating, through any line: `sms` posts a
    text from a number, `wait` waits for a text to a number matching a pattern. Return the
    texter's alias."""
    sms(lines.TEXTER, "hello")
    wait(lines.TEXTER, "not counsellors or a crisis service")
    sms(lines.TEXTER, "YES")
    wait(lines.TEXTER, "number 1 in line")
    alias = wait(lines.SAM, r"#take within 2 min").split()[0]
    sms(lines.SAM, "#take")
    wait(lines.TEXTER, "connected with Sam")
    wait(lines.SAM, f"You are now chatting with {alias}")
    sms(lines.TEXTER, "it has been a hard day")
    wait(lines.SAM, f"^{alias}: it has been a hard day$")
    sms(lines.SAM, "I'm here. Want to tell me about it?")
    wait(lines.TEXTER, r"^Sam: I'm here\. Want to tell me about it\?$")
    sms(lines.TEXTER, "BYE")
    wait(lines.TEXTER, "from 1 .* to 5")
    wait(lines.SAM, f"{alias} has ended the chat")
    sms(lines.TEXTER, "4")
    wait(lines.TEXTER, "Thank you. You can text this number again")
    return alias
