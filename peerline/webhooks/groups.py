"""The public group schedule: a page of the next meetings and an iCalendar file of them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import holidays
import icalendar
from flask import Blueprint, Response, current_app, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerline.service.availability import days_to_set
from peerline.service.groups import meetings
from peerline.service.models import Group, utcnow

bp = Blueprint("groups", __name__)

PAGE_WEEKS, FEED_WEEKS = 4, 12
# meetings() looks twelve weeks ahead at most; asking for more would silently cut short.
MAX_WEEKS = 12
CANCELLED = "Cancelled"
DAY_TITLES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Occasion:
    """One date a group would meet on: a meeting, or the reason there is none."""

    group: str
    starts: datetime  # aware, in the line's time zone
    minutes: int
    join: str | None
    skipped: str | None = None  # the holiday's name, or CANCELLED

    @property
    def ends(self) -> datetime:
        """Return when the meeting ends, in the line's time zone."""
        # Elapsed time, not wall-clock: a meeting across a DST change still lasts its length.
        elapsed = self.starts.astimezone(UTC) + timedelta(minutes=self.minutes)
        return elapsed.astimezone(self.starts.tzinfo)


@dataclass(frozen=True)
class Listing:
    """A group with its weekly pattern and its next occasions, skipped ones included."""

    name: str
    schedule: str
    minutes: int
    join: str | None
    occasions: list[Occasion]


@lru_cache(maxsize=32)
def _holiday_calendar(spec: str) -> holidays.HolidayBase:
    country, _, subdivision = spec.partition("-")
    return holidays.country_holidays(country, subdiv=subdivision or None)


def _plural_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def date_text(moment: datetime) -> str:
    """Return a date as people read it, such as "Monday, February 16, 2026"."""
    return moment.strftime("%A, %B %-d, %Y")


def clock_text(moment: datetime) -> str:
    """Return a time of day as people read it, such as "1:00 PM"."""
    return moment.strftime("%-I:%M %p")


def length_text(minutes: int) -> str:
    """Return a length such as "1 hour 30 minutes"."""
    hours, rest = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if rest:
        parts.append(f"{rest} minute{'s' if rest != 1 else ''}")
    return " ".join(parts)


def _schedule_text(group: Group) -> str:
    days = sorted(days_to_set(group.days))
    hour, minute = divmod(group.start_minute, 60)
    starts = clock_text(datetime.combine(date(2000, 1, 3), time(hour, minute)))
    if len(days) == 7:
        return f"Every day at {starts}"
    return f"Every {_plural_list([DAY_TITLES[d] for d in days])} at {starts}"


def _skipped(group: Group, tz: ZoneInfo, now: datetime, until: datetime) -> list[Occasion]:
    """Return the dates in a window when the group would meet but does not, and why."""
    days = days_to_set(group.days)
    cancelled = {date.fromisoformat(d) for d in group.cancelled.split(",") if d}
    closed = _holiday_calendar(group.skip_holidays) if group.skip_holidays else None
    hour, minute = divmod(group.start_minute, 60)
    found = []
    day = now.astimezone(tz).date()
    while day <= until.astimezone(tz).date():
        starts = datetime.combine(day, time(hour, minute), tzinfo=tz)
        holiday = closed.get(day) if closed is not None else None
        if day.weekday() in days and now < starts < until and (holiday or day in cancelled):
            # A holiday names itself; a plain cancellation has no reason to give.
            reason = holiday or CANCELLED
            found.append(Occasion(group.name, starts, group.minutes, group.join_url, reason))
        day += timedelta(days=1)
    return found


