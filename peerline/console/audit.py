"""The audit log page: who looked at or changed what, and when, newest first."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template, request
from sqlalchemy import func, select

from peerline.console.audit_words import family_words, in_words
from peerline.console.common import format_local, line, page_number
from peerline.service.models import AuditEvent

bp = Blueprint("audit", __name__, url_prefix="/audit")

PAGE_SIZE = 100


@dataclass(frozen=True)
class AuditRow:
    """One audit entry, its time local."""

    at: str
    iso: str
    actor: str
    action: str
    words: str
    subject: str
    detail: str


@bp.get("/")
def index() -> str:
    """List audit entries, optionally only one action family or one person's."""
    action = request.args.get("action", "").strip()[:64]
    who = request.args.get("actor", "").strip()[:120]
    page = page_number(request.args.get("page"))
    query = select(AuditEvent)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if who:
        query = query.where(AuditEvent.actor == who)
    with line().db.session() as session:
        tz = line().timezone(session)
        total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        events = session.scalars(
            query.order_by(AuditEvent.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
        ).all()
        actions = sorted(
            {a.split(".")[0] for a in session.scalars(select(AuditEvent.action).distinct())}
        )
        rows = [
            AuditRow(
                format_local(e.at, tz),
                e.at.isoformat(timespec="seconds"),
                e.actor,
                e.action,
                in_words(e.action),
                e.subject,
                e.detail,
            )
            for e in events
        ]
    return render_template(
        "console/audit.html",
        rows=rows,
        action=action,
        actor=who,
        actions=[(a, family_words(a)) for a in actions],
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        total=total,
        timezone=str(tz),
    )
