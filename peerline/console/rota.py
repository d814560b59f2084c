"""The rota: a week of every supporter's shifts, changes to it, and coverage against demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from werkzeug.wrappers import Response as BaseResponse

from peerline.console import stats
from peerline.console.charts import day_bar
from peerline.console.common import (
    DAY_LABELS,
    audit,
    form_page,
    get_or_404,
    line,
    local_today,
    now,
    submitted,
    week_start,
    whole_number,
    within_range,
)
from peerline.console.forms import (
    ConfirmForm,
    CoverForm,
    ShiftForm,
    TimeOffForm,
    choices_of,
    clock,
    end_minute,
    given,
    start_minute,
)
from peerline.service import rota as rules
from peerline.service.availability import days_to_set, load_line_rotas, rota_of
from peerline.service.models import Conversation, CoverShift, Shift, Supporter, TimeOff

bp = Blueprint("rota", __name__, url_prefix="/rota")

WEEKS_CHOICES = (1, 2, 4, 8, 12)


@dataclass(frozen=True)
class Chip:
    """One shift, cover or day off in a cell of the week view."""

    label: str
    kind: str  # shift, cover, off
    note: str = ""
    url: str = ""


@dataclass
class Cell:
    """One supporter's day: a 24-hour strip and what is planned."""

    bar: str
    chips: list[Chip] = field(default_factory=list)


@dataclass
class RotaRow:
    """One supporter's week."""

    supporter_id: int
    name: str
    away: bool
    hours: float
    cells: list[Cell]


@dataclass(frozen=True)
class DayHead:
    """A column of the week view."""

    on_date: date
    label: str
    holiday: str | None
    today: bool


@dataclass(frozen=True)
class Entry:
    """Time off or a cover shift, listed under the week for removal."""

    entry_id: int
    kind: str
    supporter: str
    text: str
    remove_url: str


def _week(tz: ZoneInfo) -> date:
    """Return the Monday of the week asked for (?week=YYYY-MM-DD), else this week's."""
    raw = request.args.get("week", "")
    try:
        chosen = date.fromisoformat(raw) if raw else local_today(tz)
    except ValueError:
        abort(400, description="week must be a date, YYYY-MM-DD")
    if not within_range(chosen):
        abort(400, description="week must be a date between the years 2000 and 2199")
    return week_start(chosen)


def span_text(start: int, end: int) -> str:
    """Return a shift's times as "09:00–17:00"."""
    return f"{rules.format_time(start)}–{rules.format_time(end)}"


def _closures(session: Session) -> rules.Closures | None:
    spec = line().holidays_spec(session)
    return rules.Closures(spec) if spec else None


def local_spans(
    intervals: list[tuple[datetime, datetime]], tz: ZoneInfo, day: date
) -> list[tuple[int, int]]:
    """Return the parts of UTC intervals falling on a local day, as wall-clock minutes."""
    day_start = rules.wall_to_utc(day, 0, tz)
    day_end = rules.wall_to_utc(day + timedelta(days=1), 0, tz)
    spans = []
    for start, end in intervals:
        lo, hi = max(start, day_start), min(end, day_end)
        if lo >= hi:
            continue
        local_lo = lo.astimezone(tz)
        first = local_lo.hour * 60 + local_lo.minute
        if hi == day_end:
            last = rules.MINUTES_PER_DAY
        else:
            local_hi = hi.astimezone(tz)
            last = local_hi.hour * 60 + local_hi.minute
        spans.append((first, max(last, first)))
    return spans


def _supporters(session: Session) -> list[Supporter]:
    return list(
        session.scalars(
            select(Supporter)
            .where(Supporter.active.is_(True))
            .options(
                selectinload(Supporter.shifts),
                selectinload(Supporter.cover_shifts),
                selectinload(Supporter.time_off),
            )
            .order_by(Supporter.name)
        )
    )


def _cell(
    supporter: Supporter,
    day: date,
    spans: list[tuple[int, int]],
    closures: rules.Closures | None,
    week: date,
) -> Cell:
    holiday = closures.holiday_name(day) if closures else None
    supporter_rota = rota_of(supporter)
    off = supporter_rota.is_off(day)
    chips = []
    if off:
        chips.append(Chip("Time off", "off"))
    for shift in supporter.shifts:
        if day.weekday() not in days_to_set(shift.days):
            continue
        note = ""
        if off:
            note = "not running: time off"
        elif holiday and not shift.run_on_holidays:
            note = "not running: holiday"
        elif shift.end_minute <= shift.start_minute:
            note = "runs past midnight"
        chips.append(
            Chip(
                span_text(shift.start_minute, shift.end_minute),
                "shift",
                note,
                url_for("console.rota.edit_shift", shift_id=shift.id, week=week.isoformat()),
            )
        )
    for cover in supporter.cover_shifts:
        if cover.on_date == day:
            chips.append(
                Chip(
                    span_text(cover.start_minute, cover.end_minute),
                    "cover",
                    "not running: time off" if off else "cover",
                )
            )
    if spans:
        words = ", ".join(span_text(a, b) for a, b in spans)
        label = f"{supporter.name} on shift {DAY_LABELS[day.weekday()]}: {words}"
    else:
        label = f"{supporter.name} not on shift {DAY_LABELS[day.weekday()]}"
    bar = day_bar([(a, b, "on") for a, b in spans], label=label)
    return Cell(str(bar), chips)


