"""Logs carry no personal data, and webhooks that repeat or stretch Twilio's fields are refused."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from peerline.service.models import InboundMessage
from tests.support import lines
from tests.support.console import Console
from tests.support.hardening import Deployed, deployed  # noqa: F401
from tests.support.seed import add_coordinator

SECRET_EMAIL = "friend.in.need@example.org"


def test_a_failing_statement_does_not_name_its_parameters(deployed: Deployed) -> None:  # noqa: F811
    with pytest.raises(DBAPIError) as failed, deployed.line.db.session() as session:
        session.execute(text("SELECT CAST(:reason AS integer)"), {"reason": "Alex said hard words"})
    assert "Alex" not in str(failed.value)
    assert "parameters hidden" in str(failed.value)
    assert "22P02 InvalidTextRepresentation" in str(failed.value)
    # PostgreSQL quotes a duplicate key in its DETAIL: withheld too.
    add_coordinator(deployed.line, email=SECRET_EMAIL)
    with pytest.raises(DBAPIError) as duplicate, deployed.line.db.session() as session:
        session.execute(
            text(
                "INSERT INTO coordinators (email, password_hash, active, created_at) "
                "VALUES (:email, 'x', true, now())"
            ),
            {"email": SECRET_EMAIL},
        )
    assert "23505 UniqueViolation" in str(duplicate.value)
    assert SECRET_EMAIL not in str(duplicate.value)
    assert SECRET_EMAIL not in str(duplicate.value.orig)


def test_a_failing_request_logs_no_email(
    deployed: Deployed,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_coordinator(deployed.line, email=SECRET_EMAIL)
    # An operator's slip (a migration half applied): every sign-in now fails in the database.
    with deployed.line.db.session() as session:
        session.execute(text("ALTER TABLE coordinators RENAME TO coordinators_old"))
    deployed.app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: logged, not raised
    console = Console(deployed.app.test_client())
    console.get("/console/login")
    caplog.set_level(logging.DEBUG)
    response = console.post("/console/login", {"email": SECRET_EMAIL, "password": "whatever it is"})
    assert response.status_code == 500
    logged = caplog.text
    assert "coordinators" in logged and "parameters hidden" in logged  # the error was logged
    assert SECRET_EMAIL not in logged and "friend.in.need" not in logged


def _post(deployed: Deployed, path: str, form: MultiDict[str, str]) -> int:  # noqa: F811
    url = deployed.line.settings.public_base_url + path
    token = deployed.line.settings.twilio_auth_token
    signature = RequestValidator(token).compute_signature(url, form)
    response = deployed.app.test_client().post(
        path, data=form, headers={"X-Twilio-Signature": signature}
    )
    if response.status_code >= 400:
        assert response.get_json()["reason"]
    return response.status_code


def _sms(**changes: str) -> list[tuple[str, str]]:
    fields = {
        "MessageSid": "SM" + "5" * 32,
        "AccountSid": "AC" + "1" * 32,
        "From": lines.TEXTER,
        "To": "+15550100000",
        "Body": "hello",
    }
    fields.update(changes)
    return list(fields.items())


def _stored(deployed: Deployed) -> int:  # noqa: F811
    with deployed.line.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


@pytest.mark.parametrize("field", ["From", "To", "Body", "MessageSid"])
def test_a_webhook_repeating_a_field_twilio_sends_once_is_refused(
    deployed: Deployed,  # noqa: F811
    field: str,
) -> None:
    form = _sms()
    twin = {"From": lines.SAM, "To": "+15550100001", "Body": "STOP", "MessageSid": "SM" + "6" * 32}
    form.append((field, twin[field]))
    assert _post(deployed, "/webhooks/sms", MultiDict(form)) == 400
    assert deployed.line.inbound.size() == 0 and _stored(deployed) == 0
    # The same text, each field once, is taken.
    assert _post(deployed, "/webhooks/sms", MultiDict(_sms())) == 200
    assert deployed.line.inbound.size() == 1


def test_a_call_repeating_its_sid_is_refused(deployed: Deployed) -> None:  # noqa: F811
    form = MultiDict(
        [("CallSid", "CA" + "1" * 32), ("CallSid", "CA" + "2" * 32), ("From", lines.TEXTER)]
    )
    assert _post(deployed, "/webhooks/voice", form) == 400


@pytest.mark.parametrize(
    "changes",
    [
        {"MessageSid": "SM" + "7" * 4998},  # 5,000 characters
        {"MessageSid": "SM\x00" + "7" * 31},
        {"Body": "x" * 1601},  # longer than any carrier message
        {"Body": "a 1 MB paste " * 80_000},
        {"Body": "hello\x00there"},
        {"From": lines.TEXTER + "\x00"},
    ],
    ids=["long-sid", "nul-sid", "body-1601", "body-1mb", "nul-body", "nul-from"],
)
def test_hostile_sms_fields_get_a_400_on_postgresql(
    deployed: Deployed,  # noqa: F811
    changes: dict[str, str],
) -> None:
    assert _post(deployed, "/webhooks/sms", MultiDict(_sms(**changes))) == 400
    assert deployed.line.inbound.size() == 0 and deployed.line.inbound.failed() == 0
    assert _post(deployed, "/webhooks/sms/status", MultiDict(_sms(**changes))) in (400, 204)
    # A carrier's longest message is still taken whole.
    assert _post(deployed, "/webhooks/sms", MultiDict(_sms(Body="y" * 1600))) == 200
