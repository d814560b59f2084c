"""After-chat figures for the reports (issue 21): topics over time, the share of chats with a
debrief, and supporter load by week. Counts only: no note, no words, ever."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class RecordFacts:
    """What one ended chat's record gives the reports (no text)."""

    ended_at: datetime | None  # never None for the rows the reports read (ended in the span)
    supporter: str | None
    topics: str  # comma-separated topic words
    debrief: bool
    referred: bool
    supporter_score: int | None
    channel: str = "sms"  # sms or voice (an answered call)


@dataclass
class RecordFigures:
    """The after-chat figures of a span of local days, day by day."""

    days: list[date]
    chats: list[int]
    debriefs: list[int]
    referred: list[int]
    scores: list[int] = field(default_factory=list)
    voice: list[int] = field(default_factory=list)  # of the contacts per day, answered calls
    topics: dict[str, list[int]] = field(default_factory=dict)  # topic -> chats per day
    load: dict[str, list[int]] = field(default_factory=dict)  # supporter -> chats per day

    @property
    def debrief_share(self) -> float | None:
        """Return the share of chats after which the supporter asked for a debrief."""
        total = sum(self.chats)
        return sum(self.debriefs) / total if total else None

    @property
    def score_average(self) -> float | None:
        """Return the average of the supporters' own 1-5 after their chats."""
        return sum(self.scores) / len(self.scores) if self.scores else None

    @property
    def weeks(self) -> list[date]:
        """Return the Mondays of the weeks the span touches."""
        return sorted({d - timedelta(days=d.weekday()) for d in self.days})

    def by_week(self, per_day: Sequence[int]) -> list[int]:
        """Return day counts summed into the weeks of `weeks`."""
        index = {monday: n for n, monday in enumerate(self.weeks)}
        sums = [0] * len(index)
        for day, count in zip(self.days, per_day, strict=True):
            sums[index[day - timedelta(days=day.weekday())]] += count
        return sums

    def topics_by_week(self) -> dict[str, list[int]]:
        """Return each topic's chats week by week."""
        return {t: self.by_week(counts) for t, counts in self.topics.items()}

    def load_by_week(self) -> dict[str, list[int]]:
        """Return each supporter's chats week by week."""
        return {s: self.by_week(counts) for s, counts in self.load.items()}

    def topic_totals(self) -> list[tuple[str, int]]:
        """Return each topic with its chats over the span, the most frequent first."""
        return sorted(((t, sum(n)) for t, n in self.topics.items()), key=lambda x: (-x[1], x[0]))


def build_record_figures(
    facts: Iterable[RecordFacts],
    tz: ZoneInfo,
    first: date,
    last: date,
    topics: Sequence[str] = (),
) -> RecordFigures:
    """Count ended chats' records by the local day they ended; `topics` always get a column."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    index = {day: n for n, day in enumerate(days)}
    figures = RecordFigures(days, [0] * len(days), [0] * len(days), [0] * len(days))
    figures.voice = [0] * len(days)
    topic_counts = {t: [0] * len(days) for t in topics}
    load: dict[str, list[int]] = {}
    for fact in facts:
        if fact.ended_at is None:
            continue
        n = index.get(fact.ended_at.astimezone(tz).date())
        if n is None:
            continue
        figures.chats[n] += 1
        figures.debriefs[n] += fact.debrief
        figures.referred[n] += fact.referred
        figures.voice[n] += fact.channel == "voice"
        if fact.supporter_score is not None:
            figures.scores.append(fact.supporter_score)
        for topic in filter(None, fact.topics.split(",")):
            topic_counts.setdefault(topic, [0] * len(days))[n] += 1
        if fact.supporter:
            load.setdefault(fact.supporter, [0] * len(days))[n] += 1
    figures.topics = dict(sorted(topic_counts.items()))
    figures.load = dict(sorted(load.items()))
    return figures


def record_columns(figures: RecordFigures) -> tuple[list[str], list[list[str]]]:
    """Return the after-chat CSV columns (header, then one list a day), counts only: chats
    ended (calls too), with a debrief, referred, of them calls, chats by topic and by supporter."""
    header = ["chats_ended", "with_debrief", "referred", "voice_contacts"]
    header += [f"topic_{t}" for t in figures.topics]
    header += [f"chats_by_{s}" for s in figures.load]
    rows = []
    for n in range(len(figures.days)):
        row = [figures.chats[n], figures.debriefs[n], figures.referred[n], figures.voice[n]]
        row += [counts[n] for counts in figures.topics.values()]
        row += [counts[n] for counts in figures.load.values()]
        rows.append([str(value) for value in row])
    return header, rows