def read_week(session: Session, monday: date) -> tuple[list[DayHead], list[RotaRow], ZoneInfo]:
    """Return the week's columns and every active supporter's row."""
    tz = line().timezone(session)
    closures = _closures(session)
    today = local_today(tz)
    days = [monday + timedelta(days=n) for n in range(7)]
    heads = [
        DayHead(
            d,
            f"{d.strftime('%a')} {d.day} {d.strftime('%b')}",
            closures.holiday_name(d) if closures else None,
            d == today,
        )
        for d in days
    ]
    start = rules.wall_to_utc(monday, 0, tz)
    end = rules.wall_to_utc(monday + timedelta(days=7), 0, tz)
    rows = []
    for supporter in _supporters(session):
        intervals = rules.intervals(rota_of(supporter), tz, start, end, closures)
        hours = sum((b - a).total_seconds() for a, b in intervals) / 3600
        cells = [_cell(supporter, d, local_spans(intervals, tz, d), closures, monday) for d in days]
        rows.append(RotaRow(supporter.id, supporter.name, supporter.away, hours, cells))
    return heads, rows, tz


def _off_text(off: TimeOff) -> str:
    """Return time off as text: "2026-03-04", "2026-03-04 to 2026-03-06" or with times."""
    if off.start_minute is not None and off.end_minute is not None:
        begins = f"{off.start_date.isoformat()} {rules.format_time(off.start_minute)}"
        ends = rules.format_time(off.end_minute)
        if off.end_date != off.start_date:
            ends = f"{off.end_date.isoformat()} {ends}"
        return f"{begins} to {ends}"
    if off.start_date == off.end_date:
        return off.start_date.isoformat()
    return f"{off.start_date.isoformat()} to {off.end_date.isoformat()}"


def _entries(session: Session, monday: date) -> list[Entry]:
    """Return time off and cover from this week on, soonest first."""
    names = {s.id: s.name for s in session.scalars(select(Supporter))}
    week = monday.isoformat()
    entries: list[tuple[date, Entry]] = []
    for off in session.scalars(select(TimeOff).where(TimeOff.end_date >= monday)):
        text = _off_text(off)
        entries.append(
            (
                off.start_date,
                Entry(
                    off.id,
                    "Time off",
                    names.get(off.supporter_id, "?"),
                    text,
                    url_for("console.rota.delete_time_off", entry_id=off.id, week=week),
                ),
            )
        )
    for cover in session.scalars(select(CoverShift).where(CoverShift.on_date >= monday)):
        entries.append(
            (
                cover.on_date,
                Entry(
                    cover.id,
                    "Cover",
                    names.get(cover.supporter_id, "?"),
                    f"{cover.on_date} {span_text(cover.start_minute, cover.end_minute)}",
                    url_for("console.rota.delete_cover", entry_id=cover.id, week=week),
                ),
            )
        )
    return [entry for _, entry in sorted(entries, key=lambda pair: (pair[0], pair[1].kind))]


@bp.get("/")
def index() -> str:
    """Show a week of every active supporter's shifts."""
    with line().db.session() as session:
        tz = line().timezone(session)
        monday = _week(tz)
        heads, rows, tz = read_week(session, monday)
        entries = _entries(session, monday)
    return render_template(
        "console/rota.html",
        heads=heads,
        rows=rows,
        entries=entries,
        monday=monday,
        previous=(monday - timedelta(days=7)).isoformat(),
        following=(monday + timedelta(days=7)).isoformat(),
        this_week=week_start(local_today(tz)).isoformat(),
        timezone=str(tz),
        confirm=ConfirmForm(),
    )


def _back(default_week: str | None = None) -> BaseResponse:
    return redirect(
        url_for("console.rota.index", week=request.args.get("week") or default_week or None)
    )


def _subject(supporter: Supporter) -> str:
    return f"supporter {supporter.id} ({supporter.name})"


