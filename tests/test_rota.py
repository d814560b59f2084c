"""Tests for the weekly rota: wall-clock shifts, daylight saving, time off, holidays."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from peerline.service import rota
from peerline.service.rota import (
    Closures,
    CoverShift,
    SupporterRota,
    TimeOff,
    WeeklyShift,
    intervals,
    next_opening,
    on_shift,
    shift_end,
    who_is_on,
)

TORONTO = ZoneInfo("America/Toronto")
LONDON = ZoneInfo("Europe/London")

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def hm(text: str) -> int:
    return rota.parse_time(text, end=True)


def weekly(days: set[int], start: str, end: str, *, holidays: bool = False) -> WeeklyShift:
    return WeeklyShift(frozenset(days), hm(start), hm(end), run_on_holidays=holidays)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)


def day_spans(
    one: SupporterRota, tz: ZoneInfo, day: date, closures: Closures | None = None
) -> list[tuple[datetime, datetime]]:
    """Return the rota's intervals over a generous window around one local day."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=1)
    return intervals(one, tz, start, start + timedelta(days=3), closures)


# --- parsing helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"), [("00:00", 0), ("09:00", 540), ("9:05", 545), ("23:59", 1439)]
)
def test_parse_time_reads_hours_and_minutes(text: str, minutes: int) -> None:
    assert rota.parse_time(text) == minutes


def test_parse_time_allows_24_00_only_as_an_end() -> None:
    assert rota.parse_time("24:00", end=True) == 1440
    with pytest.raises(ValueError, match="only allowed as an end"):
        rota.parse_time("24:00")


