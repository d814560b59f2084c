"""Pace outbound SMS per sender number across every worker, counting segments, in Redis.

Each sender number has one Redis key holding its theoretical arrival time (GCRA, the
"generic cell rate algorithm" of a leaky bucket) in microseconds of the Redis server's clock.
A segment costs ``(1 + jitter) / rate`` seconds of the sender's time (see "The margin" below).
A send of ``n`` segments gets the slot at which the key's time is at most ``max(burst - n, 0)``
segments' cost ahead (with the default burst of 1 segment: when the sender's earlier segments
have drained), and pushes the key's time ``n`` segments' cost further, so the next send waits
for them.

One Lua script reads the server's ``TIME``, decides and writes, so workers on several machines
share one clock and one decision at a time. ``acquire`` reserves the next slot even when it
lies in the future and then sleeps until it: workers queue up in order, and the time a worker
spends waking up is not lost to the sender's budget. ``reserve`` and ``sleep_until`` are the
same two steps for a caller with work to do in between (the outbox commits its intent to send
while the slot comes). ``try_acquire`` only takes a slot that is free now, and records nothing
otherwise.

The guarantee, on slot times: for any two slots of one sender ``W`` seconds apart, the segments
from the first to the second, both included, are at most ``rate * W / (1 + jitter) +
max(burst, n)`` where ``n`` is the second's size. A message longer than the burst still goes in
one piece (one API call cannot be split) and then holds the sender back for its full length:
three segments at 1 segment/s keep the next send back 3 s (and the margin), so the long-run
rate never exceeds the configured one.

The margin, for the receiving end. A text reaches the provider a little after its slot: the
worker wakes up and makes an HTTP call (and commits first when its slot was free at once).
That delay varies from send to send: on this project's development machine 2-5 ms with the
outbox's send (p50 2.6 ms, p99 5 ms), tens of ms now and then when the machine is overloaded.
Two texts can therefore arrive closer together than their slots, and a one-second window at
the provider can hold more than ``rate`` texts although no second of slots does (at 40/s, 41
were seen). So the limiter spaces slots for ``rate`` segments per ``1 + jitter`` seconds: a
window of one second at the provider holds texts whose slots lie within ``1 + jitter`` seconds
whenever their delays differ by at most ``jitter``, and those are at most ``rate`` one-segment
texts (with a whole-number rate and the default burst of 1). The price is the long-run rate,
``rate / (1 + jitter)``: 97% of the configured rate with the default allowance of 30 ms. A
stall longer than the allowance can still put one text too many into some one-second window; a
deployment whose calls to the provider vary more (a long network path) needs a larger
allowance. ``jitter=0`` paces exactly at the rate, guaranteed on slot times only.

Across a failover (Redis through Sentinel). Replication is asynchronous: a slot granted by a
master in the moment before it died may never reach the replica promoted in its place, which
then hands the same time out again. With ``fence_segments`` set (the line sets it under
Sentinel), the script also keeps the master's ``run_id`` in one key: the first reservation on a
master whose run id differs from the one recorded (a promoted replica, a master restarted from
its append-only file) records the moment, and until ``fence_segments`` segments' time after it
no slot of any sender is granted. A slot lost with the old master was granted before that moment
and at most its wait ahead (the outbox reserves at most a few ms ahead), so the fence covers any
lost message of up to ``fence_segments`` less that wait. The price is one pause per sender per
failover. Not covered: an old master that keeps granting after the promotion (a partition that
leaves some workers on it); ``min-replicas-to-write`` on the master is the guard for that.

Each granted slot is also kept for the calling thread (`granted_slot`), so the HTTP client can
tell a compatible API endpoint when the send's slot was (`X-Peerline-Slot`, microseconds of
Redis time): the several-hosts test checks the rate on those slots exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
from redis import Redis

from peerline.service import segments as segment_count

LONG_CODE, TOLL_FREE, SHORT_CODE = "long_code", "toll_free", "short_code"
# A Twilio Messaging Service: its pool of numbers shares one budget, the pool's combined rate
# (one long code's unless configured: PEERLINE_SERVICE_RATE, or service= in the rates).
SERVICE = "service"
SENDER_TYPES = (LONG_CODE, TOLL_FREE, SHORT_CODE, SERVICE)
# Segments per second each kind of number may send (Twilio's documented defaults in the US).
DEFAULT_RATES: Mapping[str, float] = {
    LONG_CODE: 1.0,
    TOLL_FREE: 3.0,
    SHORT_CODE: 100.0,
    SERVICE: 1.0,
}
KEY_PREFIX = "peerline:ratelimit:"
MICROS = 1_000_000
# Seconds by which the delay from a slot to the provider may vary without a one-second window
# at the provider seeing more than the rate (see "The margin" above).
DEFAULT_JITTER = 0.03
# The key recording which master granted the slots, and since when (see "Across a failover").
EPOCH_SUFFIX = "@master"
# A fence of this many segments covers a lost text as long as Twilio advises a text to be (the
# line's own texts and joined relays are at most 4), granted by a master that died before
# replicating it.
FENCE_SEGMENTS = 10
# The slot (microseconds of Redis time) last granted to this thread, until its send reads it.
_granted: ContextVar[int | None] = ContextVar("peerline_granted_slot", default=None)


def granted_slot() -> int | None:
    """Return (and forget) the slot last granted in this thread, in microseconds; else None."""
    slot = _granted.get()
    _granted.set(None)
    return slot


# KEYS[1]: the sender's key; KEYS[2]: the epoch key. ARGV[1]: the cost of this send in
# microseconds; ARGV[2]: how far ahead of now the key may already be for the send to go;
# ARGV[3]: the longest wait, in microseconds, for which a later slot is reserved (-1: any);
# ARGV[4]: the fence after a change of master, in microseconds (0: none). Returns
# {reserved, wait, now}.
_GCRA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local fence = tonumber(ARGV[4])
if fence > 0 then
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
  local epoch = redis.call('HMGET', KEYS[2], 'run', 'since')
  local since = tonumber(epoch[2] or '0')
  if not epoch[1] then
    -- A Redis that never granted a slot (or was emptied): nothing can have been lost.
    redis.call('HSET', KEYS[2], 'run', run, 'since', '0')
  elseif epoch[1] ~= run then
    since = now
    redis.call('HSET', KEYS[2], 'run', run, 'since', string.format('%d', since))
  end
  if since > 0 and tat < since + fence then tat = since + fence end
end
local cost = tonumber(ARGV[1])
local wait = tat - now - tonumber(ARGV[2])
if wait < 0 then wait = 0 end
local limit = tonumber(ARGV[3])
if limit >= 0 and wait > limit then
  return {0, wait, now}
end
local after = tat + cost
local ttl = math.floor((after - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', after), 'PX', string.format('%d', ttl))
return {1, wait, now}
"""


