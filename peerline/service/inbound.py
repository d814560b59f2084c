"""Take inbound texts into Redis at once; run them through their flows in the workers.

Twilio waits at most 15 seconds for a webhook and does not retry one that failed. Taking a
text into a Redis list costs one round trip, so the webhook answers in a millisecond or two
whatever the database is doing, and a drain job in the workers does the rest. A number's texts
all go to one shard, and one drain at a time works a shard, so each person's texts are stepped
in the order Twilio delivered them. Entries are encrypted: Redis writes them to disk.

A drain holds its shard's lock while it works and, before letting go, looks again: a text that
arrived while the lock was held gets a drain of its own. A drain that died leaves its entry in
the shard's `taking` list, which the next drain puts back first; the sweep schedules a drain for
any shard with entries and none scheduled. The unique MessageSid makes a replay act once.

A text the webhook's crisis check flags is urgent (issue 19): it joins its shard's list as any
text does, and is named in the shard's urgent list too, with a drain enqueued at the front of
the inbound queue. A drain looks at the urgent lists before each text: its own shard's crisis
texts are stepped next, each with the same person's earlier texts still waiting just before it
(so a person's texts keep their order; other people's keep theirs), and a drain of another
shard hands its shard on to a successor when a crisis text waits in a shard nobody is draining,
so a worker takes that crisis drain next. A crisis text therefore waits behind at most the one
text each worker is stepping, not behind a rush of first texts.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import LockError, NoScriptError, RedisError, WatchError
from redis.lock import Lock
from rq.timeouts import BaseTimeoutException
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from peerline.service import metrics
from peerline.service.job_queue import JobQueue
from peerline.service.privacy import Vault
from peerline.service.redis_connect import reached_replica, wait_for_replica

log = logging.getLogger(__name__)

SHARDS = 8
PREFIX = "peerline:inbound"
FAILED_KEY = f"{PREFIX}:failed"
# The shards that hold a crisis text not yet stepped.
URGENT_KEY = f"{PREFIX}:urgent"
# Move one entry from the middle of a shard's waiting list to its taking list, if still there.
_TAKE_OUT_OF_TURN = """
if redis.call('lrem', KEYS[1], 1, ARGV[1]) == 1 then
    redis.call('rpush', KEYS[2], ARGV[1])
    return 1
end
return 0
"""
# Take one text in (KEYS: the shard's waiting list, its scheduled flag, its urgent list and the
# set of urgent shards; ARGV: the entry, the flag's lifetime, 1 for a crisis text, the shard):
# say 1 when the flag was not set, so the caller schedules a drain. One command rather than a
# pipeline of four: the webhook's CPU time is mostly its Redis client's (issue 19).
_TAKE_IN = """
redis.call('rpush', KEYS[1], ARGV[1])
local fresh = redis.call('set', KEYS[2], '1', 'NX', 'EX', ARGV[2])
if ARGV[3] == '1' then
    redis.call('rpush', KEYS[3], ARGV[1])
    redis.call('sadd', KEYS[4], ARGV[4])
end
if fresh then
    return 1
end
return 0
"""
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
DONE, RETRY, KEPT_ASIDE = "done", "retry", "kept aside"
# The database away, or its connection pool exhausted: the text waits, it is not at fault.
TRANSIENT = (OperationalError, InterfaceError, PoolTimeout)


def shard_of(sender: str) -> int:
    """Return the shard that keeps one number's texts in order."""
    return zlib.crc32(sender.encode()) % SHARDS


