"""Time off for part of a day: it cuts the hours out of shifts, and the line file keeps it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from peerline.service import linefile
from peerline.service.rota import (
    SupporterRota,
    TimeOff,
    WeeklyShift,
    intervals,
    on_shift,
)
from tests.support.lines import SAM_MONDAYS

TORONTO = ZoneInfo("America/Toronto")
MON = 0
NINE_TO_FIVE = WeeklyShift(frozenset({MON}), 9 * 60, 17 * 60)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TORONTO)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_part_of_a_day_cuts_those_hours_out_of_the_shift() -> None:
    one = SupporterRota(
        (NINE_TO_FIVE,), time_off=(TimeOff(date(2026, 1, 5), date(2026, 1, 5), 12 * 60, 14 * 60),)
    )
    assert intervals(one, TORONTO, local(2026, 1, 5), local(2026, 1, 6)) == [
        (utc(2026, 1, 5, 14), utc(2026, 1, 5, 17)),
        (utc(2026, 1, 5, 19), utc(2026, 1, 5, 22)),
    ]
    assert on_shift(one, TORONTO, local(2026, 1, 5, 11, 59))
    assert not on_shift(one, TORONTO, local(2026, 1, 5, 12, 0))
    assert on_shift(one, TORONTO, local(2026, 1, 5, 14, 0))


def test_part_day_time_off_across_midnight_takes_an_overnight_shift() -> None:
    overnight = WeeklyShift(frozenset({MON}), 22 * 60, 2 * 60)
    one = SupporterRota(
        (overnight,), time_off=(TimeOff(date(2026, 1, 5), date(2026, 1, 6), 23 * 60, 60),)
    )
    assert intervals(one, TORONTO, local(2026, 1, 5), local(2026, 1, 7)) == [
        (utc(2026, 1, 6, 3), utc(2026, 1, 6, 4)),
        (utc(2026, 1, 6, 6), utc(2026, 1, 6, 7)),
    ]


@pytest.mark.parametrize(
    ("first", "last"),
    [(10 * 60, None), (14 * 60, 10 * 60), (10 * 60, 10 * 60), (24 * 60, 24 * 60)],
)
def test_bad_part_day_time_off_is_refused(first: int, last: int | None) -> None:
    with pytest.raises(ValueError):
        TimeOff(date(2026, 1, 5), date(2026, 1, 5), first, last)


LINE = (
    SAM_MONDAYS
    + """\
    time_off:
      - {from: "2026-01-05", to: "2026-01-05", start: "12:00", end: "14:00"}
      - {from: "2026-02-02", to: "2026-02-03"}
groups: []
"""
)


def test_the_line_file_reads_and_writes_part_day_time_off() -> None:
    parsed = linefile.parse(LINE)
    offs = parsed.supporters[0].time_off
    assert [(o.from_, o.start, o.end) for o in offs] == [
        (date(2026, 1, 5), "12:00", "14:00"),
        (date(2026, 2, 2), None, None),
    ]
    again = linefile.parse(linefile.dump(parsed))
    assert again.supporters[0].time_off == offs


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('{from: "2026-01-05", to: "2026-01-05", start: "12:00"}', "both start and end"),
        ('{from: "2026-01-05", to: "2026-01-05", start: "14:00", end: "12:00"}', "ends before"),
        ('{from: "2026-01-05", to: "2026-01-05", start: "noon", end: "14:00"}', "start"),
    ],
)
def test_bad_part_day_time_off_in_the_file_is_named(entry: str, problem: str) -> None:
    text = LINE.replace('{from: "2026-02-02", to: "2026-02-03"}', entry)
    with pytest.raises(linefile.LineFileError) as error:
        linefile.parse(text)
    assert problem in str(error.value)
