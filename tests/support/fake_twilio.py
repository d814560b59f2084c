"""A local server that speaks enough of Twilio's REST API for integration and fault tests.

The real SDK talks to it through `peerline.service.twilio_http.make_client(..., base_url)`, so
tests exercise the same request building, auth and error parsing as production. It answers
the 2010-04-01 Messages and Calls resources the way Twilio does (status codes, error codes and
JSON shapes, including the test-credential magic numbers), records everything it accepts,
can be told to fail or stall, and sends signed status callbacks like Twilio.

Segment counting here is deliberately independent of the application's own, so tests compare
the app against a second implementation rather than against itself.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import queue
import re
import secrets
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token-0123456789"

Json = dict[str, Any]
Params = dict[str, list[str]]

# GSM 03.38: the basic table costs one septet per character, the extension table two (an
# escape plus the character). Anything else forces the whole message into UCS-2.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

# The magic numbers Twilio's test credentials answer with a fixed error.
MAGIC_TO_ERRORS = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
MAGIC_FROM_ERRORS = {
    "+15005550001": 21212,
    "+15005550007": 21606,
    "+15005550008": 21611,
}

ERROR_MESSAGES = {
    20003: "Authenticate",
    20004: "Method not allowed",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service is unavailable. Please try again",
    21205: "Url parameter is required.",  # approximate wording; the code is what tests use
    21201: "No 'To' number is specified",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric "
    "sender ID.",
    21213: "No 'From' number is specified",
    21217: "Phone number does not appear to be valid",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the "
    "'To' number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided ({from_}) is not a valid message-capable Twilio "
    "phone number for this destination/account.",
    21609: "Invalid 'StatusCallback': {status_callback}",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone "
    "number: {from_} via SMS.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21624: "Invalid validity period value",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}

# The Twilio error code that goes with a bare HTTP failure when a test names none.
DEFAULT_FAULT_CODES = {401: 20003, 404: 20404, 405: 20004, 429: 20429, 500: 20500, 503: 20503}

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_SHORT_CODE = re.compile(r"^\d{3,8}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_ACCOUNT_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/(?P<rest>.+)$")
_MESSAGE_PATH = re.compile(r"^Messages/(?P<sid>(?:SM|MM)[0-9a-f]{32})\.json$")
_CALL_PATH = re.compile(r"^Calls/(?P<sid>CA[0-9a-f]{32})\.json$")
_RECORDING_PATH = re.compile(r"^Recordings/(?P<sid>RE[0-9a-f]{32})\.json$")


def count_segments(body: str) -> int:
    """Count the SMS segments Twilio bills for body."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in body):
        units = [2 if ch in GSM7_EXTENDED else 1 for ch in body]
        single, part = 160, 153
    else:
        # UCS-2 on the wire is really UTF-16: characters beyond the BMP (most emoji) take two.
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
        single, part = 70, 67
    if sum(units) <= single:
        return 1
    # Parts never split an escape sequence or a surrogate pair, so count greedily per character.
    segments, used = 1, 0
    for size in units:
        if used + size > part:
            segments += 1
            used = 0
        used += size
    return segments


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """Compute the X-Twilio-Signature Twilio would send for a form POST to url."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


def _now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


def _rfc2822(moment: datetime) -> str:
    """Format moment the way Twilio's JSON dates are written."""
    return format_datetime(moment)


def _new_sid(prefix: str) -> str:
    """Make a random Twilio-style SID with the given two-letter prefix."""
    return prefix + secrets.token_hex(16)


def _first(params: Params, name: str) -> str | None:
    """Return the first value of a form field, or None when absent or empty."""
    values = params.get(name) or []
    return values[0] if values and values[0] != "" else None


@dataclass(frozen=True)
class _Fault:
    """One queued misbehaviour: a failure response, or a delay before normal processing."""

    status: int | None = None
    code: int | None = None
    delay: float = 0.0
    retry_after: int | None = None


@dataclass(frozen=True)
class _Callback:
    """One automatic message status callback waiting to be sent."""

    due: float
    url: str
    sid: str
    status: str
    error_code: int | None


