"""Twilio's request signature: checked on every webhook against the public URL."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, abort, current_app, request
from twilio.request_validator import RequestValidator

F = TypeVar("F", bound=Callable[..., Any])


def public_url() -> str:
    """Return the URL Twilio called: the public base, then the path and query as sent."""
    base = current_app.extensions["peerline"].settings.public_base_url
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        return base + raw
    query = request.query_string.decode("latin-1")
    return base + request.path + (f"?{query}" if query else "")


def twilio_signed(view: F) -> F:
    """Refuse a request whose X-Twilio-Signature does not match, with 403."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Response:
        signature = request.headers.get("X-Twilio-Signature", "")
        token = current_app.extensions["peerline"].settings.twilio_auth_token
        if not signature or not RequestValidator(token).validate(
            public_url(), request.form, signature
        ):
            abort(403, description="missing or invalid X-Twilio-Signature")
        return cast(Response, view(*args, **kwargs))

    return cast(F, checked)
