"""Twilio's call status vocabulary, shared by voice, routing and the runtime without a cycle."""

from __future__ import annotations

from datetime import timedelta

# A call or leg we never heard the end of stops counting as "on a call" after this long, so a
# lost status callback cannot keep a supporter from chats for ever.
STALE_AFTER = timedelta(hours=4)
# Twilio's call statuses in the order they may advance; every end is final.
STATUS_RANK = {
    "queued": 0,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    "answered": 3,
    "completed": 4,
    "busy": 4,
    "no-answer": 4,
    "failed": 4,
    "canceled": 4,
}
TERMINAL = frozenset(s for s, rank in STATUS_RANK.items() if rank == 4)
# What a <Dial> action's DialCallStatus says about a leg nobody answered.
UNANSWERED = frozenset({"busy", "no-answer", "failed"})
# What Twilio's AnsweredBy says when answering machine detection heard a machine or a fax.
MACHINE = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
)
