"""Groups and holidays: each group's weekly schedule, its cancelled dates and next meetings.

The console edits the groups in the database, which is what the line runs on. The line file is
an import and export of that same database: `peerline import` makes the groups match the file
again (so a console edit is kept only if it is exported first: `peerline export`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms import DateField, IntegerField, SelectMultipleField, StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from peerline.console.common import (
    audit,
    get_or_404,
    line,
    local_today,
    now,
    submitted,
    within_range,
)
from peerline.console.forms import (
    ClockField,
    ConfirmForm,
    InRange,
    add_error,
    clock,
    given,
    start_minute,
)
from peerline.service.availability import days_to_set
from peerline.service.models import Group
from peerline.service.rota import DAY_NAMES, Closures, format_time, normalise_holidays_spec
from peerline.webhooks.groups import Listing, upcoming_meetings

bp = Blueprint("group_pages", __name__, url_prefix="/groups")

WEEKS = 4
HOLIDAY_DAYS = 8 * 7


def _holidays(form: FlaskForm, field: StringField) -> None:
    """Accept a holiday calendar the holidays library knows, such as CA-ON."""
    if field.data:
        try:
            field.data = normalise_holidays_spec(field.data.strip())
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class GroupForm(FlaskForm):
    """A group's weekly schedule."""

    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    days = SelectMultipleField(
        "Days",
        choices=list(DAY_NAMES),  # type: ignore[arg-type]  # plain strings are valid choices
        validators=[DataRequired()],
    )
    start = ClockField(
        "Starts", validators=[InputRequired()], description="24-hour line time, as HH:MM."
    )
    minutes = IntegerField(
        "Minutes", validators=[InputRequired(), NumberRange(min=5, max=600)], default=60
    )
    skip_holidays = StringField(
        "Skip the public holidays of",
        validators=[Optional(), Length(max=16), _holidays],
        description="A calendar such as CA-ON or US; empty to meet on holidays too.",
    )
    join = StringField(
        "How to join",
        validators=[Optional(), Length(max=500)],
        description="A link or a sentence; shown on the public groups page.",
    )


class CancelForm(FlaskForm):
    """Cancel one meeting of a group."""

    day = DateField("Date to cancel", validators=[InputRequired(), InRange()])


@dataclass(frozen=True)
class GroupView:
    """A group with its forms and the next weeks' occasions."""

    group_id: int
    name: str
    cancelled: list[date]
    listing: Listing | None
    form: GroupForm
    cancel: CancelForm


def _cancelled(group: Group) -> list[date]:
    return sorted(date.fromisoformat(d) for d in group.cancelled.split(",") if d)


def _form_of(group: Group) -> GroupForm:
    form = GroupForm(formdata=None, prefix=f"g{group.id}")
    form.name.data = group.name
    form.days.data = [DAY_NAMES[d] for d in sorted(days_to_set(group.days))]
    form.start.data = clock(group.start_minute)
    form.minutes.data = group.minutes
    form.skip_holidays.data = group.skip_holidays or ""
    form.join.data = group.join_url or ""
    return form


def _views(session: Session, edited: tuple[int, GroupForm] | None = None) -> list[GroupView]:
    tz = line().timezone(session)
    listings = {one.name: one for one in upcoming_meetings(session, tz, now(), WEEKS)}
    views = []
    for group in session.scalars(select(Group).order_by(Group.name)):
        form = edited[1] if edited and edited[0] == group.id else _form_of(group)
        cancel = CancelForm(formdata=None, prefix=f"c{group.id}")
        views.append(
            GroupView(
                group.id, group.name, _cancelled(group), listings.get(group.name), form, cancel
            )
        )
    return views


def _page(
    edited: tuple[int, GroupForm] | None = None, new: GroupForm | None = None, status: int = 200
) -> tuple[str, int]:
    with line().db.session() as session:
        tz = line().timezone(session)
        views = _views(session, edited)
        today = local_today(tz)
        spec = line().holidays_spec(session)
    page = render_template(
        "console/groups.html",
        views=views,
        new=new or GroupForm(formdata=None, prefix="new"),
        timezone=str(tz),
        today=today,
        holidays_spec=spec,
        holidays=_holidays_ahead(spec, today),
    )
    return page, status


