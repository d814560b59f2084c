"""Call-back requests and voicemails: who took each, whether it is done, and its recording.

A recording is the caller's voice: only accounts allowed to read transcripts may play it. Each
play is granted by a POST that writes the audit entry; the grant lets this browser session
fetch that one recording for a few minutes, streamed through the console, so the provider's
address and credentials never reach the browser.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from redis.exceptions import RedisError
from sqlalchemy import case, select
from sqlalchemy.orm import Session, selectinload
from werkzeug.wrappers import Response as BaseResponse

from peerline.console.common import (
    actor,
    audit,
    crisis_words,
    format_local,
    get_or_404,
    line,
    now,
    page_number,
    submitted,
)
from peerline.console.forms import ConfirmForm
from peerline.service.calls import recording_url_for_coordinator
from peerline.service.voice.models import REQUEST_DONE, REQUEST_OPEN, CallbackRequest
from peerline.service.voice.recordings import (
    RecordingUnavailable,
    chunks,
    open_recording,
    whole,
)

bp = Blueprint("callbacks", __name__, url_prefix="/callbacks")

PAGE_SIZE = 50
# How long one audited play lets the browser fetch the recording (seeking re-fetches it).
GRANT_SECONDS = 10 * 60


@dataclass(frozen=True)
class RequestRow:
    """One call-back request, metadata only."""

    request_id: int
    reference: str
    kind: str
    alias: str
    language: str
    status: str
    supporter: str
    attempts: int
    crisis: str  # in words ("wishes to be dead"), empty when no crisis was heard
    seconds: int | None
    recorded: bool
    created: str
    completed: str


@bp.get("/")
def index() -> str:
    """List call-back requests, open ones first, newest first within each."""
    page = page_number(request.args.get("page"))
    playing = request.args.get("play", type=int)
    with line().db.session() as db:
        tz = line().timezone(db)
        found = db.scalars(
            select(CallbackRequest)
            .options(selectinload(CallbackRequest.contact), selectinload(CallbackRequest.supporter))
            .order_by(case((CallbackRequest.status == REQUEST_DONE, 1), else_=0))
            .order_by(CallbackRequest.id.desc())
            .limit(PAGE_SIZE + 1)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
        rows = [
            RequestRow(
                r.id,
                r.reference,
                r.kind,
                r.contact.alias,
                r.language,
                r.status,
                r.supporter.name if r.supporter else "",
                r.attempts,
                crisis_words(r.crisis) if r.crisis else "",
                r.recording_seconds,
                r.recording_url_enc is not None,
                format_local(r.created_at, tz),
                format_local(r.completed_at, tz),
            )
            for r in found[:PAGE_SIZE]
        ]
    return render_template(
        "console/callbacks.html",
        rows=rows,
        page=page,
        more=len(found) > PAGE_SIZE,
        may_listen=bool(getattr(current_user, "transcripts", False)),
        playing=playing if _granted(playing) else None,
        confirm=ConfirmForm(),
    )


def _request(db: Session, request_id: int) -> CallbackRequest:
    return get_or_404(db, CallbackRequest, request_id, "There is no such call-back request.")


@bp.post("/<int:request_id>/done")
def mark_done(request_id: int) -> BaseResponse:
    """Mark a call-back request done (or open again), written to the audit log."""
    submitted(ConfirmForm())
    reopen = request.args.get("open") == "1"
    with line().db.session() as db:
        found = _request(db, request_id)
        if reopen and found.status == REQUEST_DONE:
            found.status, found.completed_at = REQUEST_OPEN, None
            audit(db, "callback.reopened", f"call-back {found.reference}")
        elif not reopen and found.status != REQUEST_DONE:
            found.status, found.completed_at = REQUEST_DONE, now()
            audit(db, "callback.done", f"call-back {found.reference}")
        reference = found.reference
    flash(f"{reference} is {'open again' if reopen else 'done'}.", "success")
    return redirect(url_for("console.callbacks.index"))


def _grant_key(request_id: int) -> str:
    """Return the Redis key of this browser session's grant to fetch one recording.

    Grants live on the server (issue 21), named by a digest of the session's token: the
    cookie carries none, and a session ended (signed out, password changed) opens nothing.
    """
    token = str(getattr(current_user, "session_token", ""))
    digest = hashlib.sha256(token.encode()).hexdigest()[:32]
    return f"peerline:recording-grant:{digest}:{request_id}"


def _granted(request_id: int | None) -> bool:
    """Say whether this session pressed Play on a recording in the last few minutes."""
    if request_id is None:
        return False
    try:
        return bool(line().redis.exists(_grant_key(request_id)))
    except RedisError:
        abort(503, description="Recordings cannot be played right now; try again shortly.")


@bp.post("/<int:request_id>/listen")
def listen(request_id: int) -> BaseResponse:
    """Audit a play of a voicemail and let this session fetch it for a few minutes."""
    submitted(ConfirmForm())
    with line().db.session() as db:
        url = recording_url_for_coordinator(line(), db, request_id, actor())
    if url is None:
        abort(404, description="There is no recording for this call-back request.")
    try:
        line().redis.set(_grant_key(request_id), "1", ex=GRANT_SECONDS)
    except RedisError:
        abort(503, description="Recordings cannot be played right now; try again shortly.")
    return redirect(url_for("console.callbacks.index", play=request_id) + f"#cb-{request_id}")


@bp.get("/<int:request_id>/recording")
def recording(request_id: int) -> Response:
    """Stream a granted recording from the provider, never revealing where it lives."""
    if not _granted(request_id):
        abort(403, description="Press Play on the call-backs page first: each play is audited.")
    with line().db.session() as db:
        found = _request(db, request_id)
        stored = found.recording_url_enc
    if stored is None:
        abort(404, description="There is no recording for this call-back request.")
    try:
        upstream = open_recording(line().settings, line().vault.decrypt(stored))
        # A phone's player seeks with a byte range (issue 21): answered 206 from the whole
        # recording; a plain play streams as it comes. Neither is audited again: the play was.
        data = whole(upstream) if request.range is not None else None
    except (RecordingUnavailable, ValueError):
        abort(502, description="The recording could not be fetched from the phone provider.")
    if data is None:
        response = Response(stream_with_context(chunks(upstream)), mimetype="audio/mpeg")
        response.headers["Accept-Ranges"] = "bytes"
    else:
        response = Response(data, mimetype="audio/mpeg")
        # 206 with Content-Range, or 416 for a range past the end.
        response.make_conditional(request, accept_ranges=True, complete_length=len(data))
    response.headers["Cache-Control"] = "no-store"
    return response
