"""4. Reminder fan-out: texts to 10,000 subscribers written and enqueued, then sent through the
shared rate limiter by two worker processes to the local Twilio.

Scheduling is what the group reminder job does (`Runtime.group_reminder`, with the subscribers
already in the database): one transaction writes a row per subscriber (recipient and body
encrypted) in bulk, then `JobsAfterCommit.dispatch` enqueues one send job per row through Redis
pipelines (`JobQueue.send_many`). The two `peerline worker` processes then send them all from the
line number, paced by the limiter in Redis at the configured rate (`PEERLINE_SEND_RATES`). The
local Twilio notes when each message arrives; the achieved rate is measured over the whole run and
in each second of the clock (a sliding one-second window is shown too). Each text arrives a little
after its slot, by a delay that varies; the limiter keeps a margin for that variation (see "The
margin" in `peerline/service/ratelimit.py`), so the count at the receiving end stays within the
rate too. Status callbacks are off here: on this machine they would compete with the workers for
the CPU.

It runs twice: all the texts at 200 segments/s, and a smaller batch at 40/s, a rate two workers
keep up with on this machine, so the limiter's own accuracy shows even where the workers are
what sets the pace. Baseline, in the same run: the configured rates (what the limiter should
deliver), and for the scheduling, as many empty jobs enqueued with RQ (the queue's own cost).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from rq import Queue
from sqlalchemy import insert, select, update

from benchmarks.common import Context, Outcome, job_result, ms
from benchmarks.deploy import WebDeployment, always_on_line, deployed
from benchmarks.seed import Numbers
from peerline.service.job_queue import QUEUE_NAME
from peerline.service.models import Contact, Group, GroupSubscription, utcnow
from peerline.service.ratelimit import DEFAULT_JITTER
from peerline.service.runtime import Runtime

NAME = "fanout"
TITLE = "Reminder fan-out: written, enqueued, sent through the shared rate limiter"
# The group whose reminder goes out; its text is the catalogue's, one segment long.
GROUPS = """\
groups:
  - name: Online peer support group
    days: [mon, wed, fri]
    start: "13:00"
    minutes: 60
    join: "https://example.org/groups"
"""
GOAL_SCHEDULE = 5.0
GOAL_RATE_TOLERANCE = 0.05


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Return the most arrivals in any half-open window of `window` seconds."""
    best, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


def max_in_seconds(times: list[float]) -> int:
    """Return the most arrivals in one second of the clock (windows [n, n + 1) of wall time)."""
    offset = time.time() - time.monotonic()
    buckets: dict[int, int] = {}
    for moment in times:
        second = int(moment + offset)
        buckets[second] = buckets.get(second, 0) + 1
    return max(buckets.values(), default=0)


@dataclass
class Sending:
    """What one fan-out saw."""

    count: int
    rate: float
    writing: float
    enqueueing: float
    arrivals: list[float]
    finished: bool
    first_after: float

    @property
    def schedule(self) -> float:
        return self.writing + self.enqueueing

    @property
    def span(self) -> float:
        return self.arrivals[-1] - self.arrivals[0] if len(self.arrivals) > 1 else 0.0

    @property
    def achieved(self) -> float:
        return (len(self.arrivals) - 1) / self.span if self.span else 0.0

    @property
    def window_max(self) -> int:
        return max_in_seconds(self.arrivals)

    @property
    def sliding_max(self) -> int:
        return max_in_window(self.arrivals)


def subscribe(d: WebDeployment, phones: list[str]) -> None:
    """Make these numbers the group's only subscribers, as if each had texted REMIND."""
    vault, now = d.line.vault, utcnow()
    with d.line.db.session() as session:
        session.execute(update(GroupSubscription).values(active=False))
        contact_ids = session.scalars(
            insert(Contact).returning(Contact.id),
            [
                {
                    "phone_hash": vault.lookup_hash(phone),
                    "phone_enc": vault.encrypt(phone),
                    "alias": f"S{phone.removeprefix('+')}",
                    "language": "en",
                    "created_at": now,
                }
                for phone in phones
            ],
        ).all()
        session.execute(
            insert(GroupSubscription),
            [{"contact_id": contact_id, "active": True} for contact_id in contact_ids],
        )


def fan_out(
    d: WebDeployment, subscribers: list[str], rate: float, limit: float, meeting: int
) -> Sending:
    """Start two workers at a rate, remind each subscriber of the group's meeting number
    `meeting` (its reminder goes out once), and wait for every text."""
    rates = f"long_code={rate:g},toll_free={rate:g},short_code={rate:g}"
    d.env["PEERLINE_SEND_RATES"] = rates
    queue = Queue(QUEUE_NAME, connection=d.line.redis)
    for _ in range(2):
        d.start_worker()
    for _ in range(4):  # both workers are up and waiting
        job = queue.enqueue("benchmarks.jobs.empty", result_ttl=60)
        if job_result(job, 30) is None:
            raise RuntimeError(f"workers not ready\n{d.worker_logs()}")
    subscribe(d, subscribers)
    with d.line.db.session() as session:
        group_id = session.scalars(select(Group.id)).one()
    # A meeting an hour or more away, so no text goes stale while it waits for its slot.
    starts = utcnow().replace(second=0, microsecond=0) + timedelta(hours=1, minutes=meeting)
    seen = d.twilio.arrived()
    started = time.perf_counter()
    with d.line.db.session() as session:
        runtime = Runtime(d.line, session)
        written_count = runtime.group_reminder(group_id, starts)
    written = time.perf_counter()
    if written_count != len(subscribers):
        raise RuntimeError(f"{written_count} reminders written for {len(subscribers)} subscribers")
    runtime.after_commit.dispatch(d.line)
    scheduled = time.perf_counter()
    finished = d.twilio.wait_count(seen + len(subscribers), limit)
    arrivals = sorted(moment for moment, _, _ in d.twilio.arrivals[seen:])
    d.stop_workers()
    d.line.redis.delete(f"rq:queue:{QUEUE_NAME}")  # what a time limit left behind
    first = arrivals[0] - _mono(started) if arrivals else 0.0
    return Sending(
        len(subscribers), rate, written - started, scheduled - written, arrivals, finished, first
    )


