"""5. Memory: resident set size (VmRSS from /proc) of a gunicorn web worker and of a `peerline
worker` process (and of its work-horses, if it forks any), after warm-up.

Warm-up is real traffic: texters write, ask for a peer, get offers; every reply, match and offer
goes through the worker; the console's login page is served. A sampler reads the memory of any
work-horse the worker forks while jobs run (`peerline worker` runs jobs in its own process since
it uses RQ's SimpleWorker; a forking worker would show them), and a job reports the memory of the
process it runs in. Baselines, in the same run: the bare Flask app under the same gunicorn
command after the same number of requests, and a plain `rq worker` (no Peerline imported) and
the work-horse it forks for the same job.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from rq import Queue

from benchmarks.common import (
    ROOT,
    Context,
    Outcome,
    children,
    job_result,
    pss_mb,
    rss_mb,
    stop_group,
)
from benchmarks.deploy import WebDeployment, deployed, gunicorn, rota_line
from benchmarks.load import Request, closed_loop, signed_form
from benchmarks.seed import Numbers
from peerline.service.job_queue import QUEUE_NAME
from tests.support.deploy import LINE_NUMBER
from tests.support.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.support.servers import free_port

NAME = "memory"
TITLE = "Memory after warm-up: gunicorn web worker, peerline worker and work-horse"
GOAL_WEB, GOAL_WORKER = 120.0, 150.0
BARE_QUEUE = "benchmark-bare"


class HorseWatch:
    """Sample the memory of a worker's work-horses: the children that come and go.

    A child still there when sampling stops (the RQ scheduler, or a job not yet done) is not
    counted; a work-horse always exits when its job is done.
    """

    def __init__(self, parent: int) -> None:
        self.parent = parent
        self.peaks: dict[int, tuple[float, float]] = {}
        self.gone: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.003):
            alive = set(children(self.parent))
            self.gone |= set(self.peaks) - alive
            for pid in alive:
                rss, pss = rss_mb(pid), pss_mb(pid)
                old_rss, old_pss = self.peaks.get(pid, (0.0, 0.0))
                self.peaks[pid] = (max(rss, old_rss), max(pss, old_pss))

    @property
    def horses(self) -> int:
        return len(self.gone)

    @property
    def peak_rss(self) -> float:
        return max((self.peaks[pid][0] for pid in self.gone), default=0.0)

    @property
    def peak_pss(self) -> float:
        return max((self.peaks[pid][1] for pid in self.gone), default=0.0)

    def __enter__(self) -> HorseWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _sms(d: WebDeployment, sender: str, body: str, n: int) -> Request:
    params = {
        "MessageSid": f"SM{n:032x}",
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "From": sender,
        "To": LINE_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }
    return signed_form(d.base_url, "/webhooks/sms", params, DEFAULT_AUTH_TOKEN)


def _get(url: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        response.read()


def _run_job(queue: Queue, name: str, *args: object) -> object:
    job = queue.enqueue(f"benchmarks.jobs.{name}", *args, result_ttl=60)
    result = job_result(job, 60)
    if result is None:
        raise RuntimeError(f"job {name} did not finish")
    return result.return_value


@contextmanager
def _bare_worker(redis_url: str, log_path: os.PathLike[str]) -> Iterator[subprocess.Popen[bytes]]:
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rq.cli", "worker", "--url", redis_url, BARE_QUEUE],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop_group(proc)


def run(ctx: Context) -> Outcome:
    out = Outcome(NAME, TITLE)
    texters = 20 if ctx.smoke else 200
    numbers = Numbers(area="613").take(texters)
    folder = ctx.folder(NAME)
    with deployed(ctx, NAME, rota_line(40)) as d:
        queue = Queue(QUEUE_NAME, connection=d.line.redis)
        worker = d.start_worker()
        _run_job(queue, "empty")  # the worker is up
        requests = [_sms(d, n, "hi", i) for i, n in enumerate(numbers)]
        requests += [_sms(d, n, "yes", i + texters) for i, n in enumerate(numbers)]
        expected = d.twilio.arrived() + 2 * texters
        with HorseWatch(worker.pid) as busy:
            result = closed_loop(d.port, requests, 4, 120)
            if result.problems():
                raise RuntimeError(f"warm-up webhooks: {result.problems()}")
            for _ in range(10):
                _get(f"{d.base_url}/console/login")
            # Welcome and "number N in line" for every texter, and offers to free supporters.
            if not d.twilio.wait_count(expected, 120):
                raise RuntimeError(f"warm-up texts did not all go out\n{d.worker_logs()}")
            time.sleep(0.5)
        horse_own = float(_run_job(queue, "rss_mb"))  # type: ignore[arg-type]
        web = {pid: (rss_mb(pid), pss_mb(pid)) for pid in children(d.web.pid)}
        worker_rss, worker_pss = rss_mb(worker.pid), pss_mb(worker.pid)
        requests_seen = result.count + 10

    bare_requests = [_sms(d, n, "hi", i) for i, n in enumerate(numbers * 2)][:requests_seen]
    port = free_port()
    with gunicorn("benchmarks.bare_app:create_app()", {}, port, folder / "bare.log") as bare:
        closed_loop(port, bare_requests, 4, 60)
        bare_web = max(rss_mb(pid) for pid in children(bare.pid))
    with _bare_worker(ctx.redis.url, folder / "bare-worker.log") as rq_worker:
        bare_queue = Queue(BARE_QUEUE, connection=d.line.redis)
        _run_job(bare_queue, "empty")
        bare_horse = float(_run_job(bare_queue, "rss_mb"))  # type: ignore[arg-type]
        bare_worker = rss_mb(rq_worker.pid)

    web_rss = max(rss for rss, _ in web.values())
    horse_rss = max(busy.peak_rss, horse_own)
    out.figure(
        f"gunicorn web workers, RSS (PSS), after {requests_seen} requests",
        ", ".join(f"{rss:.1f} MB ({pss:.1f} MB)" for rss, pss in web.values()),
    )
    out.figure("peerline worker process, RSS (PSS)", f"{worker_rss:.0f} MB ({worker_pss:.0f} MB)")
    if busy.horses:
        out.figure(
            f"work-horse peak RSS (PSS), {busy.horses} jobs sampled",
            f"{busy.peak_rss:.0f} MB ({busy.peak_pss:.0f} MB)",
        )
    else:
        out.figure("work-horses", "none: jobs run in the worker process itself")
    out.figure("RSS of the process running a job, read by the job", f"{horse_own:.0f} MB")
    out.base("bare Flask gunicorn worker, RSS", f"{bare_web:.0f} MB")
    out.base("plain rq worker, RSS", f"{bare_worker:.0f} MB")
    out.base("plain rq worker's work-horse, read by the same job", f"{bare_horse:.0f} MB")
    out.ratio("web worker / bare Flask", web_rss / bare_web)
    out.ratio("peerline worker / plain rq worker", worker_rss / bare_worker)
    met_web = out.goal(f"web worker < {GOAL_WEB:.0f} MB", web_rss < GOAL_WEB)
    met_worker = out.goal(
        f"worker and work-horse < {GOAL_WORKER:.0f} MB", max(worker_rss, horse_rss) < GOAL_WORKER
    )
    out.row(
        "Memory, gunicorn web worker (RSS)",
        f"{web_rss:.0f} MB",
        f"{bare_web:.0f} MB (bare Flask)",
        f"< {GOAL_WEB:.0f} MB",
        met_web,
    )
    out.row(
        "Memory, worker / work-horse (RSS)",
        f"{worker_rss:.0f} MB / {horse_rss:.0f} MB",
        f"{bare_worker:.0f} MB / {bare_horse:.0f} MB (plain rq)",
        f"< {GOAL_WORKER:.0f} MB",
        met_worker,
    )
    return out
