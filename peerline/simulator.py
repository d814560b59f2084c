"""The local phone simulator: texters and supporters in a browser, over the signed webhook.

It is registered only in embedded mode (no Twilio credentials) when `peerline serve` asks for
it, on a developer's machine, and answers only requests from this machine. Every message it
sends goes through the same signed webhook Twilio calls, and what it shows as received is the
line's outbox: what the line would send by SMS.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import phonenumbers
from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from peerline.service import segments
from peerline.service.models import Contact, InboundMessage, OutboundMessage, Supporter
from peerline.service.privacy import BadPhoneNumber, normalise_phone
from peerline.service.services import LineServices

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

LOOPBACK = ("127.0.0.1", "::1")


@bp.before_request
def _loopback_only() -> None:
    """Refuse anyone but this machine: the simulator shows every number in the clear."""
    if request.remote_addr not in LOOPBACK and not (request.remote_addr or "").startswith("127."):
        abort(403, description="the phone simulator answers only on this machine")


WEBHOOK_PATH = "/webhooks/sms"
DEFAULT_TEXTER = "+15550123456"
# Twilio takes up to ten segments of concatenated SMS; the simulator refuses longer texts.
MAX_BODY = 1600


def _line() -> LineServices:
    """Return the line bound to the running app."""
    line: LineServices = current_app.extensions["peerline"]
    return line


def _reveal(line: LineServices, token: str) -> str | None:
    """Return a decrypted value, or None when no current key can read it."""
    try:
        return line.vault.decrypt(token)
    except ValueError:
        return None


def _country(number: str, region: str) -> str | None:
    """Return the ISO country Twilio would report for a number, if it parses."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    code = phonenumbers.region_code_for_number(parsed) or (
        phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    )
    return None if not code or code == "ZZ" else str(code)


def new_message_sid() -> str:
    """Return a fresh SID shaped like Twilio's: SM and 32 hex digits."""
    return "SM" + secrets.token_hex(16)


def inbound_params(
    line: LineServices, sender: str, body: str, sid: str, to: str | None = None
) -> dict[str, str]:
    """Return the form fields Twilio posts for one inbound SMS without media."""
    settings = line.settings
    to = to or settings.twilio_phone_number
    params = {
        "ToCountry": _country(to, settings.default_region) or "",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": _country(sender, settings.default_region) or "",
        "To": to,
        "ToZip": "",
        "NumSegments": str(segments.count(body)),
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": settings.twilio_account_sid,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
    return params


def _line_numbers(line: LineServices) -> list[str]:
    """Return the numbers a phone can text: the line's own, then its relay numbers."""
    settings = line.settings
    return [settings.twilio_phone_number, *settings.twilio_relay_numbers]


def _recipient(line: LineServices, raw: Any) -> str:
    """Return the line number a text goes to: the main one unless a relay number is named."""
    if raw is None or raw == "":
        return line.settings.twilio_phone_number
    allowed = _line_numbers(line)
    try:
        to = normalise_phone(raw, line.settings.default_region) if isinstance(raw, str) else None
    except BadPhoneNumber:
        to = None
    if to not in allowed:
        abort(400, description=f"to must be one of the line's numbers: {', '.join(allowed)}")
    return to


def _json_body() -> dict[str, Any]:
    """Return the request's JSON object, refusing anything a cross-site form could send."""
    if not request.is_json:
        abort(415, description="send JSON with Content-Type: application/json")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, description="the body must be a JSON object")
    return data


@bp.get("")
def page() -> str:
    """Show the texter's and the supporters' phones side by side."""
    line = _line()
    return render_template(
        "simulator.html",
        line_number=line.settings.twilio_phone_number,
        default_texter=DEFAULT_TEXTER,
    )


@bp.get("/api/phones")
def phones() -> Response:
    """List the line's number, the texters who have texted it and every supporter."""
    line = _line()
    with line.db.session() as session:
        contacts = session.scalars(select(Contact).order_by(Contact.id)).all()
        supporters = session.scalars(select(Supporter).order_by(Supporter.name, Supporter.id))
        texters = [n for n in (_reveal(line, c.phone_enc) for c in contacts) if n is not None]
        people = [
            {
                "id": s.id,
                "name": s.name,
                "phone": _reveal(line, s.phone_enc),
                "active": s.active,
                "away": s.away,
            }
            for s in supporters
        ]
    return jsonify(
        line_number=line.settings.twilio_phone_number,
        relay_numbers=list(line.settings.twilio_relay_numbers),
        texters=texters,
        supporters=[p for p in people if p["phone"] is not None],
    )


@bp.post("/api/send")
def send() -> tuple[Response, int]:
    """Text the line from a phone, signed and posted exactly as Twilio would."""
    line = _line()
    data = _json_body()
    to = _recipient(line, data.get("to"))
    sender = data.get("from")
    body = data.get("body", "")
    if not isinstance(sender, str) or not sender.strip():
        abort(400, description="from is required: the phone number the text comes from")
    if not isinstance(body, str) or not body.strip():
        abort(400, description="body is required: an SMS cannot be empty")
    if len(body) > MAX_BODY:
        abort(400, description=f"body is longer than {MAX_BODY} characters")
    settings = line.settings
    sid = new_message_sid()
    params = inbound_params(line, sender.strip(), body, sid, to)
    url = settings.public_base_url + WEBHOOK_PATH
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(url, params)
    client = current_app.test_client()
    answer = client.post(
        WEBHOOK_PATH,
        base_url=settings.public_base_url,
        data=params,
        headers={"X-Twilio-Signature": signature},
    )
    payload: dict[str, Any] = {"status": answer.status_code, "message_sid": sid}
    if answer.status_code >= 400:
        refusal = answer.get_json(silent=True)
        if isinstance(refusal, dict):
            payload["error"] = refusal.get("error")
            payload["reason"] = refusal.get("reason")
        else:
            payload["reason"] = answer.get_data(as_text=True)[:500]
    return jsonify(payload), answer.status_code


def _message_row(
    line: LineServices,
    message_id: int,
    direction: str,
    body_enc: str,
    at: datetime,
    status: str,
    line_number: str | None,
) -> dict[str, Any]:
    """Return one message as the simulated phone lists it: "sent" by the phone or "received"."""
    body = _reveal(line, body_enc) or ""
    return dict(
        id=message_id, direction=direction, body=body, at=at, status=status, line_number=line_number
    )


@bp.get("/api/messages")
def messages() -> Response:
    """List one phone's messages with the line, oldest first, as a JSON array."""
    line = _line()
    raw = request.args.get("number", "").strip()
    if not raw:
        abort(400, description="number is required")
    try:
        number = normalise_phone(raw, line.settings.default_region)
    except BadPhoneNumber as exc:
        abort(400, description=str(exc))
    phone_hash = line.vault.lookup_hash(number)
    with line.db.session() as session:
        inbound = select(InboundMessage).where(InboundMessage.from_hash == phone_hash)
        rows = [
            _message_row(line, m.id, "sent", m.body_enc, m.received_at, "received", m.to_number)
            for m in session.scalars(inbound)
        ]
        outbound = select(OutboundMessage).where(OutboundMessage.to_hash == phone_hash)
        rows += [
            _message_row(line, o.id, "received", o.body_enc, o.created_at, o.status, o.from_number)
            for o in session.scalars(outbound)
        ]
    # A message and the replies it caused share one timestamp; ids come from two tables, so
    # within a tie the phone's own message goes first, then each side by id.
    rows.sort(key=lambda row: (row["at"], row["direction"] != "sent", row["id"]))
    for row in rows:
        row["at"] = row["at"].isoformat()
    return jsonify(rows)