@pytest.mark.parametrize("text", ["25:00", "24:01", "12:60", "12", "12:5", "noon", "", "1:2:3"])
def test_parse_time_rejects_what_is_not_hh_mm(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time HH:MM"):
        rota.parse_time(text, end=True)


def test_format_time_round_trips() -> None:
    assert [rota.format_time(m) for m in (0, 545, 1439, 1440)] == [
        "00:00",
        "09:05",
        "23:59",
        "24:00",
    ]
    with pytest.raises(ValueError):
        rota.format_time(1441)


def test_day_names() -> None:
    assert [rota.parse_day(name) for name in ("mon", "Wed", "SUN")] == [0, 2, 6]
    assert rota.format_day(4) == "fri"
    with pytest.raises(ValueError, match="is not a day"):
        rota.parse_day("monday")


def test_dataclasses_refuse_impossible_values() -> None:
    with pytest.raises(ValueError):
        WeeklyShift(frozenset({7}), 0, 60)
    with pytest.raises(ValueError):
        WeeklyShift(frozenset({0}), 1440, 60)
    with pytest.raises(ValueError):
        CoverShift(date(2026, 1, 1), 0, 0)
    with pytest.raises(ValueError):
        TimeOff(date(2026, 1, 2), date(2026, 1, 1))
    never = SupporterRota((WeeklyShift(frozenset(), 0, 1440),))
    assert intervals(never, TORONTO, utc(2026, 1, 1), utc(2026, 2, 1)) == []


# --- plain weeks ---------------------------------------------------------------------------


def test_day_shift_in_winter_and_summer() -> None:
    one = SupporterRota((weekly({MON, WED, FRI}, "09:00", "17:00"),))
    # 2026-01-05 is a Monday (EST, -5); 2026-07-06 a Monday (EDT, -4).
    assert day_spans(one, TORONTO, date(2026, 1, 5)) == [(utc(2026, 1, 5, 14), utc(2026, 1, 5, 22))]
    assert day_spans(one, TORONTO, date(2026, 7, 6)) == [(utc(2026, 7, 6, 13), utc(2026, 7, 6, 21))]
    tuesday = (local(TORONTO, 2026, 7, 7), local(TORONTO, 2026, 7, 8))
    assert intervals(one, TORONTO, *tuesday) == []


def test_intervals_are_half_open() -> None:
    one = SupporterRota((weekly({MON}, "09:00", "17:00"),))
    assert on_shift(one, TORONTO, local(TORONTO, 2026, 1, 5, 9))
    assert on_shift(one, TORONTO, local(TORONTO, 2026, 1, 5, 16, 59, 59))
    assert not on_shift(one, TORONTO, local(TORONTO, 2026, 1, 5, 17))
    assert not on_shift(one, TORONTO, local(TORONTO, 2026, 1, 5, 8, 59))


def test_overnight_shift_ends_the_next_day() -> None:
    one = SupporterRota((weekly({SAT}, "22:00", "02:00"),))
    # 2026-01-10 is a Saturday.
    assert on_shift(one, TORONTO, local(TORONTO, 2026, 1, 10, 23))
    assert on_shift(one, TORONTO, local(TORONTO, 2026, 1, 11, 1, 59))
    assert not on_shift(one, TORONTO, local(TORONTO, 2026, 1, 11, 2))
    assert not on_shift(one, TORONTO, local(TORONTO, 2026, 1, 10, 1))
    assert shift_end(one, TORONTO, local(TORONTO, 2026, 1, 10, 23)) == utc(2026, 1, 11, 7)


def test_all_day_every_day_is_one_continuous_stretch() -> None:
    one = SupporterRota((weekly(set(range(7)), "00:00", "24:00"),))
    at = utc(2026, 1, 5, 12)
    assert intervals(one, TORONTO, at, at + timedelta(days=10)) == [(at, at + timedelta(days=10))]
    assert shift_end(one, TORONTO, at, horizon_days=3) == at + timedelta(days=3)


def test_start_equal_to_end_is_a_full_day_overnight() -> None:
    one = SupporterRota((weekly({MON}, "09:00", "09:00"),))
    assert day_spans(one, TORONTO, date(2026, 1, 5)) == [(utc(2026, 1, 5, 14), utc(2026, 1, 6, 14))]


def test_intervals_are_clipped_sorted_and_merged() -> None:
    one = SupporterRota(
        (
            weekly({MON}, "13:00", "17:00"),
            weekly({MON}, "09:00", "13:00"),  # touches: one stretch
            weekly({MON}, "16:00", "18:00"),  # overlaps
            weekly({MON}, "20:00", "21:00"),
        )
    )
    window = (local(TORONTO, 2026, 1, 5, 10), local(TORONTO, 2026, 1, 5, 20, 30))
    assert intervals(one, TORONTO, *window) == [
        (utc(2026, 1, 5, 15), utc(2026, 1, 5, 23)),
        (utc(2026, 1, 6, 1), utc(2026, 1, 6, 1, 30)),
    ]
    assert shift_end(one, TORONTO, local(TORONTO, 2026, 1, 5, 9)) == utc(2026, 1, 5, 23)
    assert intervals(one, TORONTO, window[1], window[0]) == []


def test_intervals_accept_any_aware_timezone_and_answer_in_utc() -> None:
    one = SupporterRota((weekly({MON}, "09:00", "17:00"),))
    spans = intervals(one, TORONTO, local(LONDON, 2026, 1, 5), local(LONDON, 2026, 1, 6))
    assert spans == [(utc(2026, 1, 5, 14), utc(2026, 1, 5, 22))]
    assert all(start.tzinfo is UTC and end.tzinfo is UTC for start, end in spans)


# --- daylight saving -----------------------------------------------------------------------


def test_toronto_spring_forward_overnight_shift() -> None:
    # 2026-03-08 02:00 EST jumps to 03:00 EDT; Saturday night's shift ends on "02:00",
    # which does not exist, so it ends at the first instant after the gap: 03:00 EDT.
    one = SupporterRota((weekly({SAT}, "22:00", "02:00"),))
    assert day_spans(one, TORONTO, date(2026, 3, 7)) == [(utc(2026, 3, 8, 3), utc(2026, 3, 8, 7))]
    longer = SupporterRota((weekly({SAT}, "22:00", "04:00"),))
    [(start, end)] = day_spans(longer, TORONTO, date(2026, 3, 7))
    assert end - start == timedelta(hours=5)  # an hour less than the six the wall clock says
    assert end.astimezone(TORONTO).hour == 4


def test_toronto_spring_forward_start_in_the_gap() -> None:
    one = SupporterRota((weekly({SUN}, "02:30", "04:00"),))
    assert day_spans(one, TORONTO, date(2026, 3, 8)) == [(utc(2026, 3, 8, 7), utc(2026, 3, 8, 8))]
    empty = SupporterRota((weekly({SUN}, "02:00", "02:45"),))
    assert day_spans(empty, TORONTO, date(2026, 3, 8)) == []


def test_toronto_fall_back_overnight_shift() -> None:
    # 2026-11-01 02:00 EDT falls back to 01:00 EST.
    one = SupporterRota((weekly({SAT}, "22:00", "02:00"),))
    [(start, end)] = day_spans(one, TORONTO, date(2026, 10, 31))
    assert (start, end) == (utc(2026, 11, 1, 2), utc(2026, 11, 1, 7))
    assert end - start == timedelta(hours=5)


def test_toronto_fall_back_ambiguous_times_take_the_first_occurrence() -> None:
    ends_in_overlap = SupporterRota((weekly({SAT}, "22:00", "01:30"),))
    assert day_spans(ends_in_overlap, TORONTO, date(2026, 10, 31)) == [
        (utc(2026, 11, 1, 2), utc(2026, 11, 1, 5, 30))
    ]
    starts_in_overlap = SupporterRota((weekly({SUN}, "01:30", "03:00"),))
    assert day_spans(starts_in_overlap, TORONTO, date(2026, 11, 1)) == [
        (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8))
    ]


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        (TORONTO, date(2026, 3, 8), 23),
        (TORONTO, date(2026, 11, 1), 25),
        (LONDON, date(2026, 3, 29), 23),
        (LONDON, date(2026, 10, 25), 25),
        (LONDON, date(2026, 6, 7), 24),
    ],
)
def test_all_day_shift_on_the_change_day(tz: ZoneInfo, day: date, hours: int) -> None:
    one = SupporterRota((), cover=(CoverShift(day, 0, 1440),))
    [(start, end)] = day_spans(one, tz, day)
    assert end - start == timedelta(hours=hours)
    assert start.astimezone(tz).replace(tzinfo=None) == datetime(day.year, day.month, day.day)


