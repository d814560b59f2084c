"""Tests for the local phone simulator: the page, its phones, and texts through the webhook."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeredis import FakeRedis
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from peerline import simulator
from peerline.app import create_app
from peerline.service.services import LineServices
from peerline.service.migrate import upgrade
from peerline.service.models import InboundMessage
from peerline.service.settings import from_env
from peerline.workers.context import set_line
from peerline.workers.embedded import EmbeddedWorkers
from tests.support.line import drain_inbound, load_line_file

TEXTER = "+15550123456"
EXPLANATION = (
    "Every message goes through the same signed webhook Twilio uses; replies are what the line"
)


def make_app(tmp_path: Path, **changes: Any) -> Flask:
    settings = from_env({"PEERLINE_INSTANCE": str(tmp_path), "SECRET_KEY": "test-secret"})
    assert settings.embedded
    upgrade(settings.database_url)
    return create_app(
        settings.with_changes(testing=True, simulator=True, **changes), redis=FakeRedis()
    )


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    set_line(app.extensions["peerline"])  # the drain jobs' line
    yield app
    app.extensions["peerline"].db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def line(app: Flask) -> LineServices:
    return app.extensions["peerline"]


def send(client: FlaskClient, json: Any) -> TestResponse:
    """Text the line from the simulator, then step the text as a worker would."""
    response = client.post("/simulator/api/send", json=json)
    drain_inbound()
    return response


def import_demo(line: LineServices) -> None:
    """Load the demo line file into the simulator's line."""
    load_line_file(line)


def test_page_renders_with_explanation(client: FlaskClient) -> None:
    response = client.get("/simulator")
    assert response.status_code == 200
    page = " ".join(response.get_data(as_text=True).split())
    assert EXPLANATION in page
    assert "+15550100000" in page
    assert TEXTER in page
    assert "/simulator/api/send" in page
    # No external assets: the simulator runs without internet.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_phones_lists_supporters_and_texters(client: FlaskClient, line: LineServices) -> None:
    empty = client.get("/simulator/api/phones").get_json()
    assert empty == {
        "line_number": "+15550100000",
        "relay_numbers": [],
        "texters": [],
        "supporters": [],
    }

    import_demo(line)
    assert send(client, json={"from": TEXTER, "body": "hi"}).status_code == 200

    data = client.get("/simulator/api/phones").get_json()
    assert data["line_number"] == line.settings.twilio_phone_number
    assert data["texters"] == [TEXTER]
    phones = {s["name"]: s["phone"] for s in data["supporters"]}
    assert phones == {"Sam": "+14165550101", "Rosa": "+14165550102", "Alex": "+14165550103"}
    assert all(isinstance(s["id"], int) for s in data["supporters"])


def test_send_goes_through_the_webhook_and_shows_both_sides(
    client: FlaskClient, line: LineServices
) -> None:
    import_demo(line)
    response = send(client, json={"from": TEXTER, "body": "hello"})
    assert response.status_code == 200
    result = response.get_json()
    assert result["status"] == 200
    assert re.fullmatch(r"SM[0-9a-f]{32}", result["message_sid"])

    with line.db.session() as session:
        stored = session.query(InboundMessage).one()
        assert stored.message_sid == result["message_sid"]
        assert stored.to_number == line.settings.twilio_phone_number

    messages = client.get("/simulator/api/messages", query_string={"number": TEXTER}).get_json()
    assert isinstance(messages, list)
    assert messages[0]["direction"] == "sent"
    assert messages[0]["body"] == "hello"
    received = [m for m in messages if m["direction"] == "received"]
    assert received, "the webhook writes the welcome to the outbox"
    # No worker runs here, so the welcome waits in the outbox.
    assert all(m["status"] == "pending" for m in received)
    assert all(set(m) >= {"id", "direction", "body", "at", "status"} for m in messages)
    assert [m["at"] for m in messages] == sorted(m["at"] for m in messages)
    welcome = line.catalogue.render("en", "welcome")
    assert received[0]["body"] == welcome

    # The same phone written another way finds the same conversation.
    again = client.get("/simulator/api/messages", query_string={"number": "(555) 012-3456"})
    assert again.get_json() == messages


