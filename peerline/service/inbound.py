"""Take inbound texts into Redis at once; step them through their flows in the workers.

Twilio waits at most 15 seconds for a webhook and does not retry one that failed. Taking a
text into a Redis list costs one round trip, so the webhook answers in a millisecond or two
whatever the database is doing, and a drain job in the workers does the rest. A number's texts
all go to one shard, and one drain at a time works a shard, so each person's texts are stepped
in the order Twilio delivered them. Entries are encrypted: Redis writes them to disk.

A drain holds its shard's lock while it works and, before letting go, looks again: a text that
arrived while the lock was held gets a drain of its own. A drain that died leaves its entry in
the shard's `taking` list, which the next drain puts back first; the sweep schedules a drain for
any shard with entries and none scheduled. The unique MessageSid makes a replay act once.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError

from peerline.service.privacy import Vault
from peerline.service.tasks import Tasks

log = logging.getLogger(__name__)

SHARDS = 8
PREFIX = "peerline:inbound"
FAILED_KEY = f"{PREFIX}:failed"
# A drain that died lets go of its shard after this long.
LOCK_SECONDS = 60
# A drain stops after this many texts and queues its successor, so sends and matching
# enqueued meanwhile get their turn on the same workers.
BATCH = 200
# After the database failed, hold the shard back this long before trying again.
RETRY_SECONDS = 3
# After Redis failed, webhooks go straight to the database for this long.
BACKOFF_SECONDS = 5.0

Fields = dict[str, Any]


def shard_of(sender: str) -> int:
    """Return the shard that keeps one number's texts in order."""
    return zlib.crc32(sender.encode()) % SHARDS


