"""Group meetings: the next dates of each weekly group, public holidays skipped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerline.service.availability import DAYS_ES, MONTHS_ES, SPOKEN_DAYS_ES, days_to_set
from peerline.service.models import Group


@dataclass(frozen=True)
class Meeting:
    """One meeting of a group, in UTC."""

    group: str
    starts: datetime
    minutes: int
    join: str | None


@lru_cache(maxsize=32)
def _calendar(spec: str) -> holidays.HolidayBase:
    country, _, subdivision = spec.partition("-")
    return holidays.country_holidays(country, subdiv=subdivision or None)


def meetings(group: Group, tz: ZoneInfo, after: datetime, count: int) -> list[Meeting]:
    """Return the next meetings of a group that start after a moment."""
    days = days_to_set(group.days)
    cancelled = {date.fromisoformat(d) for d in group.cancelled.split(",") if d}
    closed = _calendar(group.skip_holidays) if group.skip_holidays else None
    found: list[Meeting] = []
    day = after.astimezone(tz).date()
    for _ in range(7 * 12):
        if (
            day.weekday() in days
            and day not in cancelled
            and not (closed is not None and day in closed)
        ):
            hour, minute = divmod(group.start_minute, 60)
            starts = datetime.combine(day, time(hour, minute), tzinfo=tz)
            if starts > after:
                found.append(Meeting(group.name, starts, group.minutes, group.join_url))
                if len(found) == count:
                    break
        day += timedelta(days=1)
    return found


def meeting_time(starts: datetime, tz: ZoneInfo, language: str, *, spoken: bool = False) -> str:
    """Return when a meeting starts in the line's time, in the reader's language; `spoken`
    says Spanish days and months whole, with their accents, for text-to-speech."""
    local = starts.astimezone(tz)
    if language != "es":
        return local.strftime("%a %b %-d %-I:%M %p")
    clock = local.strftime("%H:%M")
    if spoken:
        day = SPOKEN_DAYS_ES[local.weekday()]
        return f"{day} {local.day} de {MONTHS_ES[local.month - 1]} a las {clock}"
    return f"{DAYS_ES[local.weekday()][:3]} {local.day} {MONTHS_ES[local.month - 1][:3]} {clock}"


def upcoming_text(
    session: Session, tz: ZoneInfo, now: datetime, language: str, *, spoken: bool = False
) -> str | None:
    """Return the next meetings as one short line for an SMS, or None when there are none;
    `spoken` is for reading out (Spanish days and months said whole)."""
    parts = []
    for group in session.scalars(select(Group).order_by(Group.name)):
        dates = meetings(group, tz, now, 2)
        if not dates:
            continue
        when = ", ".join(meeting_time(m.starts, tz, language, spoken=spoken) for m in dates)
        join = f" {group.join_url}" if group.join_url else ""
        parts.append(f"{group.name}: {when}.{join}")
    return " ".join(parts) if parts else None
