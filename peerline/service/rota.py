"""Work out who is on shift from a weekly rota kept in the line's time zone.

A rota is kept the way coordinators think about it: weekly shifts on named days between two
local wall-clock times, one-off cover shifts, whole days of time off, and line-wide closures on
public holidays. Everything here is pure: no database, no clock, aware datetimes in and UTC out.

Wall-clock semantics, daylight-saving safe:

- A shift's start and end are wall-clock times in the line's time zone, converted to UTC with
  `zoneinfo` for the date they fall on. On the night the clocks change a shift therefore starts
  and ends at the wall-clock times it says, and lasts an hour less (spring) or more (autumn) in
  elapsed time: an all-day shift on the change day lasts 23 or 25 hours.
- A wall time that does not exist (the spring-forward gap) maps to the first instant after the
  gap: "02:30" on a night that jumps from 02:00 to 03:00 means 03:00.
- A wall time that happens twice (the fall-back overlap) means its first occurrence (fold=0).
- An end at or before the start means an overnight shift ending the next day; "24:00" is allowed
  as an end and means the next midnight, so "00:00"-"24:00" is the whole day.
- An overnight shift belongs to the day it starts: time off or a holiday on its start date
  removes it, and on its end date does not.
- A public holiday closes the weekly shifts starting that day unless the shift runs on
  holidays. Cover shifts always run: they are explicit.
- Time off removes weekly shifts and cover shifts starting on any of its dates.

Intervals are half-open, [start, end): a supporter whose shift ends at 17:00 is off at 17:00.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import holidays as holidays_lib

K = TypeVar("K", bound=Hashable)

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60

_DAY_INDEX = {name: index for index, name in enumerate(DAY_NAMES)}


def parse_time(text: str, *, end: bool = False) -> int:
    """Return the minutes after midnight of an "HH:MM" time ("24:00" only when `end`)."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a time HH:MM")
    hours, sep, minutes = text.strip().partition(":")
    if (
        not sep
        or not (1 <= len(hours) <= 2 and hours.isdigit() and hours.isascii())
        or not (len(minutes) == 2 and minutes.isdigit() and minutes.isascii())
    ):
        raise ValueError(f"{text!r} is not a time HH:MM")
    total = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or total > MINUTES_PER_DAY:
        raise ValueError(f"{text!r} is not a time HH:MM")
    if total == MINUTES_PER_DAY and not end:
        raise ValueError(f"{text!r} is only allowed as an end time")
    return total


def format_time(minutes: int) -> str:
    """Return minutes after midnight (0..1440) as "HH:MM"."""
    if not 0 <= minutes <= MINUTES_PER_DAY:
        raise ValueError(f"{minutes} minutes is outside 00:00..24:00")
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_day(name: str) -> int:
    """Return the weekday index (0=Mon..6=Sun) of a day name mon..sun."""
    if isinstance(name, str):
        index = _DAY_INDEX.get(name.strip().lower())
        if index is not None:
            return index
    raise ValueError(f"{name!r} is not a day (mon, tue, wed, thu, fri, sat, sun)")


def format_day(index: int) -> str:
    """Return the day name mon..sun of a weekday index 0..6."""
    if not 0 <= index <= 6:
        raise ValueError(f"{index} is not a weekday index 0..6")
    return DAY_NAMES[index]


def _check_span(start: int, end: int) -> None:
    if not 0 <= start < MINUTES_PER_DAY:
        raise ValueError(f"start {start} is outside 0..1439 minutes")
    if not 0 < end <= MINUTES_PER_DAY:
        raise ValueError(f"end {end} is outside 1..1440 minutes")


@dataclass(frozen=True)
class WeeklyShift:
    """A shift repeated every week on some days between two wall-clock times."""

    days: frozenset[int]
    start: int
    end: int
    run_on_holidays: bool = False

    def __post_init__(self) -> None:
        # No days at all is allowed: such a shift simply never runs.
        if not self.days <= frozenset(range(7)):
            raise ValueError(f"days {sorted(self.days)} must be weekday indexes 0..6")
        _check_span(self.start, self.end)


@dataclass(frozen=True)
class CoverShift:
    """A one-off shift on one date between two wall-clock times."""

    date: date
    start: int
    end: int

    def __post_init__(self) -> None:
        _check_span(self.start, self.end)


