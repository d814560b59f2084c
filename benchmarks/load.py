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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tests.support.fake_twilio import sign


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


class _Sender:
    """One thread's connection and what it saw, added to the run's result when it stops."""

    def __init__(self, host: str, port: int) -> None:
        self.client = _Client(host, port, timeout=30)
        self.seen = LoadResult()

    def post(self, request: Request, since: float) -> None:
        """Send one request; its latency counts from `since`."""
        try:
            status = self.client.post(request)
        except (OSError, http.client.HTTPException) as exc:
            self.seen.errors[type(exc).__name__] += 1
            return
        self.seen.latencies.append(time.perf_counter() - since)
        self.seen.statuses[status] += 1

    def close(self, result: LoadResult, lock: threading.Lock) -> None:
        """Close the connection and add what this thread saw to the run's result."""
        self.client.close()
        with lock:
            result.latencies.extend(self.seen.latencies)
            result.statuses.update(self.seen.statuses)
            result.errors.update(self.seen.errors)


def _run_threads(work: Callable[[int], None], count: int) -> None:
    """Run `work(n)` on `count` threads and wait for them all."""
    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


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

    def work(_: int) -> None:
        sender = _Sender(host, port)
        try:
            while time.monotonic() < deadline:
                with lock:
                    index = next(position, None)
                if index is None:
                    break
                sender.post(requests[index], time.perf_counter())
        finally:
            sender.close(result, lock)

    started = time.perf_counter()
    _run_threads(work, concurrency)
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
        sender = _Sender(host, port)
        try:
            for index in range(offset, count, threads):
                due = start + index / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                sender.post(requests[index], due)
        finally:
            sender.close(result, lock)

    _run_threads(work, threads)
    result.elapsed = time.perf_counter() - start
    return result
