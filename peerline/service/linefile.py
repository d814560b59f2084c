"""Read, check and write the YAML line file coordinators keep the roster and rota in.

The file is strict on purpose: an unknown key is an error (a typo such as `shfits:` would
otherwise silently drop a supporter's shifts), and every problem is reported with a path-like
location, all of them at once, so a coordinator can fix a sheet in one pass.

Parsing normalises what it reads (phone numbers to E.164, days to mon..sun in week order, times
to "HH:MM", language codes to lower case), so `parse(dump(line)) == line` for any parsed line.

YAML 1.1 reads an unquoted `17:30` as the base-60 integer 1050 (and `9:00` as 540, while
`09:00` stays a string). This module's loader keeps such base-60 scalars as strings, so unquoted
times work; `dump` quotes times and dates anyway.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml

from peerline.service import rota

T = TypeVar("T")

__all__ = [
    "DEMO_LINE_FILE",
    "CoverSpec",
    "GroupSpec",
    "LineFile",
    "LineFileError",
    "ShiftSpec",
    "SupporterSpec",
    "TimeOffSpec",
    "dump",
    "parse",
    "to_rota",
]


class LineFileError(ValueError):
    """A line file that cannot be read; `problems` lists each one with its location."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]


@dataclass
class ShiftSpec:
    """A weekly shift as written in the file."""

    days: list[str]
    start: str
    end: str
    run_on_holidays: bool = False


@dataclass
class CoverSpec:
    """A one-off cover shift as written in the file."""

    date: date
    start: str
    end: str


@dataclass
class TimeOffSpec:
    """Whole days off, `from_` to `to` inclusive (YAML keys `from` and `to`); part of a day
    when `start` (on `from`) and `end` (on `to`) times are given too."""

    from_: date
    to: date
    start: str | None = None
    end: str | None = None


@dataclass
class SupporterSpec:
    """A supporter and their rota as written in the file."""

    name: str
    phone: str
    languages: list[str] = field(default_factory=lambda: ["en"])
    capacity: int = 1
    takes_calls: bool = True
    takes_sms: bool = True
    on_call: bool = False
    active: bool = True
    shifts: list[ShiftSpec] = field(default_factory=list)
    cover: list[CoverSpec] = field(default_factory=list)
    time_off: list[TimeOffSpec] = field(default_factory=list)


@dataclass
class GroupSpec:
    """A group meeting held every week on some days."""

    name: str
    days: list[str]
    start: str
    minutes: int
    skip_holidays: str | None = None
    join: str | None = None
    cancelled: list[date] = field(default_factory=list)


@dataclass
class LineFile:
    """The whole line file: time zone, supporters, groups and the holiday calendar."""

    timezone: str
    supporters: list[SupporterSpec]
    groups: list[GroupSpec]
    holidays: str | None = None


# --- loading -------------------------------------------------------------------------------

# YAML 1.1 base-60 numbers ("17:30" -> 1050, "1:30:00.5" -> 5400.5); times look exactly like them.
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")


