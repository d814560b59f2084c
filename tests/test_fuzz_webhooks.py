"""Every webhook, fed generated bodies: never a 500, never a partial write."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeredis import FakeRedis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from peerline.app import create_app
from peerline.service.services import LineServices
from peerline.service.models import Contact, Conversation, InboundMessage, OutboundMessage
from tests.support import lines
from tests.support.line import load_line_file, make_line, make_settings

FIELDS = [
    "MessageSid",
    "SmsSid",
    "AccountSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "OptOutType",
    "MessageStatus",
    "ErrorCode",
    "CallSid",
    "CallStatus",
    "Digits",
    "SpeechResult",
    "RecordingUrl",
    "RecordingSid",
    "Caller",
    "Unexpected",
]
text = st.one_of(
    st.text(max_size=40),
    st.text(min_size=1500, max_size=1700),
    st.sampled_from(
        [
            "",
            "+14165550199",
            "+14165550101",
            "4165550199",
            "not a number",
            "STOP",
            "YES",
            "#take",
            "💙🙏🏽",
            "SM" + "1" * 32,
            "CA" + "1" * 32,
            "delivered",
            "undelivered",
            "30006",
            "21610",
            "-1",
            "1",
            "\x00",
            "ñáéíóú",
        ]
    ),
)
forms = st.lists(st.tuples(st.sampled_from(FIELDS), text), max_size=12)


@pytest.fixture(scope="module")
def fuzz_app() -> Iterator[tuple[Flask, LineServices]]:
    """Return one app and line for every generated request."""
    with tempfile.TemporaryDirectory() as folder:
        line = make_line(make_settings(Path(folder)), FakeRedis())
        load_line_file(line, lines.TWO_ON)
        yield create_app(line=line), line
        line.db.engine.dispose()


def counts(line: LineServices) -> tuple[int, ...]:
    """Return how many rows each table of the record holds."""
    with line.db.session() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (InboundMessage, OutboundMessage, Contact, Conversation)
        )


def webhook_paths(app: Flask) -> list[str]:
    """Return every webhook path that takes a POST without URL variables."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/webhooks/") and "<" not in rule.rule and "POST" in rule.methods
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(form=forms, path_index=st.integers(min_value=0, max_value=100))
def test_webhooks_never_fail_or_half_write(
    fuzz_app: tuple[Flask, LineServices], form: list[tuple[str, str]], path_index: int
) -> None:
    app, line = fuzz_app
    paths = webhook_paths(app)
    path = paths[path_index % len(paths)]
    data = MultiDict(form)
    url = line.settings.public_base_url + path
    signature = RequestValidator(line.settings.twilio_auth_token).compute_signature(url, data)
    before = counts(line)
    response = app.test_client().post(path, data=data, headers={"X-Twilio-Signature": signature})
    assert response.status_code < 500, (path, form, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert counts(line) == before, (path, form)  # refused means nothing was written
        assert response.get_json()["reason"]


def test_the_fuzz_covers_every_webhook(fuzz_app: tuple[Flask, LineServices]) -> None:
    app, _ = fuzz_app
    assert {"/webhooks/sms", "/webhooks/sms/status", "/webhooks/sms/fallback"} <= set(
        webhook_paths(app)
    )
