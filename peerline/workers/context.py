"""The line a worker's jobs run against: built once per process from the environment."""

from __future__ import annotations

from peerline.service.line import Line
from peerline.service.redis_connect import connect
from peerline.service.settings import from_env

_line: Line | None = None


def set_line(line: Line) -> None:
    """Use this line for jobs run in this process (the embedded worker, and tests)."""
    global _line
    _line = line


def get_line() -> Line:
    """Return this process's line, building it from the environment the first time."""
    global _line
    if _line is None:
        settings = from_env()
        if settings.redis_url is None:
            raise RuntimeError("REDIS_URL must be set for a worker outside `peerline serve`")
        _line = Line(settings, connect(settings, worker=True))
    return _line
