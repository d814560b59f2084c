"""The inbound SMS webhook's usual case, answered before Flask: signed, well formed, taken in.

Nearly every webhook a busy line gets is an inbound SMS that Twilio signed, with the fields
Twilio sends, taken into Redis for a worker. For those, Flask's request context, URL matching,
hooks and response object cost about as much CPU as the webhook's own work (issue 19), so this
WSGI layer answers them itself, with the very checks and the very answer of the Flask view
(`sms.inbound`): the signature (`signing.valid_signature`), the fields (`signing.check_fields`),
the numbers (`sms.read_inbound`), the crisis check and the take-in (`sms.take_in`), the empty
TwiML with the app's security headers, and the webhook counter.

Anything else goes to Flask untouched, with its body put back: another path or method, a query
string, no length or a body over the app's limit, a bad signature, a field Twilio would not
send, Redis unable to take the text (the view then steps it into the database, or spools it).
So every refusal and every rarer path keeps the one answer the Flask view gives, and the door
only ever says yes to what that view would have said yes to.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from peerline.service import metrics
from peerline.service.services import LineServices
from peerline.webhooks.signing import check_fields, raw_uri, valid_signature
from peerline.webhooks.sms import EMPTY, BadField, read_inbound, take_in

log = logging.getLogger(__name__)

# The paths the view answers (the primary URL and the fallback URL), by its endpoint's name.
PATHS = {"/webhooks/sms": "sms.inbound", "/webhooks/sms/fallback": "sms.fallback"}
FORM = "application/x-www-form-urlencoded"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SmsDoor:
    """Answer signed inbound SMS that Redis takes in; hand every other request to the app."""

    def __init__(
        self, app: WsgiApp, line: LineServices, headers: Iterable[tuple[str, str]], limit: int
    ) -> None:
        self.app = app
        self.line = line
        self.limit = limit
        self.base = line.settings.public_base_url
        self.validator = RequestValidator(line.settings.twilio_auth_token)
        self.body = EMPTY.encode()
        # The view's answer: Flask's Response(EMPTY, mimetype="text/xml") and the app's
        # security headers after it (tests/test_sms_door.py compares the two).
        self.headers = [
            ("Content-Type", "text/xml; charset=utf-8"),
            ("Content-Length", str(len(self.body))),
            *headers,
        ]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer the request if it is a signed inbound SMS taken in, else pass it on."""
        endpoint = PATHS.get(environ.get("PATH_INFO", ""))
        if endpoint is None or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        body = self._body(environ)
        if body is None:
            return self.app(environ, start_response)
        try:
            taken = self._take(environ, body)
        except Exception as exc:  # the view answers as it would have; this is only a shortcut
            # The type only: a message could quote a field. The view runs the same code, so a
            # fault that is a bug fails there too, with Flask's own log of it.
            log.error("the SMS door failed (%s); Flask's view answers", type(exc).__name__)
            taken = False
        if not taken:
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        metrics.webhook_answered(endpoint, "queued")
        start_response("200 OK", list(self.headers))
        return [self.body]

    def _body(self, environ: dict[str, Any]) -> bytes | None:
        """Return a form's body read whole, or None to leave the request to the app unread."""
        if environ.get("QUERY_STRING") or environ.get("HTTP_CONTENT_ENCODING"):
            return None
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != FORM:
            return None
        length = environ.get("CONTENT_LENGTH", "")
        if not (length.isascii() and length.isdigit()) or not 0 < int(length) <= self.limit:
            return None
        body: bytes = environ["wsgi.input"].read(int(length))
        return body

    def _take(self, environ: dict[str, Any], body: bytes) -> bool:
        """Check the webhook as the view does and take its text in; say if it was."""
        uri = raw_uri(environ)
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE", "")
        if uri is None or not signature or len(body) != int(environ["CONTENT_LENGTH"]):
            return False
        try:
            # As werkzeug reads a urlencoded form (formparser._parse_urlencoded).
            text = body.decode()
        except UnicodeDecodeError:
            return False
        form = MultiDict(parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"))
        if not valid_signature(self.validator, self.base + uri, signature, form):
            return False
        if check_fields(form) is not None:
            return False
        try:
            message = read_inbound(form, self.line)
        except BadField:
            return False
        return take_in(self.line, message)