def _holidays_ahead(spec: str | None, today: date) -> list[tuple[date, str]]:
    """Return the public holidays the line closes on in the next eight weeks."""
    if not spec:
        return []
    closures = Closures(spec)
    days = (today + timedelta(days=n) for n in range(HOLIDAY_DAYS))
    return [(day, name) for day in days if (name := closures.holiday_name(day))]


@bp.get("/")
def index() -> tuple[str, int]:
    """Show each group's schedule, its cancelled dates and the next four weeks of meetings."""
    return _page()


def _apply(group: Group, form: GroupForm) -> None:
    group.name = " ".join(given(form.name.data).split())
    group.days = ",".join(d for d in DAY_NAMES if d in given(form.days.data))
    group.start_minute = start_minute(form.start.data)
    group.minutes = given(form.minutes.data)
    group.skip_holidays = form.skip_holidays.data or None
    group.join_url = (form.join.data or "").strip() or None


def _name_taken(session: Session, name: str, group_id: int | None) -> bool:
    other = session.scalar(select(Group.id).where(Group.name == " ".join(name.split())))
    return other is not None and other != group_id


@bp.post("/")
def add() -> BaseResponse | tuple[str, int]:
    """Add a weekly group."""
    form = GroupForm(prefix="new")
    if not form.validate_on_submit():
        return _page(new=form, status=400)
    with line().db.session() as session:
        if _name_taken(session, given(form.name.data), None):
            add_error(form.name, "Another group has this name.")
            return _page(new=form, status=400)
        group = Group(name="", days="", start_minute=0, minutes=60, cancelled="")
        _apply(group, form)
        session.add(group)
        audit(session, "group.added", f"group {group.name}"[:120], _summary(group))
    flash("Group added.", "success")
    return redirect(url_for("console.group_pages.index"))


def _summary(group: Group) -> str:
    return f"{group.days} at {format_time(group.start_minute)} for {group.minutes} min"


def _group(session: Session, group_id: int) -> Group:
    return get_or_404(session, Group, group_id, "There is no such group.")


@bp.post("/<int:group_id>")
def edit(group_id: int) -> BaseResponse | tuple[str, int]:
    """Change a group's weekly schedule."""
    form = GroupForm(prefix=f"g{group_id}")
    with line().db.session() as session:
        group = _group(session, group_id)
        if not form.validate_on_submit():
            session.rollback()
            return _page(edited=(group_id, form), status=400)
        if _name_taken(session, given(form.name.data), group_id):
            add_error(form.name, "Another group has this name.")
            return _page(edited=(group_id, form), status=400)
        before = _summary(group)
        _apply(group, form)
        audit(
            session, "group.edited", f"group {group.name}"[:120], f"{before} -> {_summary(group)}"
        )
    flash("Schedule saved.", "success")
    return redirect(url_for("console.group_pages.index"))


@bp.post("/<int:group_id>/cancel")
def cancel(group_id: int) -> BaseResponse | tuple[str, int]:
    """Cancel one date of a group's meetings."""
    form = CancelForm(prefix=f"c{group_id}")
    if not form.validate_on_submit():
        flash("Choose a date to cancel.", "error")
        return _page(status=400)
    day = given(form.day.data)
    with line().db.session() as session:
        group = _group(session, group_id)
        days = set(_cancelled(group))
        if day.weekday() not in days_to_set(group.days):
            flash(f"{group.name} does not meet on {day:%A} {day.isoformat()}.", "error")
            return redirect(url_for("console.group_pages.index"))
        if day not in days:
            group.cancelled = ",".join(d.isoformat() for d in sorted(days | {day}))
            audit(session, "group.cancelled", f"group {group.name}"[:120], day.isoformat())
        name = group.name
    flash(f"{name} on {day.isoformat()} is cancelled.", "success")
    return redirect(url_for("console.group_pages.index"))


@bp.post("/<int:group_id>/restore")
def restore(group_id: int) -> BaseResponse:
    """Put a cancelled date back."""
    submitted(ConfirmForm())
    raw = request.args.get("day", "")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        abort(400, description="day must be a date YYYY-MM-DD")
    if not within_range(day):
        abort(400, description="That date is out of range.")
    with line().db.session() as session:
        group = _group(session, group_id)
        days = set(_cancelled(group))
        if day in days:
            group.cancelled = ",".join(d.isoformat() for d in sorted(days - {day}))
            audit(session, "group.restored", f"group {group.name}"[:120], day.isoformat())
    flash(f"The meeting on {day.isoformat()} is back on.", "success")
    return redirect(url_for("console.group_pages.index"))
