"""Figures for the coverage picture and the reports: pure functions over plain values.

Nothing here touches Flask or the database: the views load rows, these functions count them in
the line's time zone, and the tests can check the arithmetic with hand-made inputs.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from peerline.service import rota

# More people an hour per supporter on shift than this is a thin hour: chats last about twenty
# minutes, so one supporter can take two an hour without anyone waiting long.
THIN_PER_SUPPORTER = 2.0


@dataclass(frozen=True)
class CoverageCell:
    """One hour of the week: supporters on shift against people who contacted the line."""

    day: int
    hour: int
    on_shift: int | None  # None: the hour does not exist that week (clocks went forward)
    contacts: float  # average per week over the weeks looked at

    @property
    def status(self) -> str:
        """Return "gap", "thin", "covered", "quiet" (nobody on, nobody came) or "none"."""
        if self.on_shift is None:
            return "none"
        if self.on_shift == 0:
            return "gap" if self.contacts > 0 else "quiet"
        if self.contacts / self.on_shift > THIN_PER_SUPPORTER:
            return "thin"
        return "covered"


@dataclass(frozen=True)
class Gap:
    """A run of hours on one day when people contacted the line and nobody was on shift."""

    day: int
    start_hour: int
    end_hour: int  # exclusive
    contacts: float  # per week, over the run


def on_shift_by_hour(
    rotas: Mapping[int, rota.SupporterRota],
    tz: ZoneInfo,
    monday: date,
    closures: rota.Closures | None = None,
) -> dict[tuple[int, int], int | None]:
    """Count the supporters on shift at half past each local hour of the week from `monday`."""
    start = rota.wall_to_utc(monday, 0, tz)
    end = rota.wall_to_utc(monday + timedelta(days=7), 0, tz)
    spans = [rota.intervals(r, tz, start, end, closures) for r in rotas.values()]
    starts = [[s for s, _ in supporter] for supporter in spans]
    counts: dict[tuple[int, int], int | None] = {}
    for day in range(7):
        on_date = monday + timedelta(days=day)
        for hour in range(24):
            at = rota.wall_to_utc(on_date, hour * 60 + 30, tz)
            if at.astimezone(tz).hour != hour:
                counts[day, hour] = None  # skipped by a spring-forward change
                continue
            total = 0
            for supporter, supporter_starts in zip(spans, starts, strict=True):
                index = bisect.bisect_right(supporter_starts, at) - 1
                if index >= 0 and supporter[index][1] > at:
                    total += 1
            counts[day, hour] = total
    return counts


def contacts_by_hour(
    started: Iterable[datetime], tz: ZoneInfo, weeks: int
) -> dict[tuple[int, int], float]:
    """Return the average number of contacts a week in each local (weekday, hour)."""
    totals: dict[tuple[int, int], int] = {}
    for moment in started:
        local = moment.astimezone(tz)
        key = (local.weekday(), local.hour)
        totals[key] = totals.get(key, 0) + 1
    return {key: count / max(weeks, 1) for key, count in totals.items()}


def coverage(
    on_shift: Mapping[tuple[int, int], int | None], contacts: Mapping[tuple[int, int], float]
) -> list[list[CoverageCell]]:
    """Return the week as seven rows (Monday first) of 24 hourly cells."""
    return [
        [
            CoverageCell(day, hour, on_shift.get((day, hour), 0), contacts.get((day, hour), 0.0))
            for hour in range(24)
        ]
        for day in range(7)
    ]


def gaps(rows: Sequence[Sequence[CoverageCell]]) -> list[Gap]:
    """Return the runs of gap hours, day by day, largest demand first."""
    found: list[Gap] = []
    for row in rows:
        run: list[CoverageCell] = []
        for cell in [*row, None]:
            if cell is not None and cell.status == "gap":
                run.append(cell)
                continue
            if run:
                found.append(
                    Gap(run[0].day, run[0].hour, run[-1].hour + 1, sum(c.contacts for c in run))
                )
                run = []
    return sorted(found, key=lambda g: (-g.contacts, g.day, g.start_hour))


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Return a percentile by linear interpolation between closest ranks (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class ConversationFacts:
    """The times and outcome of one conversation, as the reports count them."""

    created_at: datetime
    queued_at: datetime | None
    matched_at: datetime | None
    closed_at: datetime | None
    state: str
    rating: int | None
    priority: int = 0
    crisis_at: datetime | None = None

    @property
    def crisis(self) -> bool:
        """Say whether the conversation was flagged for crisis language."""
        return self.crisis_at is not None or self.priority > 0

    @property
    def wait_seconds(self) -> float | None:
        """Return how long the texter waited for a supporter, once matched."""
        if self.queued_at is None or self.matched_at is None:
            return None
        return max(0.0, (self.matched_at - self.queued_at).total_seconds())

    @property
    def abandoned(self) -> bool:
        """Say whether the texter asked for a peer and left before anyone took the chat."""
        return self.queued_at is not None and self.matched_at is None and self.state == "closed"


class _WaitPercentiles:
    """The median and 90th percentile of `waits`, the matched texters' waits in seconds."""

    if TYPE_CHECKING:
        # Only declared: a day's figures hold the list, a report gathers its days'.
        @property
        def waits(self) -> list[float]: ...

    @property
    def wait_median(self) -> float | None:
        """Return the median wait, in seconds."""
        return percentile(self.waits, 0.5)

    @property
    def wait_p90(self) -> float | None:
        """Return the 90th percentile wait, in seconds."""
        return percentile(self.waits, 0.9)


