"""No input gets a 500: hostile values at every console route and webhook, on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.routing import Rule

from tests.support.console import Console
from tests.support.console_pages import add_block_review, add_callback
from tests.support.hardening import Deployed, deploy
from tests.support.line import load_line_file
from tests.support.seed import EMAIL, PASSWORD, add_coordinator

HOSTILE = [
    "",
    "0",
    "-1",
    "1",
    "2147483647",
    "2147483648",
    "9223372036854775808",
    "9" * 5000,
    "²",
    "9999-12-31",
    "0001-01-01",
    "2026-02-30",
    "\x00",
    "a\x00b",
    "%00",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "💙🙏🏽",
    "x" * 5000,
    "+14165550199",
    "SM" + "1" * 32,
    "mon",
    "09:00",
    "24:00",
]
# Generated text without NUL (the listed values have it): a NUL anywhere is refused at the
# door, and the other values must reach the views.
value = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=20),
)
FIELDS = [
    "page", "week", "weeks", "show", "flagged", "action", "actor", "supporter", "day", "next",
    "start", "end", "on_date", "covering_for", "supporter_id", "days", "name", "phone",
    "languages", "capacity", "takes_sms", "on_call", "reason", "email", "password", "role",
    "From", "To", "Body", "MessageSid", "CallSid", "CallStatus", "Digits", "RecordingUrl",
    "RecordingSid", "RecordingDuration", "ErrorCode", "MessageStatus", "ParentCallSid",
    "number", "outcome", "from_time", "to_time", "play", "open", "new-name", "new-days",
    "new-start", "new-minutes", "new-skip_holidays", "new-join", "g1-name", "g1-days",
    "g1-start", "g1-minutes", "g1-skip_holidays", "c1-day",
]  # fmt: skip
# The console's pages with several forms prefix each form's fields (and its token).
TOKENS = ("csrf_token", "new-csrf_token", "g1-csrf_token", "c1-csrf_token")
pairs = st.lists(st.tuples(st.sampled_from(FIELDS), value), max_size=8)
IDS = st.sampled_from(["0", "1", "2", "2147483647", "2147483648", "9223372036854775808", "9" * 40])


@pytest.fixture(scope="module")
def hostile(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: Any, redis_server: Any
) -> Iterator[tuple[Deployed, Console]]:
    """Return one line on real servers and a coordinator signed in to its console."""
    with deploy(tmp_path_factory.mktemp("hostile"), postgres_server, redis_server) as d:
        add_coordinator(d.line)
        # Rows with id 1 behind the group, blocklist and call-back routes, for forms to reach.
        load_line_file(d.line)
        add_block_review(d.line)
        add_callback(d.line, "VM-1000", supporter="Alex")
        console = Console(d.app.test_client(), address="198.51.100.7")
        assert console.sign_in(EMAIL, PASSWORD).status_code == 302
        console.get("/console/")
        yield d, console


def routes(app: Flask) -> list[Rule]:
    """Return every console route but signing out, and every webhook."""
    return sorted(
        (
            rule
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith(("/console", "/webhooks", "/calendar", "/groups"))
            # Signing out, or an admin ending their own sessions, would end the test's session.
            and rule.endpoint
            not in (
                "console.auth.logout",
                "console.static",
                "console.accounts.end_account_sessions",
            )
        ),
        key=lambda rule: rule.rule,
    )


def fill(rule: Rule, ids: list[str], text: str) -> str:
    """Return the rule's path with each URL variable replaced by a hostile value."""
    parts = iter(ids)

    def one(match: re.Match[str]) -> str:
        if match.group(1) == "int":
            return next(parts, "1")
        return quote(text, safe="")

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>", one, rule.rule)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    index=st.integers(min_value=0, max_value=10_000),
    ids=st.lists(IDS, min_size=2, max_size=2),
    segment=value,
    query=pairs,
    form=pairs,
)
@example(index=0, ids=["2147483648", "1"], segment="a", query=[("week", "9999-12-31")], form=[])
def test_no_hostile_value_gets_a_500(
    hostile: tuple[Deployed, Console],
    index: int,
    ids: list[str],
    segment: str,
    query: list[tuple[str, str]],
    form: list[tuple[str, str]],
) -> None:
    d, console = hostile
    every = routes(d.app)
    rule = every[index % len(every)]
    path = fill(rule, ids, segment)
    methods = rule.methods or set()
    client = console.client
    environ = {"REMOTE_ADDR": console.address}
    if "POST" in methods:
        data = MultiDict(form)
        headers = {}
        if rule.rule.startswith("/webhooks"):
            url = d.line.settings.public_base_url + path
            headers["X-Twilio-Signature"] = RequestValidator(
                d.line.settings.twilio_auth_token
            ).compute_signature(url, data)
        else:
            for name in TOKENS:
                data.add(name, console.token)
        response = client.post(
            path, query_string=MultiDict(query), data=data, headers=headers, environ_base=environ
        )
    else:
        response = client.get(path, query_string=MultiDict(query), environ_base=environ)
    assert response.status_code < 500, (rule.rule, path[:200], query, form)


