"""The crisis check's time per message: ``python -m benchmarks crisis``.

Every inbound text goes through `CrisisDetector.detect`, and what it found through
`CrisisDetector.answer` (whose crisis the words tell: words about another person are read again,
rewritten as the writer's, since session 18), before anything else, so the two must stay well
under a millisecond. The messages are the labelled development and held-out sets (crisis
messages and their near misses, as people text, and the texts about other people), plus long
everyday texts up to the 1,600 characters a concatenated SMS can reach. Each message is timed
alone, many rounds over, the rounds of the line and of the baseline taking turns; a message's
time is its median over the rounds, and the figures are the median and p99 of those over all
messages (plus the raw p99 of every single timing, which on a busy shared machine mostly
measures the scheduler, and the spread of the per-round medians).

Baseline, in the same run: the cheapest check one could write, ``str.lower()`` and ``in`` over
a short list of crisis words (it finds far less and raises far more false alarms; it only
shows what a message costs to touch at all).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.common import ROOT, Context, Outcome, percentile
from peerline.service.crisis import CrisisDetector
from peerline.service.crisis_eval import burst_windows, load, load_bursts
from peerline.service.crisis_others_eval import load_items

NAME = "crisis"
TITLE = "Crisis check: time per message, phrases and context"
GOAL_P99_MS = 1.0
BASELINE_WORDS = (
    "suicide",
    "suicidal",
    "kill myself",
    "kms",
    "want to die",
    "end my life",
    "overdose",
    "pills",
    "cut myself",
    "self harm",
    "suicidarme",
    "matarme",
    "morir",
    "pastillas",
    "quitarme la vida",
)


def messages() -> list[str]:
    """Return the texts to time: the labelled sets and long everyday messages."""
    texts: list[str] = []
    for name in ("crisis_examples.yaml", "crisis_heldout.yaml"):
        path = ROOT / "tests" / name
        if path.exists():
            texts += [e.text for e in load(path)]
    for name in ("someone_else_dev.yaml", "someone_else_heldout.yaml"):
        path = ROOT / "tests" / name
        if path.exists():
            texts += [item["text"] for item in load_items(path)]
    day = "had a long day at work, the bus was late again and my phone died on the way home. "
    dia = "tuve un dia largo en el trabajo, el camion llego tarde y se me murio el celular. "
    for n in (160, 480, 1600):
        texts.append((day * 20)[:n])
        texts.append((dia * 20)[:n])
    return texts


def bursts() -> list[tuple[str, ...]]:
    """Return the bursts as the line reads them: each text with the ones before it."""
    windows: list[tuple[str, ...]] = []
    for name in ("crisis_bursts.yaml", "crisis_bursts_heldout.yaml"):
        path = ROOT / "tests" / name
        if path.exists():
            for burst in load_bursts(path):
                windows += [tuple(w) for w in burst_windows(burst.texts) if len(w) > 1]
    return windows


def baseline_check(text: str) -> bool:
    """Return whether a crisis word is in the text: the cheapest check there is."""
    lowered = text.lower()
    return any(word in lowered for word in BASELINE_WORDS)


def time_each(
    check: Callable[[str], object], texts: Sequence[str], rounds: int
) -> list[list[float]]:
    """Return, per round, the seconds each text took."""
    return time_alternately([check], texts, rounds)[0]


def time_alternately(
    checks: Sequence[Callable[[str], object]], texts: Sequence[str], rounds: int
) -> list[list[list[float]]]:
    """Return, for each check, per round, the seconds each text took; each round times every
    check in turn, so that a slow spell of the machine falls on all of them alike."""
    clock = time.perf_counter
    timings: list[list[list[float]]] = [[] for _ in checks]
    for _ in range(rounds):
        for check, rows in zip(checks, timings, strict=True):
            row = []
            for text in texts:
                started = clock()
                check(text)
                row.append(clock() - started)
            rows.append(row)
    return timings


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us"


def run(ctx: Context) -> Outcome:
    """Time the detector and the baseline over the same messages."""
    outcome = Outcome(NAME, TITLE)
    detector = CrisisDetector.load()
    if detector.model is not None:
        detector.model.spend_memory_on_speed()  # as `peerline worker` does, where texts are read
    texts = messages()
    if ctx.smoke:  # the smoke run shows the benchmark works, on one message in twenty
        texts = texts[::20]
    rounds = 2 if ctx.smoke else 30

    def check(text: str) -> object:
        """Read `text` as the runtime does: what is found, then whose crisis it tells."""
        return detector.answer(text, detector.detect(text))

    for text in texts:  # warm up: compile caches, first allocations
        check(text)
    # The line and the baseline alternate round by round.
    ours, base = time_alternately([check, baseline_check], texts, rounds)
    # Per message, the median over rounds: the check's own time, not the scheduler's pauses
    # on a shared machine (the raw p99 over every timing is printed beside it).
    per_message = [statistics.median(column) for column in zip(*ours, strict=True)]
    per_message_base = [statistics.median(column) for column in zip(*base, strict=True)]
    flat = [t for row in ours for t in row]
    round_medians = [statistics.median(row) for row in ours]
    p99 = percentile(per_message, 99)
    outcome.figure("messages x rounds", f"{len(texts)} x {rounds}")
    outcome.figure("median per message", _us(statistics.median(per_message)))
    outcome.figure("p99 per message", _us(p99))
    outcome.figure("slowest message", _us(max(per_message)))
    outcome.figure("p99 of every single timing (raw)", _us(percentile(flat, 99)))
    outcome.figure(
        "spread of round medians",
        f"{_us(min(round_medians))} to {_us(max(round_medians))} "
        f"(stdev {_us(statistics.pstdev(round_medians))})",
    )
    # A burst (the newest text read with the ones before it, when it alone says nothing) costs
    # two checks; timed the same way, beside the goal, which is per message.
    windows = bursts()[:: 20 if ctx.smoke else 1]
    burst_times = time_each(detector.detect_burst, windows, rounds)  # type: ignore[arg-type]
    per_burst = [statistics.median(column) for column in zip(*burst_times, strict=True)]
    if per_burst:
        outcome.figure(
            f"bursts read together ({len(per_burst)}): median / p99",
            f"{_us(statistics.median(per_burst))} / {_us(percentile(per_burst, 99))}",
        )
    longest = max(range(len(texts)), key=lambda i: len(texts[i]))
    outcome.figure(f"longest message ({len(texts[longest])} chars)", _us(per_message[longest]))
    outcome.base("median per message (lower + in)", _us(statistics.median(per_message_base)))
    outcome.base("p99 per message (lower + in)", _us(percentile(per_message_base, 99)))
    if statistics.median(per_message_base) > 0:
        outcome.ratio(
            "median, detector / baseline",
            statistics.median(per_message) / statistics.median(per_message_base),
        )
    met = outcome.goal(f"p99 under {GOAL_P99_MS:g} ms per message", p99 * 1000 < GOAL_P99_MS)
    outcome.row(
        "Crisis check, p99 per message",
        _us(p99),
        _us(percentile(per_message_base, 99)),
        f"< {GOAL_P99_MS:g} ms",
        None if ctx.smoke else met,
    )
    outcome.notes.append(f"{detector.phrase_count} phrase patterns; messages from {Path('tests')}")
    return outcome