class InboundQueue:
    """Inbound texts waiting in Redis for a drain job, in order per sender."""

    def __init__(
        self,
        redis: Redis,
        vault: Vault,
        job_queue: JobQueue,
        wait_ms: int = 0,
        patience: float = 0.0,
    ) -> None:
        self.redis = redis
        self.vault = vault
        self.job_queue = job_queue
        # With a replica, a text counts as taken once the replica has it too: a master that
        # dies before replicating would otherwise take the text with it after the 200.
        self.wait_ms = wait_ms
        # With Sentinel, a master that went away is waited for this long (a failover takes a
        # few seconds): a text stepped directly meanwhile would overtake the sender's texts
        # still waiting in the promoted replica's list.
        self.patience = patience
        self._down_until = 0.0
        self._take_out_of_turn = redis.register_script(_TAKE_OUT_OF_TURN)
        self._take_in = redis.register_script(_TAKE_IN)
        self._local = threading.local()

    @staticmethod
    def keys(shard: int) -> tuple[str, str, str, str]:
        """Return a shard's waiting list, taking list, scheduled flag and lock."""
        base = f"{PREFIX}:{shard}"
        return f"{base}:waiting", f"{base}:taking", f"{base}:scheduled", f"{base}:lock"

    @staticmethod
    def urgent_key(shard: int) -> str:
        """Return the list of a shard's crisis texts not yet stepped (their entries)."""
        return f"{PREFIX}:{shard}:urgent"

    def put(self, sender: str, fields: Fields, urgent: bool = False) -> bool:
        """Keep one text for a drain job (`urgent`: a crisis text, stepped ahead of other
        people's); return False when Redis cannot take it."""
        if time.monotonic() < self._down_until:
            return False
        shard = shard_of(sender)
        waiting, _, scheduled, _ = self.keys(shard)
        entry = {**fields, "received_at": datetime.now(UTC).isoformat()}
        token = self.vault.seal(json.dumps(entry, separators=(",", ":")))
        keys = [waiting, scheduled, self.urgent_key(shard), URGENT_KEY]
        args = [token, LOCK_SECONDS, int(urgent), shard]
        until = time.monotonic() + self.patience
        while True:
            try:
                fresh, replicated = self._push(keys, args)
                break
            except RedisError as exc:
                # Pushed twice (the reply lost with the master)? The MessageSid acts once.
                if time.monotonic() < until:
                    time.sleep(0.25)
                    continue
                self._down_until = time.monotonic() + BACKOFF_SECONDS
                metrics.backend_error("redis")
                log.warning("redis refused an inbound text (%s): taking it directly", exc)
                return False
        if urgent:
            # At the front of the inbound queue, whether or not a drain is scheduled already:
            # that one may wait behind other shards' drains.
            self.job_queue.drain_inbound(shard, urgent=True)
        elif fresh:
            self._schedule(shard)
        if not replicated:
            # The master may be dying: the webhook steps the text into the database itself
            # (a drain that steps it again acts once: the MessageSid).
            self._down_until = time.monotonic() + BACKOFF_SECONDS
            log.warning("no replica took an inbound text in %s ms: taking it in", self.wait_ms)
            try:
                self.redis.lrem(waiting, 1, token)  # type: ignore[arg-type]
            except RedisError:
                pass
            return False
        return True

    def _push(self, keys: list[str], args: list[Any]) -> tuple[bool, bool]:
        """Run the take-in script; return whether it set the scheduled flag and whether a
        replica has the text (always, without a replica to wait for)."""
        if self.wait_ms <= 0:
            return bool(self._take_in(keys=keys, args=args, client=self._own_client())), True
        # WAIT counts the writes of its own connection: it follows the script in a pipeline.
        pipe = self.redis.pipeline(transaction=False)
        pipe.evalsha(self._take_in.sha, len(keys), *keys, *args)
        wait_for_replica(pipe, self.wait_ms)
        try:
            results = pipe.execute()
        except NoScriptError:
            # A new master (a failover) has no scripts yet: load it, then push once more.
            self._take_in.sha = self.redis.script_load(_TAKE_IN)
            return self._push(keys, args)
        return bool(results[0]), reached_replica(results, self.wait_ms)

    def _own_client(self) -> Redis:
        """Return this thread's client on a connection of its own, from the same pool."""
        # A web thread takes in one text after another: the pool's check-out and return (a
        # lock shared by the threads, and a look at the socket) cost about as much as the
        # command, so each thread keeps one connection (a web process has a few threads).
        client: Redis | None = getattr(self._local, "client", None)
        if client is None:
            pool = self.redis.connection_pool
            client = self._local.client = Redis(connection_pool=pool, single_connection_client=True)
        return client

    def _schedule(self, shard: int) -> None:
        if not self.job_queue.drain_inbound(shard):
            # The text is kept; clear the flag so the next text or the sweep schedules again.
            try:
                self.redis.delete(self.keys(shard)[2])
            except RedisError:
                pass  # the flag expires on its own

    def ensure_draining(self, shard: int, stale_after: float | None = None) -> bool:
        """Schedule a drain if the shard has texts and none is scheduled (or, with
        `stale_after`, the one scheduled that long ago never started); say if one was."""
        waiting, taking, scheduled, _ = self.keys(shard)
        if not (self.redis.llen(waiting) or self.redis.llen(taking)):
            return False
        if not self.redis.set(scheduled, "1", nx=True, ex=LOCK_SECONDS):
            if stale_after is None:
                return False
            # A drain deletes the flag as it starts: one flagged long ago was lost with its
            # job (a worker or a master that died as it took the job).
            ttl = int(self.redis.ttl(scheduled))
            if 0 <= ttl and LOCK_SECONDS - ttl < stale_after:
                return False
            self.redis.set(scheduled, "1", ex=LOCK_SECONDS)
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
        """Put the texts kept aside back at the front of their shards, in the order they came
        (after a fix); return how many went back. Each moves in one transaction, so none is
        lost or doubled whatever else touches the lists; texts kept aside meanwhile wait for
        the next call."""
        moved = 0
        shards: set[int] = set()
        # Newest first, each pushed to the front of its shard: the oldest ends up first.
        for raw in reversed(self.redis.lrange(FAILED_KEY, 0, -1)):
            try:
                shard = shard_of(str(self._read(raw)["from_number"]))
            except Exception:
                continue  # still unreadable: it stays aside
            if self._move_back(raw, self.keys(shard)[0]):
                moved += 1
                shards.add(shard)
        for shard in sorted(shards):
            self.ensure_draining(shard)
        return moved

    def _move_back(self, raw: Any, waiting: str) -> bool:
        """Move one entry from the kept-aside list to the front of a shard, if it is still
        there; say whether it was moved."""
        while True:
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(FAILED_KEY)
                    if pipe.lpos(FAILED_KEY, raw) is None:
                        return False  # someone else put it back already
                    pipe.multi()
                    pipe.lrem(FAILED_KEY, -1, raw)
                    pipe.lpush(waiting, raw)
                    pipe.execute()
                    return True
                except WatchError:
                    continue  # the list changed under us: look again

    def purge_failed(self, before: datetime) -> int:
        """Delete the texts kept aside that came before `before` (the start of the retention
        period); return how many. An entry no key can read cannot be dated: it is left, and
        counted in the log, for a person to restore the key or delete it."""
        removed = undated = 0
        for raw in self.redis.lrange(FAILED_KEY, 0, -1):
            try:
                fields = self._read(raw)
                # Entries from before texts carried their arrival: when they were encrypted.
                came = fields.get("received_at") or self.vault.written_at(raw).isoformat()
                old = datetime.fromisoformat(str(came)) < before
            except Exception:
                undated += 1
                continue
            if old:
                removed += int(self.redis.lrem(FAILED_KEY, 1, raw))  # type: ignore[arg-type]
        if undated:
            log.warning("%s texts kept aside cannot be read with any key: not purged", undated)
        return removed

    def _read(self, raw: Any) -> Fields:
        fields: Fields = json.loads(self.vault.unseal(raw))
        return fields

    def drain(self, shard: int, handle: Callable[[Fields], None], batch: int = BATCH) -> int:
        """Step a shard's texts through `handle`, oldest first; return how many were done."""
        waiting, taking, scheduled, lock_key = self.keys(shard)
        # From here on, a new text schedules another drain: this one may have looked already.
        self.redis.delete(scheduled)
        lock = self.redis.lock(lock_key, timeout=LOCK_SECONDS)
        if not lock.acquire(blocking=False):
            return 0  # another drain works this shard, and looks again before it lets go
        done = 0
        try:
            # A drain that died left its text in `taking`: it goes first, as it came first.
            while self.redis.lmove(taking, waiting, "RIGHT", "LEFT") is not None:
                pass
            while done < batch:
                urgent = self._urgent_shards()
                if shard in urgent:
                    stepped = self._step_urgent(shard, handle, lock)
                    if stepped is None:
                        return done
                    done += stepped
                    continue
                for other in sorted(urgent):
                    # A crisis text in a shard no drain works: step it here and now.
                    done += self._step_elsewhere(other, handle)
                raw = self.redis.lmove(waiting, taking, "LEFT", "RIGHT")
                if raw is None:
                    break
                if not self._step(raw, handle, shard, lock):
                    return done
                done += 1
        finally:
            try:
                lock.release()
            except LockError:
                pass  # expired: it may be another drain's already
        # A text that came while the lock was held found it taken: make sure it is drained.
        self.ensure_draining(shard)
        return done

    def _step(self, raw: Any, handle: Callable[[Fields], None], shard: int, lock: Lock) -> bool:
        """Step the entry just moved to the shard's taking list; say whether to go on."""
        waiting, taking, scheduled, _ = self.keys(shard)
        try:
            outcome = self._handle(raw, handle, shard)
        except BaseTimeoutException:
            # The job ran out of time mid-text: it goes back to the front.
            if _still_holds(lock):
                self.redis.lmove(taking, waiting, "RIGHT", "LEFT")
            raise
        if not _still_holds(lock):
            # Stalled past the lock's life: the shard is another drain's now, and
            # its lists with it (a text stepped twice acts once: the MessageSid).
            log.warning("inbound shard %s: lock lost mid-drain; stopping", shard)
            return False
        if outcome == RETRY:
            # Keep the text at the front, hold the shard back a little, then retry.
            self.redis.lmove(taking, waiting, "RIGHT", "LEFT")
            self.redis.set(scheduled, "1", ex=RETRY_SECONDS)
            self.job_queue.drain_inbound(shard, after_seconds=RETRY_SECONDS)
            return False
        if outcome == KEPT_ASIDE:
            self.redis.lmove(taking, FAILED_KEY, "RIGHT", "RIGHT")
        else:
            self.redis.lrem(taking, 1, raw)
        return True

    def _urgent_shards(self) -> set[int]:
        """Return the shards holding a crisis text not yet stepped."""
        return {int(s) for s in self.redis.smembers(URGENT_KEY)}

    def _step_elsewhere(self, shard: int, handle: Callable[[Fields], None]) -> int:
        """Step another shard's crisis texts if no drain works that shard; return how many."""
        lock = self.redis.lock(self.keys(shard)[3], timeout=LOCK_SECONDS)
        if not lock.acquire(blocking=False):
            return 0  # its drain steps them next
        done = 0
        try:
            while True:
                more = self.redis.llen(self.urgent_key(shard))
                # With none left, this clears the shard's mark.
                stepped = self._step_urgent(shard, handle, lock)
                if stepped is None or not more:
                    break
                done += stepped
        finally:
            try:
                lock.release()
            except LockError:
                pass
        return done

    def _step_urgent(
        self, shard: int, handle: Callable[[Fields], None], lock: Lock
    ) -> int | None:
        """Step the shard's oldest crisis text now, after the same person's earlier texts
        still waiting; return how many were stepped, or None when the drain must stop."""
        waiting, taking, _, _ = self.keys(shard)
        token = self.redis.lpop(self.urgent_key(shard))
        if token is None:
            self.redis.srem(URGENT_KEY, shard)
            # A crisis text put in after the pop and before the removal is not forgotten.
            if self.redis.llen(self.urgent_key(shard)):
                self.redis.sadd(URGENT_KEY, shard)
            return 0
        try:
            sender = self._read(token)["from_number"]
        except Exception:
            return 0  # unreadable: the normal turn keeps it aside
        ahead: list[Any] = []
        for raw in self.redis.lrange(waiting, 0, -1):
            if raw == token:
                ahead.append(raw)
                break
            try:
                if self._read(raw).get("from_number") == sender:
                    ahead.append(raw)
            except Exception:
                continue  # another person's unreadable entry keeps its place
        else:
            return 0  # stepped already (or set aside): nothing is urgent any more
        stepped = 0
        for raw in ahead:
            if not self._take_out_of_turn(keys=[waiting, taking], args=[raw]):
                continue
            if not self._step(raw, handle, shard, lock):
                return None
            stepped += 1
        return stepped

    def _handle(self, raw: Any, handle: Callable[[Fields], None], shard: int) -> str:
        """Step one entry; say whether it was DONE, must RETRY, or was KEPT_ASIDE."""
        try:
            fields = self._read(raw)
        except Exception:
            log.error("inbound entry in shard %s could not be read: kept in %s", shard, FAILED_KEY)
            return KEPT_ASIDE
        try:
            handle(fields)
        except (*TRANSIENT, RedisError) as exc:
            # Redis failing over mid-step is no fault of the text either: it waits its turn.
            log.warning("database away (%s): inbound shard %s waits", type(exc).__name__, shard)
            return RETRY
        except BaseTimeoutException:
            raise
        except Exception:
            # A text our code cannot handle must not hold back everyone behind it.
            sid = fields.get("message_sid")
            log.exception("inbound message %s failed: kept in %s", sid, FAILED_KEY)
            return KEPT_ASIDE
        return DONE


def _still_holds(lock: Lock) -> bool:
    """Renew the lock if it is still ours; say whether it was."""
    try:
        return bool(lock.reacquire())
    except LockError:
        return False