@dataclass(frozen=True)
class TimeOff:
    """Whole local days off, from `start` to `end` inclusive; or part of them, when both
    `start_minute` (on `start`) and `end_minute` (on `end`) are given."""

    start: date
    end: date
    start_minute: int | None = None
    end_minute: int | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"time off ends ({self.end}) before it starts ({self.start})")
        if (self.start_minute is None) != (self.end_minute is None):
            raise ValueError("time off gives both a from and a to time, or neither")
        if self.start_minute is not None and self.end_minute is not None:
            if not (0 <= self.start_minute < MINUTES_PER_DAY):
                raise ValueError(f"time off starts at minute {self.start_minute}")
            if not (0 < self.end_minute <= MINUTES_PER_DAY):
                raise ValueError(f"time off ends at minute {self.end_minute}")
            if (self.end, self.end_minute) <= (self.start, self.start_minute):
                raise ValueError("time off ends before it starts")

    @property
    def partial(self) -> bool:
        """Say whether this time off is part of a day (from/to times), not whole days."""
        return self.start_minute is not None

    def covers(self, day: date) -> bool:
        """Return whether `day` is one of the whole days off (shifts starting on it are not
        worked at all; `span` takes the days themselves out of a shift begun before)."""
        return not self.partial and self.start <= day <= self.end

    def span(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """Return the UTC span a time off takes out of shifts (whole days: midnight to midnight)."""
        first = self.start_minute or 0
        last = MINUTES_PER_DAY if self.end_minute is None else self.end_minute
        return wall_to_utc(self.start, first, tz), wall_to_utc(self.end, last, tz)


@dataclass(frozen=True)
class SupporterRota:
    """One supporter's weekly shifts, cover shifts and time off."""

    shifts: tuple[WeeklyShift, ...]
    cover: tuple[CoverShift, ...] = ()
    time_off: tuple[TimeOff, ...] = ()

    def is_off(self, day: date) -> bool:
        """Return whether `day` falls in the supporter's time off."""
        return any(off.covers(day) for off in self.time_off)


@functools.cache
def _supported() -> dict[str, list[str]]:
    return dict(holidays_lib.list_supported_countries())


def parse_holidays_spec(spec: str) -> tuple[str, str | None]:
    """Split and check a holidays spec like "US", "CA-ON" or "GB-ENG" into (country, subdiv)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"{spec!r} is not a holidays spec like 'US' or 'CA-ON'")
    country, _, subdiv = spec.strip().partition("-")
    country = country.upper()
    supported = _supported()
    if country not in supported:
        raise ValueError(f"{spec!r}: the holidays package does not know country {country!r}")
    if not subdiv:
        return country, None
    # A few subdivisions are names ("Zone A") rather than codes, so match without case.
    by_folded = {known.casefold(): known for known in supported[country]}
    if subdiv.casefold() not in by_folded:
        known = ", ".join(supported[country]) or "none"
        raise ValueError(
            f"{spec!r}: country {country} has no subdivision {subdiv!r} (known: {known})"
        )
    return country, by_folded[subdiv.casefold()]


def normalise_holidays_spec(spec: str) -> str:
    """Return a holidays spec in its canonical spelling ("ca-on" -> "CA-ON")."""
    country, subdiv = parse_holidays_spec(spec)
    return f"{country}-{subdiv}" if subdiv else country


@functools.lru_cache(maxsize=32)
def _calendar(country: str, subdiv: str | None) -> holidays_lib.HolidayBase:
    # Building a calendar is slow and it fills in years lazily, so share one per spec.
    return holidays_lib.country_holidays(country, subdiv=subdiv)


class Closures:
    """Line-wide closures on the public holidays of one country or subdivision."""

    def __init__(self, spec: str | None, extra: Mapping[date, str] | None = None) -> None:
        """Build closures from a spec like "CA-ON" (None: no holidays) plus extra dates."""
        self.spec = normalise_holidays_spec(spec) if spec is not None else None
        self.extra: dict[date, str] = dict(extra or {})
        self._calendar = _calendar(*parse_holidays_spec(spec)) if spec is not None else None

    def __repr__(self) -> str:
        return f"Closures({self.spec!r}, extra={self.extra!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Closures):
            return NotImplemented
        return (self.spec, self.extra) == (other.spec, other.extra)

    def __hash__(self) -> int:
        return hash((self.spec, frozenset(self.extra.items())))

    def is_holiday(self, day: date) -> bool:
        """Return whether the line is closed for a holiday on `day`."""
        return self.holiday_name(day) is not None

    def holiday_name(self, day: date) -> str | None:
        """Return the name of the holiday on `day`, or None on an ordinary day."""
        if day in self.extra:
            return self.extra[day]
        if self._calendar is None:
            return None
        name = self._calendar.get(day)
        return str(name) if name is not None else None


def _require_aware(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{moment!r} is a naive datetime; pass an aware one")


def _after_gap(naive: datetime, tz: ZoneInfo) -> datetime:
    # In a gap, fold=0 uses the offset before the change and fold=1 the one after; the change
    # instant lies between the two readings, so bisect for it (changes fall on whole seconds).
    before = naive.replace(fold=0, tzinfo=tz).utcoffset()
    after = naive.replace(fold=1, tzinfo=tz).utcoffset()
    assert before is not None and after is not None
    low = (naive - after).replace(tzinfo=UTC)
    high = (naive - before).replace(tzinfo=UTC)
    while high - low > timedelta(seconds=1):
        middle = low + timedelta(seconds=(high - low) // timedelta(seconds=1) // 2)
        if middle.astimezone(tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


def wall_to_utc(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """Return the UTC instant of a wall-clock time `minutes` after local midnight of `day`."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minutes)
    instant = naive.replace(tzinfo=tz).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != naive:
        instant = _after_gap(naive, tz)
    return instant


def _span_to_utc(day: date, start: int, end: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    end_minutes = end if end > start else end + MINUTES_PER_DAY
    return wall_to_utc(day, start, tz), wall_to_utc(day, end_minutes, tz)


def _shift_instances(
    rota: SupporterRota,
    tz: ZoneInfo,
    first_day: date,
    last_day: date,
    closures: Closures | None,
) -> Iterator[tuple[datetime, datetime]]:
    day = first_day
    while day <= last_day:
        if not rota.is_off(day):
            holiday = closures is not None and closures.is_holiday(day)
            for shift in rota.shifts:
                if day.weekday() in shift.days and (shift.run_on_holidays or not holiday):
                    yield _span_to_utc(day, shift.start, shift.end, tz)
        day += timedelta(days=1)
    for cover in rota.cover:
        if first_day <= cover.date <= last_day and not rota.is_off(cover.date):
            yield _span_to_utc(cover.date, cover.start, cover.end, tz)


def _merge(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            # Touching shifts merge too: back-to-back shifts are one stretch on shift.
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def intervals(
    rota: SupporterRota,
    tz: ZoneInfo,
    start_utc: datetime,
    end_utc: datetime,
    closures: Closures | None = None,
) -> list[tuple[datetime, datetime]]:
    """Return the UTC on-shift intervals within [start_utc, end_utc), clipped, sorted, merged."""
    _require_aware(start_utc, end_utc)
    start_utc, end_utc = start_utc.astimezone(UTC), end_utc.astimezone(UTC)
    if end_utc <= start_utc:
        return []
    # A shift lasts at most a day and a wall-clock hour, so one spare day either side of the
    # window's local dates catches every overnight shift and every odd offset change.
    first_day = start_utc.astimezone(tz).date() - timedelta(days=2)
    last_day = end_utc.astimezone(tz).date() + timedelta(days=1)
    clipped = (
        (max(start, start_utc), min(end, end_utc))
        for start, end in _shift_instances(rota, tz, first_day, last_day, closures)
        # A shift wholly inside a spring-forward gap maps to an empty span: drop it.
        if start < end and start < end_utc and end > start_utc
    )
    merged = _merge(clipped)
    # A day off is off from its midnight (issue 21): a shift that began the evening before
    # stops at midnight, as a coordinator reading "Tuesday off" expects.
    for off in rota.time_off:
        merged = _cut(merged, off.span(tz))
    return merged


def _cut(
    spans: list[tuple[datetime, datetime]], hole: tuple[datetime, datetime]
) -> list[tuple[datetime, datetime]]:
    """Return sorted spans with the time in `hole` taken out."""
    out = []
    for start, end in spans:
        if end <= hole[0] or start >= hole[1]:
            out.append((start, end))
            continue
        if start < hole[0]:
            out.append((start, hole[0]))
        if end > hole[1]:
            out.append((hole[1], end))
    return out


def on_shift(
    rota: SupporterRota, tz: ZoneInfo, at_utc: datetime, closures: Closures | None = None
) -> bool:
    """Return whether the rota has the supporter on shift at `at_utc`."""
    _require_aware(at_utc)
    return bool(intervals(rota, tz, at_utc, at_utc + timedelta(microseconds=1), closures))


def shift_end(
    rota: SupporterRota,
    tz: ZoneInfo,
    at_utc: datetime,
    closures: Closures | None = None,
    horizon_days: int = 14,
) -> datetime | None:
    """Return when the current continuous stretch on shift ends, or None when off shift.

    A stretch that runs on past `horizon_days` is reported as ending at the horizon.
    """
    _require_aware(at_utc)
    at_utc = at_utc.astimezone(UTC)
    spans = intervals(rota, tz, at_utc, at_utc + timedelta(days=horizon_days), closures)
    if not spans or spans[0][0] > at_utc:
        return None
    return spans[0][1]


def next_opening(
    rotas: Iterable[SupporterRota],
    tz: ZoneInfo,
    at_utc: datetime,
    closures: Closures | None = None,
    horizon_days: int = 14,
) -> datetime | None:
    """Return the first instant from `at_utc` when any rota is on shift, within the horizon."""
    _require_aware(at_utc)
    at_utc = at_utc.astimezone(UTC)
    horizon = at_utc + timedelta(days=horizon_days)
    earliest: datetime | None = None
    for rota in rotas:
        # Each search stops at the best opening so far: nothing later can win.
        spans = intervals(rota, tz, at_utc, earliest or horizon, closures)
        if spans:
            earliest = spans[0][0]
            if earliest == at_utc:
                break
    return earliest


def who_is_on(
    rotas: Mapping[K, SupporterRota],
    tz: ZoneInfo,
    at_utc: datetime,
    closures: Closures | None = None,
) -> list[K]:
    """Return the keys of the rotas on shift at `at_utc`, in the mapping's order."""
    _require_aware(at_utc)
    return [key for key, rota in rotas.items() if on_shift(rota, tz, at_utc, closures)]
