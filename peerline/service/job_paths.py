"""Where RQ finds each job: the dotted paths it stores with every queued and scheduled job.

They are part of the public contract: Redis keeps them across a deploy, so a job queued
before one must still be found after it. Defined here once for the job queue (`job_queue`) and
the reminder planner (`reminders`).
"""

from __future__ import annotations

JOBS_MODULE = "peerline.workers.jobs"


def job(name: str) -> str:
    """Return the dotted path of a job function of the workers' jobs module."""
    return f"{JOBS_MODULE}.{name}"


SEND_MESSAGE = job("send_message")
SEND_MESSAGES = job("send_messages")
PUMP_SENDER = job("pump_sender")
MATCH_QUEUE = job("match_queue")
SWEEP = job("sweep")
DRAIN_INBOUND = job("drain_inbound")
EXPIRE_OFFER = job("expire_offer")
QUEUE_TICK = job("queue_tick")
CHAT_TICK = job("chat_tick")
NOTIFY_OPEN = job("notify_open")
# Call-backs: queued jobs name the voice line's old module, which re-exports the job.
PLACE_CALL = "peerline.service.calls.place_call_job"
# The reminder planner names its jobs (group_reminder, shift_reminder, checkin) by `job`.
