"""A line deployed as in production, but under gunicorn: the Procfile's web command, `peerline
worker` processes, real PostgreSQL and Redis, and the local Twilio (timing each arrival).

It reuses the test deployment's parts (`tests.support.deploy.Deployment`,
`tests.support.line.make_line`, `tests.support.fake_twilio.FakeTwilio`); only the web server
differs: gunicorn in its own process rather than werkzeug in a thread, because that is what
production runs and what is measured.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis

from benchmarks.common import ROOT, Context, stop_group, wait_for_http
from peerline.service.job_queue import redis_client
from peerline.service.services import LineServices
from peerline.service.settings import from_env
from tests.support.deploy import LINE_NUMBER, Deployment
from tests.support.fake_twilio import FakeTwilio
from tests.support.line import load_line_file, make_line
from tests.support.servers import free_port

# The Procfile's web process: gunicorn, two workers of four threads, access log to stdout.
WEB_WORKERS, WEB_THREADS = 2, 4
PEERLINE_APP = "peerline.app:create_app()"
# Pacing has a benchmark of its own; elsewhere it would only measure the limiter's sleep.
HIGH_RATES = "long_code=10000,toll_free=10000,short_code=10000"

Arrival = tuple[float, str, str]  # (time.monotonic() at arrival, to, body)


class TimedTwilio(FakeTwilio):
    """The local Twilio, also noting when each message was accepted (monotonic clock)."""

    def __init__(self, *, auto_status: bool = True) -> None:
        super().__init__(auto_status=auto_status, keep_alive=True)
        self.arrivals: list[Arrival] = []
        self._arrived = threading.Condition()

    def _create_message(self, params: dict[str, list[str]]) -> dict[str, object]:
        record = super()._create_message(params)
        with self._arrived:
            self.arrivals.append((time.monotonic(), str(record["to"]), str(record["body"])))
            self._arrived.notify_all()
        return record

    def arrived(self) -> int:
        with self._arrived:
            return len(self.arrivals)

    def wait_arrival(
        self, since: int, match: Callable[[Arrival], bool], timeout: float
    ) -> Arrival | None:
        """Wait for a message matching `match` among those from index `since` on."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for arrival in self.arrivals[since:]:
                    if match(arrival):
                        return arrival
                since = len(self.arrivals)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._arrived.wait(left)

    def wait_count(self, count: int, timeout: float) -> bool:
        """Wait until at least `count` messages have arrived."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.arrivals) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
        return True


def gunicorn_command(app: str, port: int) -> list[str]:
    """Return the Procfile's web command for an app, bound to a loopback port."""
    return [
        sys.executable, "-m", "gunicorn",
        "--config", "python:peerline.gunicorn_conf",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(WEB_WORKERS),
        "--threads", str(WEB_THREADS),
        "--access-logfile", "-",
        app,
    ]  # fmt: skip


@contextmanager
def gunicorn(
    app: str, env: dict[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run gunicorn on an app until the block ends."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            gunicorn_command(app, port),
            # Each gunicorn its own metrics folder: the config empties it at start, and two
            # run side by side here (the line and the bare app).
            env={
                **os.environ,
                **env,
                "PYTHONPATH": str(ROOT),
                "PROMETHEUS_MULTIPROC_DIR": str(log.parent / f"metrics-{port}"),
            },
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc, log)
        yield proc
    finally:
        stop_group(proc)


class WebDeployment(Deployment):
    """A deployment whose web process is gunicorn on `port`."""

    twilio: TimedTwilio

    def __init__(
        self,
        line: LineServices,
        twilio: TimedTwilio,
        base_url: str,
        env: dict[str, str],
        logs: Path,
        web: subprocess.Popen[bytes],
        port: int,
    ) -> None:
        super().__init__(line, twilio, base_url, env, logs)
        self.web = web
        self.port = port

    def start_worker(self, *extra: str) -> subprocess.Popen[bytes]:
        """Start a `peerline worker` that can also import the benchmarks' own jobs."""
        self.env.setdefault("PYTHONPATH", str(ROOT))
        return super().start_worker(*extra)

    def stop_workers(self) -> None:
        """Stop every worker: asked twice (RQ's cold shutdown), then killed; nothing is kept."""
        for _ in range(2):
            for worker in self.workers:
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGTERM)
            time.sleep(0.3)
        deadline = time.monotonic() + 3
        for worker in self.workers:
            try:
                worker.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()