def test_london_spring_forward_overnight_shift_is_an_hour_shorter() -> None:
    # 2026-03-29 01:00 GMT jumps to 02:00 BST.
    one = SupporterRota((weekly({SAT}, "22:00", "02:00"),))
    assert day_spans(one, LONDON, date(2026, 3, 28)) == [
        (utc(2026, 3, 28, 22), utc(2026, 3, 29, 1))
    ]


def test_london_fall_back_overnight_shift_is_an_hour_longer() -> None:
    # 2026-10-25 02:00 BST falls back to 01:00 GMT.
    one = SupporterRota((weekly({SAT}, "22:00", "02:00"),))
    assert day_spans(one, LONDON, date(2026, 10, 24)) == [
        (utc(2026, 10, 24, 21), utc(2026, 10, 25, 2))
    ]


def test_wall_to_utc_in_the_gap_and_the_overlap() -> None:
    assert rota.wall_to_utc(date(2026, 3, 8), hm("02:00"), TORONTO) == utc(2026, 3, 8, 7)
    assert rota.wall_to_utc(date(2026, 3, 8), hm("02:59"), TORONTO) == utc(2026, 3, 8, 7)
    assert rota.wall_to_utc(date(2026, 3, 8), hm("03:00"), TORONTO) == utc(2026, 3, 8, 7)
    assert rota.wall_to_utc(date(2026, 3, 29), hm("01:30"), LONDON) == utc(2026, 3, 29, 1)
    assert rota.wall_to_utc(date(2026, 11, 1), hm("01:00"), TORONTO) == utc(2026, 11, 1, 5)
    assert rota.wall_to_utc(date(2026, 10, 25), hm("01:59"), LONDON) == utc(2026, 10, 25, 0, 59)


# --- time off, cover, holidays -------------------------------------------------------------


def test_time_off_removes_weekly_and_cover_shifts_starting_on_those_days() -> None:
    one = SupporterRota(
        (weekly({MON, TUE, WED}, "09:00", "17:00"), weekly({SUN}, "22:00", "02:00")),
        cover=(CoverShift(date(2026, 1, 6), hm("18:00"), hm("20:00")),),
        time_off=(TimeOff(date(2026, 1, 5), date(2026, 1, 6)),),
    )
    week = intervals(one, TORONTO, local(TORONTO, 2026, 1, 4), local(TORONTO, 2026, 1, 8))
    assert week == [
        # Sunday night's shift starts before the time off and stops at Monday's midnight: a
        # day off is off from its start (issue 21 changed this; it used to run on to 02:00).
        (utc(2026, 1, 5, 3), utc(2026, 1, 5, 5)),
        (utc(2026, 1, 7, 14), utc(2026, 1, 7, 22)),
    ]