class _Loader(yaml.SafeLoader):
    """A safe loader that reads base-60 looking scalars as strings."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """Resolve base-60 plain scalars to str and anything else as SafeLoader does."""
        if kind is yaml.ScalarNode and implicit[0] and _SEXAGESIMAL.fullmatch(value):
            return "tag:yaml.org,2002:str"
        return super().resolve(kind, value, implicit)


class _Section:
    """One mapping of the file whose keys have been checked, with its location."""

    def __init__(self, check: _Checker, values: dict[Any, Any], where: str) -> None:
        self.check = check
        self.values = values
        self.where = where

    def get(self, key: str, convert: Callable[[Any], T], default: T | None = None) -> T | None:
        """Return the converted value of `key`, its default when absent, None on a problem."""
        if key not in self.values:
            # A missing required key is already reported; its default None says "no value".
            return default
        return self.check.check(_join(self.where, key), self.values[key], convert)

    def items(self, key: str) -> list[tuple[str, Any]]:
        """Return (location, item) pairs of the list under `key`; absent or null is empty."""
        where = _join(self.where, key)
        value = self.values.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.check.problem(where, f"expected a list, got {value!r}")
            return []
        return [(f"{where}[{index}]", item) for index, item in enumerate(value)]


class _Checker:
    """Collect problems with their locations while reading the loaded YAML."""

    def __init__(self, default_region: str) -> None:
        self.default_region = default_region
        self.problems: list[str] = []
        self.phones: dict[str, str] = {}

    def problem(self, where: str, message: str) -> None:
        """Record one problem at a location."""
        self.problems.append(f"{where}: {message}" if where else message)

    def mapping(
        self, value: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...]
    ) -> _Section | None:
        """Return `value` as a section after checking its keys, or None when not a mapping."""
        if not isinstance(value, dict):
            self.problem(where, f"expected a mapping with keys {', '.join(required)}")
            return None
        allowed = required + optional
        for key in value:
            if key not in allowed:
                self.problem(_join(where, str(key)), f"unknown key (allowed: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                self.problem(_join(where, key), "is missing")
        return _Section(self, value, where)

    def check(self, where: str, value: Any, convert: Callable[[Any], T]) -> T | None:
        """Return `convert(value)`, recording its ValueError as a problem at `where`."""
        try:
            return convert(value)
        except ValueError as error:
            self.problem(where, str(error))
            return None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a non-empty text")
    return value.strip()


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _whole_number(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        # bool is an int subclass: `capacity: yes` must not read as 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{value!r} is not a whole number")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise ValueError(f"{value} must be at least {minimum}{upper}")
        return value

    return convert


def _time(*, end: bool = False) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f'{value!r} is not a time HH:MM (write times in quotes: "09:00")')
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a time HH:MM")
        return rota.format_time(rota.parse_time(value, end=end))

    return convert


def _day_list(value: Any) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise ValueError(f"{value!r} is not a list of days like [mon, wed, fri]")
    indexes = {rota.parse_day(name) for name in names}
    return [rota.format_day(index) for index in sorted(indexes)]


def _date(value: Any) -> date:
    # A datetime is a date too, but a time of day in a whole-day field is a mistake.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date YYYY-MM-DD")


def _timezone(value: Any) -> str:
    name = _text(value)
    try:
        # "localtime" names whatever the server is set to, which is no zone for a line file.
        if name == "localtime":
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{name!r} is not a time zone like America/Toronto") from None
    return name


def _optional_holidays(value: Any) -> str | None:
    return None if value is None else rota.normalise_holidays_spec(_text(value))


_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")


def _languages(value: Any) -> list[str]:
    codes = [value] if isinstance(value, str) else value
    if not isinstance(codes, list) or not codes:
        raise ValueError(f"{value!r} is not a list of language codes like [en, es]")
    seen: list[str] = []
    for code in codes:
        # YAML 1.1 reads a bare `no` (Norwegian) as false, hence the hint.
        if not isinstance(code, str) or not _LANGUAGE.fullmatch(code.strip().lower()):
            raise ValueError(f"{code!r} is not a language code like en or es (quote it)")
        if code.strip().lower() not in seen:
            seen.append(code.strip().lower())
    return seen


def _phone(default_region: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f'{value!r}: write phone numbers in quotes, like "+14165550101"')
        text = _text(value)
        try:
            number = phonenumbers.parse(text, default_region)
        except phonenumbers.NumberParseException:
            raise ValueError(f"{text!r} is not a phone number") from None
        if not phonenumbers.is_valid_number(number):
            raise ValueError(f"{text!r} is not a valid phone number")
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

    return convert


def _read_shift(check: _Checker, raw: Any, where: str) -> ShiftSpec | None:
    item = check.mapping(raw, where, ("days", "start", "end"), ("run_on_holidays",))
    if item is None:
        return None
    days = item.get("days", _day_list)
    start = item.get("start", _time())
    end = item.get("end", _time(end=True))
    run = item.get("run_on_holidays", _flag, False)
    if days is None or start is None or end is None or run is None:
        return None
    return ShiftSpec(days=days, start=start, end=end, run_on_holidays=run)


def _read_cover(check: _Checker, raw: Any, where: str) -> CoverSpec | None:
    item = check.mapping(raw, where, ("date", "start", "end"), ())
    if item is None:
        return None
    day = item.get("date", _date)
    start = item.get("start", _time())
    end = item.get("end", _time(end=True))
    if day is None or start is None or end is None:
        return None
    return CoverSpec(date=day, start=start, end=end)


def _read_time_off(check: _Checker, raw: Any, where: str) -> TimeOffSpec | None:
    item = check.mapping(raw, where, ("from", "to"), ("start", "end"))
    if item is None:
        return None
    first = item.get("from", _date)
    last = item.get("to", _date)
    start = item.get("start", _time())
    end = item.get("end", _time(end=True))
    timed = ("start" in item.values, "end" in item.values)
    if timed[0] != timed[1]:
        check.problem(where, "give both start and end times for part of a day, or neither")
        return None
    if first is None or last is None or (timed[0] and (start is None or end is None)):
        return None
    if last < first:
        check.problem(_join(where, "to"), f"{last.isoformat()} is before from {first.isoformat()}")
        return None
    if start is not None and end is not None:
        span = (last, rota.parse_time(end, end=True)) <= (first, rota.parse_time(start))
        if span:
            check.problem(_join(where, "end"), "the time off ends before it starts")
            return None
    return TimeOffSpec(from_=first, to=last, start=start, end=end)


_SUPPORTER_OPTIONAL = (
    "languages",
    "capacity",
    "takes_calls",
    "takes_sms",
    "on_call",
    "active",
    "shifts",
    "cover",
    "time_off",
)


def _read_supporter(check: _Checker, raw: Any, where: str) -> SupporterSpec | None:
    before = len(check.problems)
    item = check.mapping(raw, where, ("name", "phone"), _SUPPORTER_OPTIONAL)
    if item is None:
        return None
    name = item.get("name", _text)
    phone = item.get("phone", _phone(check.default_region))
    if phone is not None:
        # Checked here rather than at the end so a clash shows even when a field is wrong.
        earlier = check.phones.setdefault(phone, where)
        if earlier != where:
            check.problem(_join(where, "phone"), f"{phone} is already the phone of {earlier}")
    languages = item.get("languages", _languages, ["en"])
    capacity = item.get("capacity", _whole_number(1), 1)
    takes_calls = item.get("takes_calls", _flag, True)
    takes_sms = item.get("takes_sms", _flag, True)
    on_call = item.get("on_call", _flag, False)
    active = item.get("active", _flag, True)
    shifts = [_read_shift(check, one, at) for at, one in item.items("shifts")]
    cover = [_read_cover(check, one, at) for at, one in item.items("cover")]
    time_off = [_read_time_off(check, one, at) for at, one in item.items("time_off")]
    if len(check.problems) > before:
        return None
    assert name is not None and phone is not None and languages is not None
    assert capacity is not None and takes_calls is not None and on_call is not None
    assert active is not None and takes_sms is not None
    return SupporterSpec(
        name=name,
        phone=phone,
        languages=languages,
        capacity=capacity,
        takes_calls=takes_calls,
        takes_sms=takes_sms,
        on_call=on_call,
        active=active,
        shifts=[one for one in shifts if one is not None],
        cover=[one for one in cover if one is not None],
        time_off=[one for one in time_off if one is not None],
    )


def _read_group(check: _Checker, raw: Any, where: str) -> GroupSpec | None:
    before = len(check.problems)
    item = check.mapping(
        raw, where, ("name", "days", "start", "minutes"), ("skip_holidays", "join", "cancelled")
    )
    if item is None:
        return None
    name = item.get("name", _text)
    days = item.get("days", _day_list)
    start = item.get("start", _time())
    minutes = item.get("minutes", _whole_number(1, rota.MINUTES_PER_DAY))
    skip = item.get("skip_holidays", _optional_holidays)
    join = item.get("join", _optional_text)
    cancelled = [check.check(at, one, _date) for at, one in item.items("cancelled")]
    if len(check.problems) > before:
        return None
    assert name is not None and days is not None and start is not None and minutes is not None
    return GroupSpec(
        name=name,
        days=days,
        start=start,
        minutes=minutes,
        skip_holidays=skip,
        join=join,
        cancelled=sorted({day for day in cancelled if day is not None}),
    )


def parse(text: str, default_region: str = "US") -> LineFile:
    """Read a line file, raising LineFileError that lists every problem with its location."""
    try:
        loaded = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        reason = getattr(error, "problem", None) or str(error)
        raise LineFileError(f"{where}not valid YAML: {reason}") from None
    check = _Checker(default_region)
    top = check.mapping(loaded, "", ("timezone",), ("holidays", "supporters", "groups"))
    if top is None:
        raise LineFileError("\n".join(check.problems), check.problems)
    timezone = top.get("timezone", _timezone)
    holidays = top.get("holidays", _optional_holidays)
    supporters = [_read_supporter(check, one, at) for at, one in top.items("supporters")]
    groups = [_read_group(check, one, at) for at, one in top.items("groups")]
    if check.problems:
        raise LineFileError("\n".join(check.problems), check.problems)
    assert timezone is not None
    return LineFile(
        timezone=timezone,
        supporters=[one for one in supporters if one is not None],
        groups=[one for one in groups if one is not None],
        holidays=holidays,
    )


# --- writing -------------------------------------------------------------------------------


class _Quoted(str):
    """A string written in double quotes (times, dates, phone numbers)."""


class _FlowMap(dict[str, Any]):
    """A mapping written on one line, `{days: [mon], start: "09:00", end: "17:00"}`."""


class _FlowList(list[Any]):
    """A list written on one line, `[mon, wed, fri]`."""


class _Dumper(yaml.SafeDumper):
    """A safe dumper that knows the one-line and quoted shapes above."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        """Indent lists under their key, as people write them by hand."""
        super().increase_indent(flow, False)


_Dumper.add_representer(
    _Quoted, lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
)
_Dumper.add_representer(
    _FlowMap,
    lambda dumper, data: dumper.represent_mapping(
        "tag:yaml.org,2002:map", data.items(), flow_style=True
    ),
)
_Dumper.add_representer(
    _FlowList,
    lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True),
)


def _days_out(days: list[str]) -> _FlowList:
    try:
        return _FlowList(rota.format_day(index) for index in sorted(map(rota.parse_day, days)))
    except ValueError:
        return _FlowList(days)


def _supporter_out(supporter: SupporterSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": supporter.name,
        "phone": _Quoted(supporter.phone),
        "languages": _FlowList(supporter.languages),
        "capacity": supporter.capacity,
    }
    # Flags are written only when they differ from the default, to keep the sheet readable.
    if not supporter.takes_calls:
        out["takes_calls"] = False
    if not supporter.takes_sms:
        out["takes_sms"] = False
    if supporter.on_call:
        out["on_call"] = True
    if not supporter.active:
        out["active"] = False
    shifts = []
    for shift in supporter.shifts:
        one = _FlowMap(
            days=_days_out(shift.days), start=_Quoted(shift.start), end=_Quoted(shift.end)
        )
        if shift.run_on_holidays:
            one["run_on_holidays"] = True
        shifts.append(one)
    out["shifts"] = shifts
    if supporter.cover:
        out["cover"] = [
            _FlowMap(
                date=_Quoted(one.date.isoformat()), start=_Quoted(one.start), end=_Quoted(one.end)
            )
            for one in supporter.cover
        ]
    if supporter.time_off:
        out["time_off"] = [
            _FlowMap(
                {"from": _Quoted(off.from_.isoformat()), "to": _Quoted(off.to.isoformat())}
                | ({"start": _Quoted(off.start), "end": _Quoted(off.end)} if off.start else {})
            )
            for off in supporter.time_off
        ]
    return out


def _group_out(group: GroupSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": group.name,
        "days": _days_out(group.days),
        "start": _Quoted(group.start),
        "minutes": group.minutes,
    }
    if group.skip_holidays is not None:
        out["skip_holidays"] = group.skip_holidays
    if group.join is not None:
        out["join"] = group.join
    if group.cancelled:
        out["cancelled"] = _FlowList(_Quoted(day.isoformat()) for day in group.cancelled)
    return out


def dump(line: LineFile) -> str:
    """Write a line file as YAML that `parse` reads back to an equal LineFile."""
    out: dict[str, Any] = {"timezone": line.timezone}
    if line.holidays is not None:
        out["holidays"] = line.holidays
    out["supporters"] = [_supporter_out(supporter) for supporter in line.supporters]
    out["groups"] = [_group_out(group) for group in line.groups]
    return yaml.dump(
        out,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=4096,
    )


# --- use -----------------------------------------------------------------------------------


def to_rota(spec: SupporterSpec) -> rota.SupporterRota:
    """Return the supporter's shifts, cover and time off as a rota.SupporterRota."""
    return rota.SupporterRota(
        shifts=tuple(
            rota.WeeklyShift(
                days=frozenset(rota.parse_day(day) for day in shift.days),
                start=rota.parse_time(shift.start),
                end=rota.parse_time(shift.end, end=True),
                run_on_holidays=shift.run_on_holidays,
            )
            for shift in spec.shifts
        ),
        cover=tuple(
            rota.CoverShift(
                date=one.date,
                start=rota.parse_time(one.start),
                end=rota.parse_time(one.end, end=True),
            )
            for one in spec.cover
        ),
        time_off=tuple(
            rota.TimeOff(
                off.from_,
                off.to,
                None if off.start is None else rota.parse_time(off.start),
                None if off.end is None else rota.parse_time(off.end, end=True),
            )
            for off in spec.time_off
        ),
    )


DEMO_LINE_FILE = """\
# A demo line: fictitious 555 numbers, someone always on shift.
timezone: America/Toronto
holidays: CA-ON
supporters:
  - name: Sam
    phone: "+14165550101"
    languages: [en]
    capacity: 1
    shifts:
      - days: [mon, tue, wed, thu, fri, sat, sun]
        start: "00:00"
        end: "24:00"
        run_on_holidays: true       # the demo always has someone on shift
  - name: Rosa
    phone: "+14165550102"
    languages: [es, en]
    capacity: 1
    shifts:
      - {days: [mon, wed, fri], start: "09:00", end: "17:00"}
      - {days: [sat], start: "22:00", end: "02:00"}
  - name: Alex
    phone: "+14165550103"
    languages: [en]
    capacity: 2
    on_call: true
    shifts:
      - {days: [tue, thu], start: "12:00", end: "20:00"}
      - {days: [sun], start: "10:00", end: "16:00"}
    time_off:
      - {from: "2026-12-24", to: "2026-12-26"}
groups:
  - name: Online peer support group
    days: [mon, fri]
    start: "13:00"
    minutes: 60
    skip_holidays: CA-ON
    join: "https://example.org/groups"
"""
