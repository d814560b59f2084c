"""Twilio's signature, checked against the public URL, behind a proxy too."""

from __future__ import annotations

from pathlib import Path

from fakeredis import FakeRedis

from peerline.app import create_app
from tests.support.fake_twilio import sign
from tests.support.line import make_line, make_settings

PARAMS = {"MessageSid": "SM" + "a" * 32, "From": "+14165550199", "Body": "hi"}


def test_signature_is_checked_against_the_public_url_behind_a_proxy(tmp_path: Path) -> None:
    public = "https://line.example.org:8443"
    line = make_line(make_settings(tmp_path, PUBLIC_BASE_URL=public), FakeRedis())
    client = create_app(line=line).test_client()
    # The app sees http://localhost/...; Twilio signed the public https URL with its port.
    good = sign(f"{public}/webhooks/sms?tenant=a", PARAMS, line.settings.twilio_auth_token)
    ok = client.post("/webhooks/sms?tenant=a", data=PARAMS, headers={"X-Twilio-Signature": good})
    assert ok.status_code == 200
    token = line.settings.twilio_auth_token
    internal = sign("http://localhost/webhooks/sms?tenant=a", PARAMS, token)
    refused = client.post(
        "/webhooks/sms?tenant=a", data=PARAMS, headers={"X-Twilio-Signature": internal}
    )
    assert refused.status_code == 403
    wrong_scheme = sign("http://line.example.org:8443/webhooks/sms?tenant=a", PARAMS, token)
    assert (
        client.post(
            "/webhooks/sms?tenant=a", data=PARAMS, headers={"X-Twilio-Signature": wrong_scheme}
        ).status_code
        == 403
    )
    wrong_query = sign(f"{public}/webhooks/sms?tenant=b", PARAMS, line.settings.twilio_auth_token)
    assert (
        client.post(
            "/webhooks/sms?tenant=a", data=PARAMS, headers={"X-Twilio-Signature": wrong_query}
        ).status_code
        == 403
    )


def test_every_webhook_refuses_an_unsigned_request(tmp_path: Path) -> None:
    line = make_line(make_settings(tmp_path), FakeRedis())
    app = create_app(line=line)
    client = app.test_client()
    paths = [r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/webhooks/")]
    assert "/webhooks/sms" in paths and "/webhooks/sms/status" in paths
    for path in paths:
        if "<" in path:
            continue
        assert client.post(path, data=PARAMS).status_code == 403, path
