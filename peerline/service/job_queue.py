"""Hand work to RQ: ids only, explicit job ids, and nothing lost if Redis is away."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry

from peerline.service import job_paths, metrics

log = logging.getLogger(__name__)

QUEUE_NAME = "peerline"
# Texts waiting to be read have a queue of their own, which workers serve first: a person's
# text must not wait behind a fan-out of reminders.
INBOUND_QUEUE_NAME = "peerline-inbound"
# Sends have a queue of their own, served last: matching, offer time-outs and #take never wait
# behind them. A send job only ranks its text in its sender's lanes and spends the budget free
# now; nothing on it sleeps for a slot (see lanes and outbox.pump).
SENDS_QUEUE_NAME = "peerline-sends"
WORKER_QUEUES = (INBOUND_QUEUE_NAME, QUEUE_NAME, SENDS_QUEUE_NAME)


def redis_client(url: str, *, worker: bool = False) -> Redis:
    """Connect to Redis with time-outs short enough for a webhook to answer during an outage."""
    if worker:
        # A worker blocks on the queue for minutes at a time: only the connect is bounded.
        return Redis.from_url(url, socket_connect_timeout=2)
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)


# A fan-out's sends go a few dozen to a job: RQ's own cost per job (about 3 ms of a worker's
# CPU here) would otherwise be a third of each text's, and the rate the workers reach with it.
SENDS_PER_JOB = 100
FANOUT_JOB_TIMEOUT = 3600  # seconds

# After Redis fails, skip it for this long: a webhook must answer in time, not wait on
# connection attempts for every job it would have enqueued.
BACKOFF_SECONDS = 5.0


class JobQueue:
    """Enqueue the line's jobs; the database keeps what they do, so a failure here is logged."""

    def __init__(self, redis: Redis, retry_seconds: tuple[int, ...] = (2, 5, 15, 60, 300)) -> None:
        self.redis = redis
        self.retry_seconds = list(retry_seconds)
        self.queue = Queue(QUEUE_NAME, connection=redis)
        self.inbound_queue = Queue(INBOUND_QUEUE_NAME, connection=redis)
        self.sends_queue = Queue(SENDS_QUEUE_NAME, connection=redis)
        self._down_until = 0.0

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, what: str, exc: RedisError) -> bool:
        # The row that asked for this work is in the database; the sweep re-enqueues it.
        self._down_until = time.monotonic() + BACKOFF_SECONDS
        metrics.backend_error("redis")
        log.warning("could not enqueue %s (%s): the sweep will catch up", what, exc)
        return False

    def _enqueue(
        self,
        func: str,
        *args: object,
        job_id: str | None,
        queue: Queue | None = None,
        **kwargs: object,
    ) -> bool:
        if not self._available():
            return False
        try:
            (queue or self.queue).enqueue(func, *args, job_id=job_id, **kwargs)
        except RedisError as exc:
            return self._failed(func, exc)
        return True

    def place_call(self, call_id: int) -> bool:
        """Enqueue the placing of one outbound call-back (the sweep retries if Redis is away)."""
        return self._enqueue(
            job_paths.PLACE_CALL, call_id, job_id=f"place-call-{call_id}", result_ttl=0
        )

    def send(self, outbound_id: int) -> bool:
        """Enqueue the sending of one outbound message."""
        return self._enqueue(
            job_paths.SEND_MESSAGE,
            outbound_id,
            job_id=f"send-{outbound_id}",
            queue=self.sends_queue,
            retry=Retry(max=len(self.retry_seconds), interval=self.retry_seconds),
            # The send job is idempotent, so a re-enqueue by the sweep may share the id.
            result_ttl=0,
        )

    def pump(self, sender: str, urgent: bool = False) -> bool:
        """Enqueue a pump of one sender's waiting texts (a pump that ran its time hands on;
        `urgent`: for a crisis text, at the front of the inbound queue, which workers serve
        first, so it does not wait behind a rush of inbound texts)."""
        queue = self.inbound_queue if urgent else self.sends_queue
        return self._enqueue(
            job_paths.PUMP_SENDER, sender, job_id=None, queue=queue, result_ttl=0, at_front=urgent
        )

    def send_many(self, outbound_ids: list[int], per_job: int = SENDS_PER_JOB) -> bool:
        """Enqueue a fan-out's sends, a few dozen to a job, through one pipeline per thousand."""
        if not self._available():
            return False
        retry = Retry(max=len(self.retry_seconds), interval=self.retry_seconds)
        chunks = [outbound_ids[i : i + per_job] for i in range(0, len(outbound_ids), per_job)]
        try:
            for start in range(0, len(chunks), 1000 // per_job or 1):
                self.sends_queue.enqueue_many(
                    [
                        Queue.prepare_data(
                            job_paths.SEND_MESSAGES,
                            args=(chunk,),
                            # The same chunk enqueued twice shares an id; sending is idempotent.
                            job_id=f"send-many-{chunk[0]}-{chunk[-1]}",
                            retry=retry,
                            result_ttl=0,
                            # Paced sends may wait their turn: at a long code's one text a
                            # second a chunk takes minutes (the default limit is 3).
                            timeout=FANOUT_JOB_TIMEOUT,
                        )
                        for chunk in chunks[start : start + (1000 // per_job or 1)]
                    ]
                )
        except RedisError as exc:
            return self._failed("send_messages", exc)
        return True

    def send_later(self, outbound_id: int, after_seconds: float) -> bool:
        """Schedule a send for when the sender's rate budget allows it."""
        at = datetime.now(UTC) + timedelta(seconds=after_seconds)
        job_id = f"send-{outbound_id}-at-{int(at.timestamp())}"
        retry = Retry(max=len(self.retry_seconds), interval=self.retry_seconds)
        return self._schedule(
            at,
            job_paths.SEND_MESSAGE,
            outbound_id,
            job_id=job_id,
            queue=self.sends_queue,
            retry=retry,
        )

    def match(self) -> bool:
        """Enqueue a matching round."""
        # Matching is idempotent and looks at the whole queue, so rounds need no shared id:
        # a shared one would let a round that is already running swallow a new trigger.
        return self._enqueue(job_paths.MATCH_QUEUE, job_id=None, result_ttl=0)

    def match_at(self, at: datetime) -> bool:
        """Schedule a matching round for when a supporter's pause ends (the sweep also runs
        one every half minute, so a lost job delays a chat, never strands it)."""
        job_id = f"match-at-{int(at.timestamp())}"
        return self._schedule(at, job_paths.MATCH_QUEUE, job_id=job_id)

    def _schedule(
        self,
        at: datetime,
        func: str,
        *args: object,
        job_id: str,
        queue: Queue | None = None,
        **kwargs: Any,
    ) -> bool:
        if not self._available():
            return False
        try:
            (queue or self.queue).enqueue_at(at, func, *args, job_id=job_id, result_ttl=0, **kwargs)
        except RedisError as exc:
            # The database says what is due; the sweep finds it when Redis is back.
            return self._failed(job_id, exc)
        return True

    def expire_offer(self, offer_id: int, after_seconds: int) -> bool:
        """Schedule the time-out of an offer."""
        at = datetime.now(UTC) + timedelta(seconds=after_seconds)
        return self._schedule(
            at, job_paths.EXPIRE_OFFER, offer_id, job_id=f"offer-expire-{offer_id}"
        )

    def queue_tick(self, conversation_id: int, after_seconds: int) -> bool:
        """Schedule the next wait update or unmatched check of a waiting conversation."""
        at = datetime.now(UTC) + timedelta(seconds=after_seconds)
        # One tick per conversation and moment: a second enqueue of the same tick replaces it.
        stamp = int(at.timestamp())
        job_id = f"queue-tick-{conversation_id}-{stamp}"
        return self._schedule(at, job_paths.QUEUE_TICK, conversation_id, job_id=job_id)

    def chat_tick(self, conversation_id: int, after_seconds: int) -> bool:
        """Schedule a look at a chat: a supporter to nudge, or a chat gone quiet."""
        at = datetime.now(UTC) + timedelta(seconds=after_seconds)
        job_id = f"chat-tick-{conversation_id}-{int(at.timestamp())}"
        return self._schedule(at, job_paths.CHAT_TICK, conversation_id, job_id=job_id)

    def notify_open(self, conversation_id: int, at: datetime) -> bool:
        """Schedule the 'we are open' text for a texter who asked for it."""
        job_id = f"notify-open-{conversation_id}-{int(at.timestamp())}"
        return self._schedule(at, job_paths.NOTIFY_OPEN, conversation_id, job_id=job_id)

    def backlog(self) -> int:
        """Return how many jobs wait in the queue (0 when Redis cannot say)."""
        try:
            return int(self.queue.count) + int(self.sends_queue.count)
        except RedisError:
            return 0

    def sweep(self) -> bool:
        """Enqueue a sweep that rebuilds lost work from the database."""
        return self._enqueue(job_paths.SWEEP, job_id=None, result_ttl=0)

    def drain_inbound(self, shard: int, after_seconds: float = 0, urgent: bool = False) -> bool:
        """Enqueue a drain of one shard of inbound texts (now, or after a pause; `urgent`: a
        crisis text waits in it, so at the front of the queue)."""
        if after_seconds <= 0:
            return self._enqueue(
                job_paths.DRAIN_INBOUND,
                shard,
                job_id=None,
                queue=self.inbound_queue,
                result_ttl=0,
                at_front=urgent,
            )
        at = datetime.now(UTC) + timedelta(seconds=after_seconds)
        # A fresh id each time: a retry scheduling its successor must not reuse its own id,
        # which RQ deletes when the running job ends. The shard's flag keeps them few.
        job_id = f"drain-inbound-{shard}-retry-{uuid.uuid4().hex}"
        return self._schedule(
            at, job_paths.DRAIN_INBOUND, shard, job_id=job_id, queue=self.inbound_queue
        )
