"""Keep webhooks that arrive while the database is down, and replay them when it is back.

Twilio does not retry a webhook that failed: a message would only be in Twilio's logs. So a
webhook that cannot reach the database is written, as Twilio sent it, to a Redis list or, if
Redis is down too, to an append-only file, and answered 200. The replayer feeds each one
through the normal path, where the unique MessageSid makes a replay act once. Entries are
encrypted, as they hold phone numbers and message text.

The Redis list is shared by every host (and, with a replica, WAITed for); the file is one
host's disk, the last resort when this host reaches neither the database nor Redis. Its entries
are handed to the shared list as soon as this host reaches Redis again (`hand_over`), so a host
that dies after that loses nothing; one that dies still cut off keeps them on its volume.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from peerline.service.privacy import Vault
from peerline.service.redis_connect import reached_replica, wait_for_replica

log = logging.getLogger(__name__)

SPOOL_KEY = "peerline:spool"
REPLAYING_KEY = "peerline:spool:replaying"
# Entries that cannot be read (a key no longer configured): kept for a person, never retried.
UNREADABLE_KEY = "peerline:spool:unreadable"

Entry = dict[str, Any]


class Spool:
    """A durable holding place for webhooks the database could not take."""

    def __init__(self, redis: Redis, directory: str | Path, vault: Vault, wait_ms: int = 0) -> None:
        self.redis = redis
        self.vault = vault
        self.path = Path(directory) / "webhook-spool.jsonl"
        self.wait_ms = wait_ms

    def put(self, kind: str, form: list[tuple[str, str]]) -> str:
        """Keep one webhook's form fields; return where it was kept."""
        entry = self.vault.encrypt(
            json.dumps({"kind": kind, "form": form, "received_at": datetime.now(UTC).isoformat()})
        )
        pushed, replicated = self._push([entry])
        if replicated:
            self.hand_over()
            return "redis"
        # Not on a replica: the master may be dying, so this host's disk keeps a copy too.
        log.warning("redis cannot keep a %s webhook safely: spooling to %s", kind, self.path)
        self._append(entry)
        return "redis and file" if pushed else "file"

    def _push(self, entries: list[str]) -> tuple[bool, bool]:
        """Add entries to the shared list; say whether they went in and reached a replica."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.rpush(SPOOL_KEY, *entries)
            wait_for_replica(pipe, self.wait_ms)
            return True, reached_replica(pipe.execute(), self.wait_ms)
        except RedisError:
            return False, False

    def hand_over(self) -> int:
        """Move this host's file entries to the shared list; return how many moved."""
        if not self.path.exists():
            return 0
        taken = self.path.with_suffix(f".handing-{os.getpid()}")
        try:
            os.replace(self.path, taken)
        except FileNotFoundError:
            return 0  # another process of this host took it
        lines = [line for line in taken.read_text().splitlines() if line.strip()]
        # Once the master has them they are shared; a replica that is slow now catches up.
        if lines and not self._push(lines)[0]:
            for line in lines:
                self._append(line)
            taken.unlink()
            return 0
        taken.unlink()
        return len(lines)

    def _append(self, entry: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, entry.encode() + b"\n")
            os.fsync(fd)  # the message is only safe once it is on disk
        finally:
            os.close(fd)

    def size(self) -> int:
        """Return how many webhooks are waiting (in Redis and in the file)."""
        waiting = int(self.redis.llen(SPOOL_KEY)) + int(self.redis.llen(REPLAYING_KEY))
        if self.path.exists():
            waiting += sum(1 for line in self.path.read_text().splitlines() if line.strip())
        return waiting

    def replay(self, handle: Callable[[Entry], None]) -> int:
        """Feed every kept webhook to `handle`, oldest first; stop at the first failure."""
        done = self._replay_file(handle)
        # A replay that died half-way left its entry in the replaying list: it goes first.
        while self.redis.lmove(REPLAYING_KEY, SPOOL_KEY, "RIGHT", "LEFT") is not None:
            pass
        while True:
            raw = self.redis.lmove(SPOOL_KEY, REPLAYING_KEY, "LEFT", "RIGHT")
            if raw is None:
                return done
            entry = self._read_or_set_aside(raw)
            if entry is not None:
                handle(entry)
                done += 1
            self.redis.lrem(REPLAYING_KEY, 1, raw)  # type: ignore[arg-type]

    def _read(self, raw: bytes | str) -> Entry:
        entry: Entry = json.loads(self.vault.decrypt(raw))
        return entry

    def _read_or_set_aside(self, raw: bytes | str) -> Entry | None:
        """Read an entry; one that cannot be read must not block the ones behind it."""
        try:
            return self._read(raw)
        except Exception:
            log.error("a spooled webhook could not be read: kept aside in %s", UNREADABLE_KEY)
            try:
                self.redis.rpush(UNREADABLE_KEY, raw)
            except RedisError:
                with self.path.with_suffix(".unreadable").open("a") as kept:
                    kept.write((raw.decode() if isinstance(raw, bytes) else raw) + "\n")
            return None

    def _replay_file(self, handle: Callable[[Entry], None]) -> int:
        if not self.path.exists():
            return 0
        # Take the file aside first, so webhooks spooled meanwhile start a new one.
        taken = self.path.with_suffix(f".replaying-{os.getpid()}")
        os.replace(self.path, taken)
        lines = [line for line in taken.read_text().splitlines() if line.strip()]
        for index, line in enumerate(lines):
            try:
                entry = self._read_or_set_aside(line)
                if entry is not None:
                    handle(entry)
            except Exception:
                # Put back what is left, ahead of anything newer, and let the caller retry.
                rest = "".join(f"{left}\n" for left in lines[index:])
                newer = self.path.read_text() if self.path.exists() else ""
                self.path.write_text(rest + newer)
                taken.unlink()
                raise
        taken.unlink()
        return len(lines)
