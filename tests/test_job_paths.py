"""The RQ job paths: defined once, each naming a job the workers can run, never renamed."""

from __future__ import annotations

import importlib

import pytest

from peerline.service import job_paths

PATHS = {
    name: value
    for name, value in vars(job_paths).items()
    if name.isupper() and isinstance(value, str) and name != "JOBS_MODULE"
}


def test_the_paths_stored_in_redis_keep_their_names() -> None:
    # Jobs queued before a deploy are found after it only by these exact strings.
    assert PATHS == {
        "SEND_MESSAGE": "peerline.workers.jobs.send_message",
        "SEND_MESSAGES": "peerline.workers.jobs.send_messages",
        "PUMP_SENDER": "peerline.workers.jobs.pump_sender",
        "MATCH_QUEUE": "peerline.workers.jobs.match_queue",
        "SWEEP": "peerline.workers.jobs.sweep",
        "DRAIN_INBOUND": "peerline.workers.jobs.drain_inbound",
        "EXPIRE_OFFER": "peerline.workers.jobs.expire_offer",
        "QUEUE_TICK": "peerline.workers.jobs.queue_tick",
        "CHAT_TICK": "peerline.workers.jobs.chat_tick",
        "NOTIFY_OPEN": "peerline.workers.jobs.notify_open",
        "PLACE_CALL": "peerline.service.calls.place_call_job",
    }


@pytest.mark.parametrize(
    "path",
    [
        *PATHS.values(),
        # The reminder planner's jobs, named by `job_paths.job`.
        job_paths.job("group_reminder"),
        job_paths.job("shift_reminder"),
        job_paths.job("checkin"),
    ],
)
def test_every_path_names_a_function_a_worker_can_run(path: str) -> None:
    module, _, name = path.rpartition(".")
    assert callable(getattr(importlib.import_module(module), name, None)), path
