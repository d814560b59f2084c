"""The private calendar feed URL a supporter subscribes to."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app
from sqlalchemy import select

from peerline.service import rota
from peerline.service.calendar import feed
from peerline.service.models import Supporter, utcnow

bp = Blueprint("calendar", __name__, url_prefix="/calendar")


@bp.get("/<token>.ics")
def shifts(token: str) -> Response:
    """Serve one supporter's shifts; the unguessable token is the only key."""
    line = current_app.extensions["peerline"]
    if len(token) < 20:
        abort(404)
    with line.db.session() as session:
        supporter = session.scalar(
            select(Supporter).where(Supporter.calendar_token == token, Supporter.active.is_(True))
        )
        if supporter is None:
            abort(404)
        spec = line.holidays_spec(session)
        body = feed(
            supporter, line.timezone(session), utcnow(), rota.Closures(spec) if spec else None
        )
    response = Response(body, mimetype="text/calendar")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response
