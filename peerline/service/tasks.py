"""Hand work to RQ: ids only, explicit job ids, and nothing lost if Redis is away."""

from __future__ import annotations

import logging
from datetime import timedelta

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry

log = logging.getLogger(__name__)

QUEUE_NAME = "peerline"
JOBS = "peerline.workers.jobs"


class Tasks:
    """Enqueue the line's jobs; the database keeps what they do, so a failure here is logged."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.queue = Queue(QUEUE_NAME, connection=redis)

    def _enqueue(self, func: str, *args: object, job_id: str | None, **kwargs: object) -> bool:
        try:
            self.queue.enqueue(func, *args, job_id=job_id, **kwargs)
        except RedisError as exc:
            # The row that asked for this work is in the database; the sweep re-enqueues it.
            log.warning("could not enqueue %s (%s): the sweep will retry", func, exc)
            return False
        return True

    def send(self, outbound_id: int) -> bool:
        """Enqueue the sending of one outbound message."""
        return self._enqueue(
            f"{JOBS}.send_message",
            outbound_id,
            job_id=f"send-{outbound_id}",
            retry=Retry(max=5, interval=[2, 5, 15, 60, 300]),
            # The send job is idempotent, so a re-enqueue by the sweep may share the id.
            result_ttl=0,
        )

    def match(self) -> bool:
        """Enqueue a matching round."""
        # Matching is idempotent and looks at the whole queue, so rounds need no shared id:
        # a shared one would let a round that is already running swallow a new trigger.
        return self._enqueue(f"{JOBS}.match_queue", job_id=None, result_ttl=0)

    def expire_offer(self, offer_id: int, after_seconds: int) -> bool:
        """Schedule the time-out of an offer."""
        try:
            self.queue.enqueue_in(
                timedelta(seconds=after_seconds),
                f"{JOBS}.expire_offer",
                offer_id,
                job_id=f"offer-expire-{offer_id}",
            )
        except RedisError as exc:
            log.warning("could not schedule expiry of offer %s (%s)", offer_id, exc)
            return False
        return True

    def sweep(self) -> bool:
        """Enqueue a sweep that rebuilds lost work from the database."""
        return self._enqueue(f"{JOBS}.sweep", job_id=None, result_ttl=0)
