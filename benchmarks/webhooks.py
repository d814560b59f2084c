"""1. Webhook throughput and latency: signed inbound SMS through gunicorn, PostgreSQL and Redis.

Measured against the bare Flask app of `benchmarks/bare_app.py` under the same gunicorn command
(the Procfile's: two workers of four threads), with the same signed request bodies.

- Closed loop at a fixed concurrency (as many connections as gunicorn has threads): throughput
  and latency for first messages from new texters, then for a mix with existing conversations.
  The line and bare Flask run side by side (both servers up, idle when not measured) and are
  measured in alternating rounds, line then bare, five times: a round's ratio compares two
  neighbouring stretches of the same machine, so a noisy neighbour moves both. The median of the
  rounds' ratios is the figure, the lowest and highest its spread.
- Open loop at a fixed 100 requests per second: latency from when each request was due; and
  again at half the throughput the line reached, to see its latency when it is not saturated.

The mix is what a busy line sees: 40% first messages ("hi" from a new number, answered with the
welcome), 20% YES from welcomed texters (they join the queue and hear their place), 20% texts
from texters already waiting, 20% texts in active chats (relayed to the supporter). No worker runs
while the web process is measured: the webhook takes each text into Redis and a worker's drain
job steps it. So that the figure hides nothing, two `peerline worker`s are then started on the
texts taken in, and the rate at which they step them (with the sends and matching that follow)
is reported too: that is the line's sustained capacity here, the webhook's is its burst capacity.
"""

from __future__ import annotations

import itertools
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from benchmarks.common import Context, Outcome, latency_summary, ms, percentile
from benchmarks.deploy import WebDeployment, deployed, gunicorn, rota_line
from benchmarks.load import LoadResult, Request, closed_loop, open_loop, signed_form
from benchmarks.seed import Numbers, texters
from peerline.service.availability import load_line_rotas
from peerline.service.models import ACTIVE, QUEUED, WELCOMED, utcnow
from tests.support.deploy import LINE_NUMBER
from tests.support.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.support.servers import free_port

NAME = "webhooks"
TITLE = "Webhook throughput and latency: signed SMS through gunicorn vs a bare Flask route"
CONCURRENCY = 8  # gunicorn's 2 workers x 4 threads
RATE = 100.0  # requests per second for the open-loop latency
SUPPORTERS = 40
QUEUED_POOL = 200
GOAL_RATIO, GOAL_P99 = 0.5, 0.025
HALF_CAP = 300  # requests per second, at most, for the "half its capacity" run
ROUNDS = 5  # alternating rounds of the line and the baseline


class Traffic:
    """Prepare signed inbound SMS: first messages, and a mix with existing conversations."""

    def __init__(self, d: WebDeployment, numbers: Numbers, welcomed: list[str]) -> None:
        self.d, self.numbers = d, numbers
        self.welcomed = iter(welcomed)
        self.sids = itertools.count()
        self.rng = random.Random(9)
        self.queued: list[str] = []
        self.active: list[str] = []

    def sms(self, sender: str, body: str) -> Request:
        params = {
            "MessageSid": f"SM{next(self.sids):032x}",
            "AccountSid": DEFAULT_ACCOUNT_SID,
            "From": sender,
            "To": LINE_NUMBER,
            "Body": body,
            "NumMedia": "0",
            "ApiVersion": "2010-04-01",
        }
        return signed_form(self.d.base_url, "/webhooks/sms", params, DEFAULT_AUTH_TOKEN)

    def first_messages(self, count: int) -> list[Request]:
        return [self.sms(number, "hi") for number in self.numbers.take(count)]

    def mix(self, count: int) -> list[Request]:
        requests = []
        kinds = itertools.cycle(["new", "yes", "new", "waiting", "chat"])
        for kind in itertools.islice(kinds, count):
            if kind == "new":
                requests.append(self.sms(self.numbers.take(1)[0], "hi"))
            elif kind == "yes":
                requests.append(self.sms(next(self.welcomed), "yes"))
            elif kind == "waiting":
                requests.append(self.sms(self.rng.choice(self.queued), "ok, still here"))
            else:
                words = "it has been a hard week, thanks for listening"
                requests.append(self.sms(self.rng.choice(self.active), words))
        return requests


