"""Accounts: one's own password and sessions; an admin's view of every account.

Admins manage accounts (roles, the transcript permission, ending sessions) and do all a
coordinator does; coordinators run the rota, queue, alerts and reports. Opening a transcript
is a permission of its own. Every change is audited; the audit log itself has no form.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response as BaseResponse

from peerline.console.auth import (
    ADMIN,
    CoordinatorUser,
    end_sessions,
    hasher,
    password_problem,
    session_key,
    start_session,
    verify,
)
from peerline.console.common import audit, line, submitted
from peerline.console.forms import AccessForm, ConfirmForm, PasswordForm
from peerline.service.grouped import grouped
from peerline.service.models import ConsoleSession, Coordinator

own = Blueprint("account", __name__, url_prefix="/account")
bp = Blueprint("accounts", __name__, url_prefix="/accounts")


def _open_sessions(coordinator_id: int) -> int:
    with line().db.session() as db:
        return int(
            db.scalar(
                select(func.count()).where(
                    ConsoleSession.coordinator_id == coordinator_id,
                    ConsoleSession.ended_at.is_(None),
                )
            )
            or 0
        )


@own.get("/")
def index() -> str:
    """Show one's own account: change the password, sign out elsewhere."""
    return render_template(
        "console/account.html",
        form=PasswordForm(),
        sessions=_open_sessions(current_user.id),
    )


@own.post("/password")
def change_password() -> BaseResponse | tuple[str, int]:
    """Change one's own password; every session of the account ends, this one starts again."""
    form = PasswordForm()
    if form.validate_on_submit():
        new = form.new.data or ""
        problem = password_problem(new, current_user.email)
        if problem:
            form.new.errors = [*form.new.errors, problem]
    if not form.errors and form.is_submitted():
        with line().db.session() as db:
            row = db.get(Coordinator, current_user.id)
            if row is None or not verify(row.password_hash, form.current.data or ""):
                form.current.errors = ["That is not your current password."]
            else:
                row.password_hash = hasher.hash(form.new.data or "")
                ended = end_sessions(db, row.id, "password_changed")
                token = start_session(db, row.id)
                audit(db, "password.changed", f"coordinator {row.email}", f"{ended} sessions ended")
                user = CoordinatorUser(
                    row.id,
                    row.email,
                    token,
                    session_key(row.password_hash),
                    row.role,
                    row.transcripts,
                )
        if not form.current.errors:
            login_user(user)
            flash("Password changed. Every other session of this account has ended.", "info")
            return redirect(url_for("console.account.index"))
    page = render_template(
        "console/account.html", form=form, sessions=_open_sessions(current_user.id)
    )
    return page, 400


@own.post("/sessions/end")
def end_other_sessions() -> BaseResponse:
    """Sign out everywhere else: end every session of this account but this one."""
    submitted(ConfirmForm())
    with line().db.session() as db:
        ended = end_sessions(
            db, current_user.id, "signed_out_elsewhere", keep=current_user.session_token
        )
        audit(db, "sessions.ended", f"coordinator {current_user.email}", f"{ended} ended")
    flash(f"Signed out of {ended} other session{'s' if ended != 1 else ''}.", "info")
    return redirect(url_for("console.account.index"))


@dataclass(frozen=True)
class AccountRow:
    """One account, as the admin's list shows it."""

    id: int
    email: str
    role: str
    transcripts: bool
    active: bool
    sessions: int


@bp.get("/")
def list_accounts() -> str:
    """List every account with its role, permission and open sessions (admins only)."""
    with line().db.session() as db:
        open_counts = grouped(
            db, ConsoleSession.coordinator_id, func.count(), ConsoleSession.ended_at.is_(None)
        )
        rows = [
            AccountRow(
                c.id, c.email, c.role, c.transcripts, c.active, int(open_counts.get(c.id, 0))
            )
            for c in db.scalars(select(Coordinator).order_by(Coordinator.email))
        ]
    return render_template("console/accounts.html", rows=rows, form=AccessForm())


def _account(db: object, coordinator_id: int) -> Coordinator:
    row = db.get(Coordinator, coordinator_id)  # type: ignore[attr-defined]
    if row is None:
        abort(404)
    account: Coordinator = row
    return account


@bp.post("/<int:coordinator_id>/sessions/end")
def end_account_sessions(coordinator_id: int) -> BaseResponse:
    """End every session of an account: whoever holds its cookies is signed out."""
    submitted(ConfirmForm())
    with line().db.session() as db:
        row = _account(db, coordinator_id)
        ended = end_sessions(db, row.id, "ended_by_admin")
        audit(db, "sessions.ended", f"coordinator {row.email}", f"{ended} ended by an admin")
    flash(f"Ended {ended} session{'s' if ended != 1 else ''} of {row.email}.", "info")
    return redirect(url_for("console.accounts.list_accounts"))


@bp.post("/<int:coordinator_id>/access")
def set_access(coordinator_id: int) -> BaseResponse:
    """Set an account's role and transcript permission (never one's own role)."""
    form = AccessForm()
    submitted(form, "Choose admin or coordinator.")
    with line().db.session() as db:
        row = _account(db, coordinator_id)
        if row.id == current_user.id and form.role.data != ADMIN:
            abort(400, description="An admin cannot take away their own admin role.")
        before = f"{row.role}, transcripts {'yes' if row.transcripts else 'no'}"
        row.role, row.transcripts = str(form.role.data), bool(form.transcripts.data)
        after = f"{row.role}, transcripts {'yes' if row.transcripts else 'no'}"
        audit(db, "account.access", f"coordinator {row.email}", f"{before} -> {after}")
    flash(f"{row.email}: {after}.", "info")
    return redirect(url_for("console.accounts.list_accounts"))