@dataclass
class DayFigures(_WaitPercentiles):
    """One local day's figures."""

    day: date
    contacts: int = 0
    asked: int = 0
    matched: int = 0
    abandoned: int = 0
    waits: list[float] = field(default_factory=list)
    ratings: list[int] = field(default_factory=list)
    crisis: int = 0
    calls: int = 0
    calls_answered: int = 0

    @property
    def rating_average(self) -> float | None:
        """Return the day's average rating."""
        return sum(self.ratings) / len(self.ratings) if self.ratings else None


class _SpanTotal:
    """A report's figure: the sum over its days of the day's figure of the same name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, report: Report, owner: type | None = None) -> int:
        return sum(getattr(day, self.name) for day in report.days)


@dataclass
class Report(_WaitPercentiles):
    """Contacts, waits, abandonment and ratings over a span of local days."""

    first: date
    last: date
    days: list[DayFigures]
    by_hour: list[int]

    # Each the sum of the days' figure of the same name.
    contacts = _SpanTotal()  # contacts in the span
    asked = _SpanTotal()  # asked to talk with a peer
    matched = _SpanTotal()  # matched with a supporter
    abandoned = _SpanTotal()  # left the queue before a supporter took the chat
    crisis = _SpanTotal()  # conversations flagged for crisis language
    calls = _SpanTotal()  # calls that came in
    calls_answered = _SpanTotal()  # calls a supporter answered

    @property
    def waits(self) -> list[float]:
        """Return every matched texter's wait, in seconds."""
        return [w for d in self.days for w in d.waits]

    @property
    def ratings(self) -> dict[int, int]:
        """Return how many times each rating 1 to 5 was given."""
        counts = dict.fromkeys(range(1, 6), 0)
        for d in self.days:
            for score in d.ratings:
                if score in counts:
                    counts[score] += 1
        return counts

    @property
    def rating_average(self) -> float | None:
        """Return the average rating over the span."""
        given = [score for d in self.days for score in d.ratings]
        return sum(given) / len(given) if given else None


def span_utc(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the UTC bounds [start, end) of local days `first` to `last` inclusive."""
    return rota.wall_to_utc(first, 0, tz), rota.wall_to_utc(last + timedelta(days=1), 0, tz)


def build_report(
    facts: Iterable[ConversationFacts],
    tz: ZoneInfo,
    first: date,
    last: date,
    calls: Iterable[tuple[datetime, bool]] = (),
) -> Report:
    """Count conversations (and calls: started, answered) by the local day and hour."""
    days = [DayFigures(first + timedelta(days=n)) for n in range((last - first).days + 1)]
    by_day = {d.day: d for d in days}
    by_hour = [0] * 24
    for fact in facts:
        local = fact.created_at.astimezone(tz)
        figures = by_day.get(local.date())
        if figures is None:
            continue
        by_hour[local.hour] += 1
        figures.contacts += 1
        figures.asked += fact.queued_at is not None
        figures.matched += fact.matched_at is not None
        figures.abandoned += fact.abandoned
        figures.crisis += fact.crisis
        if (wait := fact.wait_seconds) is not None:
            figures.waits.append(wait)
        if fact.rating is not None:
            figures.ratings.append(fact.rating)
    for started, answered in calls:
        figures = by_day.get(started.astimezone(tz).date())
        if figures is not None:
            figures.calls += 1
            figures.calls_answered += answered
    return Report(first, last, days, by_hour)


def report_rows(report: Report) -> list[list[str]]:
    """Return the report as CSV rows, a header then one row a day."""

    def number(value: float | None, digits: int = 0) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    rows = [
        [
            "date",
            "contacts",
            "asked_for_peer",
            "matched",
            "abandoned_before_matched",
            "wait_median_seconds",
            "wait_p90_seconds",
            "ratings",
            "rating_average",
            "crisis_flagged",
            "calls",
            "calls_answered",
        ]
    ]
    for d in report.days:
        rows.append(
            [
                d.day.isoformat(),
                str(d.contacts),
                str(d.asked),
                str(d.matched),
                str(d.abandoned),
                number(d.wait_median),
                number(d.wait_p90),
                str(len(d.ratings)),
                number(d.rating_average, 2),
                str(d.crisis),
                str(d.calls),
                str(d.calls_answered),
            ]
        )
    return rows