def _fill(d: WebDeployment, numbers: Numbers, welcomed: int) -> Traffic:
    line = d.line
    with line.db.session() as session:
        rotas = load_line_rotas(session, line.settings.line_timezone)
        on_shift = rotas.on_shift(utcnow() + timedelta(seconds=1))
    welcomed_numbers = numbers.take(welcomed)
    texters(line, welcomed_numbers, WELCOMED, alias_prefix="W")
    traffic = Traffic(d, numbers, welcomed_numbers)
    traffic.queued = numbers.take(QUEUED_POOL)
    texters(line, traffic.queued, QUEUED, alias_prefix="Q")
    # One chat per supporter on shift: without relay numbers that is each one's capacity.
    traffic.active = numbers.take(len(on_shift))
    texters(line, traffic.active, ACTIVE, on_shift, alias_prefix="A")
    _settle(d)
    return traffic


def _settle(d: WebDeployment) -> None:
    """Let PostgreSQL do now what the fill would have it do during the rounds."""
    # Thousands of rows just written wake autovacuum and the checkpointer a few seconds later,
    # on the same two cores as the rounds: the webhook does not touch the database, but they
    # would take CPU from one round and not its neighbour.
    if not d.line.db.is_postgres:
        return
    with d.line.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
        conn.exec_driver_sql("CHECKPOINT")


def _step_taken(d: WebDeployment, timeout: float) -> tuple[int, float]:
    """Start two workers on the texts the webhooks took in; return (texts, stepped per second)."""
    taken = d.line.inbound.size()
    for _ in range(2):
        d.start_worker()
    # Timed from the first text stepped: a worker process takes a second to start.
    d.wait_until(lambda: d.line.inbound.size() < taken, timeout, "the first drain")
    left, started = d.line.inbound.size(), time.monotonic()
    d.wait_until(lambda: d.line.inbound.size() == 0, timeout, "the drained texts")
    rate = left / max(time.monotonic() - started, 1e-6)
    if d.line.inbound.failed():
        raise RuntimeError(f"{d.line.inbound.failed()} texts could not be stepped")
    return taken, rate


def _check(result: LoadResult, what: str) -> None:
    if result.problems():
        raise RuntimeError(f"{what}: {result.problems()}")


@dataclass
class Rounds:
    """Alternating closed-loop rounds of the line and the baseline, and their ratios."""

    line: list[LoadResult] = field(default_factory=list)
    bare: list[LoadResult] = field(default_factory=list)

    def ratios(self) -> list[float]:
        return [a.throughput / b.throughput for a, b in zip(self.line, self.bare, strict=True)]

    def ratio(self) -> float:
        return statistics.median(self.ratios())

    def spread(self) -> str:
        ratios = self.ratios()
        return f"{min(ratios):.2f}x to {max(ratios):.2f}x over {len(ratios)} rounds"

    def throughput(self, side: str) -> float:
        return statistics.median(r.throughput for r in getattr(self, side))

    def latencies(self, side: str) -> list[float]:
        return [x for r in getattr(self, side) for x in r.latencies]

    def count(self, side: str) -> int:
        return sum(r.count for r in getattr(self, side))


def _alternate(
    line_port: int,
    bare_port: int,
    line_requests: Callable[[int], list[Request]],
    bare_requests: Callable[[int], list[Request]],
    per_round: int,
    seconds: float,
    what: str,
) -> Rounds:
    """Measure the line and the bare app in alternating rounds of the same length."""
    rounds = Rounds()
    for n in range(ROUNDS):
        result = closed_loop(line_port, line_requests(per_round), CONCURRENCY, seconds)
        _check(result, f"{what}, round {n + 1}")
        rounds.line.append(result)
        base = closed_loop(bare_port, bare_requests(per_round), CONCURRENCY, seconds)
        _check(base, f"bare for {what}, round {n + 1}")
        rounds.bare.append(base)
    return rounds


