"""The line a worker's jobs run against: built once per process from the environment."""

from __future__ import annotations

from peerline.service.services import LineServices
from peerline.service.settings import from_env
from peerline.service.job_queue import redis_client

_line: LineServices | None = None


def set_line(line: LineServices) -> None:
    """Use this line for jobs run in this process (the embedded worker, and tests)."""
    global _line
    _line = line


def get_line() -> LineServices:
    """Return this process's line, building it from the environment the first time."""
    global _line
    if _line is None:
        settings = from_env()
        if settings.redis_url is None:
            raise RuntimeError("REDIS_URL must be set for a worker outside `peerline serve`")
        _line = LineServices(settings, redis_client(settings.redis_url, worker=True))
    return _line
