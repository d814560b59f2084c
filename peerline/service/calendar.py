"""A supporter's private iCalendar feed of their shifts, in the line's time zone."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from peerline.service import rota
from peerline.service.availability import rota_of
from peerline.service.models import Supporter

PAST_DAYS, FUTURE_DAYS = 7, 56


def new_token() -> str:
    """Return a fresh secret for a calendar feed URL."""
    return secrets.token_urlsafe(24)


def feed(
    supporter: Supporter, tz: ZoneInfo, now: datetime, closures: rota.Closures | None
) -> bytes:
    """Return the supporter's shifts from a week ago to eight weeks ahead as iCalendar."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Peerline//Shifts//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"Peerline shifts: {supporter.name}")
    calendar.add("x-wr-timezone", tz.key)
    spans = rota.intervals(
        rota_of(supporter),
        tz,
        now - timedelta(days=PAST_DAYS),
        now + timedelta(days=FUTURE_DAYS),
        closures,
    )
    for start, end in spans:
        event = icalendar.Event()
        # Stable ids, so a calendar app updates a moved shift instead of duplicating it.
        event.add("uid", f"shift-{supporter.id}-{start:%Y%m%dT%H%M%SZ}@peerline")
        event.add("summary", "Peerline shift")
        event.add("dtstart", start.astimezone(tz))
        event.add("dtend", end.astimezone(tz))
        event.add("dtstamp", now)
        event.add(
            "description", "Text #back to the line when you start, and #away if you must stop."
        )
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())