def test_the_hostile_test_reaches_every_console_route_and_webhook(
    hostile: tuple[Deployed, Console],
) -> None:
    d, _ = hostile
    paths = {rule.rule for rule in routes(d.app)}
    assert {"/console/conversations/<int:conversation_id>", "/webhooks/sms"} <= paths
    assert any(path.startswith("/webhooks/voice/call/") for path in paths)
    assert len(paths) > 30


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/console/conversations/2147483648", 404),
        ("/console/supporters/99999999999999999999/edit", 404),
        ("/console/conversations/?page=" + "9" * 5000, 200),
        ("/console/conversations/?page=99999999999999", 200),
        ("/console/audit/?page=²", 200),
        ("/console/rota/?week=9999-12-31", 400),
        ("/console/rota/?week=0001-01-01", 400),
        ("/console/rota/?week=%00", 400),
        ("/console/rota/shifts/new?supporter=²", 200),
        ("/console/reports/?start=9999-12-31&end=9999-12-31", 200),
        ("/console/audit/?actor=a%00b", 400),
        ("/console/callbacks/?play=99999999999999999999&page=²", 200),
        ("/console/callbacks/2147483648/recording", 404),
        ("/console/groups/?weeks=²", 200),
        ("/console/blocklist/", 200),
        ("/calendar/abc%00def.ics", 400),
    ],
)
def test_the_inputs_that_failed_get_a_clear_answer(
    hostile: tuple[Deployed, Console], path: str, expected: int
) -> None:
    _, console = hostile
    assert console.get(path).status_code == expected


def test_a_nul_in_a_login_email_or_form_field_is_a_400(hostile: tuple[Deployed, Console]) -> None:
    d, console = hostile
    fresh = Console(d.app.test_client(), address="198.51.100.8")
    fresh.get("/console/login")
    assert (
        fresh.post("/console/login", {"email": "a\x00@b.org", "password": "x"}).status_code == 400
    )
    console.get("/console/supporters/new")
    answer = console.post(
        "/console/supporters/new",
        {"name": "Al\x00ex", "phone": "+14165550150", "languages": "en", "capacity": "1"},
    )
    assert answer.status_code == 400


def test_a_date_out_of_range_in_a_form_is_refused(
    hostile: tuple[Deployed, Console], tmp_path: Path
) -> None:
    _, console = hostile
    console.get("/console/rota/time-off/new")
    answer = console.post(
        "/console/rota/time-off/new",
        {"supporter_id": "1", "start": "9999-12-30", "end": "9999-12-31"},
    )
    assert answer.status_code in (200, 400)
    assert "between the years 2000 and 2199" in answer.get_data(as_text=True)


def test_the_hostile_client_reaches_the_views(hostile: tuple[Deployed, Console]) -> None:
    _, console = hostile
    response = console.post("/console/supporters/1/deactivate", {})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert console.post("/console/supporters/1/reactivate", {}).status_code == 302
