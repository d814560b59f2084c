"""The roster: add, edit, deactivate supporters; numbers masked everywhere but the edit form."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from peerline.console.common import audit, form_page, line, submitted
from peerline.console.forms import ConfirmForm, SupporterForm, add_error, parse_languages
from peerline.service.linesync import welcome_supporters
from peerline.service.models import ACTIVE, Conversation, Supporter
from peerline.service.privacy import BadPhoneNumber, mask_phone, normalise_phone

bp = Blueprint("supporters", __name__, url_prefix="/supporters")


@dataclass(frozen=True)
class RosterRow:
    """A supporter as the roster lists them: the number masked."""

    supporter_id: int
    name: str
    masked_phone: str
    languages: str
    capacity: int
    takes_calls: bool
    takes_sms: bool
    on_call: bool
    active: bool
    away: bool
    opted_out: bool
    shifts: int


def _masked(token: str) -> str:
    try:
        return mask_phone(line().vault.decrypt(token))
    except ValueError:
        return "(unreadable)"


def _supporter(session: Session, supporter_id: int) -> Supporter:
    supporter = session.get(Supporter, supporter_id)
    if supporter is None:
        abort(404, description="There is no such supporter.")
    return supporter


def _phone_problem(session: Session, phone: str, supporter_id: int | None) -> str | None:
    """Return why a number cannot be a supporter's, or None when it can."""
    settings = line().settings
    if phone in (settings.twilio_phone_number, *settings.twilio_relay_numbers):
        return "That is one of the line's own numbers."
    owner = session.scalar(
        select(Supporter.id).where(Supporter.phone_hash == line().vault.lookup_hash(phone))
    )
    if owner is not None and owner != supporter_id:
        return "Another supporter already has that number."
    return None


def _describe(supporter: Supporter) -> str:
    return (
        f"languages {supporter.languages}, capacity {supporter.capacity}, "
        f"calls {'yes' if supporter.takes_calls else 'no'}, "
        f"on call {'yes' if supporter.on_call else 'no'}"
    )


@bp.get("/")
def index() -> str:
    """List the supporters, active first."""
    with line().db.session() as session:
        shift_counts = {
            supporter_id: count
            for supporter_id, count in session.execute(
                select(Supporter.id, func.count()).join(Supporter.shifts).group_by(Supporter.id)
            )
        }
        supporters = session.scalars(
            select(Supporter).order_by(Supporter.active.desc(), Supporter.name)
        ).all()
        rows = [
            RosterRow(
                s.id,
                s.name,
                _masked(s.phone_enc),
                ", ".join(s.language_list),
                s.capacity,
                s.takes_calls,
                s.takes_sms,
                s.on_call,
                s.active,
                s.away,
                s.opted_out,
                shift_counts.get(s.id, 0),
            )
            for s in supporters
        ]
    return render_template("console/supporters.html", rows=rows, confirm=ConfirmForm())


@bp.route("/new", methods=["GET", "POST"])
def new() -> BaseResponse | str | tuple[str, int]:
    """Add a supporter."""
    form = SupporterForm()
    if form.validate_on_submit():
        with line().db.session() as session:
            phone = _checked_phone(session, form, None)
            if phone is not None:
                vault = line().vault
                supporter = Supporter(
                    name=(form.name.data or "").strip(),
                    phone_hash=vault.lookup_hash(phone),
                    phone_enc=vault.encrypt(phone),
                    languages=",".join(parse_languages(form.languages.data or "")),
                    capacity=form.capacity.data or 1,
                    takes_calls=bool(form.takes_calls.data),
                    takes_sms=bool(form.takes_sms.data),
                    on_call=bool(form.on_call.data),
                    active=True,
                    away=False,
                    opted_out=False,
                    expired_in_row=0,
                )
                session.add(supporter)
                session.flush()
                audit(
                    session,
                    "supporter.added",
                    f"supporter {supporter.id} ({supporter.name})",
                    _describe(supporter),
                )
                name = supporter.name
                # Their first text explains the commands, before any offer can reach them.
                welcomes = welcome_supporters(line(), session, [supporter.id])
        if phone is not None:
            welcomes.dispatch(line())
            flash(f"{name} added. Give them shifts on the rota.", "success")
            return redirect(url_for("console.supporters.index"))
    return form_page("console/supporter_form.html", form, supporter=None)


