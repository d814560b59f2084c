"""The line's RQ worker hears commands and stops at once, on a real Redis server."""

from __future__ import annotations

import time
from typing import Any

from redis import Redis
from rq import Queue
from rq.command import send_command

from peerline.workers.line_worker import LISTEN_SECONDS, LineWorker


def _until(check: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_a_worker_whose_listener_already_read_its_unsubscribe_stops_within_a_second(
    redis_server: Any,
) -> None:
    redis = Redis.from_url(redis_server.url)
    worker = LineWorker([Queue("line-worker-test", connection=redis)], connection=redis)
    worker.subscribe()
    assert _until(lambda: worker.pubsub.subscribed)
    # The race RQ's 60 s listener loses: the listener reads the UNSUBSCRIBE reply first and
    # goes back to wait for a subscription, then the worker asks its thread to stop.
    worker.pubsub.unsubscribe()
    assert _until(lambda: not worker.pubsub.subscribed)
    time.sleep(0.2)
    started = time.monotonic()
    worker.unsubscribe()
    took = time.monotonic() - started
    assert took < LISTEN_SECONDS + 1.0, f"stopping took {took:.1f} s"
    assert not worker.pubsub_thread.is_alive()


def test_the_listener_still_hears_commands(redis_server: Any) -> None:
    redis = Redis.from_url(redis_server.url)
    worker = LineWorker([Queue("line-worker-test", connection=redis)], connection=redis)
    heard: list[dict[str, Any]] = []
    worker.handle_payload = heard.append  # type: ignore[method-assign]
    worker.subscribe()
    try:
        assert _until(lambda: worker.pubsub.subscribed)
        send_command(redis, worker.name, "kill-horse")
        assert _until(lambda: bool(heard))
        assert b"kill-horse" in heard[0]["data"]
    finally:
        worker.unsubscribe()
