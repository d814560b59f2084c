"""Who is on shift, from the rota in the database, in the line's time zone."""

from __future__ import annotations

import secrets
import threading
import time
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, event, inspect, literal, select
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from peerline.service import rota
from peerline.service.models import (
    CoverShift,
    LineSetting,
    Shift,
    Supporter,
    TimeOff,
    insert_on,
)

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def days_to_set(days: str) -> frozenset[int]:
    """Return weekday numbers (Monday 0) from a stored "mon,wed" list."""
    return frozenset(DAY_NAMES.index(day) for day in days.split(",") if day)


def rota_of(supporter: Supporter) -> rota.SupporterRota:
    """Return a supporter's rota from their stored shifts, cover and time off."""
    return rota.SupporterRota(
        shifts=tuple(
            rota.WeeklyShift(
                days=days_to_set(shift.days),
                start=shift.start_minute,
                end=shift.end_minute,
                run_on_holidays=shift.run_on_holidays,
            )
            for shift in supporter.shifts
        ),
        cover=tuple(
            rota.CoverShift(date=cover.on_date, start=cover.start_minute, end=cover.end_minute)
            for cover in supporter.cover_shifts
        ),
        time_off=tuple(
            rota.TimeOff(off.start_date, off.end_date, off.start_minute, off.end_minute)
            for off in supporter.time_off
        ),
    )


# How far either side of the moment it is built for a rota index reaches: shift_start looks two
# days back, and a day ahead saves rebuilding on every call as time moves on.
_BACK = timedelta(days=2, hours=2)
_AHEAD = timedelta(days=1, hours=2)
_REBUILD_AFTER = timedelta(days=1)


class _SpanIndex:
    """Each supporter's merged on-shift spans over a few days, and the last answer of on_shift.

    Built from `rota.intervals` itself, so every answer is the one the rota module would give;
    it only answers for moments well inside its window and says so otherwise (None).
    """

    def __init__(self, rotas: Rotas, anchor: datetime) -> None:
        self.anchor = anchor
        self.start, self.end = anchor - _BACK, anchor + _AHEAD
        # Boundaries [start0, end0, start1, end1, ...]: a moment is on shift when an odd number
        # of them are at or before it (spans are half-open and merged, so never touch).
        self.bounds: dict[int, list[datetime]] = {}
        # Supporters on the same pattern (most of a line's rota) share one computation.
        shared: dict[rota.SupporterRota, list[datetime]] = {}
        for key, one in rotas.by_supporter.items():
            bounds = shared.get(one)
            if bounds is None:
                spans = rota.intervals(one, rotas.tz, self.start, self.end, rotas.closures)
                bounds = shared[one] = [moment for span in spans for moment in span]
            self.bounds[key] = bounds
        # (from, until, on, off): who is on and off shift from `from` up to `until`.
        self.segment: tuple[datetime, datetime, list[int], list[int]] | None = None

    def covers(self, at: datetime) -> bool:
        return self.anchor - timedelta(hours=2) <= at < self.anchor + _REBUILD_AFTER

    def split(self, at: datetime) -> tuple[list[int], list[int]]:
        """Return (on shift, off shift) at a moment, each in the rotas' order."""
        segment = self.segment
        if segment is not None and segment[0] <= at < segment[1]:
            return segment[2], segment[3]
        low, high = self.start, self.end
        on: list[int] = []
        off: list[int] = []
        for key, bounds in self.bounds.items():
            k = bisect_right(bounds, at)
            (on if k % 2 else off).append(key)
            if k and bounds[k - 1] > low:
                low = bounds[k - 1]
            if k < len(bounds) and bounds[k] < high:
                high = bounds[k]
        self.segment = (low, high, on, off)
        return on, off

    def shift_start(self, key: int, at: datetime) -> datetime | None:
        bounds = self.bounds[key]
        k = bisect_right(bounds, at)
        if not k % 2:
            return None
        # The stretch began at bounds[k - 1]; shift_start looks back two days at most.
        return max(bounds[k - 1], at - timedelta(days=2))