def _checked_phone(session: Session, form: SupporterForm, supporter_id: int | None) -> str | None:
    """Return the form's number in E.164, or None after noting the problem on the form."""
    try:
        phone = normalise_phone(form.phone.data or "", line().settings.default_region)
    except BadPhoneNumber:
        add_error(form.phone, "That does not look like a phone number.")
        return None
    problem = _phone_problem(session, phone, supporter_id)
    if problem:
        add_error(form.phone, problem)
        return None
    return phone


@bp.route("/<int:supporter_id>/edit", methods=["GET", "POST"])
def edit(supporter_id: int) -> BaseResponse | str | tuple[str, int]:
    """Edit a supporter; the only page that shows their number."""
    form = SupporterForm()
    with line().db.session() as session:
        supporter = _supporter(session, supporter_id)
        vault = line().vault
        current_phone = vault.decrypt(supporter.phone_enc)
        if not form.is_submitted():
            form.name.data = supporter.name
            form.phone.data = current_phone
            form.languages.data = ", ".join(supporter.language_list)
            form.capacity.data = supporter.capacity
            form.takes_calls.data = supporter.takes_calls
            form.takes_sms.data = supporter.takes_sms
            form.on_call.data = supporter.on_call
            # Seeing a supporter's number is a look at personal data: it is written down.
            audit(
                session, "supporter.number_viewed", f"supporter {supporter.id} ({supporter.name})"
            )
        elif form.validate():
            phone = _checked_phone(session, form, supporter.id)
            if phone is not None:
                wanted = {
                    "name": (form.name.data or "").strip(),
                    "languages": ",".join(parse_languages(form.languages.data or "")),
                    "capacity": form.capacity.data or 1,
                    "takes_calls": bool(form.takes_calls.data),
                    "takes_sms": bool(form.takes_sms.data),
                    "on_call": bool(form.on_call.data),
                }
                changed = [k for k, v in wanted.items() if getattr(supporter, k) != v]
                for key, value in wanted.items():
                    setattr(supporter, key, value)
                if phone != current_phone:
                    supporter.phone_hash = vault.lookup_hash(phone)
                    supporter.phone_enc = vault.encrypt(phone)
                    changed.append("phone")
                if changed:
                    audit(
                        session,
                        "supporter.edited",
                        f"supporter {supporter.id} ({supporter.name})",
                        "changed " + ", ".join(changed),
                    )
                flash(f"{supporter.name} saved.", "success")
                return redirect(url_for("console.supporters.index"))
        view = {"id": supporter.id, "name": supporter.name, "active": supporter.active}
    return form_page("console/supporter_form.html", form, supporter=view)


def _set_active(supporter_id: int, active: bool) -> BaseResponse:
    form = ConfirmForm()
    submitted(form)
    with line().db.session() as session:
        supporter = _supporter(session, supporter_id)
        if supporter.active != active:
            supporter.active = active
            action = "supporter.reactivated" if active else "supporter.deactivated"
            audit(session, action, f"supporter {supporter.id} ({supporter.name})")
        chats = session.scalar(
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.supporter_id == supporter.id, Conversation.state == ACTIVE)
        )
        name = supporter.name
    if active:
        flash(f"{name} is active again and back on the rota.", "success")
    elif chats:
        flash(
            f"{name} is deactivated and off the rota; their open chat carries on until it ends.",
            "info",
        )
    else:
        flash(f"{name} is deactivated and off the rota.", "success")
    return redirect(url_for("console.supporters.index"))


@bp.post("/<int:supporter_id>/deactivate")
def deactivate(supporter_id: int) -> BaseResponse:
    """Take a supporter off the rota, keeping their record."""
    return _set_active(supporter_id, False)


@bp.post("/<int:supporter_id>/reactivate")
def reactivate(supporter_id: int) -> BaseResponse:
    """Put a deactivated supporter back on the rota."""
    return _set_active(supporter_id, True)