def line_env(ctx: Context, folder: Path, port: int, twilio: FakeTwilio) -> dict[str, str]:
    """Return a deployment's environment, as an operator would set it."""
    return {
        "DATABASE_URL": ctx.postgres.create_database(),
        "REDIS_URL": ctx.redis.url,
        "SECRET_KEY": "benchmark-secret",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_PHONE_NUMBER": LINE_NUMBER,
        "TWILIO_API_BASE_URL": twilio.base_url,
        "PEERLINE_INSTANCE": str(folder),
        "PEERLINE_SEND_RATES": HIGH_RATES,
    }


@contextmanager
def deployed(
    ctx: Context, name: str, line_file: str, *, auto_status: bool = True, **extra_env: str
) -> Iterator[WebDeployment]:
    """Deploy a line under gunicorn with the local Twilio; the caller starts workers."""
    folder = ctx.folder(name)
    Redis.from_url(ctx.redis.url).flushall()
    port = free_port()
    twilio = TimedTwilio(auto_status=auto_status)
    twilio.start()
    env = {**line_env(ctx, folder, port, twilio), **extra_env}
    line = make_line(from_env(env), redis_client(ctx.redis.url))
    load_line_file(line, line_file)
    try:
        with gunicorn(PEERLINE_APP, env, port, folder / "web.log") as web:
            deployment = WebDeployment(line, twilio, env["PUBLIC_BASE_URL"], env, folder, web, port)
            try:
                yield deployment
            finally:
                deployment.stop_workers()
    finally:
        twilio.stop()
        line.db.engine.dispose()


def always_on_line(supporters: int, *, capacity: int = 1, extra: str = "") -> str:
    """Return a line file with supporters on shift all week (so runs never hit a closed line)."""
    rows = ["timezone: America/Toronto", "supporters:"]
    for n in range(supporters):
        rows += [
            f"  - name: Peer{n:03d}",
            f'    phone: "+1416556{n:04d}"',
            f"    capacity: {capacity}",
            "    languages: [en]" if n % 4 else "    languages: [en, es]",
            "    shifts:",
            '      - {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "24:00"}',
        ]
    return "\n".join(rows) + "\n" + extra


def rota_line(supporters: int) -> str:
    """Return a realistic line file: supporters on varied weekly shifts, some on all the time."""
    spans = [("00:00", "24:00"), ("09:00", "17:00"), ("17:00", "01:00"), ("06:00", "14:00")]
    days = ["[mon, tue, wed, thu, fri, sat, sun]", "[mon, wed, fri]", "[tue, thu, sat, sun]"]
    rows = ["timezone: America/Toronto", "holidays: CA-ON", "supporters:"]
    for n in range(supporters):
        start, end = spans[n % len(spans)]
        rows += [
            f"  - name: Peer{n:03d}",
            f'    phone: "+1416557{n:04d}"',
            "    languages: [en]" if n % 3 else "    languages: [en, es]",
            "    shifts:",
            f'      - {{days: {days[n % len(days)]}, start: "{start}", end: "{end}"}}',
            # The first few are always on, so the line is open whenever the benchmark runs.
            *(
                [
                    '      - {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", '
                    'end: "24:00", run_on_holidays: true}'
                ]
                if n < 5
                else []
            ),
            "    time_off:",
            '      - {from: "2031-01-01", to: "2031-01-07"}',
        ]
    return "\n".join(rows) + "\n"