def run(ctx: Context) -> Outcome:
    out = Outcome(NAME, TITLE)
    count, rate = (200, 200.0) if ctx.smoke else (10_000, 200.0)
    paced_count, paced_rate = (100, 40.0) if ctx.smoke else (1_200, 40.0)
    numbers = Numbers(area="289")
    with deployed(ctx, NAME, always_on_line(2, extra=GROUPS), auto_status=False) as d:
        full = fan_out(
            d, numbers.take(count), rate, 20 if ctx.smoke else count / rate * 4 + 60, meeting=0
        )
        paced = fan_out(
            d, numbers.take(paced_count), paced_rate, paced_count / paced_rate * 2 + 30, meeting=1
        )
        # The queue's own cost for as many jobs, for comparison, with no worker to take them.
        queue = Queue(QUEUE_NAME, connection=d.line.redis)
        began = time.perf_counter()
        for _ in range(count):
            queue.enqueue("benchmarks.jobs.empty", result_ttl=0)
        empty_enqueue = time.perf_counter() - began
        d.line.redis.delete(f"rq:queue:{QUEUE_NAME}")

    out.figure(
        f"schedule {count:,} texts (write + enqueue)",
        f"{full.schedule:.2f} s ({full.writing:.2f} s writing, {full.enqueueing:.2f} s enqueueing)",
    )
    for run_, label in ((full, "all"), (paced, "paced")):
        limited = "" if run_.finished else " (TIME LIMIT)"
        out.figure(
            f"{label}: {run_.count:,} texts at {run_.rate:g}/s configured{limited}",
            f"{len(run_.arrivals):,} sent in {run_.span:.1f} s: {run_.achieved:.1f}/s; at most "
            f"{run_.window_max} in a second ({run_.sliding_max} in any sliding 1 s, "
            f"{max_in_window(run_.arrivals, 10.0)} in any sliding 10 s)",
        )
    out.figure("first text at Twilio after scheduling began", ms(full.first_after))
    out.base("configured rates", f"{rate:g}/s and {paced_rate:g}/s")
    out.base(
        f"the limiter's pace with its {DEFAULT_JITTER * 1000:g} ms margin",
        f"{rate / (1 + DEFAULT_JITTER):.1f}/s and {paced_rate / (1 + DEFAULT_JITTER):.1f}/s",
    )
    out.base(f"enqueue {count:,} empty RQ jobs", f"{empty_enqueue:.2f} s")
    out.ratio(f"achieved / configured at {rate:g}/s", full.achieved / rate)
    out.ratio(f"achieved / configured at {paced_rate:g}/s", paced.achieved / paced_rate)
    out.ratio("scheduling / empty enqueue", full.schedule / empty_enqueue)
    met_schedule = out.goal(f"scheduling < {GOAL_SCHEDULE:g} s", full.schedule < GOAL_SCHEDULE)
    tolerance = GOAL_RATE_TOLERANCE
    met_rate = out.goal(
        f"achieved within {tolerance:.0%} of configured {rate:g}/s",
        full.finished and abs(full.achieved - rate) <= tolerance * rate,
    )
    met_paced = out.goal(
        f"achieved within {tolerance:.0%} of configured {paced_rate:g}/s",
        paced.finished and abs(paced.achieved - paced_rate) <= tolerance * paced_rate,
    )
    met_cap = out.goal(
        "never above the configured rate in any second of the clock",
        full.window_max <= rate and paced.window_max <= paced_rate,
    )
    if not met_rate and full.achieved < rate * (1 - tolerance):
        out.notes.append(
            f"at {rate:g}/s the two workers, not the limiter, set the pace ({full.achieved:.0f}/s)"
        )
    out.row(
        f"Fan-out: schedule {count:,} texts",
        f"{full.schedule:.2f} s",
        f"{empty_enqueue:.2f} s (enqueue empty jobs)",
        f"< {GOAL_SCHEDULE:g} s",
        met_schedule,
    )
    for run_, met in ((full, met_rate and met_cap), (paced, met_paced and met_cap)):
        out.row(
            f"Fan-out: {run_.count:,} texts at {run_.rate:g}/s, 2 workers",
            f"{run_.achieved:.1f}/s (max {run_.window_max} in 1 s)",
            f"{run_.rate:g}/s configured",
            f"within {tolerance:.0%}, never above",
            met,
        )
    return out


def _mono(perf: float) -> float:
    """Convert a perf_counter reading to the monotonic clock the local Twilio stamps with."""
    return time.monotonic() - (time.perf_counter() - perf)
