"""Jobs the benchmarks enqueue for a baseline: they do nothing, or only wait."""

from __future__ import annotations

import time


def empty() -> None:
    """Do nothing: what is left of a job's round trip is RQ's own work."""


def hold(seconds: float) -> None:
    """Keep the work-horse alive for a while, so its memory can be read."""
    time.sleep(seconds)


def rss_mb() -> float:
    """Return this work-horse's own resident memory in MiB (VmRSS), as its result."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
