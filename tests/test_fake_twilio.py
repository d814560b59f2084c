"""Check the fake Twilio server through the real SDK, so other tests can trust it."""

from __future__ import annotations

import queue
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from peerline.service.twilio_base_url import BaseUrlHttpClient
from peerline.service.twilio_http import make_client
from tests.support.fake_twilio import FakeTwilio, count_segments, sign

LINE = "+15005550006"  # Twilio's "valid From" test number
TEXTER = "+15551230001"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    """Run a fake Twilio for one test."""
    with FakeTwilio() as server:
        yield server
        assert server.server_errors == []


@pytest.fixture
def client(fake: FakeTwilio) -> Client:
    """Build a real SDK client pointed at the fake."""
    return make_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=5.0)


class Receiver:
    """A tiny webhook endpoint that records what it is sent and answers a set status."""

    def __init__(self) -> None:
        """Bind to a free loopback port."""
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        self.answer = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            """Record one request."""

            def do_POST(self) -> None:
                """Store the form and answer with the receiver's status."""
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.put(
                    {
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "form": dict(urllib.parse.parse_qsl(body.decode("utf-8"))),
                    }
                )
                self.send_response(receiver.answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        host, port = self.server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def take(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Return the next `count` requests, failing if they do not arrive in time."""
        deadline = time.monotonic() + timeout
        got = []
        for _ in range(count):
            try:
                got.append(self.received.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"got {len(got)} of {count} callbacks: {got}") from None
        return got

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Run a webhook receiver for one test."""
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def closed_port() -> int:
    """Return a loopback port that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def send(client: Client, body: str = "hello", to: str = TEXTER, **kwargs: Any) -> Any:
    """Send one SMS from the line through the SDK."""
    return client.messages.create(to=to, from_=LINE, body=body, **kwargs)


# -- make_client and the base-URL rewrite ---------------------------------------------------


def test_make_client_without_base_url_uses_the_plain_sdk_client() -> None:
    client = make_client("AC" + "1" * 32, "token", None)
    assert type(client.http_client) is TwilioHttpClient
    assert client.http_client.timeout == 30.0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
            "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Messages.json",
        ),
        (
            "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts.json?x=1",
            "http://127.0.0.1:9/2010-04-01/Accounts.json?x=1",
        ),
        ("https://api.twilio.com", "http://127.0.0.1:9"),
        # Other products and look-alike hosts are left alone.
        ("https://messaging.twilio.com/v1/Services", "https://messaging.twilio.com/v1/Services"),
        ("https://api.twilio.com.evil.example/x", "https://api.twilio.com.evil.example/x"),
    ],
)
def test_base_url_client_rewrites_only_the_core_api(url: str, expected: str) -> None:
    assert BaseUrlHttpClient("http://127.0.0.1:9/").rewrite(url) == expected


def test_region_from_the_environment_still_reaches_the_base_url(
    fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    client = make_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=5.0)
    assert send(client).sid.startswith("SM")


# -- sending messages ------------------------------------------------------------------------


def test_send_returns_a_sid_and_is_recorded(fake: FakeTwilio, client: Client) -> None:
    message = send(client, "Hi, you've reached Peerline")
    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.status == "queued"
    assert message.direction == "outbound-api"
    assert message.account_sid == fake.account_sid
    assert message.date_created is not None and message.date_created.tzinfo is not None
    assert message.price is None and message.error_code is None
    [record] = fake.messages_to(TEXTER)
    assert record["sid"] == message.sid
    assert record["from"] == LINE
    assert record["body"] == "Hi, you've reached Peerline"
    assert fake.messages_to("+15559999999") == []


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension-table characters cost two septets each
        ("€" * 81, 2),
        ("á" * 70, 1),  # á is not in GSM-7: UCS-2, 70 per segment
        ("á" * 71, 2),
        ("á" * 134, 2),
        ("á" * 135, 3),
        ("😀" * 35, 1),  # an emoji is two UTF-16 code units
        ("😀" * 36, 2),
        ("a" * 69 + "😀", 2),
        ("’", 1),  # a curly apostrophe alone is still one (UCS-2) segment
    ],
)
def test_num_segments_follows_gsm7_and_ucs2(
    fake: FakeTwilio, client: Client, body: str, segments: int
) -> None:
    assert count_segments(body) == segments
    message = send(client, body)
    # Twilio sends counts as strings, and the SDK passes them through unchanged.
    assert message.num_segments == str(segments)
    assert fake.messages_to(TEXTER)[0]["num_segments"] == str(segments)


def test_messaging_service_send_is_accepted_without_a_sender(
    fake: FakeTwilio, client: Client
) -> None:
    service = "MG" + "2" * 32
    message = client.messages.create(to=TEXTER, messaging_service_sid=service, body="hi")
    assert message.status == "accepted"
    assert message.from_ is None
    assert message.messaging_service_sid == service


def test_fetch_and_list_messages(fake: FakeTwilio, client: Client) -> None:
    sids = [send(client, f"message {n}").sid for n in range(5)]
    send(client, "to someone else", to="+15551230002")
    assert client.messages(sids[0]).fetch().body == "message 0"
    # Paging through next_page_uri goes back through the rewrite; Twilio lists newest first.
    listed = client.messages.list(to=TEXTER, page_size=2)
    assert [m.sid for m in listed] == sids[::-1]
    with pytest.raises(TwilioRestException) as missing:
        client.messages("SM" + "0" * 32).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)


# -- errors like Twilio's --------------------------------------------------------------------


def test_opted_out_magic_number_is_21610(client: Client) -> None:
    with pytest.raises(TwilioRestException) as error:
        send(client, to="+15005550004")
    assert (error.value.status, error.value.code) == (400, 21610)
    assert "unsubscribed recipient" in error.value.msg


def test_numbers_added_to_opted_out_answer_21610(fake: FakeTwilio, client: Client) -> None:
    fake.opted_out.add(TEXTER)
    with pytest.raises(TwilioRestException) as error:
        send(client)
    assert error.value.code == 21610
    assert fake.messages == []


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550009", 21614),
        ("555-0100", 21211),
    ],
)
def test_invalid_recipients(client: Client, to: str, code: int) -> None:
    with pytest.raises(TwilioRestException) as error:
        send(client, to=to)
    assert (error.value.status, error.value.code) == (400, code)


def test_missing_fields_are_rejected(client: Client) -> None:
    with pytest.raises(TwilioRestException) as no_body:
        client.messages.create(to=TEXTER, from_=LINE)
    assert no_body.value.code == 21602
    with pytest.raises(TwilioRestException) as no_to:
        client.messages.create(to="", from_=LINE, body="hi")
    assert no_to.value.code == 21604


def test_wrong_token_is_401(fake: FakeTwilio) -> None:
    bad = make_client(fake.account_sid, "not-the-token", fake.base_url, timeout=5.0)
    with pytest.raises(TwilioRestException) as error:
        send(bad)
    assert (error.value.status, error.value.code) == (401, 20003)
    assert fake.messages == []


def test_api_key_auth_is_accepted(fake: FakeTwilio) -> None:
    fake.api_keys["SK" + "3" * 32] = "key-secret"
    http_client = BaseUrlHttpClient(fake.base_url, timeout=5.0)
    client = Client("SK" + "3" * 32, "key-secret", fake.account_sid, http_client=http_client)
    assert send(client).sid.startswith("SM")


# -- fault injection -------------------------------------------------------------------------


def test_injected_500_then_success(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next(500)
    with pytest.raises(TwilioRestException) as error:
        send(client)
    assert (error.value.status, error.value.code) == (500, 20500)
    assert send(client).sid.startswith("SM")
    assert [r["status"] for r in fake.requests] == [500, 201]
    assert len(fake.messages) == 1


def test_injected_429_carries_retry_after(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next(429, retry_after=7)
    with pytest.raises(TwilioRestException) as error:
        send(client)
    assert (error.value.status, error.value.code) == (429, 20429)
    # The SDK's exception drops response headers; read Retry-After off the wire instead.
    fake.fail_next(429, retry_after=7)
    raw = urllib.request.Request(f"{fake.base_url}/2010-04-01/Accounts/x/Messages.json")
    with pytest.raises(urllib.error.HTTPError) as http_error:
        urllib.request.urlopen(raw, timeout=5)
    with http_error.value as response:
        assert response.code == 429
        assert response.headers["Retry-After"] == "7"


def test_faults_apply_in_fifo_order(fake: FakeTwilio, client: Client) -> None:
    fake.delay_next(0.2)
    fake.fail_next(503, times=2)
    started = time.monotonic()
    assert send(client).sid.startswith("SM")
    assert time.monotonic() - started >= 0.2
    for _ in range(2):
        with pytest.raises(TwilioRestException) as error:
            send(client)
        assert (error.value.status, error.value.code) == (503, 20503)
    assert fake.pending_faults == 0
    assert send(client).status == "queued"


def test_slow_answer_times_out_but_the_message_was_still_accepted(fake: FakeTwilio) -> None:
    hasty = make_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=0.2)
    fake.delay_next(0.6)
    # The SDK does not wrap transport errors: a time-out surfaces as a requests exception.
    with pytest.raises(requests.exceptions.ReadTimeout):
        send(hasty)
    fake.wait_for(lambda messages: len(messages) == 1, timeout=3.0)


def test_stop_and_start_simulate_an_outage_on_the_same_url(
    fake: FakeTwilio, client: Client
) -> None:
    first = send(client).sid
    fake.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        send(client)
    fake.start()
    assert send(client).sid != first
    assert len(fake.messages) == 2


def test_wait_for_explains_a_timeout(fake: FakeTwilio, client: Client) -> None:
    send(client, "something else")
    with pytest.raises(AssertionError, match="a reply to the texter.*1 message"):
        fake.wait_for(lambda m: False, timeout=0.1, description="a reply to the texter")


# -- calls -----------------------------------------------------------------------------------


def test_calls_create_and_fetch(fake: FakeTwilio, client: Client) -> None:
    call = client.calls.create(
        to=TEXTER,
        from_=LINE,
        url="https://peerline.example/webhooks/voice",
        status_callback="https://peerline.example/webhooks/voice/status",
        status_callback_event=["initiated", "completed"],
    )
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert call.status == "queued"
    assert [c["sid"] for c in fake.calls] == [call.sid]
    assert client.calls(call.sid).fetch().to == TEXTER
    assert fake.message_params(call.sid)["StatusCallbackEvent"] == ["initiated", "completed"]
    with pytest.raises(TwilioRestException) as error:
        client.calls.create(to=TEXTER, from_=LINE)
    assert error.value.code == 21205


# -- status callbacks ------------------------------------------------------------------------


def test_status_callbacks_are_signed_like_twilio(
    fake: FakeTwilio, client: Client, receiver: Receiver
) -> None:
    url = f"{receiver.url}/webhooks/sms/status?attempt=1"
    message = send(client, status_callback=url)
    sent, delivered = receiver.take(2)
    assert [sent["form"]["MessageStatus"], delivered["form"]["MessageStatus"]] == [
        "sent",
        "delivered",
    ]
    validator = RequestValidator(fake.auth_token)
    for callback in (sent, delivered):
        form = callback["form"]
        assert callback["path"] == "/webhooks/sms/status?attempt=1"
        assert form["MessageSid"] == form["SmsSid"] == message.sid
        assert form["SmsStatus"] == form["MessageStatus"]
        assert (form["AccountSid"], form["From"], form["To"]) == (fake.account_sid, LINE, TEXTER)
        assert form["ApiVersion"] == "2010-04-01"
        signature = callback["headers"]["X-Twilio-Signature"]
        assert validator.validate(url, form, signature)
        assert not RequestValidator("another-token").validate(url, form, signature)
    assert "RawDlrDoneDate" in delivered["form"]
    fake.drain()
    assert client.messages(message.sid).fetch().status == "delivered"
    assert fake.callback_errors == []


def test_undeliverable_numbers_end_undelivered_with_an_error_code(
    fake: FakeTwilio, client: Client, receiver: Receiver
) -> None:
    fake.undeliverable[TEXTER] = 30003
    send(client, status_callback=f"{receiver.url}/status")
    sent, undelivered = receiver.take(2)
    assert sent["form"]["MessageStatus"] == "sent" and "ErrorCode" not in sent["form"]
    assert undelivered["form"]["MessageStatus"] == "undelivered"
    assert undelivered["form"]["ErrorCode"] == "30003"
    fake.drain()
    assert fake.messages[0]["error_code"] == 30003


def test_send_status_explicitly_out_of_order_and_twice(receiver: Receiver) -> None:
    with FakeTwilio(auto_status=False) as fake:
        client = make_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=5.0)
        message = send(client, status_callback=f"{receiver.url}/status")
        assert fake.send_status(message.sid, "delivered") == 200
        assert fake.send_status(message.sid, "sent") == 200
        assert fake.send_status(message.sid, "sent") == 200
        statuses = [c["form"]["MessageStatus"] for c in receiver.take(3)]
        assert statuses == ["delivered", "sent", "sent"]
        assert receiver.received.empty()


def test_unreachable_or_failing_callbacks_are_recorded(
    fake: FakeTwilio, client: Client, receiver: Receiver
) -> None:
    receiver.answer = 500
    failing, closed = f"{receiver.url}/status", f"http://127.0.0.1:{closed_port()}/status"
    send(client, status_callback=failing)
    send(client, status_callback=closed, to="+15551230002")
    fake.drain()
    errors = fake.callback_errors
    assert sorted((e["url"], e["params"]["MessageStatus"]) for e in errors) == sorted(
        [(closed, "sent"), (closed, "delivered"), (failing, "sent"), (failing, "delivered")]
    )
    assert {e["error"] for e in errors if e["url"] == failing} == {"HTTP 500"}
    assert all(e["status"] is None for e in errors if e["url"] == closed)
    assert send(client).status == "queued"  # the server carries on


def test_sign_matches_the_request_validator() -> None:
    url = "https://peerline.example/webhooks/sms"
    params = {"From": TEXTER, "Body": "YES", "MessageSid": "SM" + "4" * 32}
    assert RequestValidator("secret").validate(url, params, sign(url, params, "secret"))


@pytest.mark.parametrize(("keep_alive", "connections"), [(True, 1), (False, 3)])
def test_keep_alive_serves_many_sends_on_one_connection(keep_alive: bool, connections: int) -> None:
    fake = FakeTwilio(keep_alive=keep_alive, auto_status=False).start()
    try:
        client = make_client(fake.account_sid, fake.auth_token, fake.base_url)
        for n in range(3):
            send(client, f"hello {n}")
        assert [m["body"] for m in fake.messages] == ["hello 0", "hello 1", "hello 2"]
        assert fake.connections == connections  # the SDK's session reuses its connection
    finally:
        fake.stop()
