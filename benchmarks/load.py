"""A small HTTP load generator: keep-alive connections on threads, loopback only, bounded.

Closed loop: a fixed number of connections each send their next request as soon as the last one
answered (throughput at a fixed concurrency). Open loop: requests are due at a fixed rate whatever
the server does, and each latency counts from when the request was due, so a stall shows in the
figures instead of quietly slowing the generator down (no "coordinated omission").
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tests.fake_twilio import sign


@dataclass(frozen=True)
class Request:
    """One prepared POST: path, form body and headers (a Twilio signature, say)."""

    path: str
    body: bytes
    headers: Mapping[str, str]


def signed_form(base_url: str, path: str, params: Mapping[str, str], token: str) -> Request:
    """Prepare a form POST signed as Twilio signs it for the public URL base_url + path."""
    return Request(
        path,
        urllib.parse.urlencode(params).encode(),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(base_url + path, params, token),
        },
    )


@dataclass
class LoadResult:
    """What a run saw: a latency per answered request, statuses and the wall time."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    @property
    def ok(self) -> int:
        return self.statuses[200]

    def problems(self) -> str:
        """Describe failed requests, or return an empty string when every one answered 200."""
        bad = {status: n for status, n in self.statuses.items() if status != 200}
        parts = [f"HTTP {status} x{n}" for status, n in sorted(bad.items())]
        parts += [f"{error} x{n}" for error, n in self.errors.items()]
        return ", ".join(parts)


class _Client:
    """One keep-alive connection that reconnects after an error."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def post(self, request: Request) -> int:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request(
                "POST", request.path, body=request.body, headers=dict(request.headers)
            )
            response = self.conn.getresponse()
            response.read()
            if response.will_close:
                self.close()
            return response.status
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def closed_loop(
    port: int,
    requests: Sequence[Request],
    concurrency: int,
    max_seconds: float,
    host: str = "127.0.0.1",
) -> LoadResult:
    """Send every request over `concurrency` connections as fast as answers come back."""
    result = LoadResult()
    lock = threading.Lock()
    position = iter(range(len(requests)))
    deadline = time.monotonic() + max_seconds

    def work() -> None:
        client = _Client(host, port, timeout=30)
        mine: list[float] = []
        statuses: Counter[int] = Counter()
        errors: Counter[str] = Counter()
        try:
            while time.monotonic() < deadline:
                with lock:
                    index = next(position, None)
                if index is None:
                    break
                started = time.perf_counter()
                try:
                    status = client.post(requests[index])
                except (OSError, http.client.HTTPException) as exc:
                    errors[type(exc).__name__] += 1
                    continue
                mine.append(time.perf_counter() - started)
                statuses[status] += 1
        finally:
            client.close()
            with lock:
                result.latencies.extend(mine)
                result.statuses.update(statuses)
                result.errors.update(errors)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - started
    return result


def open_loop(
    port: int,
    requests: Sequence[Request],
    rate: float,
    max_seconds: float,
    threads: int = 16,
    host: str = "127.0.0.1",
) -> LoadResult:
    """Send request i at start + i / rate; each latency counts from when it was due."""
    result = LoadResult()
    lock = threading.Lock()
    count = min(len(requests), int(rate * max_seconds))
    start = time.perf_counter() + 0.05

    def work(offset: int) -> None:
        client = _Client(host, port, timeout=30)
        mine: list[float] = []
        statuses: Counter[int] = Counter()
        errors: Counter[str] = Counter()
        try:
            for index in range(offset, count, threads):
                due = start + index / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                try:
                    status = client.post(requests[index])
                except (OSError, http.client.HTTPException) as exc:
                    errors[type(exc).__name__] += 1
                    continue
                mine.append(time.perf_counter() - due)
                statuses[status] += 1
        finally:
            client.close()
            with lock:
                result.latencies.extend(mine)
                result.statuses.update(statuses)
                result.errors.update(errors)

    workers = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    result.elapsed = time.perf_counter() - start
    return result