# KEYS[1]: the sender's key. ARGV[1]: microseconds the segments just handed over hold the
# sender from now. Pushes the key's time to at least now plus that; returns the key's time.
_SETTLE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local after = now + tonumber(ARGV[1])
if after > tat then
  local ttl = math.floor((after - now) / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%d', after), 'PX', string.format('%d', ttl))
  tat = after
end
return tat
"""


class RateLimited(Exception):
    """A send would have to wait longer than its caller allows."""

    def __init__(self, sender: str, retry_after: float) -> None:
        super().__init__(f"sender {sender} is busy for another {retry_after:.3f} s")
        self.sender = sender
        self.retry_after = retry_after


@dataclass(frozen=True)
class Decision:
    """One answer of the limiter: whether a slot was reserved, and when the send may go."""

    reserved: bool
    wait: float  # seconds from the decision until the send may go; 0 for at once
    at: float  # the Redis server time at which it may go, in seconds since the epoch
    due: float = 0.0  # the same moment on this process's time.monotonic() clock


def sender_type(sender: str) -> str:
    """Return the kind of a sender number: long code, toll-free or short code."""
    number = sender.strip()
    if number.isdigit() and len(number) <= 8:
        # Short codes are bare 3- to 8-digit numbers, never in E.164 form.
        return SHORT_CODE
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        # Alphanumeric sender ids and oddities get the slowest, safest rate.
        return LONG_CODE
    if phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.TOLL_FREE:
        return TOLL_FREE
    return LONG_CODE


def parse_rates(text: str) -> dict[str, float]:
    """Return rates from "long_code=1,toll_free=3" text, as an environment variable holds."""
    rates: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        kind, sep, value = part.partition("=")
        kind = kind.strip()
        if not sep or kind not in SENDER_TYPES:
            raise ValueError(f"expected one of {', '.join(SENDER_TYPES)}=RATE, not {part!r}")
        rates[kind] = float(value)
    return rates


class SendRateLimiter:
    """Share each sender number's segment budget between every process that sends."""

    def __init__(
        self,
        redis: Redis,
        rates: Mapping[str, float] | None = None,
        burst: float | Mapping[str, float] = 1.0,
        *,
        sender_types: Mapping[str, str] | None = None,
        prefix: str = KEY_PREFIX,
        jitter: float = DEFAULT_JITTER,
        sleep: Callable[[float], None] = time.sleep,
        fence_segments: int = 0,
    ) -> None:
        self.rates = {**DEFAULT_RATES, **(rates or {})}
        bursts = burst if isinstance(burst, Mapping) else dict.fromkeys(self.rates, burst)
        self.bursts = {kind: float(bursts.get(kind, 1.0)) for kind in self.rates}
        for kind, rate in self.rates.items():
            if not (rate > 0 and math.isfinite(rate)):
                raise ValueError(f"rate for {kind} must be a positive number, not {rate!r}")
            if not self.bursts[kind] >= 1:
                raise ValueError(f"burst for {kind} must be at least 1 segment")
        self.sender_types = dict(sender_types or {})
        for number, kind in self.sender_types.items():
            if kind not in self.rates:
                raise ValueError(f"sender {number} has type {kind!r}, which has no rate")
        if not (0 <= jitter < 1):
            raise ValueError(f"jitter must be at least 0 and under 1 second, not {jitter!r}")
        self.jitter = jitter
        self.prefix = prefix
        self.fence_segments = fence_segments
        self._redis = redis
        self._script = redis.register_script(_GCRA)
        self._settle = redis.register_script(_SETTLE)
        self._sleep = sleep
        # A line sends from a handful of numbers: parse each once, not on every send.
        self._guessed: dict[str, str] = {}

    def type_of(self, sender: str) -> str:
        """Return a sender's type: as configured for that number, else guessed from it."""
        kind = self.sender_types.get(sender) or self._guessed.get(sender)
        if kind is None:
            kind = self._guessed[sender] = sender_type(sender)
        return kind

    def rate_of(self, sender: str) -> float:
        """Return the segments per second a sender may send."""
        return self.rates[self.type_of(sender)]

    def reserve(self, sender: str, segments: int, *, max_wait: float | None = 0.0) -> Decision:
        """Reserve the sender's next slot if it comes within max_wait seconds (None: any)."""
        if segments < 1:
            raise ValueError("a message has at least one segment")
        kind = self.type_of(sender)
        rate, burst = self.rates[kind], self.bursts[kind]
        # Microseconds of the sender's time per segment, margin included.
        interval = (1 + self.jitter) * MICROS / rate
        # Round the cost up and the tolerance down: rounding never lets the rate be exceeded.
        cost = math.ceil(segments * interval)
        tolerance = math.floor(max(burst - segments, 0) * interval)
        limit = -1 if max_wait is None else math.floor(max(max_wait, 0.0) * MICROS)
        fence = math.ceil(self.fence_segments * interval)
        result: Any = self._script(
            keys=[self.prefix + sender, self.prefix + EPOCH_SUFFIX],
            args=[cost, tolerance, limit, fence],
        )
        decided = time.monotonic()
        reserved, wait, now = (int(x) for x in result)
        if reserved:
            _granted.set(now + wait)
        seconds = wait / MICROS
        return Decision(bool(reserved), seconds, (now + wait) / MICROS, decided + seconds)

    def free_at(self, sender: str, within: float = 0.0) -> float | None:
        """Return when (Redis time, seconds) the sender can next send one segment, or None
        when it can within `within` seconds; reserves nothing."""
        seconds, micros = self._redis.time()
        now = int(seconds) * MICROS + int(micros)
        raw = self._redis.get(self.prefix + sender)
        tat = int(raw) if raw is not None else 0
        # One segment goes when the key's time is at most the burst less one segment ahead.
        kind = self.type_of(sender)
        ahead = math.floor(
            max(self.bursts[kind] - 1, 0) * (1 + self.jitter) * MICROS / self.rates[kind]
        )
        if tat - ahead <= now + within * MICROS:
            return None
        return (tat - ahead) / MICROS

    def settle(self, sender: str, segments: int) -> None:
        """Hold the sender for `segments` at the rate from now, once the provider has them.

        The provider saw a text somewhere between its slot and the end of the call; counting
        its segments from the end of the call as well keeps the next text at least their
        length behind it at the provider, however late this one arrived (a loaded machine, a
        slow network). The price is the part of the call's time beyond the limiter's margin.
        """
        interval = MICROS / self.rates[self.type_of(sender)]
        self._settle(keys=[self.prefix + sender], args=[math.ceil(segments * interval)])

    def reserve_text(self, sender: str, body: str, *, max_wait: float | None = 0.0) -> Decision:
        """Reserve the next slot for a message body, counting its segments."""
        return self.reserve(sender, segment_count.count(body), max_wait=max_wait)

    def sleep_until(self, decision: Decision) -> None:
        """Sleep until a reserved slot comes (at once if it has)."""
        left = decision.due - time.monotonic()
        if left > 0:
            # The slot is ours already: sleeping to it on any clock is enough, and reserving
            # ahead keeps the sender busy while this worker sleeps, so no slot goes unused.
            self._sleep(left)

    def try_acquire(self, sender: str, segments: int) -> float:
        """Return 0 and record the send if it may go now, else the seconds to wait."""
        return self.reserve(sender, segments, max_wait=0.0).wait

    def acquire(self, sender: str, segments: int, *, max_wait: float | None = None) -> float:
        """Reserve the sender's next slot, sleep until it comes and return the seconds waited."""
        decision = self.reserve(sender, segments, max_wait=max_wait)
        if not decision.reserved:
            raise RateLimited(sender, decision.wait)
        self.sleep_until(decision)
        return decision.wait

    def acquire_text(self, sender: str, body: str, *, max_wait: float | None = None) -> float:
        """Wait until a message body may go, counting its segments; return the seconds waited."""
        return self.acquire(sender, segment_count.count(body), max_wait=max_wait)


def _aware(moment: datetime) -> datetime:
    # The database hands back UTC; a naive value can only mean UTC here.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def expired(created_at: datetime, validity_seconds: float | None, now: datetime) -> bool:
    """Say whether a message is too old to send; no validity period means never."""
    if validity_seconds is None:
        return False
    return _aware(now) - _aware(created_at) >= timedelta(seconds=validity_seconds)


def time_left(created_at: datetime, validity_seconds: float | None, now: datetime) -> float | None:
    """Return the seconds a message may still wait to be sent, None when it never goes stale."""
    if validity_seconds is None:
        return None
    left = validity_seconds - (_aware(now) - _aware(created_at)).total_seconds()
    return max(left, 0.0)
