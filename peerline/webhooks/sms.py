"""Inbound SMS and message status webhooks: verify, check, take in, answer."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, request
from sqlalchemy.exc import InterfaceError, OperationalError
from twilio.twiml.messaging_response import MessagingResponse

from peerline.service import outbox, runtime
from peerline.service.models import utcnow
from peerline.service.privacy import BadPhoneNumber, normalise_phone
from peerline.service.services import LineServices
from peerline.webhooks.signing import current_request, twilio_signed

log = logging.getLogger(__name__)

bp = Blueprint("sms", __name__, url_prefix="/webhooks/sms")


# Almost every answer is the same empty TwiML: built once, not once a webhook.
EMPTY = str(MessagingResponse())


def empty_twiml() -> Response:
    """Return the empty TwiML answer: the replies go out through the outbox."""
    return Response(EMPTY, mimetype="text/xml")


def _required(name: str) -> str:
    value = request.form.get(name, "").strip()
    if not value:
        abort(400, description=f"{name} is required")
    return value


@bp.post("")
@twilio_signed
def inbound() -> Response:
    """Take one inbound SMS; every reply goes out through the outbox, not this answer."""
    return _take_inbound()


@bp.post("/fallback")
@twilio_signed
def fallback() -> Response:
    """Take a message Twilio could not deliver to the primary URL (set as the fallback URL)."""
    return _take_inbound()


class BadField(ValueError):
    """A required field missing or malformed: the reason goes back with a 400."""


def read_inbound(form: Any, line: LineServices) -> runtime.Inbound:
    """Return the inbound SMS a signed, checked form describes, or raise BadField."""
    sid = form.get("MessageSid", "").strip()
    raw_from = form.get("From", "").strip()
    if not sid or not raw_from:
        raise BadField(f"{'MessageSid' if not sid else 'From'} is required")
    region = line.settings.default_region
    try:
        sender = normalise_phone(raw_from, region)
        to = normalise_phone(form.get("To") or line.settings.twilio_phone_number, region)
    except BadPhoneNumber as exc:
        raise BadField(f"From or To is not a phone number: {exc}") from exc
    media_text = form.get("NumMedia", "0").strip() or "0"
    if not (media_text.isascii() and media_text.isdigit()):
        raise BadField("NumMedia must be a whole number")
    return runtime.Inbound(
        message_sid=sid,
        from_number=sender,
        to_number=to,
        body=form.get("Body", ""),
        opt_out_type=form.get("OptOutType") or None,
        # Pictures are never fetched or passed on; the flows only need to know one came.
        media=min(int(media_text), 10),
    )


def take_in(line: LineServices, message: runtime.Inbound) -> bool:
    """Keep a text in Redis for a worker's drain; return False when Redis cannot take it."""
    # The crisis check is cheap (well under a millisecond): a crisis text, or a worried
    # texter's about someone else at risk, is stepped ahead of other people's texts waiting in
    # Redis (the worker runs the full check again).
    body = message.body
    urgent = bool(body) and (line.crisis.detect(body).matched or line.crisis.someone_else(body))
    return line.inbound.put(message.from_number, message.fields(), urgent=urgent)


def _take_inbound() -> Response:
    line = current_app.extensions["peerline"]
    try:
        message = read_inbound(current_request().form, line)
    except BadField as exc:
        abort(400, description=str(exc))
    # Redis takes the text in one round trip and a worker steps it; without Redis, we do.
    if take_in(line, message):
        g.webhook_outcome = "queued"
        return empty_twiml()
    g.webhook_outcome = "stepped"
    sid = message.message_sid
    try:
        if not runtime.receive_sms(line, message):
            g.webhook_outcome = "duplicate"
            log.info("duplicate webhook for message %s ignored", sid)
    except (OperationalError, InterfaceError) as exc:
        g.webhook_outcome = "spooled"
        # Twilio would not retry a 5xx: keep the message and answer as if all were well.
        where = line.spool.put("sms", list(request.form.items(multi=True)))
        log.error("database down (%s): message %s spooled to %s", type(exc).__name__, sid, where)
    # An empty response: the replies are in the outbox, and STOP must get none from us.
    return empty_twiml()


@bp.post("/status")
@twilio_signed
def status() -> Response:
    """Apply a message status callback, once and never backwards."""
    line = current_app.extensions["peerline"]
    sid = _required("MessageSid")
    state = (request.form.get("MessageStatus") or request.form.get("SmsStatus") or "").lower()
    if not state:
        abort(400, description="MessageStatus is required")
    code_text = request.form.get("ErrorCode") or ""
    try:
        code = int(code_text) if code_text else None
    except ValueError:
        abort(400, description="ErrorCode must be a number")
    try:
        with line.db.session() as session:
            known = outbox.apply_status(session, sid, state, code, utcnow(), line)
    except (OperationalError, InterfaceError):
        g.webhook_outcome = "spooled"
        line.spool.put("status", list(request.form.items(multi=True)))
        return Response(status=204)
    # Callbacks this host kept on its own disk while cut off go to the shared list now.
    line.spool.hand_over()
    if not known:
        log.info("status %s for unknown message %s", state, sid)
    return Response(status=204)
