"""The benchmarks still run: `python -m benchmarks --smoke` exits 0 and reports every figure.

Smoke mode is seconds long and its figures are not judged here (a CI machine's timings say
little); what matters is that each benchmark runs end to end against real servers and prints
its figures next to the baseline it measured in the same run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import MODULES
from tests.support.servers import find_postgres_bindir, find_redis_server

pytestmark = pytest.mark.servers
ROOT = Path(__file__).resolve().parent.parent


# One test a benchmark, so the suite's workers share them out (all seven in one run took
# 160-210 s, the suite's longest test).
@pytest.mark.parametrize("name", MODULES)
def test_smoke_run_reports_the_benchmark_and_its_baseline(name: str) -> None:
    if find_redis_server() is None or find_postgres_bindir() is None:
        message = "redis-server and PostgreSQL are needed to run the benchmarks"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # A run past its time is interrupted (SIGINT), so its own clean-up stops the servers, gunicorn
    # and workers it started in sessions of their own; a plain timeout's kill left them running.
    with subprocess.Popen(
        [sys.executable, "-m", "benchmarks", "--smoke", name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as run:
        try:
            output, _ = run.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            run.send_signal(signal.SIGINT)
            try:
                output, _ = run.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                output, _ = run.communicate()
            pytest.fail(f"{name} ran past 300 s:\n{output}")
    assert run.returncode == 0, output
    assert "FAILED" not in output, output
    sections = output.split("\n== ")
    section = next((s for s in sections if s.startswith(f"{name}:")), None)
    assert section is not None, f"no report from {name}:\n{output}"
    lines = section.splitlines()
    assert any(line.lstrip().startswith("figure ") for line in lines), section
    assert any(line.lstrip().startswith("baseline ") for line in lines), section
    assert any(line.lstrip().startswith("ratio ") for line in lines), section
    assert any(line.lstrip().startswith("goal ") for line in lines), section
    assert "| Measure | Peerline | Baseline (same run) | Goal | Met |" in output
