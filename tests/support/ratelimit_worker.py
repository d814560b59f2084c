"""One of several processes taking send slots for the same sender from a shared limiter."""

from __future__ import annotations

import time

from redis import Redis

from peerline.service.ratelimit import SendRateLimiter


def _server_time(redis: Redis) -> float:
    seconds, micros = redis.time()
    return float(seconds + micros / 1_000_000)


def grab(
    url: str, sender: str, rate: float, sizes: list[int], start_at: float
) -> list[tuple[float, float, int]]:
    """Send messages of the given sizes as fast as allowed: (slot, Redis time after, size)."""
    with Redis.from_url(url) as redis:
        limiter = SendRateLimiter(redis, {"long_code": rate}, sender_types={sender: "long_code"})
        # Start together on the server's clock, so neither process has a head start.
        time.sleep(max(start_at - _server_time(redis), 0.0))
        grants: list[tuple[float, float, int]] = []
        for size in sizes:
            decision = limiter.reserve(sender, size, max_wait=None)
            # What acquire() does, keeping the slot's time for the test to check.
            limiter.sleep_until(decision)
            grants.append((decision.at, _server_time(redis), size))
        return grants