def test_signature_matches_what_twilio_would_send(app: Flask, line: LineServices) -> None:
    with app.test_request_context("/simulator/api/send"):
        params = simulator.inbound_params(line, TEXTER, "hello", "SM" + "a" * 32)
    assert params["MessageSid"] == params["SmsSid"] == params["SmsMessageSid"]
    assert params["AccountSid"] == line.settings.twilio_account_sid
    assert params["To"] == line.settings.twilio_phone_number
    assert params["NumMedia"] == "0" and params["NumSegments"] == "1"
    assert params["ApiVersion"] == "2010-04-01"
    assert "MessagingServiceSid" not in params
    url = line.settings.public_base_url + "/webhooks/sms"
    signature = RequestValidator(line.settings.twilio_auth_token).compute_signature(url, params)
    # A forged or stale signature is refused by the webhook the simulator goes through.
    refused = app.test_client().post(
        "/webhooks/sms",
        base_url=line.settings.public_base_url,
        data={**params, "Body": "changed"},
        headers={"X-Twilio-Signature": signature},
    )
    assert refused.status_code == 403


def test_bad_number_is_refused_with_a_reason(client: FlaskClient) -> None:
    response = send(client, json={"from": "not a phone", "body": "hello"})
    assert response.status_code == 400
    result = response.get_json()
    assert result["status"] == 400
    assert "not a phone number" in result["reason"]

    listed = client.get("/simulator/api/messages", query_string={"number": "12"})
    assert listed.status_code == 400
    assert listed.get_json()["reason"]

    missing = send(client, json={"from": "  ", "body": "hello"})
    assert missing.status_code == 400
    assert "from" in missing.get_json()["reason"]


def test_non_json_is_refused(client: FlaskClient) -> None:
    form = client.post("/simulator/api/send", data={"from": TEXTER, "body": "hello"})
    assert form.status_code == 415
    text = client.post(
        "/simulator/api/send", data='{"from": "+15550123456"}', content_type="text/plain"
    )
    assert text.status_code == 415
    assert client.get("/simulator/api/messages", query_string={"number": TEXTER}).get_json() == []


def test_a_reply_never_shows_before_the_message_it_answers(client: FlaskClient) -> None:
    # STOP gets no reply, so after it the inbound and outbound ids no longer pair up.
    for body in ("hello", "STOP"):
        assert send(client, json={"from": TEXTER, "body": body}).status_code == 200
    other = "+15550123457"
    assert send(client, json={"from": other, "body": "hi"}).status_code == 200
    messages = client.get("/simulator/api/messages", query_string={"number": other}).get_json()
    assert [(m["direction"], m["body"]) for m in messages][0] == ("sent", "hi")
    assert messages[1]["direction"] == "received"
    assert messages[0]["at"] <= messages[1]["at"]  # taken in, then answered
    assert messages[0]["id"] > messages[1]["id"]


def test_a_supporter_can_answer_a_relay_number(tmp_path: Path) -> None:
    relay = "+15550100001"
    app = make_app(tmp_path, twilio_relay_numbers=(relay,))
    line: LineServices = app.extensions["peerline"]
    set_line(line)
    client = app.test_client()
    import_demo(line)
    assert client.get("/simulator/api/phones").get_json()["relay_numbers"] == [relay]

    sam = "+14165550101"
    response = send(client, json={"from": sam, "body": "#help", "to": relay})
    assert response.status_code == 200
    with line.db.session() as session:
        assert session.query(InboundMessage).one().to_number == relay
    messages = client.get("/simulator/api/messages", query_string={"number": sam}).get_json()
    assert messages[0]["line_number"] == relay

    stranger = client.post(
        "/simulator/api/send", json={"from": sam, "body": "#help", "to": "+15550199999"}
    )
    assert stranger.status_code == 400
    assert relay in stranger.get_json()["reason"]
    line.db.engine.dispose()


def test_embedded_workers_step_the_text_and_send_the_reply(
    app: Flask, client: FlaskClient, line: LineServices
) -> None:
    import_demo(line)
    workers = EmbeddedWorkers(line.redis, sweep_every=3600)
    workers.start()
    try:
        posted = client.post("/simulator/api/send", json={"from": TEXTER, "body": "hello"})
        assert posted.status_code == 200
        deadline = time.monotonic() + 10
        statuses: list[str] = []
        while time.monotonic() < deadline:
            messages = client.get("/simulator/api/messages", query_string={"number": TEXTER})
            statuses = [m["status"] for m in messages.get_json() if m["direction"] == "received"]
            if statuses == ["sent"]:
                break
            time.sleep(0.1)
        # The reply was written by the drain and sent by the same in-process worker.
        assert statuses == ["sent"]
        assert line.inbound.size() == 0
    finally:
        workers.stop()
