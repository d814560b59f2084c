"""2. Time to first offer: from the YES webhook to the offer arriving at the local Twilio.

One `peerline worker` process (RQ, a work-horse forked per job, as in production) serves a line
whose supporters are all on shift and free. Each trial is a new texter: "hi" (the welcome is
awaited, so the worker is idle), then YES, timed from just before the webhook is posted until
the local Twilio accepts the offer text to a supporter. In between, the worker has sent the
texter's "you are number 1" reply, run the matching round and sent the offer: three jobs.

Baseline, interleaved with the trials on the same worker and Redis: an empty RQ job's round
trip, from enqueue until its result is seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rq import Queue

from benchmarks.common import Context, Outcome, job_result, ms, percentile
from benchmarks.deploy import Arrival, always_on_line, deployed
from benchmarks.seed import Numbers
from peerline.service.job_queue import QUEUE_NAME

NAME = "first_offer"
TITLE = "Time to first offer: YES webhook to the offer at Twilio, one worker"
GOAL_P95 = 0.250


def _to(number: str) -> Callable[[Arrival], bool]:
    """Match a message to one number."""
    return lambda arrival: arrival[1] == number


def run(ctx: Context) -> Outcome:
    out = Outcome(NAME, TITLE)
    trials = 5 if ctx.smoke else 60
    numbers = Numbers(area="905")
    offers: list[float] = []
    answered: list[float] = []
    replied: list[float] = []
    empties: list[float] = []
    with deployed(ctx, NAME, always_on_line(trials + 5)) as d:
        d.start_worker()
        queue = Queue(QUEUE_NAME, connection=d.line.redis)

        def round_trip() -> float:
            started = time.perf_counter()
            job = queue.enqueue("benchmarks.jobs.empty", result_ttl=60)
            if job_result(job, 20) is None:
                raise RuntimeError(f"empty job not done in 20 s\n{d.worker_logs()}")
            return time.perf_counter() - started

        round_trip()  # the worker is up and has imported what it needs
        for _ in range(trials):
            texter = numbers.take(1)[0]
            seen = d.twilio.arrived()
            d.sms(texter, "hi")
            if d.twilio.wait_arrival(seen, _to(texter), 20) is None:
                raise RuntimeError(f"no welcome to {texter}\n{d.worker_logs()}")
            time.sleep(0.05)  # let the worker settle back on the queue
            empties.append(round_trip())
            seen = d.twilio.arrived()
            started = time.monotonic()
            d.sms(texter, "YES")
            answered.append(time.monotonic() - started)
            offer = d.twilio.wait_arrival(seen, lambda a: "#take" in a[2], 20)
            reply = d.twilio.wait_arrival(seen, _to(texter), 20)
            if offer is None or reply is None:
                raise RuntimeError(f"no offer or reply for {texter}\n{d.worker_logs()}")
            offers.append(offer[0] - started)
            replied.append(reply[0] - started)
    p50, p95 = percentile(offers, 50), percentile(offers, 95)
    b50, b95 = percentile(empties, 50), percentile(empties, 95)
    summary = "p50 / p95 / max"
    out.figure(
        f"YES to offer at Twilio, {summary} ({trials} texters)",
        f"{ms(p50)} / {ms(p95)} / {ms(max(offers))}",
    )
    out.figure("  of which: webhook answered, p50", ms(percentile(answered, 50)))
    out.figure("  of which: 'number 1 in line' at Twilio, p50", ms(percentile(replied, 50)))
    out.base(
        f"empty RQ job round trip, {summary}",
        f"{ms(b50)} / {ms(b95)} / {ms(max(empties))}",
    )
    out.ratio("first offer / empty job, p50", p50 / b50)
    out.ratio("first offer / empty job, p95", p95 / b95)
    met = out.goal(f"p95 < {ms(GOAL_P95)}", p95 < GOAL_P95)
    out.row(
        "Time to first offer, p50 / p95",
        f"{ms(p50)} / {ms(p95)}",
        f"{ms(b50)} / {ms(b95)} (empty RQ job)",
        f"p95 < {ms(GOAL_P95)}",
        met,
    )
    return out