class InboundQueue:
    """Inbound texts waiting in Redis for a drain job, in order per sender."""

    def __init__(self, redis: Redis, vault: Vault, tasks: Tasks) -> None:
        self.redis = redis
        self.vault = vault
        self.tasks = tasks
        self._down_until = 0.0

    @staticmethod
    def keys(shard: int) -> tuple[str, str, str, str]:
        """Return a shard's waiting list, taking list, scheduled flag and lock."""
        base = f"{PREFIX}:{shard}"
        return f"{base}:waiting", f"{base}:taking", f"{base}:scheduled", f"{base}:lock"

    def put(self, sender: str, fields: Fields) -> bool:
        """Keep one text for a drain job; return False when Redis cannot take it."""
        if time.monotonic() < self._down_until:
            return False
        shard = shard_of(sender)
        waiting, _, scheduled, _ = self.keys(shard)
        token = self.vault.encrypt(json.dumps(fields, separators=(",", ":")))
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.rpush(waiting, token)
            pipe.set(scheduled, "1", nx=True, ex=LOCK_SECONDS)
            _, claimed = pipe.execute()
        except RedisError as exc:
            self._down_until = time.monotonic() + BACKOFF_SECONDS
            log.warning("redis refused an inbound text (%s): taking it directly", exc)
            return False
        if claimed:
            self._schedule(shard)
        return True

    def _schedule(self, shard: int) -> None:
        if not self.tasks.drain_inbound(shard):
            # The text is kept; clear the flag so the next text or the sweep schedules again.
            try:
                self.redis.delete(self.keys(shard)[2])
            except RedisError:
                pass  # the flag expires on its own

    def ensure_draining(self, shard: int) -> bool:
        """Schedule a drain if the shard has texts and none is scheduled; say if one was."""
        waiting, taking, scheduled, _ = self.keys(shard)
        if not (self.redis.llen(waiting) or self.redis.llen(taking)):
            return False
        if not self.redis.set(scheduled, "1", nx=True, ex=LOCK_SECONDS):
            return False
        self._schedule(shard)
        return True

    def size(self) -> int:
        """Return how many texts wait in every shard."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in range(SHARDS):
            waiting, taking, _, _ = self.keys(shard)
            pipe.llen(waiting)
            pipe.llen(taking)
        return sum(int(n) for n in pipe.execute())

    def failed(self) -> int:
        """Return how many texts could not be stepped and wait for a person to look."""
        return int(self.redis.llen(FAILED_KEY))

    def retry_failed(self) -> int:
        """Put texts kept aside back in their shards (after a fix); return how many went back."""
        moved = 0
        for _ in range(self.failed()):
            raw: Any = self.redis.lpop(FAILED_KEY)
            if raw is None:
                break
            try:
                fields = self._read(raw)
                shard = shard_of(str(fields["from_number"]))
            except Exception:
                self.redis.rpush(FAILED_KEY, raw)  # still unreadable: it stays aside
                continue
            self.redis.rpush(self.keys(shard)[0], raw)
            self.ensure_draining(shard)
            moved += 1
        return moved

    def _read(self, raw: Any) -> Fields:
        fields: Fields = json.loads(
            self.vault.decrypt(raw.decode() if isinstance(raw, bytes) else raw)
        )
        return fields

    def drain(self, shard: int, handle: Callable[[Fields], None], batch: int = BATCH) -> int:
        """Step a shard's texts through `handle`, oldest first; return how many were done."""
        waiting, taking, scheduled, lock = self.keys(shard)
        # From here on, a new text schedules another drain: this one may have looked already.
        self.redis.delete(scheduled)
        owner = uuid.uuid4().hex
        if not self.redis.set(lock, owner, nx=True, ex=LOCK_SECONDS):
            return 0  # another drain works this shard, and looks again before it lets go
        done = 0
        try:
            # A drain that died left its text in `taking`: it goes first, as it came first.
            while self.redis.lmove(taking, waiting, "RIGHT", "LEFT") is not None:
                pass
            while done < batch:
                raw = self.redis.lmove(waiting, taking, "LEFT", "RIGHT")
                if raw is None:
                    break
                if not self._step(raw, handle, shard):
                    return done
                self.redis.lrem(taking, 1, raw)  # type: ignore[arg-type]
                done += 1
                if done % 50 == 0:
                    self.redis.expire(lock, LOCK_SECONDS)
        finally:
            self._release(lock, owner)
        # A text that came while the lock was held found it taken: make sure it is drained.
        self.ensure_draining(shard)
        return done

    def _step(self, raw: Any, handle: Callable[[Fields], None], shard: int) -> bool:
        """Step one entry; False when the database is away and the shard must wait."""
        taking = self.keys(shard)[1]
        try:
            fields = self._read(raw)
        except Exception:
            log.error("inbound entry in shard %s could not be read: kept in %s", shard, FAILED_KEY)
            self.redis.lmove(taking, FAILED_KEY, "RIGHT", "RIGHT")
            return True
        try:
            handle(fields)
        except (OperationalError, InterfaceError) as exc:
            # Keep the text at the front, hold the shard back a little, then try again.
            self.redis.lmove(taking, self.keys(shard)[0], "RIGHT", "LEFT")
            self.redis.set(self.keys(shard)[2], "1", ex=RETRY_SECONDS)
            self.tasks.drain_inbound(shard, after_seconds=RETRY_SECONDS)
            log.warning("database away (%s): inbound shard %s waits", type(exc).__name__, shard)
            return False
        except Exception:
            # A text our code cannot step must not hold back everyone behind it.
            sid = fields.get("message_sid")
            log.exception("inbound message %s failed: kept in %s", sid, FAILED_KEY)
            self.redis.lmove(taking, FAILED_KEY, "RIGHT", "RIGHT")
        return True

    def _release(self, lock: str, owner: str) -> None:
        # Only our own lock: one that expired may already be another drain's.
        pipe = self.redis.pipeline(transaction=True)
        try:
            pipe.watch(lock)
            if pipe.get(lock) in (owner, owner.encode()):
                pipe.multi()
                pipe.delete(lock)
                pipe.execute()
        except RedisError:
            pass  # changed under us: it is someone else's now
        finally:
            pipe.reset()