@dataclass(frozen=True)
class Rotas:
    """Every active supporter's rota, loaded once for a decision (and shared between them).

    Answers are those of `rota.who_is_on`, `rota.intervals` and `rota.next_opening`; an index of
    the next hours' spans makes them cheap when the same rota is asked again and again.
    """

    tz: ZoneInfo
    closures: rota.Closures | None
    by_supporter: dict[int, rota.SupporterRota]
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def _index(self, at: datetime) -> _SpanIndex | None:
        """Return an index that answers for `at`, building one when time has moved on."""
        rota._require_aware(at)
        index: _SpanIndex | None = self._memo.get("index")
        if index is not None and index.covers(at):
            return index
        if index is not None and at < index.anchor:
            return None  # a moment in the past: answer it directly, keep the index for now
        with self._memo.setdefault("lock", threading.Lock()):
            index = self._memo.get("index")
            if index is None or not index.covers(at):
                index = _SpanIndex(self, at)
                self._memo["index"] = index
        return index

    def on_shift(self, at: datetime) -> list[int]:
        """Return the ids of supporters on shift at a moment."""
        index = self._index(at)
        if index is None:
            return rota.who_is_on(self.by_supporter, self.tz, at, self.closures)
        return list(index.split(at)[0])

    def off_shift(self, at: datetime) -> list[int]:
        """Return the ids of supporters in the rotas who are not on shift at a moment."""
        index = self._index(at)
        if index is None:
            on = set(rota.who_is_on(self.by_supporter, self.tz, at, self.closures))
            return [key for key in self.by_supporter if key not in on]
        return list(index.split(at)[1])

    def shift_start(self, supporter_id: int, at: datetime) -> datetime | None:
        """Return when the supporter's current stretch on shift began (at most 2 days back)."""
        index = self._index(at)
        if index is not None:
            return index.shift_start(supporter_id, at)
        spans = rota.intervals(
            self.by_supporter[supporter_id],
            self.tz,
            at - timedelta(days=2),
            at + timedelta(microseconds=1),
            self.closures,
        )
        return spans[-1][0] if spans and spans[-1][1] > at else None

    def next_opening(self, at: datetime) -> datetime | None:
        """Return when somebody is next on shift."""
        # Nobody is on shift from `asked` until `opening`, so from any moment in between the
        # next opening is the same one: a closed line answers every texter from this memo.
        memo = self._memo.get("opening")
        if memo is not None and memo[0] <= at <= memo[1]:
            return memo[1]
        opening = rota.next_opening(self.by_supporter.values(), self.tz, at, self.closures)
        if opening is not None:
            self._memo["opening"] = (at, opening)
        return opening


# -- loading, with a cache per process -------------------------------------------------------
#
# Rotas change rarely (an import, a console edit) and are read on every text and every matching
# round. Each process keeps the last rotas it loaded per database, keyed by a version stamp in
# line_settings that every ORM change to the rota replaces in the same transaction (see
# `watch_rota_changes`), so a process sees a change as soon as it is committed. A change made
# behind the ORM's back (raw SQL) is picked up after REFRESH_SECONDS at the latest.

ROTA_VERSION_KEY = "rota_version"
# The line file's time zone and holiday calendar, as `LineServices.timezone` and
# `holidays_spec` read them.
TIMEZONE_KEY, HOLIDAYS_KEY = "timezone", "holidays"
# The keys are bound values fixed when the statement is built, not an expanding parameter
# that SQLAlchemy re-renders at every execution.
_LINE_SETTINGS = select(LineSetting.key, LineSetting.value).where(
    LineSetting.key.in_(
        [literal(key, String) for key in (TIMEZONE_KEY, HOLIDAYS_KEY, ROTA_VERSION_KEY)]
    )
)
REFRESH_SECONDS = 300.0
_ROTA_MODELS = (Shift, CoverShift, TimeOff)
_ROTA_TABLES = frozenset(model.__tablename__ for model in (*_ROTA_MODELS, Supporter))
_SUPPORTER_ROTA_ATTRS = ("active", "shifts", "cover_shifts", "time_off")


@dataclass(frozen=True)
class _Cached:
    key: tuple[str, str, str, str | None]
    rotas: Rotas
    loaded: float


_cache: dict[str, _Cached] = {}
_cache_lock = threading.Lock()


def bump_rota_version(session: Session) -> None:
    """Record that the rota changed, in the caller's transaction (call after raw SQL edits)."""
    token = secrets.token_hex(8)
    values = {"key": ROTA_VERSION_KEY, "value": token}
    dialect = session.get_bind().dialect.name
    # An upsert, so two first changes at once never collide on the key.
    stmt = insert_on(dialect, LineSetting).values(values)
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"value": token})
    session.connection().execute(stmt)
    with session.no_autoflush:
        cached = session.identity_map.get(session.identity_key(LineSetting, ROTA_VERSION_KEY))
    if cached is not None:
        set_committed_value(cached, "value", token)


def _changes_rota(session: Session) -> bool:
    for obj in (*session.new, *session.deleted):
        if isinstance(obj, (*_ROTA_MODELS, Supporter)):
            return True
    for obj in session.dirty:
        if isinstance(obj, _ROTA_MODELS):
            return True
        if isinstance(obj, Supporter):
            attrs = inspect(obj).attrs
            if any(attrs[name].history.has_changes() for name in _SUPPORTER_ROTA_ATTRS):
                return True
    return False


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if _changes_rota(session):
        bump_rota_version(session)


def _bulk_statement(state: ORMExecuteState) -> Any:
    if not (state.is_insert or state.is_update or state.is_delete):
        return None
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) not in _ROTA_TABLES:
        return None
    result = state.invoke_statement()
    bump_rota_version(state.session)
    return result


def watch_rota_changes(sessions: sessionmaker[Session]) -> None:
    """Make every ORM change to the rota through these sessions replace the version stamp."""
    if not event.contains(sessions, "before_flush", _before_flush):
        event.listen(sessions, "before_flush", _before_flush)
        event.listen(sessions, "do_orm_execute", _bulk_statement)