class ApiError(Exception):
    """An error answer in Twilio's JSON shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        """Keep the HTTP status, the Twilio code and the message."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def payload(self) -> Json:
        """Return the error as Twilio's JSON body."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def _error(status: int, code: int, **details: str | None) -> ApiError:
    """Build an ApiError with Twilio's usual wording for code."""
    template = ERROR_MESSAGES.get(code, "Error {code}")
    fields: dict[str, Any] = {"to": None, "from_": None, "status_callback": None, "path": None}
    fields.update(details)
    return ApiError(status, code, template.format(code=code, **fields))


class _Server(ThreadingHTTPServer):
    """The HTTP server, knowing which fake it serves."""

    # Handler threads may be parked in an injected delay; they must not keep stop() waiting.
    daemon_threads = True

    def __init__(
        self, fake: FakeTwilio, port: int, keep_alive: bool = False, host: str = "127.0.0.1"
    ) -> None:
        """Bind to the port (0: OS-chosen) on the loopback interface (or `host`)."""
        super().__init__((host, port), _KeepAliveHandler if keep_alive else _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    """Hand every request to the fake; keep the test output quiet."""

    server: _Server
    # HTTP/1.0 closes each connection, so no idle keep-alive socket outlives a test.
    protocol_version = "HTTP/1.0"
    server_version = "FakeTwilio/1.0"

    def setup(self) -> None:
        """Count the connection, then set up as usual."""
        with self.server.fake._lock:
            self.server.fake.connections += 1
        super().setup()

    def do_GET(self) -> None:
        """Serve a GET."""
        self.server.fake._serve(self)

    def do_POST(self) -> None:
        """Serve a POST."""
        self.server.fake._serve(self)

    def do_PUT(self) -> None:
        """Serve a PUT (always refused, as Twilio does)."""
        self.server.fake._serve(self)

    def do_DELETE(self) -> None:
        """Serve a DELETE (refused here)."""
        self.server.fake._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the per-request access log."""


class _KeepAliveHandler(_Handler):
    """HTTP/1.1 with keep-alive, as Twilio's API speaks: each client keeps its connection."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle's algorithm holds the body
    # until the client's delayed ACK, 40 ms later, on every request of a kept connection.
    disable_nagle_algorithm = True


class FakeTwilio:
    """Serve Twilio's Messages and Calls API on 127.0.0.1, recording and misbehaving on demand."""

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        api_keys: Mapping[str, str] | None = None,
        auto_status: bool = True,
        status_delay: float = 0.05,
        callback_timeout: float = 5.0,
        keep_alive: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Configure credentials and callback behaviour; call start() to serve.

        `host` and `port` are for a line in containers (deploy/container-check), which reaches
        this server across a bridge rather than on loopback.

        Tests use HTTP/1.0 (a connection per request), so no idle socket outlives a test; the
        benchmarks keep connections alive, as a client of the real API does.
        """
        self.keep_alive = keep_alive
        self.host = host  # another address than loopback: for hosts in network namespaces
        # When each message was accepted (time.time(), by SID): for rate checks across hosts.
        self.accepted_at: dict[str, float] = {}
        # The rate slot the sender was granted (X-Peerline-Slot, microseconds) and the address
        # it sent from, by SID: for the exact rate check across hosts.
        self.slot_of: dict[str, int] = {}
        self.client_of: dict[str, str] = {}
        self.connections = 0  # TCP connections accepted
        self.account_sid = account_sid
        self.auth_token = auth_token
        # API key SID -> secret; Twilio accepts either the account or a key as Basic auth.
        self.api_keys: dict[str, str] = dict(api_keys or {})
        self.auto_status = auto_status
        # Real callbacks can even beat the API response; a small default gap keeps ordinary
        # tests deterministic, and 0 lets a test provoke that race on purpose.
        self.status_delay = status_delay
        self.callback_timeout = callback_timeout
        # Numbers that texted STOP: sends to them fail with 21610 like the magic number does.
        self.opted_out: set[str] = set()
        # Numbers whose messages are accepted but end `undelivered` with this ErrorCode.
        self.undeliverable: dict[str, int] = {}
        # Voice recordings kept at the provider, by SID (tests add them; DELETE removes them).
        self.recordings: set[str] = set()
        # Messaging Services: SID -> the numbers of its pool. A send naming one (and no From)
        # goes from a pool number, the same one for each recipient (sticky sender).
        self.services: dict[str, list[str]] = {}
        self._sticky: dict[tuple[str, str], str] = {}
        # (time.time() at arrival, the account it spends: From or the service, segments).
        self._arrivals: list[tuple[float, str, int]] = []
        self.base_url = ""

        self._lock = threading.RLock()
        self._messages: list[Json] = []
        self._calls: list[Json] = []
        self._requests: list[Json] = []
        self._callbacks: list[Json] = []
        self._callback_errors: list[Json] = []
        self._server_errors: list[str] = []
        self._extras: dict[str, Params] = {}
        self._call_sequence: dict[str, int] = {}
        self._faults: deque[_Fault] = deque()
        self._outbox: queue.Queue[_Callback | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._port = port
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        """Start serving in background threads and return self."""
        if self._server is not None:
            raise RuntimeError("FakeTwilio is already running")
        self._stopping.clear()
        # A restart keeps the port, so stop()/start() stands in for an outage and a recovery
        # without reconfiguring clients; recordings are kept across it too.
        self._server = _Server(self, self._port, self.keep_alive, self.host)
        host, self._port = self._server.server_address[:2]
        self.base_url = f"http://{host!s}:{self._port}"
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-twilio-http",
                daemon=True,
            ),
            threading.Thread(
                target=self._dispatch,
                args=(self._outbox,),
                name="fake-twilio-callbacks",
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop callbacks not yet sent and release the port."""
        if self._server is None:
            return
        self._stopping.set()  # wakes injected delays and the callback sender
        self._server.shutdown()
        self._server.server_close()
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(timeout=self.callback_timeout + 1.0)
        with self._idle:
            # Callbacks still queued were dropped; a restart starts from an empty outbox.
            self._outbox = queue.Queue()
            self._pending = 0
            self._idle.notify_all()
        self._server = None
        self._threads = []

    def __enter__(self) -> FakeTwilio:
        """Start serving for the duration of a with block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving at the end of a with block."""
        self.stop()

    def reset(self) -> None:
        """Forget recorded traffic, queued faults, opt-outs and undeliverable numbers."""
        with self._lock:
            for log in (
                self._messages,
                self._calls,
                self._requests,
                self._callbacks,
                self._callback_errors,
                self._server_errors,
            ):
                log.clear()
            self._extras.clear()
            self.slot_of.clear()
            self.client_of.clear()
            self._sticky.clear()
            self._arrivals.clear()
            self._call_sequence.clear()
            self._faults.clear()
            self.opted_out.clear()
            self.undeliverable.clear()

    def env(self, phone_number: str) -> dict[str, str]:
        """Return the environment variables that point a line at this fake Twilio."""
        return {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_PHONE_NUMBER": phone_number,
            "TWILIO_API_BASE_URL": self.base_url,
        }

    # -- recordings (snapshots, so a test never sees a dict change under it) ------------------

    @property
    def messages(self) -> list[Json]:
        """Return the accepted messages, oldest first, as Twilio's JSON."""
        with self._lock:
            return [dict(m) for m in self._messages]

    @property
    def calls(self) -> list[Json]:
        """Return the accepted calls, oldest first, as Twilio's JSON."""
        with self._lock:
            return [dict(c) for c in self._calls]

    @property
    def requests(self) -> list[Json]:
        """Return every API request seen (method, path, params, status), failures included."""
        with self._lock:
            return [dict(r) for r in self._requests]

    @property
    def callbacks(self) -> list[Json]:
        """Return every status callback attempted (url, params, status, error)."""
        with self._lock:
            return [dict(c) for c in self._callbacks]

    @property
    def callback_errors(self) -> list[Json]:
        """Return the status callbacks that failed (unreachable, time-out or non-2xx)."""
        with self._lock:
            return [dict(c) for c in self._callback_errors]

    @property
    def server_errors(self) -> list[str]:
        """Return tracebacks of bugs in the fake itself (answered as 500 20500)."""
        with self._lock:
            return list(self._server_errors)

    def arrival_log(self, sender: str | None = None) -> list[tuple[float, int]]:
        """Return (arrival time, segments) of each accepted message, from one sender or all.

        A sender is the From number, or the Messaging Service SID for sends through one.
        """
        with self._lock:
            return [(at, n) for at, who, n in self._arrivals if sender in (None, who)]

    def busiest_second(self, sender: str | None = None, rate: float | None = None) -> int:
        """Return the most segments that arrived within any one second (a window per arrival).

        With `rate`, a message of several segments counts them one every 1/rate s from its
        arrival, as Twilio's queue hands them to the carrier.
        """
        times = sorted(
            (at + k / rate if rate else at, 1)
            for at, n in self.arrival_log(sender)
            for k in range(n if rate else 1)
        )
        if not rate:
            times = sorted((at, n) for at, n in self.arrival_log(sender))
        return max(
            (sum(n for at, n in times[i:] if at < s + 1.0) for i, (s, _) in enumerate(times)),
            default=0,
        )

    def messages_to(self, number: str) -> list[Json]:
        """Return the accepted messages addressed to number, oldest first."""
        return [m for m in self.messages if m["to"] == number]

    def message_params(self, sid: str) -> Params:
        """Return the form fields a message or call was created with."""
        with self._lock:
            return {k: list(v) for k, v in self._extras[sid].items()}

    def wait_for(
        self,
        predicate: Callable[[list[Json]], object],
        timeout: float = 5.0,
        description: str | None = None,
    ) -> list[Json]:
        """Poll until predicate(messages) is truthy and return the messages, or fail clearly."""
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self.messages
            if predicate(snapshot):
                return snapshot
            if time.monotonic() >= deadline:
                what = description or getattr(predicate, "__qualname__", repr(predicate))
                seen = (
                    "\n".join(
                        f"  {m['sid']} to={m['to']} status={m['status']} body={m['body']!r:.80}"
                        for m in snapshot
                    )
                    or "  (none)"
                )
                raise AssertionError(
                    f"FakeTwilio: timed out after {timeout}s waiting for {what}; "
                    f"{len(snapshot)} message(s) so far:\n{seen}"
                )
            time.sleep(0.02)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every scheduled status callback has been attempted."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"FakeTwilio: {self._pending} status callback(s) still pending "
                        f"after {timeout}s"
                    )
                self._idle.wait(remaining)

    # -- fault injection ---------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        code: int | None = None,
        times: int = 1,
        *,
        retry_after: int = 1,
    ) -> None:
        """Answer the next `times` API requests with an error before any normal processing."""
        fault = _Fault(
            status=status,
            code=code if code is not None else DEFAULT_FAULT_CODES.get(status, status),
            # Throttling and unavailability are where a client looks for Retry-After.
            retry_after=retry_after if status in (429, 503) else None,
        )
        with self._lock:
            self._faults.extend([fault] * times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """Stall the next `times` API requests for `seconds`, then process them normally.

        A client that times out meanwhile still gets its message created, as with Twilio.
        """
        with self._lock:
            self._faults.extend([_Fault(delay=seconds)] * times)

    @property
    def pending_faults(self) -> int:
        """Return how many queued faults have not been used yet."""
        with self._lock:
            return len(self._faults)

    # -- status callbacks --------------------------------------------------------------------

    def send_status(self, sid: str, status: str, error_code: int | None = None) -> int | None:
        """Send one message status callback now; return the HTTP status, or None if unreached."""
        with self._lock:
            record = self._find(self._messages, sid)
            url = _first(self._extras[sid], "StatusCallback")
            if url is None:
                raise ValueError(f"message {sid} has no StatusCallback")
            params = self._message_status(record, status, error_code)
        return self._post_callback(url, params)

    def send_call_status(self, sid: str, status: str, duration: int | None = None) -> int | None:
        """Send one call status callback now; return the HTTP status, or None if unreached."""
        with self._lock:
            record = self._find(self._calls, sid)
            url = _first(self._extras[sid], "StatusCallback")
            if url is None:
                raise ValueError(f"call {sid} has no StatusCallback")
            record["status"] = status
            record["date_updated"] = _rfc2822(_now())
            if duration is not None:
                record["duration"] = str(duration)
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": API_VERSION,
                "CallSid": sid,
                "CallStatus": status,
                "Called": record["to"],
                "Caller": record["from"],
                "Direction": "outbound-api",
                "From": record["from"],
                "To": record["to"],
                "CallbackSource": "call-progress-events",
                "Timestamp": _rfc2822(_now()),
                "SequenceNumber": str(self._call_sequence.get(sid, 0)),
            }
            self._call_sequence[sid] = self._call_sequence.get(sid, 0) + 1
            if duration is not None:
                params["CallDuration"] = str(duration)
        return self._post_callback(url, params)

    def _message_status(self, record: Json, status: str, error_code: int | None) -> dict[str, str]:
        """Apply a status to a stored message and return the callback's form fields."""
        now = _now()
        record["status"] = status
        record["date_updated"] = _rfc2822(now)
        if status == "sent" and record["date_sent"] is None:
            record["date_sent"] = _rfc2822(now)
        if error_code is not None:
            record["error_code"] = error_code
            record["error_message"] = ERROR_MESSAGES.get(error_code)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "MessageSid": record["sid"],
            "SmsSid": record["sid"],
            "MessageStatus": status,
            "SmsStatus": status,
            "To": record["to"],
        }
        if record["from"] is not None:
            params["From"] = record["from"]
        if record["messaging_service_sid"] is not None:
            params["MessagingServiceSid"] = record["messaging_service_sid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        if status in ("delivered", "undelivered"):
            # Carriers' delivery-receipt time, passed through since 2023: YYMMDDhhmm, no zone.
            params["RawDlrDoneDate"] = now.strftime("%y%m%d%H%M")
        return params

    def _schedule_statuses(self, sid: str) -> None:
        """Queue the usual sent/delivered (or sent/undelivered) callbacks for a new message."""
        with self._lock:
            record = self._find(self._messages, sid)
            url = _first(self._extras[sid], "StatusCallback")
            if url is None or not self.auto_status:
                return
            failure = self.undeliverable.get(record["to"])
            steps: list[tuple[str, int | None]] = [("sent", None)]
            steps.append(("undelivered", failure) if failure else ("delivered", None))
            due = time.monotonic()
            for status, code in steps:
                due += self.status_delay
                # Fields are built when sent, so the stored status moves as callbacks go out.
                self._pending += 1
                self._outbox.put(_Callback(due, url, sid, status, code))

    def _dispatch(self, outbox: queue.Queue[_Callback | None]) -> None:
        """Send queued status callbacks in order until stopped."""
        while True:
            item = outbox.get()
            if item is None:
                return
            try:
                if self._stopping.wait(max(0.0, item.due - time.monotonic())):
                    return
                with self._lock:
                    record = self._find(self._messages, item.sid)
                    params = self._message_status(record, item.status, item.error_code)
                self._post_callback(item.url, params)
            except Exception:  # the sender must survive anything a test provokes
                with self._lock:
                    self._server_errors.append(traceback.format_exc())
            finally:
                with self._idle:
                    self._pending = max(0, self._pending - 1)
                    self._idle.notify_all()

    def _post_callback(self, url: str, params: dict[str, str]) -> int | None:
        """POST a signed callback like Twilio; record the outcome instead of raising."""
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(params).encode("utf-8"),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "TwilioProxy/1.1",
                "X-Twilio-Signature": sign(url, params, self.auth_token),
                "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            },
        )
        # Ignore *_proxy variables: callbacks go to a local test server, never through a proxy.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        entry: Json = {"url": url, "params": params, "status": None, "error": None}
        try:
            with opener.open(request, timeout=self.callback_timeout) as response:
                response.read()
                entry["status"] = int(response.status)
        except urllib.error.HTTPError as exc:  # a non-2xx answer is a failure to Twilio too
            with exc:
                entry["status"] = exc.code
                entry["error"] = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:  # refused, timed out, bad URL
            entry["error"] = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._callbacks.append(entry)
            if entry["error"] is not None:
                self._callback_errors.append(entry)
        status = entry["status"]
        return status if isinstance(status, int) else None

    # -- HTTP handling -----------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        """Answer one HTTP request."""
        split = urllib.parse.urlsplit(handler.path)
        params = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            body = handler.rfile.read(length).decode("utf-8")
            for name, values in urllib.parse.parse_qs(body, keep_blank_values=True).items():
                params.setdefault(name, []).extend(values)
        headers: dict[str, str] = {}
        try:
            status, payload, headers, after = self._route(handler, split.path, params)
        except ApiError as exc:
            status, payload, after = exc.status, exc.payload(), None
        except Exception:  # a bug in the fake: answer like Twilio's 500, keep the evidence
            with self._lock:
                self._server_errors.append(traceback.format_exc())
            status, payload, after = 500, _error(500, 20500).payload(), None
        with self._lock:
            self._requests.append(
                {"method": handler.command, "path": split.path, "params": params, "status": status}
            )
        data = b"" if status == 204 else json.dumps(payload).encode("utf-8")
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(data)))
            handler.send_header("Twilio-Request-Id", _new_sid("RQ"))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its time-out beat an injected delay); what Twilio did with
            # the request still stands, which is exactly the ambiguity such tests are after.
            pass
        # Callbacks are queued only once the answer is out, as Twilio accepts before it sends.
        if after is not None:
            after()

    def _route(
        self, handler: _Handler, path: str, params: Params
    ) -> tuple[int, Json, dict[str, str], Callable[[], None] | None]:
        """Apply faults, auth and routing; return status, JSON, headers and a follow-up."""
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            if fault.delay and self._stopping.wait(fault.delay):
                raise _error(503, 20503)
            if fault.status is not None:
                assert fault.code is not None
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                err = _error(fault.status, fault.code, path=path)
                return fault.status, err.payload(), headers, None

        self._authenticate(handler.headers.get("Authorization"))
        match = _ACCOUNT_PATH.match(path)
        if match is None:
            raise _error(404, 20404, path=path)
        if match["account"] != self.account_sid:
            # Valid credentials for one account never open another account's resources.
            raise _error(401, 20003)
        rest, method = match["rest"], handler.command

        if rest == "Messages.json":
            if method == "POST":
                record = self._create_message(params)
                slot = handler.headers.get("X-Peerline-Slot")
                with self._lock:
                    self.client_of[record["sid"]] = handler.client_address[0]
                    if slot is not None:
                        self.slot_of[record["sid"]] = int(slot)
                return 201, record, {}, lambda: self._schedule_statuses(record["sid"])
            if method == "GET":
                return 200, self._page("Messages", self._messages, params), {}, None
        elif rest == "Calls.json":
            if method == "POST":
                return 201, self._create_call(params), {}, None
            if method == "GET":
                return 200, self._page("Calls", self._calls, params), {}, None
        elif found := _RECORDING_PATH.match(rest):
            if method == "DELETE":
                with self._lock:
                    if found["sid"] not in self.recordings:
                        raise _error(404, 20404, path=path)
                    self.recordings.discard(found["sid"])
                return 204, {}, {}, None
        elif found := (_MESSAGE_PATH.match(rest) or _CALL_PATH.match(rest)):
            if method == "GET":
                records = self._messages if rest.startswith("Messages/") else self._calls
                with self._lock:
                    for record in records:
                        if record["sid"] == found["sid"]:
                            return 200, dict(record), {}, None
                raise _error(404, 20404, path=path)
        else:
            raise _error(404, 20404, path=path)
        raise _error(405, 20004)

    def _authenticate(self, header: str | None) -> None:
        """Accept Basic auth by the account SID or an API key; refuse like Twilio otherwise."""
        refusal = ApiError(401, 20003, "Authenticate")
        if not header or not header.startswith("Basic "):
            raise refusal
        try:
            decoded = base64.b64decode(header[len("Basic ") :], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise refusal from None
        user, _, password = decoded.partition(":")
        expected = self.auth_token if user == self.account_sid else self.api_keys.get(user)
        if expected is None or not hmac.compare_digest(password, expected):
            raise refusal

    # -- resources ---------------------------------------------------------------------------

    def _create_message(self, params: Params) -> Json:
        """Validate a Messages POST like Twilio and store the new message."""
        to = _first(params, "To")
        from_ = _first(params, "From")
        service = _first(params, "MessagingServiceSid")
        body = _first(params, "Body") or ""
        media = [url for url in params.get("MediaUrl", []) if url]
        status_callback = _first(params, "StatusCallback")
        validity = _first(params, "ValidityPeriod")

        if to is None:
            raise _error(400, 21604)
        if from_ is None and service is None:
            raise _error(400, 21603)
        if not _E164.match(to):
            raise _error(400, 21211, to=to)
        if from_ is not None and not (
            _E164.match(from_) or _SHORT_CODE.match(from_) or _ALPHANUMERIC_SENDER.match(from_)
        ):
            raise _error(400, 21212, from_=from_)
        if not body and not media:
            raise _error(400, 21602)
        if len(body) > 1600:
            raise _error(400, 21617)
        if status_callback is not None:
            parts = urllib.parse.urlsplit(status_callback)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise _error(400, 21609, status_callback=status_callback)
        if validity is not None and not (validity.isdigit() and 1 <= int(validity) <= 36000):
            raise _error(400, 21624)
        if from_ in MAGIC_FROM_ERRORS:
            raise _error(400, MAGIC_FROM_ERRORS[from_], from_=from_)
        with self._lock:
            opted_out = to in self.opted_out
        if opted_out:
            raise _error(400, 21610, to=to)
        if to in MAGIC_TO_ERRORS:
            raise _error(400, MAGIC_TO_ERRORS[to], to=to, from_=from_)

        sid = _new_sid("MM" if media else "SM")
        now = _rfc2822(_now())
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        picked = self._pick_sender(service, to) if from_ is None and service else None
        record: Json = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            # Through a Messaging Service the sender is picked later, so it starts out null
            # (unless the test configured the service's pool: then the picked number).
            "from": from_ if from_ is not None else picked,
            "messaging_service_sid": service,
            "num_media": str(len(media)),
            # Twilio sends counts as strings; an MMS is billed as one message.
            "num_segments": "1" if media else str(count_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued" if from_ is not None else "accepted",
            "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
            "to": to,
            "uri": uri,
        }
        with self._lock:
            self._messages.append(record)
            self.accepted_at[sid] = time.time()
            self._extras[sid] = {k: list(v) for k, v in params.items()}
            spends = from_ if from_ is not None else str(service)
            self._arrivals.append((time.time(), spends, int(record["num_segments"])))
            return dict(record)

    def _pick_sender(self, service: str, to: str) -> str | None:
        """Return the pool number a service sends to `to` from: the same one every time."""
        with self._lock:
            pool = self.services.get(service)
            if not pool:
                return None
            key = (service, to)
            if key not in self._sticky:
                # A new recipient gets the pool's least used number, as Twilio spreads them.
                used = [n for (s, _), n in self._sticky.items() if s == service]
                self._sticky[key] = min(pool, key=used.count)
            return self._sticky[key]

    def _create_call(self, params: Params) -> Json:
        """Validate a Calls POST like Twilio and store the new call."""
        to = _first(params, "To")
        from_ = _first(params, "From")
        if to is None:
            raise _error(400, 21201)
        if from_ is None:
            raise _error(400, 21213)
        if not any(_first(params, name) for name in ("Url", "Twiml", "ApplicationSid")):
            raise _error(400, 21205)
        if not _E164.match(to) and not to.startswith(("client:", "sip:")):
            raise _error(400, 21217)

        sid = _new_sid("CA")
        now = _rfc2822(_now())
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}.json"
        base = uri.removesuffix(".json")
        record: Json = {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": now,
            "date_updated": now,
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": from_,
            "from_formatted": from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": sid,
            "start_time": None,
            "status": "queued",
            "subresource_uris": {
                name: f"{base}/{name.title().replace('_', '')}.json"
                for name in ("notifications", "recordings", "events", "payments", "streams")
            },
            "to": to,
            "to_formatted": to,
            "trunk_sid": None,
            "uri": uri,
        }
        with self._lock:
            self._calls.append(record)
            self._extras[sid] = {k: list(v) for k, v in params.items()}
            return dict(record)

    def _page(self, resource: str, records: Iterable[Json], params: Params) -> Json:
        """Return one page of a list, newest first and filtered by To/From, as Twilio does."""
        wanted = {key.lower(): _first(params, key) for key in ("To", "From")}
        with self._lock:
            matching = [
                dict(r)
                for r in reversed(list(records))
                if all(value is None or r[key] == value for key, value in wanted.items())
            ]
        size = int(_first(params, "PageSize") or 50)
        page = int(_first(params, "Page") or 0)
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/{resource}.json"
        filters = "".join(f"&{k.title()}={urllib.parse.quote(v)}" for k, v in wanted.items() if v)

        def page_uri(number: int) -> str:
            """Build the URI of another page of the same list."""
            return f"{base}?PageSize={size}&Page={number}{filters}"

        start = page * size
        chunk = matching[start : start + size]
        has_next = start + size < len(matching)
        return {
            resource.lower(): chunk,
            "end": start + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page),
        }

    @staticmethod
    def _find(records: list[Json], sid: str) -> Json:
        """Return the live stored record with this SID."""
        for record in records:
            if record["sid"] == sid:
                return record
        raise KeyError(sid)
