"""Twilio's request signature and the shape of its fields: checked on every webhook."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Request, Response, abort, current_app, request
from twilio.request_validator import RequestValidator

F = TypeVar("F", bound=Callable[..., Any])

# Fields Twilio sends once: a second copy means someone other than Twilio built the request,
# and the two copies could be read differently by different parts of the line.
ONCE = (
    "From", "To", "Body", "MessageSid", "SmsSid", "SmsMessageSid", "AccountSid", "CallSid",
    "ParentCallSid", "MessageStatus", "SmsStatus", "CallStatus", "RecordingSid", "OptOutType",
)  # fmt: skip
SID_FIELDS = (
    "MessageSid", "SmsSid", "SmsMessageSid", "AccountSid", "CallSid", "ParentCallSid",
    "RecordingSid", "MessagingServiceSid",
)  # fmt: skip
# Whole numbers Twilio sends (durations, counts, error codes): nine digits is plenty, and keeps
# them inside a database integer.
NUMERIC = (
    "ErrorCode", "RecordingDuration", "CallDuration", "DialCallDuration", "Duration",
    "NumMedia", "NumSegments",
)  # fmt: skip
_ONCE, _SIDS, _NUMERIC = frozenset(ONCE), frozenset(SID_FIELDS), frozenset(NUMERIC)
WHOLE = re.compile(r"[0-9]{1,9}")
# Twilio's SIDs are two letters and 32 hex digits; anything longer or stranger is not one.
SID = re.compile(r"[A-Za-z0-9]{1,64}")
# A carrier message is at most 1,600 characters (ten concatenated segments).
MAX_BODY = 1600
MAX_FIELD = 4096


def check_fields(form: Any) -> str | None:
    """Return why a webhook's fields cannot have come from Twilio, or None when they can."""
    # One pass over the names for copies (a look-up each for the fourteen would cost more).
    for name, values in form.lists():
        if len(values) > 1 and name in _ONCE:
            return f"{name} appears more than once"
    for name, value in form.items(multi=True):
        if "\x00" in name or "\x00" in value:
            return f"{name[:40]!r} holds a NUL character"
        limit = MAX_BODY if name == "Body" else MAX_FIELD
        if len(value) > limit or len(name) > 100:
            return f"{name[:40]!r} is longer than {limit} characters"
        if name in _SIDS and value and not SID.fullmatch(value):
            return f"{name} is not a Twilio SID"
        if name in _NUMERIC and value.strip() and not WHOLE.fullmatch(value.strip()):
            unit = " of seconds" if name.endswith("Duration") else ""
            return f"{name} must be a whole number{unit}"
    return None


def current_request() -> Request:
    """Return the request itself: each read through Flask's `request` proxy costs about 1 us."""
    return cast(Request, request._get_current_object())  # type: ignore[attr-defined]


def raw_uri(environ: dict[str, Any]) -> str | None:
    """Return the path and query exactly as the client sent them, when the server says."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    return raw if raw and raw.startswith("/") else None


def public_url(req: Request | None = None) -> str:
    """Return the URL Twilio called: the public base, then the path and query as sent."""
    req = req or current_request()
    base = current_app.extensions["peerline"].settings.public_base_url
    raw = raw_uri(req.environ)
    if raw:
        return base + raw
    query = req.query_string.decode("latin-1")
    return base + req.path + (f"?{query}" if query else "")


def valid_signature(validator: RequestValidator, url: str, signature: str, form: Any) -> bool:
    """Say whether Twilio signed these fields for this URL."""
    # Twilio signs the URL it called; `validate` also tries it with and without a port (for
    # proxies that add or drop one), which costs a second HMAC on every webhook. The URL as
    # called matches first; only a mismatch pays for the full check.
    computed = validator.compute_signature(url, form)
    if hmac.compare_digest(computed.encode(), signature.encode()):
        return True
    return bool(validator.validate(url, form, signature))


def twilio_signed(view: F) -> F:
    """Refuse a request whose X-Twilio-Signature does not match, with 403."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Response:
        req = current_request()
        signature = req.headers.get("X-Twilio-Signature", "")
        token = current_app.extensions["peerline"].settings.twilio_auth_token
        form = req.form
        url = public_url(req)
        if not signature or not valid_signature(RequestValidator(token), url, signature, form):
            abort(403, description="missing or invalid X-Twilio-Signature")
        problem = check_fields(form)
        if problem:
            abort(400, description=problem)
        return cast(Response, view(*args, **kwargs))

    checked.checks_fields = True  # type: ignore[attr-defined]
    return cast(F, checked)


def checks_fields(view: Callable[..., Any] | None) -> bool:
    """Say whether a view runs `check_fields` on its form itself (it is `twilio_signed`)."""
    return getattr(view, "checks_fields", False) is True
