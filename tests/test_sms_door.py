"""The SMS door answers the usual inbound SMS before Flask, exactly as the view would; every other
request reaches the view as it was sent."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeredis import FakeRedis
from flask import Flask, request_started
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder, run_wsgi_app

from peerline.app import create_app
from peerline.service import metrics
from peerline.service.inbound import URGENT_KEY, InboundQueue, shard_of
from peerline.service.models import InboundMessage
from peerline.service.services import LineServices
from peerline.webhooks.sms_door import SmsDoor
from tests.support import lines
from tests.support.fake_twilio import sign
from tests.support.line import make_line, make_settings

PUBLIC = "https://line.example.org"
SIDS = itertools.count(1)
Answer = tuple[str, list[tuple[str, str]], bytes]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    line = make_line(make_settings(tmp_path, PUBLIC_BASE_URL=PUBLIC), FakeRedis())
    try:
        yield create_app(line=line)
    finally:
        line.db.engine.dispose()


def door(app: Flask) -> SmsDoor:
    assert isinstance(app.wsgi_app, SmsDoor)
    return app.wsgi_app


def fields(**changes: str | None) -> dict[str, str]:
    params = {
        "MessageSid": f"SM{next(SIDS):032x}",
        "AccountSid": "AC" + "a" * 32,
        "From": lines.TEXTER,
        "To": "+14155550100",
        "Body": "hi",
        "NumMedia": "0",
    }
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return params


def environ(
    app: Flask,
    params: dict[str, str] | None = None,
    *,
    path: str = "/webhooks/sms",
    query: str = "",
    body: bytes | None = None,
    signature: str | None = None,
    method: str = "POST",
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, Any]:
    """Build a request as Twilio sends one (signed for the public URL), or spoiled as told."""
    params = fields() if params is None else params
    token = door(app).line.settings.twilio_auth_token
    target = path + (f"?{query}" if query else "")
    data = urllib.parse.urlencode(params).encode() if body is None else body
    signed = sign(PUBLIC + target, params, token) if signature is None else signature
    headers = {"X-Twilio-Signature": signed}
    # As gunicorn does, werkzeug names the path as sent in RAW_URI, which the signature uses.
    built = EnvironBuilder(target, method=method, data=data, headers=headers)
    built.content_type = content_type
    environ = built.get_environ()
    assert environ["RAW_URI"] == target
    return environ


def answer(wsgi: Any, env: dict[str, Any]) -> Answer:
    body, status, headers = run_wsgi_app(wsgi, env)
    return status, list(headers.items()), b"".join(body)


def flask_saw(app: Flask, env: dict[str, Any], wsgi: Any) -> tuple[Answer, bool]:
    """Return the answer and whether Flask handled the request (its request_started)."""
    seen: list[object] = []

    def note(sender: object, **extra: object) -> None:
        seen.append(sender)

    with request_started.connected_to(note, app):
        got = answer(wsgi, env)
    return got, bool(seen)


def queued(endpoint: str = "sms.inbound", outcome: str = "queued") -> float:
    return float(metrics.WEBHOOKS.labels(endpoint=endpoint, outcome=outcome)._value.get())


@pytest.mark.parametrize("path", ["/webhooks/sms", "/webhooks/sms/fallback"])
def test_a_signed_sms_is_taken_in_without_flask_with_the_views_very_answer(
    app: Flask, path: str
) -> None:
    line = door(app).line
    endpoint = "sms.inbound" if path == "/webhooks/sms" else "sms.fallback"
    before = queued(endpoint)
    (by_door, flask_ran) = flask_saw(app, environ(app, path=path), app.wsgi_app)
    assert not flask_ran
    assert line.inbound.size() == 1
    assert queued(endpoint) == before + 1
    # The same kind of request answered by the Flask view itself.
    (by_view, view_ran) = flask_saw(app, environ(app, path=path), door(app).app)
    assert view_ran and line.inbound.size() == 2
    assert by_door == by_view
    status, headers, body = by_door
    assert status == "200 OK" and body.startswith(b"<?xml") and b"<Response" in body
    names = [name for name, _ in headers]
    assert "Strict-Transport-Security" in names and "Content-Security-Policy" in names


@pytest.mark.parametrize(
    "body",
    [
        "hola, ¿estás ahí? 😢 necesito hablar",
        "a+b=c & 100% sure?? #alert",
        "   ",
        "",
        "no puedo más. ya no.\nnadie me escucha",
    ],
)
def test_words_as_people_type_them_are_taken_in_as_the_view_takes_them(
    app: Flask, body: str
) -> None:
    line = door(app).line
    (by_door, flask_ran) = flask_saw(app, environ(app, fields(Body=body)), app.wsgi_app)
    assert not flask_ran and by_door[0] == "200 OK"
    (by_view, _) = flask_saw(app, environ(app, fields(Body=body)), door(app).app)
    assert by_door == by_view
    # Both entries, opened, hold the words exactly as sent.
    waiting = InboundQueue.keys(shard_of(lines.TEXTER))[0]
    entries = [json.loads(line.vault.unseal(e)) for e in line.redis.lrange(waiting, 0, -1)]
    assert [e["body"] for e in entries] == [body, body]


def test_a_crisis_text_through_the_door_is_urgent(app: Flask) -> None:
    line = door(app).line
    env = environ(app, fields(Body="i took all my pills an hour ago"))
    (_, flask_ran) = flask_saw(app, env, app.wsgi_app)
    assert not flask_ran
    assert line.redis.smembers(URGENT_KEY)


SPOILED: dict[str, dict[str, Any]] = {
    "bad signature": {"signature": "bm90IGEgc2lnbmF0dXJl"},
    "no signature": {"signature": ""},
    "no From": {"params": fields(From=None)},
    "no MessageSid": {"params": fields(MessageSid=None)},
    "From not a number": {"params": fields(From="call me")},
    "NumMedia not a number": {"params": fields(NumMedia="two")},
    "a NUL in the body": {"params": fields(Body="hi\x00there")},
    "a SID that is not one": {"params": fields(AccountSid="AC-../../etc")},
    "a body over 1,600 characters": {"params": fields(Body="x" * 1601)},
    "not UTF-8": {"body": b"From=%2B14165550199&Body=\xff\xfe"},
    "the wrong content type": {"content_type": "text/plain"},
    "a GET": {"method": "GET"},
}


@pytest.mark.parametrize("case", sorted(SPOILED))
def test_whatever_the_door_does_not_take_gets_the_views_own_answer(app: Flask, case: str) -> None:
    line = door(app).line
    spoil = dict(SPOILED[case])
    params = spoil.pop("params", None)
    (by_door, flask_ran) = flask_saw(app, environ(app, params, **spoil), app.wsgi_app)
    assert flask_ran, "the view answered"
    (by_view, _) = flask_saw(app, environ(app, params, **spoil), door(app).app)
    assert by_door[0] == by_view[0] and by_door[2] == by_view[2]
    assert by_door[0][:3] in {"400", "403", "405"}, by_door
    assert line.inbound.size() == 0


def test_a_repeated_field_is_refused_by_the_view(app: Flask) -> None:
    params = fields()
    body = urllib.parse.urlencode([*params.items(), ("Body", "second")]).encode()
    # Twilio's signature covers both values; the view refuses the copy all the same.
    token = door(app).line.settings.twilio_auth_token
    url = PUBLIC + "/webhooks/sms"
    joined = url + "".join(f"{k}{v}" for k, v in sorted([*params.items(), ("Body", "second")]))
    signature = base64.b64encode(hmac.new(token.encode(), joined.encode(), hashlib.sha1).digest())
    env = environ(app, params, body=body, signature=signature.decode())
    ((status, _, text), flask_ran) = flask_saw(app, env, app.wsgi_app)
    assert flask_ran and status.startswith("400") and b"more than once" in text


def test_a_body_over_the_apps_limit_is_left_unread_for_flask(app: Flask) -> None:
    env = environ(app, fields(Padding="x" * (1024 * 1024)))
    ((status, _, _), flask_ran) = flask_saw(app, env, app.wsgi_app)
    assert flask_ran and status.startswith("413")


def test_a_query_string_goes_to_the_view_which_checks_it_signed(app: Flask) -> None:
    line = door(app).line
    ((status, _, _), flask_ran) = flask_saw(app, environ(app, query="tenant=a"), app.wsgi_app)
    assert flask_ran and status == "200 OK" and line.inbound.size() == 1


def test_when_redis_cannot_take_the_text_the_view_steps_it_into_the_database(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = door(app).line
    tries: list[str] = []

    def refuse(sender: str, fields: dict[str, Any], urgent: bool = False) -> bool:
        tries.append(fields["message_sid"])
        return False

    monkeypatch.setattr(line.inbound, "put", refuse)
    before = queued(outcome="stepped")
    ((status, _, _), flask_ran) = flask_saw(app, environ(app), app.wsgi_app)
    assert status == "200 OK" and flask_ran
    # The door tried, then the view tried once more and stepped it itself.
    assert len(tries) == 2 and tries[0] == tries[1]
    assert queued(outcome="stepped") == before + 1
    with line.db.session() as session:
        assert session.scalar(select(func.count(InboundMessage.id))) == 1


def test_a_failure_inside_the_door_leaves_the_answer_to_the_view(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    line: LineServices = door(app).line
    real = line.crisis.detect
    calls: list[str] = []

    def flaky(body: str) -> Any:
        calls.append(body)
        if len(calls) == 1:
            raise RuntimeError("a bug in the door's path")
        return real(body)

    monkeypatch.setattr(line.crisis, "detect", flaky)
    ((status, _, _), flask_ran) = flask_saw(app, environ(app), app.wsgi_app)
    assert status == "200 OK" and flask_ran and line.inbound.size() == 1
    assert "the SMS door failed (RuntimeError)" in caplog.text
    assert lines.TEXTER not in caplog.text and "a bug in" not in caplog.text