def upcoming_meetings(session: Session, tz: ZoneInfo, now: datetime, weeks: int) -> list[Listing]:
    """Return every group with its occasions in the coming weeks, skipped ones noted."""
    weeks = max(1, min(weeks, MAX_WEEKS))
    until = now + timedelta(weeks=weeks)
    listings = []
    for group in session.scalars(select(Group).order_by(Group.name)):
        per_week = len(days_to_set(group.days))
        skipped = _skipped(group, tz, now, until)
        # meetings() lets holidays through while its lazily filled holiday calendar is still
        # empty (an empty HolidayBase is falsy), so the dates found skipped here win.
        off = {o.starts.date() for o in skipped}
        held = [
            Occasion(m.group, m.starts.astimezone(tz), m.minutes, m.join)
            for m in meetings(group, tz, now, per_week * weeks + 1)
            if m.starts < until and m.starts.astimezone(tz).date() not in off
        ]
        occasions = sorted(held + skipped, key=lambda o: o.starts)
        listings.append(
            Listing(group.name, _schedule_text(group), group.minutes, group.join_url, occasions)
        )
    return listings


def _uid(occasion: Occasion, host: str) -> str:
    # One id per group and local date: a calendar app updates a moved meeting, never doubles it.
    digest = hashlib.sha256(occasion.group.encode("utf-8")).hexdigest()[:16]
    return f"group-{digest}-{occasion.starts:%Y%m%d}@{host}"


def ical_feed(listings: list[Listing], tz: ZoneInfo, now: datetime, host: str) -> bytes:
    """Return the meetings (skipped ones left out) as an iCalendar file in the line's zone."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Peerline//Groups//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "Peer support groups")
    calendar.add("x-wr-timezone", tz.key)
    for listing in listings:
        for occasion in listing.occasions:
            if occasion.skipped:
                continue
            event = icalendar.Event()
            event.add("uid", _uid(occasion, host))
            event.add("summary", listing.name)
            event.add("dtstart", occasion.starts)
            event.add("dtend", occasion.ends)
            event.add("dtstamp", now)
            if occasion.join:
                event.add("location", occasion.join)
                if occasion.join.startswith(("https://", "http://")):
                    event.add("url", occasion.join)
            event.add(
                "description",
                "A free peer support group. Peer support is not therapy or a crisis service."
                + (f" How to join: {occasion.join}" if occasion.join else ""),
            )
            calendar.add_component(event)
    # Only the span the events cover: the zone's whole history would bloat every download.
    calendar.add_missing_timezones(
        first_date=now.date() - timedelta(days=1),
        last_date=now.date() + timedelta(weeks=MAX_WEEKS + 1),
    )
    return bytes(calendar.to_ical())


def _weeks(default: int) -> int:
    try:
        return int(request.args.get("weeks", default))
    except ValueError:
        return default


def _zone_name(tz: ZoneInfo) -> str:
    # "America/Toronto" reads as "Toronto" to people; the abbreviation follows each time.
    return tz.key.rsplit("/", 1)[-1].replace("_", " ")


@bp.get("/groups")
def page() -> Response:
    """Show the next meetings of every group, with holidays and cancellations noted."""
    line = current_app.extensions["peerline"]
    with line.db.session() as session:
        tz = line.timezone(session)
        listings = upcoming_meetings(session, tz, utcnow(), _weeks(PAGE_WEEKS))
    html = render_template(
        "groups.html",
        listings=listings,
        zone=_zone_name(tz),
        emergency=line.catalogue.render("en", "emergency"),
        date_text=date_text,
        clock_text=clock_text,
        length_text=length_text,
        cancelled=CANCELLED,
    )
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return response


@bp.get("/groups.ics")
def calendar_file() -> Response:
    """Serve the coming meetings as an iCalendar file to subscribe to or import."""
    line = current_app.extensions["peerline"]
    now = utcnow()
    with line.db.session() as session:
        tz = line.timezone(session)
        listings = upcoming_meetings(session, tz, now, _weeks(FEED_WEEKS))
    host = urlsplit(line.settings.public_base_url).hostname or "peerline"
    response = Response(ical_feed(listings, tz, now, host), mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'inline; filename="groups.ics"'
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
