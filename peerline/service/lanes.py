"""Lanes: what a text is for decides when it gets its sender's budget, kept in Redis.

Every outbound text has a lane, most urgent first: crisis resources (and the alerts that go
with them); chat relays both ways and connection notices; offers; replies to texters not yet
in a chat; wait updates and nudges; reminders and other fan-out. Each sender (a number, or a
Messaging Service) has a sorted set of the texts waiting for its budget, scored by lane and
then id, and one pump at a time spends the budget on the best of them (see `outbox.pump`).
When the sender's next slot is in the future the pump ends and marks the sender due then;
a sender loop (`pace`) in each worker process takes the sender up again at that moment, so
no worker sleeps through the wait and a text that arrives meanwhile is ranked with the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from redis import Redis

from peerline.service.settings import Settings

CRISIS, CHAT, OFFER, REPLY, WAIT, FANOUT = range(6)
NAMES = ("crisis", "chat", "offer", "reply", "wait", "fanout")

# Purposes by lane; anything not named is a reply to a texter (lane REPLY).
_PURPOSES: Mapping[int, frozenset[str]] = {
    CRISIS: frozenset(
        {
            "crisis",
            "crisis_closed",
            "crisis_queued",
            "someone_else",
            "someone_else_emergency",
            "safety_alert",
            "safety_alert_call",
            "safety_flag",
            "blocked_crisis_alert",
            "crisis_quiet_alert",
            "crisis_untaken_alert",
            "crisis_unanswered_alert",
            "chat_unanswered_crisis",
            "relay_delay_alert",
        }
    ),
    CHAT: frozenset(
        {
            "relay",
            "connected",
            "took",
            "took_with_backlog",
            "supporter_ended",
            "texter_ended",
            "texter_left",
            "you_ended",
            "passed",
            "finding_another",
            "chat_idle_ended",
            "chat_idle_closed",
            "picture_came",
            "picture_too",
            "picture_not_passed",
            "picture_waiting",
            "relayed_did_you_mean",
            "help_in_chat",
            "texter_opted_out",
        }
    ),
    OFFER: frozenset(
        {
            "offer",
            "offer_priority",
            "offer_gone",
            "offer_withdrawn",
            "offer_timed_out",
            "already_taken",
            "at_capacity",
        }
    ),
    WAIT: frozenset(
        {
            "still_looking",
            "still_waiting",
            "reply_nudge",
            "chat_unanswered",
            "chat_unanswered_supporter",
            "crisis_quiet_nudge",
            "unanswered_alert",
            "unmatched_alert",
            "queue_stuck_alert",
            "checkin",
            "auto_away",
        }
    ),
    FANOUT: frozenset(
        {
            "group_reminder",
            "shift_reminder",
            "shift_freed",
            "gap_alert",
            "line_open",
            "open_now",
            "missed_call",
            "call_notice",
            "voicemail_saved",
        }
    ),
}
_LANE_OF = {purpose: lane for lane, purposes in _PURPOSES.items() for purpose in purposes}

# A score holds the lane above any id (ids stay below 10^12; doubles are exact to 2^53).
_LANE_SPAN = 10**12
KEY_PREFIX = "peerline:lanes:"


def sender_for(settings: Settings, from_number: str) -> str:
    """Return whose budget a text from this number spends: the Messaging Service's, for
    texts from the line's own number when one is set, else the number's own."""
    service = settings.twilio_messaging_service_sid
    if service and from_number == settings.twilio_phone_number:
        return service
    return from_number


def lane_of(purpose: str) -> int:
    """Return the lane of a text written for this purpose."""
    return _LANE_OF.get(purpose, REPLY)


class SenderQueues:
    """Each sender's texts waiting for its budget, best lane first, and when each is due."""

    def __init__(self, redis: Redis, prefix: str = KEY_PREFIX) -> None:
        self.redis = redis
        self.prefix = prefix
        self.due_key = prefix + "due"
        self.wake_key = prefix + "wake"

    def key(self, sender: str) -> str:
        """Return the Redis key of a sender's waiting texts."""
        return f"{self.prefix}q:{sender}"

    def add(self, items: Iterable[tuple[str, int, int]]) -> set[str]:
        """Queue (sender, message id, lane) texts; return the senders named."""
        senders: set[str] = set()
        with self.redis.pipeline(transaction=False) as pipe:
            for sender, message_id, lane in items:
                pipe.zadd(self.key(sender), {str(message_id): lane * _LANE_SPAN + message_id})
                senders.add(sender)
            pipe.execute()
        return senders

    def best(self, sender: str) -> int | None:
        """Return the id of the sender's most urgent waiting text."""
        found: list[Any] = self.redis.zrange(self.key(sender), 0, 0)
        return int(found[0]) if found else None

    def lane_of_best(self, sender: str) -> int | None:
        """Return the lane of the sender's most urgent waiting text."""
        found: list[Any] = self.redis.zrange(self.key(sender), 0, 0, withscores=True)
        return int(found[0][1]) // _LANE_SPAN if found else None

    def remove(self, sender: str, message_id: int) -> None:
        """Take a text out of its sender's queue (sent, dropped, or waiting for a retry)."""
        self.redis.zrem(self.key(sender), str(message_id))

    def waiting(self, sender: str) -> int:
        """Return how many texts wait for the sender's budget."""
        return int(self.redis.zcard(self.key(sender)))

    def set_due(self, sender: str, at: float) -> None:
        """Mark the sender to be taken up at `at` (Redis server time) and wake the loops."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.due_key, {sender: at})
            pipe.rpush(self.wake_key, "1")
            pipe.ltrim(self.wake_key, -8, -1)
            pipe.execute()

    def next_due(self) -> tuple[str, float] | None:
        """Return the sender due soonest and when."""
        found: list[Any] = self.redis.zrange(
            self.due_key, 0, 0, withscores=True
        )
        if not found:
            return None
        sender, at = found[0]
        return (sender.decode() if isinstance(sender, bytes) else str(sender)), float(at)

    def take_due(self, sender: str) -> bool:
        """Claim a due sender for this loop; False when another loop took it first."""
        return bool(self.redis.zrem(self.due_key, sender))

    def wait_for_news(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for a sender to be marked due (or return at once)."""
        self.redis.blpop([self.wake_key], timeout=max(timeout, 0.01))

    def server_time(self) -> float:
        """Return the Redis server's clock, which slots and due times are counted on."""
        seconds, micros = self.redis.time()
        return float(seconds + micros / 1_000_000)
