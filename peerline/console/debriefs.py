"""Debrief requests: supporters who texted #debrief, for a coordinator to reach out to."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from werkzeug.wrappers import Response as BaseResponse

from peerline.console.common import actor, audit, format_local, line, now, submitted
from peerline.console.forms import ConfirmForm
from peerline.service.models import Conversation, DebriefRequest

bp = Blueprint("debriefs", __name__, url_prefix="/debriefs")

# The newest requests shown; done ones older than these are in the audit log.
SHOWN = 200


@dataclass(frozen=True)
class DebriefRow:
    """One request as the page shows it: who asked, when, about which chat, and if done."""

    request_id: int
    supporter: str
    asked: str
    conversation_id: int | None
    alias: str
    done: str  # "" while open; otherwise when and by whom


def debrief_rows(session: Session) -> list[DebriefRow]:
    """Return the requests, open ones first, then the newest done."""
    tz = line().timezone(session)
    requests = session.scalars(
        select(DebriefRequest)
        .options(selectinload(DebriefRequest.supporter))
        .order_by(
            DebriefRequest.done_at.is_not(None),
            DebriefRequest.created_at.desc(),
            DebriefRequest.id.desc(),
        )
        .limit(SHOWN)
    ).all()
    ids = [r.conversation_id for r in requests if r.conversation_id is not None]
    aliases = {
        c.id: c.contact.alias
        for c in session.scalars(
            select(Conversation)
            .where(Conversation.id.in_(ids))
            .options(selectinload(Conversation.contact))
        )
    }
    return [
        DebriefRow(
            r.id,
            r.supporter.name,
            format_local(r.created_at, tz),
            r.conversation_id,
            aliases.get(r.conversation_id or 0, ""),
            f"{format_local(r.done_at, tz)} by {r.done_by}" if r.done_at else "",
        )
        for r in requests
    ]


@bp.get("/")
def index() -> str:
    """List the debrief requests, open ones first."""
    with line().db.session() as session:
        rows = debrief_rows(session)
    return render_template("console/debriefs.html", rows=rows, form=ConfirmForm())


@bp.post("/<int:request_id>/done")
def mark_done(request_id: int) -> BaseResponse:
    """Mark a request done: a coordinator reached out; who did is kept and audited."""
    form = ConfirmForm()
    submitted(form, "The form had expired. Please try again.")
    with line().db.session() as session:
        request = session.get(DebriefRequest, request_id)
        if request is None:
            abort(404, description="There is no such debrief request.")
        if request.done_at is None:
            request.done_at, request.done_by = now(), actor()
            audit(session, "debrief.done", f"debrief {request.id}", request.supporter.name)
            flash(f"Debrief with {request.supporter.name} marked done.", "success")
    return redirect(url_for("console.debriefs.index"))
