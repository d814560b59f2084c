"""The line a worker's jobs run against: built once per process from the environment."""

from __future__ import annotations

from peerline.service.line import Line

_line: Line | None = None


def set_line(line: Line) -> None:
    """Use this line for jobs run in this process (the embedded worker, and tests)."""
    global _line
    _line = line


def get_line() -> Line:
    """Return this process's line, building it from the environment the first time."""
    global _line
    if _line is None:
        from redis import Redis

        from peerline.service.settings import from_env

        settings = from_env()
        if settings.redis_url is None:
            raise RuntimeError("REDIS_URL must be set for a worker outside `peerline serve`")
        _line = Line(settings, Redis.from_url(settings.redis_url))
    return _line
