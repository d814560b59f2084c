"""Who is on shift, from the rota in the database, in the line's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from peerline.service import rota
from peerline.service.models import Supporter

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
            rota.TimeOff(start=off.start_date, end=off.end_date) for off in supporter.time_off
        ),
    )


@dataclass(frozen=True)
class Rotas:
    """Every active supporter's rota, loaded once for a decision."""

    tz: ZoneInfo
    closures: rota.Closures | None
    by_supporter: dict[int, rota.SupporterRota]

    def on_shift(self, at: datetime) -> list[int]:
        """Return the ids of supporters on shift at a moment."""
        return rota.who_is_on(self.by_supporter, self.tz, at, self.closures)

    def shift_start(self, supporter_id: int, at: datetime) -> datetime | None:
        """Return when the supporter's current stretch on shift began (at most 2 days back)."""
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
        return rota.next_opening(self.by_supporter.values(), self.tz, at, self.closures)


def load_rotas(session: Session, tz: ZoneInfo, holidays_spec: str | None) -> Rotas:
    """Load the rotas of every active supporter."""
    supporters = session.scalars(
        select(Supporter)
        .where(Supporter.active.is_(True))
        .options(
            selectinload(Supporter.shifts),
            selectinload(Supporter.cover_shifts),
            selectinload(Supporter.time_off),
        )
    ).all()
    closures = rota.Closures(holidays_spec) if holidays_spec else None
    return Rotas(tz, closures, {s.id: rota_of(s) for s in supporters})


def format_opening(when: datetime, tz: ZoneInfo, now: datetime, language: str) -> str:
    """Say when the line opens, in the texter's language and the line's local time."""
    local, today = when.astimezone(tz), now.astimezone(tz).date()
    days = (local.date() - today).days
    if language == "es":
        clock = local.strftime("%H:%M")
        names = ("lunes", "martes", "miercoles", "jueves", "viernes", "sabado", "domingo")
        day = {0: "hoy", 1: "mañana"}.get(days, f"el {names[local.weekday()]}")
        return f"{day} a las {clock} ({local.tzname()})"
    clock = local.strftime("%I:%M %p").lstrip("0")
    day = {0: "today", 1: "tomorrow"}.get(days, f"on {local.strftime('%A')}")
    return f"{day} at {clock} ({local.tzname()})"
