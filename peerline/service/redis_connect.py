"""Every Redis connection the line makes: to REDIS_URL, or to the master the Sentinels name.

With Sentinel, redis-py's `master_for` asks the Sentinels for the master's address whenever a
connection is (re)made, and drops a connection that finds its server demoted: web processes,
workers, RQ's scheduler (which rebuilds its connection from the same pool arguments), the
limiter, the locks, the inbound lists and the spool all follow a failover without a restart.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError, TimeoutError
from redis.lock import Lock
from redis.sentinel import Sentinel

from peerline.service.settings import Settings

log = logging.getLogger(__name__)

CONNECT_SECONDS = 2
# A webhook must answer within Twilio's 15 seconds, whatever Redis is doing.
WEB_COMMAND_SECONDS = 10
# The Sentinels answer at once or not at all.
SENTINEL_SECONDS = 1
# Longer than a Sentinel failover takes (a few seconds).
RELEASE_PATIENCE = 15.0
# How long a webhook waits for a new master: a failover, well inside Twilio's 15 seconds.
FAILOVER_SECONDS = 8.0


def connect(settings: Settings, *, worker: bool = False) -> Redis:
    """Connect to the line's Redis, through the Sentinels when they are configured."""
    if settings.redis_url is None:
        raise ValueError("REDIS_URL (or REDIS_SENTINELS) is not set")
    # A worker blocks on the queue for minutes at a time: RQ bounds its commands itself.
    timeout = None if worker else WEB_COMMAND_SECONDS
    if not settings.redis_sentinels:
        return Redis.from_url(
            settings.redis_url, socket_connect_timeout=CONNECT_SECONDS, socket_timeout=timeout
        )
    to_sentinels, to_master = sentinel_options(settings)
    sentinel = Sentinel(
        list(settings.redis_sentinels),
        socket_timeout=SENTINEL_SECONDS,
        socket_connect_timeout=SENTINEL_SECONDS,
        sentinel_kwargs=to_sentinels,
    )
    return sentinel.master_for(
        settings.redis_sentinel_master or "",
        socket_connect_timeout=CONNECT_SECONDS,
        socket_timeout=timeout,
        **to_master,
    )


def sentinel_options(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the keyword arguments for connections to the Sentinels and to the master.

    REDIS_URL gives the master's database, user and password; `rediss://` (with its `ssl_*`
    query options, e.g. `?ssl_ca_certs=/run/secrets/ca.pem`) puts both the Sentinels and the
    master behind TLS. REDIS_SENTINEL_PASSWORD is the Sentinels' own `requirepass`.
    """
    parsed = parse_url(settings.redis_url or "redis://sentinel/0")
    tls: dict[str, Any] = {}
    if parsed.get("connection_class") is SSLConnection:
        tls = {"ssl": True, **{k: v for k, v in parsed.items() if k.startswith("ssl_")}}
    to_sentinels: dict[str, Any] = {
        "socket_timeout": SENTINEL_SECONDS,
        "socket_connect_timeout": SENTINEL_SECONDS,
        **tls,
    }
    if settings.redis_sentinel_password:
        to_sentinels["password"] = settings.redis_sentinel_password
    to_master: dict[str, Any] = {
        "db": int(parsed.get("db") or 0),
        "username": parsed.get("username"),
        "password": parsed.get("password"),
        **tls,
    }
    return to_sentinels, to_master


def wait_for_replica(pipe: Pipeline, wait_ms: int) -> None:
    """End a pipeline with WAIT, so it reports whether a replica has its writes: WAIT counts
    the writes of its own connection, which only a pipeline's last command shares."""
    if wait_ms > 0:
        pipe.wait(1, wait_ms)


def reached_replica(results: list[Any], wait_ms: int) -> bool:
    """Say whether a pipeline ended by `wait_for_replica` reached a replica in time."""
    return wait_ms <= 0 or int(results[-1]) >= 1


def release(lock: Lock, patience: float = RELEASE_PATIENCE) -> None:
    """Release a lock, across a failover: a person's send lock left behind on the promoted
    replica would hold their texts back until it lapses (a minute)."""
    token = lock.local.token
    if token is None:
        lock.release()  # raises LockError, as redis-py does for a lock not held
    lock.local.token = None
    deadline = time.monotonic() + patience
    while True:
        try:
            lock.do_release(token)
            return
        except (ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