@pytest.mark.parametrize(
    ("zone", "evening"),
    [
        (TORONTO, date(2026, 1, 5)),  # Monday, in winter
        (TORONTO, date(2026, 3, 7)),  # Saturday: the clocks spring forward that night
        (LONDON, date(2026, 10, 24)),  # Saturday: the clocks fall back that night
    ],
)
def test_a_whole_day_off_stops_an_overnight_shift_begun_the_evening_before(
    zone: ZoneInfo, evening: date
) -> None:
    # The evening's shift runs 22:00-02:00; the whole of the next day is booked off.
    day_off = evening + timedelta(days=1)
    shift = weekly({evening.weekday()}, "22:00", "02:00")
    one = SupporterRota((shift,), time_off=(TimeOff(day_off, day_off),))
    assert on_shift(one, zone, local(zone, evening.year, evening.month, evening.day, 23))
    assert not on_shift(one, zone, local(zone, day_off.year, day_off.month, day_off.day, 1))
    window = intervals(
        one,
        zone,
        local(zone, evening.year, evening.month, evening.day),
        (local(zone, day_off.year, day_off.month, day_off.day, 12)),
    )
    assert window == [
        (rota.wall_to_utc(evening, hm("22:00"), zone), rota.wall_to_utc(day_off, 0, zone))
    ]
    # Without the day off the same shift runs on to 02:00.
    plain = SupporterRota((shift,))
    assert on_shift(plain, zone, local(zone, day_off.year, day_off.month, day_off.day, 1, 30))


def test_time_off_on_the_start_day_removes_the_whole_overnight_shift() -> None:
    one = SupporterRota(
        (weekly({SUN}, "22:00", "02:00"),),
        time_off=(TimeOff(date(2026, 1, 4), date(2026, 1, 4)),),
    )
    assert not on_shift(one, TORONTO, local(TORONTO, 2026, 1, 5, 1))


def test_cover_shift_runs_once() -> None:
    one = SupporterRota((), cover=(CoverShift(date(2026, 1, 7), hm("20:00"), hm("01:00")),))
    assert intervals(one, TORONTO, utc(2026, 1, 1), utc(2026, 1, 31)) == [
        (utc(2026, 1, 8, 1), utc(2026, 1, 8, 6))
    ]


ONTARIO = Closures("CA-ON")


def test_closures_name_the_holidays() -> None:
    assert ONTARIO.holiday_name(date(2026, 7, 1)) == "Canada Day"
    assert ONTARIO.is_holiday(date(2026, 12, 25))
    assert not ONTARIO.is_holiday(date(2026, 7, 2))
    assert ONTARIO.holiday_name(date(2026, 7, 2)) is None
    assert Closures("US").is_holiday(date(2026, 7, 4))
    assert Closures("GB-ENG").holiday_name(date(2026, 12, 25)) == "Christmas Day"
    assert not Closures(None).is_holiday(date(2026, 12, 25))
    extra = Closures(None, extra={date(2026, 8, 3): "Staff retreat"})
    assert extra.holiday_name(date(2026, 8, 3)) == "Staff retreat"
    assert Closures("ca-on") == ONTARIO and Closures("ca-on").spec == "CA-ON"
    assert Closures("US") != ONTARIO


@pytest.mark.parametrize("spec", ["XX", "CA-ZZ", "", "-ON"])
def test_closures_refuse_unknown_calendars(spec: str) -> None:
    with pytest.raises(ValueError):
        Closures(spec)


def test_holidays_spec_is_normalised() -> None:
    assert rota.parse_holidays_spec("ca-on") == ("CA", "ON")
    assert rota.normalise_holidays_spec("gb-eng") == "GB-ENG"
    assert rota.normalise_holidays_spec("us") == "US"


def test_holiday_closes_weekly_shifts_unless_they_run_on_holidays() -> None:
    # 2026-07-01 (Canada Day) is a Wednesday.
    closed = SupporterRota((weekly({WED}, "09:00", "17:00"),))
    kept = SupporterRota((weekly({WED}, "09:00", "17:00", holidays=True),))
    at = local(TORONTO, 2026, 7, 1, 12)
    assert on_shift(closed, TORONTO, at)
    assert not on_shift(closed, TORONTO, at, ONTARIO)
    assert on_shift(kept, TORONTO, at, ONTARIO)


def test_christmas_closes_the_overnight_shift_starting_that_day_only() -> None:
    # 2026-12-24 is a Thursday, 2026-12-25 (Christmas) a Friday.
    one = SupporterRota((weekly({THU, FRI}, "22:00", "02:00"),))
    assert on_shift(one, TORONTO, local(TORONTO, 2026, 12, 25, 1), ONTARIO)
    assert not on_shift(one, TORONTO, local(TORONTO, 2026, 12, 25, 23), ONTARIO)
    assert not on_shift(one, TORONTO, local(TORONTO, 2026, 12, 26, 1), ONTARIO)


