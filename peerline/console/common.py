"""What every console view shares: the line, the clock, local times and the audit trail."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import abort, current_app, render_template
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session

from peerline.service.context import crisis_words_in
from peerline.service.models import AuditEvent, Conversation, utcnow
from peerline.service.services import LineServices

# The dates the console accepts anywhere: the arithmetic around them (a week, a day more, a
# time zone) stays far from Python's and PostgreSQL's limits.
EARLIEST = date(2000, 1, 1)
LATEST = date(2199, 12, 31)
# More pages than any list can have: a larger number is read as the last page anyone needs.
MAX_PAGE = 100_000
_WHOLE = re.compile(r"[0-9]{1,9}")

T = TypeVar("T")
FormT = TypeVar("FormT", bound=FlaskForm)

# The console's pages are written in English, and it keeps alerts in English: what it puts
# in words from the catalogue (a crisis category) is English too.
CONSOLE_LANGUAGE = "en"

DAY_LABELS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def line() -> LineServices:
    """Return the line bound to the running app."""
    bound: LineServices = current_app.extensions["peerline"]
    return bound


def crisis_words(category: str | None) -> str:
    """Return a stored crisis category in the console's words ("feels a burden, without
    hope"), as alerts say it: never its code ("burden_hopelessn"), "no details" for none."""
    return crisis_words_in(line().catalogue, category, CONSOLE_LANGUAGE)


def now() -> datetime:
    """Return the current time in UTC."""
    return utcnow()


def actor() -> str:
    """Return who is acting: the signed-in coordinator's email."""
    return str(current_user.email) if current_user.is_authenticated else "anonymous"


def audit(session: Session, action: str, subject: str, detail: str = "", *, who: str = "") -> None:
    """Write one audit entry in the caller's transaction."""
    session.add(
        AuditEvent(
            at=now(),
            actor=(who or actor())[:120],
            action=action[:64],
            subject=subject[:120],
            detail=detail,
        )
    )


def get_or_404(session: Session, model: type[T], ident: int, description: str) -> T:
    """Return the row with this id, or answer 404 saying what is missing."""
    found = session.get(model, ident)
    if found is None:
        abort(404, description=description)
    return found


def submitted(form: FormT, why: str | None = None) -> FormT:
    """Return the posted form if it is valid (its CSRF token too), else answer 400 with `why`."""
    if not form.validate_on_submit():
        abort(400, description=why)
    return form


def form_page(template: str, form: FlaskForm, **context: Any) -> tuple[str, int]:
    """Render a form's page: 400 when a submitted form came back with problems, else 200."""
    return render_template(template, form=form, **context), 400 if form.is_submitted() else 200


def whole_number(raw: str | None) -> int | None:
    """Return a query string's small whole number (ASCII digits only), or None."""
    if raw is None or not _WHOLE.fullmatch(raw):
        return None
    return int(raw)


def page_number(raw: str | None) -> int:
    """Return a page asked for in a query string: 1 unless a sane page number was given."""
    number = whole_number(raw)
    return min(number, MAX_PAGE) if number else 1


def within_range(day: date) -> bool:
    """Say whether a date is one the console works with."""
    return EARLIEST <= day <= LATEST


def week_start(day: date) -> date:
    """Return the Monday of the week a date falls in."""
    return day - timedelta(days=day.weekday())


def local_today(tz: ZoneInfo) -> date:
    """Return today's date in the line's time zone."""
    return now().astimezone(tz).date()


def format_local(moment: datetime | None, tz: ZoneInfo, *, with_day: bool = True) -> str:
    """Return a UTC moment as local wall-clock text, such as "Tue 3 Mar 14:05"."""
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    clock = local.strftime("%H:%M")
    if not with_day:
        return clock
    return f"{local.strftime('%a')} {local.day} {local.strftime('%b')} {clock}"


def format_duration(seconds: float | None) -> str:
    """Return a duration as short text: "45 s", "12 min", "2 h 05 min"."""
    if seconds is None:
        return "–"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """Return the seconds from one moment to another, or None when either is missing."""
    if start is None or end is None:
        return None
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()


def flagged(conversation: Conversation) -> bool:
    """Say whether crisis language was seen in a conversation (or it was put first for it)."""
    return conversation.crisis_at is not None or conversation.priority > 0