def run(ctx: Context) -> Outcome:
    out = Outcome(NAME, TITLE)
    # Each phase has a line of its own: every new texter gets an alias, and the phases together
    # must stay well inside the alias space (see docs/performance.md, "aliases").
    # Rounds long enough (several seconds at either rate) that one stall does not decide them.
    per_round, round_s = (40, 4.0) if ctx.smoke else (1500, 12.0)
    closed_n = per_round * ROUNDS
    open_s = 1.5 if ctx.smoke else 10.0
    open_n = int(RATE * open_s)
    warm = 40 if ctx.smoke else 100
    numbers = Numbers()
    flood = "1000000"  # a chat's texter writes often here: the flood guard would step in
    bare_port = free_port()
    with gunicorn("benchmarks.bare_app:create_app()", {}, bare_port, ctx.folder(NAME) / "bare.log"):
        with deployed(
            ctx, f"{NAME}-new", rota_line(SUPPORTERS), PEERLINE_FLOOD_PER_MINUTE=flood
        ) as d:
            traffic = _fill(d, numbers, welcomed=0)
            _check(closed_loop(d.port, traffic.first_messages(warm), CONCURRENCY, 30), "warm-up")
            _check(closed_loop(bare_port, traffic.first_messages(warm), CONCURRENCY, 30), "bare")
            new = _alternate(
                d.port, bare_port, traffic.first_messages, traffic.first_messages,
                per_round, round_s, "new texters",
            )  # fmt: skip
        with deployed(
            ctx, f"{NAME}-mix", rota_line(SUPPORTERS), PEERLINE_FLOOD_PER_MINUTE=flood
        ) as d:
            welcomed = int(warm + closed_n + open_n + HALF_CAP * open_s) // 5
            traffic = _fill(d, numbers, welcomed=welcomed)
            _check(closed_loop(d.port, traffic.mix(warm), CONCURRENCY, 30), "warm-up")
            mix = _alternate(
                d.port, bare_port, traffic.mix, traffic.first_messages,
                per_round, round_s, "mix",
            )  # fmt: skip
            paced = open_loop(d.port, traffic.mix(open_n), RATE, open_s)
            _check(paced, "paced mix")
            bare_paced = open_loop(bare_port, traffic.first_messages(open_n), RATE, open_s)
            _check(bare_paced, "bare paced")
            # And at half the rate the line just sustained, to see its latency when not
            # saturated. (Capped: the texts are prepared, each YES from a texter welcomed
            # beforehand.)
            half = min(HALF_CAP, max(5.0, round(mix.throughput("line") / 2)))
            relaxed = open_loop(d.port, traffic.mix(int(half * open_s)), half, open_s)
            _check(relaxed, "half-rate mix")
            stepped = _step_taken(d, timeout=120 if ctx.smoke else 600)

    lat = "p50 / p95 / p99 / max"
    for label, rounds in (("new texters", new), ("mix", mix)):
        out.figure(
            f"{label}, {CONCURRENCY} conns, median of {ROUNDS} rounds",
            f"{rounds.throughput('line'):.0f} req/s ({rounds.count('line')} req)",
        )
        out.figure(f"{label} latency {lat}", latency_summary(rounds.latencies("line")))
        out.base(
            f"bare Flask beside {label}, median of {ROUNDS} rounds",
            f"{rounds.throughput('bare'):.0f} req/s ({rounds.count('bare')} req)",
        )
        out.ratio(f"{label} / bare throughput (median; {rounds.spread()})", rounds.ratio())
    out.figure(f"mix at {RATE:.0f} req/s, latency {lat}", latency_summary(paced.latencies))
    out.figure(f"mix at {half:.0f} req/s, latency {lat}", latency_summary(relaxed.latencies))
    out.figure(
        f"texts stepped by 2 workers after the webhooks (of {stepped[0]})", f"{stepped[1]:.0f}/s"
    )
    out.base(f"bare Flask latency {lat}", latency_summary(new.latencies("bare")))
    out.base(f"bare at {RATE:.0f} req/s, latency {lat}", latency_summary(bare_paced.latencies))
    p99 = percentile(paced.latencies, 99)
    met_ratio = min(new.ratio(), mix.ratio()) >= GOAL_RATIO
    out.goal(f"throughput >= {GOAL_RATIO:.0%} of baseline (new and mix, median)", met_ratio)
    out.goal(f"p99 < {ms(GOAL_P99)} at {RATE:.0f} req/s", p99 < GOAL_P99)
    for label, rounds in (("new texters", new), ("mix", mix)):
        out.row(
            f"Webhook throughput, {label} (median of {ROUNDS} alternating rounds)",
            f"{rounds.throughput('line'):.0f} req/s; {rounds.ratio():.2f}x ({rounds.spread()})",
            f"{rounds.throughput('bare'):.0f} req/s (bare Flask)",
            f">= {GOAL_RATIO:.0%} of baseline",
            rounds.ratio() >= GOAL_RATIO,
        )
    out.row(
        f"Webhook p50 / p99 at {RATE:.0f} req/s (mix)",
        f"{ms(percentile(paced.latencies, 50))} / {ms(p99)}",
        f"{ms(percentile(bare_paced.latencies, 50))} / {ms(percentile(bare_paced.latencies, 99))}",
        f"p99 < {ms(GOAL_P99)}",
        p99 < GOAL_P99,
    )
    out.row(
        f"Webhook p50 / p99 at {half:.0f} req/s (mix, half its capacity)",
        f"{ms(percentile(relaxed.latencies, 50))} / {ms(percentile(relaxed.latencies, 99))}",
        "",
        "",
        None,
    )
    out.row(
        "Texts stepped by 2 workers (drain, sends, matching)",
        f"{stepped[1]:.0f} texts/s",
        "",
        "",
        None,
    )
    return out