def test_cover_shifts_run_on_holidays() -> None:
    one = SupporterRota((), cover=(CoverShift(date(2026, 7, 1), hm("10:00"), hm("14:00")),))
    assert on_shift(one, TORONTO, local(TORONTO, 2026, 7, 1, 12), ONTARIO)


# --- the line as a whole -------------------------------------------------------------------


def test_next_opening_is_now_when_someone_is_on_shift() -> None:
    one = SupporterRota((weekly({MON}, "09:00", "17:00"),))
    at = local(TORONTO, 2026, 1, 5, 12)
    assert next_opening([one], TORONTO, at) == at


def test_next_opening_across_the_week() -> None:
    monday = SupporterRota((weekly({MON}, "09:00", "17:00"),))
    thursday = SupporterRota((weekly({THU}, "18:00", "20:00"),))
    # Friday 2026-01-09 after hours: Monday 2026-01-12 09:00 comes before next Thursday.
    at = local(TORONTO, 2026, 1, 9, 18)
    assert next_opening([thursday, monday], TORONTO, at) == utc(2026, 1, 12, 14)
    # Tuesday: Thursday's evening shift is first.
    at = local(TORONTO, 2026, 1, 6, 18)
    assert next_opening([monday, thursday], TORONTO, at) == utc(2026, 1, 8, 23)


def test_next_opening_skips_a_holiday() -> None:
    one = SupporterRota((weekly({MON, WED, FRI}, "09:00", "17:00"),))
    at = local(TORONTO, 2026, 6, 30, 20)  # the evening before Canada Day
    assert next_opening([one], TORONTO, at) == utc(2026, 7, 1, 13)
    assert next_opening([one], TORONTO, at, ONTARIO) == utc(2026, 7, 3, 13)


def test_next_opening_gives_up_past_the_horizon() -> None:
    one = SupporterRota((), cover=(CoverShift(date(2026, 3, 1), hm("09:00"), hm("10:00")),))
    at = local(TORONTO, 2026, 1, 1)
    assert next_opening([one], TORONTO, at) is None
    assert next_opening([one], TORONTO, at, horizon_days=90) == utc(2026, 3, 1, 14)
    assert next_opening([], TORONTO, at) is None


def test_who_is_on_keeps_the_mapping_order() -> None:
    rotas = {
        "sam": SupporterRota((weekly({MON}, "09:00", "17:00"),)),
        "rosa": SupporterRota((weekly({MON}, "16:00", "22:00"),)),
        "alex": SupporterRota((weekly({MON}, "12:00", "20:00", holidays=True),)),
    }
    assert who_is_on(rotas, TORONTO, local(TORONTO, 2026, 1, 5, 16, 30)) == ["sam", "rosa", "alex"]
    assert who_is_on(rotas, TORONTO, local(TORONTO, 2026, 1, 5, 21)) == ["rosa"]
    assert who_is_on(rotas, TORONTO, local(TORONTO, 2026, 1, 6, 12)) == []
    # 2026-02-16 is Family Day in Ontario.
    assert who_is_on(rotas, TORONTO, local(TORONTO, 2026, 2, 16, 13), ONTARIO) == ["alex"]


def test_shift_end_is_none_off_shift() -> None:
    one = SupporterRota((weekly({MON}, "09:00", "17:00"),))
    assert shift_end(one, TORONTO, local(TORONTO, 2026, 1, 5, 8)) is None


def test_naive_datetimes_are_refused() -> None:
    one = SupporterRota((weekly({MON}, "09:00", "17:00"),))
    naive = datetime(2026, 1, 5, 12)
    aware = utc(2026, 1, 5, 12)
    with pytest.raises(ValueError, match="naive"):
        intervals(one, TORONTO, naive, aware)
    with pytest.raises(ValueError, match="naive"):
        intervals(one, TORONTO, aware, naive)
    with pytest.raises(ValueError, match="naive"):
        on_shift(one, TORONTO, naive)
    with pytest.raises(ValueError, match="naive"):
        shift_end(one, TORONTO, naive)
    with pytest.raises(ValueError, match="naive"):
        next_opening([one], TORONTO, naive)
    with pytest.raises(ValueError, match="naive"):
        who_is_on({}, TORONTO, naive)


def test_a_year_of_intervals_matches_a_week_by_week_count() -> None:
    one = SupporterRota((weekly({MON, WED, FRI}, "09:00", "17:00"),))
    spans = intervals(one, TORONTO, utc(2026, 1, 1), utc(2027, 1, 1))
    # 2026 starts on a Thursday, so only Thursday comes 53 times.
    assert len(spans) == 3 * 52
    assert all(end - start == timedelta(hours=8) for start, end in spans)
