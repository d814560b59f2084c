"""What the benchmarks share: their context, statistics, reporting and process helpers."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rq.job import Job
from rq.results import Result

from tests.support.servers import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Context:
    """What a benchmark is handed: the mode, the servers and a folder for its files."""

    smoke: bool
    postgres: PostgresServer
    redis: RedisServer
    workdir: Path

    def folder(self, name: str) -> Path:
        """Return a fresh folder for one benchmark's logs and instance files."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass(frozen=True)
class Goal:
    """A target from the performance issue and whether this run met it."""

    text: str
    met: bool


@dataclass
class Outcome:
    """One benchmark's figures, its baseline from the same run, ratios and goals."""

    name: str
    title: str
    figures: list[tuple[str, str]] = field(default_factory=list)
    baseline: list[tuple[str, str]] = field(default_factory=list)
    ratios: list[tuple[str, str]] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Rows for the README's table: (measure, figure, baseline, goal, met).
    table: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    def figure(self, label: str, value: str) -> None:
        self.figures.append((label, value))

    def base(self, label: str, value: str) -> None:
        self.baseline.append((label, value))

    def ratio(self, label: str, value: float) -> None:
        self.ratios.append((label, f"{value:.2f}x"))

    def goal(self, text: str, met: bool) -> bool:
        self.goals.append(Goal(text, met))
        return met

    def row(self, measure: str, figure: str, baseline: str, goal: str, met: bool | None) -> None:
        self.table.append((measure, figure, baseline, goal, _met(met)))

    def render(self) -> str:
        """Return the outcome as the text the command prints."""
        lines = [f"== {self.name}: {self.title} =="]
        width = max(
            [len(label) for label, _ in (*self.figures, *self.baseline, *self.ratios)] + [10]
        )
        for heading, rows in (
            ("figure", self.figures),
            ("baseline", self.baseline),
            ("ratio", self.ratios),
        ):
            for label, value in rows:
                lines.append(f"  {heading:<8}  {label:<{width}}  {value}")
        for goal in self.goals:
            lines.append(f"  goal      {goal.text}: {'MET' if goal.met else 'NOT MET'}")
        for note in self.notes:
            lines.append(f"  note      {note}")
        return "\n".join(lines)


def _met(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "no")


# -- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Return the nearest-rank percentile of values (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> str:
    """Format seconds as milliseconds."""
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds * 1000:.0f} ms"


def latency_summary(latencies: Sequence[float]) -> str:
    """Return p50 / p95 / p99 / max of latencies in seconds."""
    return " / ".join(
        ms(v)
        for v in (
            percentile(latencies, 50),
            percentile(latencies, 95),
            percentile(latencies, 99),
            max(latencies, default=0.0),
        )
    )


# -- processes -------------------------------------------------------------------------------


def wait_for_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Wait until a GET of url answers 200, failing with the log if the process exits."""
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited {proc.returncode}:\n{tail(log)}")
        try:
            with opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not answering after {timeout:.0f}s:\n{tail(log)}")
        time.sleep(0.05)


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Stop a process started in its own session, and its children, politely then firmly."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def children(pid: int) -> list[int]:
    """Return the ids of a process's direct children."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def _proc_mb(path: str, field: str) -> float:
    """Return a kB figure from a /proc file's `field:` line in MiB (0 if the process has gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    """Return a process's resident set size in MiB (0 if it has gone)."""
    return _proc_mb(f"/proc/{pid}/status", "VmRSS")


def pss_mb(pid: int) -> float:
    """Return a process's proportional set size in MiB: shared pages split among sharers."""
    return _proc_mb(f"/proc/{pid}/smaps_rollup", "Pss")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.01) -> None:
    """Poll until check() holds, or raise with what was awaited."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def job_result(job: Job, timeout: float) -> Result | None:
    """Wait up to `timeout` seconds for a job's result, in blocking reads shorter than the
    connection's own socket timeout (the line's web connection gives up on a command after
    10 s, so one long XREAD raised TimeoutError while a loaded machine started a worker)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        result = job.latest_result(timeout=max(1, min(5, math.ceil(left))))
        if result is not None or left <= 5:
            return result