def load_line_rotas(session: Session, default_timezone: str) -> Rotas:
    """Return the rotas in the line's time zone and holiday calendar, reading the settings once.

    The one way to load them: the time zone, the holiday spec and the rota version are read
    in one query, and the rotas come from this process's cache while that version is current.
    """
    stored = {key: value for key, value in session.connection().execute(_LINE_SETTINGS)}
    tz = ZoneInfo(stored.get(TIMEZONE_KEY, default_timezone))
    return _cached_rotas(
        session, tz, stored.get(HOLIDAYS_KEY) or None, stored.get(ROTA_VERSION_KEY)
    )


def _cached_rotas(
    session: Session, tz: ZoneInfo, holidays_spec: str | None, version: str | None
) -> Rotas:
    if version is None:
        return _load_rotas(session, tz, holidays_spec)
    database = str(session.get_bind().engine.url)
    key = (database, version, tz.key, holidays_spec)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(database)
    if cached is not None and cached.key == key and now - cached.loaded < REFRESH_SECONDS:
        return cached.rotas
    rotas = _load_rotas(session, tz, holidays_spec)
    with _cache_lock:
        _cache[database] = _Cached(key, rotas, now)
    return rotas


def _of_active(
    session: Session, table: type[Shift | CoverShift | TimeOff], *columns: Any
) -> Iterable[Any]:
    """Return the supporter id and `columns` of each row of a rota table whose supporter is
    active, in the order the rows were written."""
    return session.execute(
        select(table.supporter_id, *columns)
        .join(Supporter, Supporter.id == table.supporter_id)
        .where(Supporter.active.is_(True))
        .order_by(table.id)
    )


def _load_rotas(session: Session, tz: ZoneInfo, holidays_spec: str | None) -> Rotas:
    """Load the rotas of every active supporter from the database."""
    ids = list(
        session.scalars(
            select(Supporter.id).where(Supporter.active.is_(True)).order_by(Supporter.id)
        )
    )
    shifts: dict[int, list[rota.WeeklyShift]] = {sid: [] for sid in ids}
    cover: dict[int, list[rota.CoverShift]] = {sid: [] for sid in ids}
    time_off: dict[int, list[rota.TimeOff]] = {sid: [] for sid in ids}
    for sid, days, start, end, on_holidays in _of_active(
        session, Shift, Shift.days, Shift.start_minute, Shift.end_minute, Shift.run_on_holidays
    ):
        if sid in shifts:
            shifts[sid].append(rota.WeeklyShift(days_to_set(days), start, end, on_holidays))
    for sid, on_date, start, end in _of_active(
        session, CoverShift, CoverShift.on_date, CoverShift.start_minute, CoverShift.end_minute
    ):
        if sid in cover:
            cover[sid].append(rota.CoverShift(date=on_date, start=start, end=end))
    for sid, first, last, from_minute, to_minute in _of_active(
        session,
        TimeOff,
        TimeOff.start_date,
        TimeOff.end_date,
        TimeOff.start_minute,
        TimeOff.end_minute,
    ):
        if sid in time_off:
            time_off[sid].append(rota.TimeOff(first, last, from_minute, to_minute))
    closures = rota.Closures(holidays_spec) if holidays_spec else None
    return Rotas(
        tz,
        closures,
        {
            sid: rota.SupporterRota(
                shifts=tuple(shifts[sid]), cover=tuple(cover[sid]), time_off=tuple(time_off[sid])
            )
            for sid in ids
        },
    )


# Spanish day and month names (no locale: the server's may not have Spanish). Without accents
# for texts (GSM-7), with them for text-to-speech.
DAYS_ES = ("lunes", "martes", "miercoles", "jueves", "viernes", "sabado", "domingo")
SPOKEN_DAYS_ES = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
MONTHS_ES = (
    "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
).split()


def format_opening(when: datetime, tz: ZoneInfo, now: datetime, language: str) -> str:
    """Say when the line opens, in the texter's language and the line's local time."""
    local, today = when.astimezone(tz), now.astimezone(tz).date()
    days = (local.date() - today).days
    if language == "es":
        clock = local.strftime("%H:%M")
        day = {0: "hoy", 1: "mañana"}.get(days, f"el {DAYS_ES[local.weekday()]}")
        return f"{day} a las {clock} ({local.tzname()})"
    if (local.hour, local.minute) == (0, 0):
        # "Tuesday at 12:00 AM" reads as Tuesday's end to many: name the night it ends.
        eve = local - timedelta(days=1)
        night = {1: "tonight", 2: "tomorrow night"}.get(days, f"on {eve.strftime('%A')} night")
        return f"{night} at midnight ({local.tzname()})"
    day = {0: "today", 1: "tomorrow"}.get(days, f"on {local.strftime('%A')}")
    return f"{day} at {english_clock(local)} ({local.tzname()})"


def english_clock(local: datetime) -> str:
    """Say a local time of day the way English speakers do: "9:30 AM", "noon"."""
    if (local.hour, local.minute) == (12, 0):
        return "noon"
    return local.strftime("%I:%M %p").lstrip("0")