def _shift_text(days: str, start: int, end: int, holidays: bool) -> str:
    text = f"{days.replace(',', ' ')} {span_text(start, end)}"
    return text + (" (runs on holidays)" if holidays else "")


def _active_choices(session: Session) -> list[tuple[int, str]]:
    return choices_of(_supporters(session))


def _ordered_days(days: list[str]) -> str:
    return ",".join(day for day in rules.DAY_NAMES if day in days)


@bp.route("/shifts/new", methods=["GET", "POST"])
def new_shift() -> BaseResponse | str | tuple[str, int]:
    """Add a weekly shift."""
    form = ShiftForm()
    with line().db.session() as session:
        form.options = _active_choices(session)
        if not form.is_submitted():
            if whole_number(request.args.get("supporter")) is not None:
                form.supporter_id.data = whole_number(request.args.get("supporter"))
            day = request.args.get("day", "")
            form.days.data = [day] if day in rules.DAY_NAMES else []
        elif form.validate():
            supporter = _chosen_supporter(session, form)
            shift = Shift(
                days=_ordered_days(form.days.data or []),
                start_minute=start_minute(form.start.data),
                end_minute=end_minute(form.end.data),
                run_on_holidays=bool(form.run_on_holidays.data),
            )
            supporter.shifts.append(shift)
            audit(
                session,
                "shift.added",
                _subject(supporter),
                _shift_text(
                    shift.days, shift.start_minute, shift.end_minute, shift.run_on_holidays
                ),
            )
            flash(f"Shift added for {supporter.name}.", "success")
            return _back()
    return form_page("console/shift_form.html", form, shift_id=None)


@bp.route("/shifts/<int:shift_id>/edit", methods=["GET", "POST"])
def edit_shift(shift_id: int) -> BaseResponse | str | tuple[str, int]:
    """Move a weekly shift: other days, other times, or another supporter."""
    form = ShiftForm()
    with line().db.session() as session:
        shift = get_or_404(session, Shift, shift_id, "There is no such shift.")
        form.options = _active_choices(session)
        if not form.is_submitted():
            form.supporter_id.data = shift.supporter_id
            form.days.data = shift.days.split(",")
            form.start.data = clock(shift.start_minute)
            form.end.data = clock(shift.end_minute)
            form.run_on_holidays.data = shift.run_on_holidays
        elif form.validate():
            target = _chosen_supporter(session, form)
            before = _shift_text(
                shift.days, shift.start_minute, shift.end_minute, shift.run_on_holidays
            )
            owner = shift.supporter
            shift.days = _ordered_days(form.days.data or [])
            shift.start_minute = start_minute(form.start.data)
            shift.end_minute = end_minute(form.end.data)
            shift.run_on_holidays = bool(form.run_on_holidays.data)
            after = _shift_text(
                shift.days, shift.start_minute, shift.end_minute, shift.run_on_holidays
            )
            detail = f"{before} -> {after}"
            if target.id != owner.id:
                shift.supporter = target
                detail += f", from {owner.name} to {target.name}"
            audit(session, "shift.moved", _subject(target), detail)
            flash(f"Shift saved for {target.name}.", "success")
            return _back()
        owner_name = shift.supporter.name
    return form_page(
        "console/shift_form.html",
        form,
        shift_id=shift_id,
        owner=owner_name,
        confirm=ConfirmForm(),
    )


# What removing each kind of rota entry writes to the audit log, answers when it is missing,
# and says when done ({name}: the supporter's).
_REMOVALS: dict[type, tuple[str, str, str]] = {
    Shift: ("shift.removed", "There is no such shift.", "Shift removed from {name}'s rota."),
    TimeOff: ("time_off.removed", "There is no such time off.", "Time off removed."),
    CoverShift: ("cover.removed", "There is no such cover shift.", "Cover shift removed."),
}


def _entry_text(entry: Shift | TimeOff | CoverShift) -> str:
    """Return a rota entry as the audit log words it."""
    if isinstance(entry, Shift):
        return _shift_text(entry.days, entry.start_minute, entry.end_minute, entry.run_on_holidays)
    if isinstance(entry, TimeOff):
        return _off_text(entry)
    return f"{entry.on_date.isoformat()} {span_text(entry.start_minute, entry.end_minute)}"


def _remove(table: type[Shift] | type[TimeOff] | type[CoverShift], entry_id: int) -> BaseResponse:
    """Remove one rota entry once confirmed, audited with what it was."""
    action, missing, done = _REMOVALS[table]
    submitted(ConfirmForm())
    with line().db.session() as session:
        entry = get_or_404(session, table, entry_id, missing)
        supporter = entry.supporter
        audit(session, action, _subject(supporter), _entry_text(entry))
        session.delete(entry)
        flash(done.format(name=supporter.name), "success")
    return _back()


