"""An RQ worker and scheduler in threads of the web process, for `peerline serve`."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler
from rq.timeouts import TimerDeathPenalty

from peerline.service.job_queue import WORKER_QUEUES
from peerline.workers import jobs
from peerline.workers.line_worker import LineWorker

log = logging.getLogger(__name__)


class ThreadWorker(LineWorker):
    """An RQ worker that runs jobs in its own thread: a forked work-horse would write to a copy
    of the in-memory Redis, and the jobs it enqueued would be lost with it."""

    # SIGALRM only reaches the main thread: time jobs out with a timer instead.
    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        """Leave signals to the web server that owns the main thread."""


class EmbeddedWorkers:
    """Run the same jobs as production in threads: a worker, a scheduler and a sweep."""

    def __init__(self, redis: Redis, sweep_every: float = 30.0) -> None:
        self.redis = redis
        self.sweep_every = sweep_every
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.worker: ThreadWorker | None = None

    def start(self) -> None:
        """Start the threads."""
        for target, name in (
            (self._work, "rq-worker"),
            (self._schedule, "rq-scheduler"),
            (self._sweep, "peerline-sweep"),
            (self._senders, "peerline-senders"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        """Ask the threads to stop and wait a little for them."""
        self.stopping.set()
        if self.worker is not None:
            try:
                self.worker.request_stop(0, None)
            except StopRequested:
                pass  # RQ raises it in the caller when the worker is idle: nothing to wait for
        for thread in self.threads:
            thread.join(timeout=3)

    def _work(self) -> None:
        queues = [Queue(name, connection=self.redis) for name in WORKER_QUEUES]
        self.worker = ThreadWorker(queues, connection=self.redis)
        while not self.stopping.is_set():
            try:
                self.worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
            except Exception:  # a failing job must not take the embedded worker down
                log.exception("embedded worker stopped; restarting")
            self.stopping.wait(0.1)

    def _schedule(self) -> None:
        # RQ's scheduler would fork, and a fork cannot see the parent's in-memory Redis.
        scheduler = RQScheduler(list(WORKER_QUEUES), connection=self.redis)
        scheduler.acquire_locks()
        while not self.stopping.is_set():
            try:
                scheduler.enqueue_scheduled_jobs()
            except Exception:
                log.exception("embedded scheduler round failed")
            self.stopping.wait(0.5)

    def _senders(self) -> None:
        jobs.sender_loop(self.stopping)

    def _sweep(self) -> None:
        while not self.stopping.wait(self.sweep_every):
            try:
                jobs.sweep()
            except Exception:
                log.exception("sweep failed")


def wait_until_idle(redis: Redis, timeout: float = 10.0) -> bool:
    """Wait until the queues are empty (for tests and demos)."""
    queues = [Queue(name, connection=redis) for name in WORKER_QUEUES]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(queue.count for queue in queues):
            return True
        time.sleep(0.05)
    return False


__all__: list[Any] = ["EmbeddedWorkers", "ThreadWorker", "wait_until_idle"]