def _chosen_supporter(session: Session, form: ShiftForm | TimeOffForm | CoverForm) -> Supporter:
    """Return the supporter the form chose; the choice list only offers real ones."""
    supporter = session.get(Supporter, form.supporter_id.data)
    if supporter is None:
        abort(400)
    return supporter


@bp.post("/shifts/<int:shift_id>/delete")
def delete_shift(shift_id: int) -> BaseResponse:
    """Remove a weekly shift."""
    return _remove(Shift, shift_id)


@bp.route("/time-off/new", methods=["GET", "POST"])
def new_time_off() -> BaseResponse | str | tuple[str, int]:
    """Give a supporter days off."""
    form = TimeOffForm()
    with line().db.session() as session:
        form.options = _active_choices(session)
        if not form.is_submitted() and whole_number(request.args.get("supporter")) is not None:
            form.supporter_id.data = whole_number(request.args.get("supporter"))
        if form.validate_on_submit():
            supporter = _chosen_supporter(session, form)
            first, last = given(form.start.data), given(form.end.data)
            begins, ends = form.minutes()
            off = TimeOff(start_date=first, end_date=last, start_minute=begins, end_minute=ends)
            supporter.time_off.append(off)
            audit(session, "time_off.added", _subject(supporter), _off_text(off))
            flash(f"Time off added for {supporter.name}.", "success")
            return _back(week_start(first).isoformat())
    return form_page("console/time_off_form.html", form)


@bp.post("/time-off/<int:entry_id>/delete")
def delete_time_off(entry_id: int) -> BaseResponse:
    """Cancel time off."""
    return _remove(TimeOff, entry_id)


@bp.route("/cover/new", methods=["GET", "POST"])
def new_cover() -> BaseResponse | str | tuple[str, int]:
    """Add a one-off cover shift, optionally giving the person covered the day off."""
    form = CoverForm()
    with line().db.session() as session:
        form.options = _active_choices(session)
        if form.validate_on_submit():
            supporter = _chosen_supporter(session, form)
            day = given(form.on_date.data)
            cover = CoverShift(
                on_date=day,
                start_minute=start_minute(form.start.data),
                end_minute=end_minute(form.end.data),
            )
            supporter.cover_shifts.append(cover)
            detail = f"{day.isoformat()} {span_text(cover.start_minute, cover.end_minute)}"
            covered = session.get(Supporter, form.covering_for.data or 0)
            if covered is not None and covered.id != supporter.id:
                covered.time_off.append(TimeOff(start_date=day, end_date=day))
                detail += f", covering for {covered.name}"
                audit(session, "time_off.added", _subject(covered), f"{day} (covered)")
            audit(session, "cover.added", _subject(supporter), detail)
            flash(f"Cover shift added for {supporter.name}.", "success")
            return _back(week_start(day).isoformat())
    return form_page("console/cover_form.html", form)


@bp.post("/cover/<int:entry_id>/delete")
def delete_cover(entry_id: int) -> BaseResponse:
    """Remove a cover shift."""
    return _remove(CoverShift, entry_id)


@bp.get("/coverage")
def coverage() -> str:
    """Show supporters on shift against contacts, hour by hour, so gaps stand out."""
    weeks = request.args.get("weeks", "4")
    if whole_number(weeks) not in WEEKS_CHOICES:
        abort(400, description=f"weeks must be one of {', '.join(map(str, WEEKS_CHOICES))}")
    with line().db.session() as session:
        tz = line().timezone(session)
        monday = _week(tz)
        rotas = load_line_rotas(session, line().settings.line_timezone)
        on_shift = stats.on_shift_by_hour(rotas.by_supporter, tz, monday, rotas.closures)
        since = now() - timedelta(weeks=int(weeks))
        started = session.scalars(
            select(Conversation.created_at).where(Conversation.created_at >= since)
        ).all()
    rows = stats.coverage(on_shift, stats.contacts_by_hour(started, tz, int(weeks)))
    return render_template(
        "console/coverage.html",
        rows=rows,
        gaps=stats.gaps(rows),
        day_labels=DAY_LABELS,
        weeks=int(weeks),
        weeks_choices=WEEKS_CHOICES,
        monday=monday,
        previous=(monday - timedelta(days=7)).isoformat(),
        following=(monday + timedelta(days=7)).isoformat(),
        timezone=str(tz),
        contacts_total=len(started),
        thin=stats.THIN_PER_SUPPORTER,
    )
