"""Console access on real PostgreSQL and Redis: revocable sessions, throttling, roles."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from peerline.app import create_app
from peerline.cli import main
from peerline.console.auth import password_problem
from peerline.service.models import AuditEvent, ConsoleSession, Coordinator, utcnow
from tests.support.console import Console
from tests.support.hardening import Deployed, deploy
from tests.support.seed import (
    EMAIL,
    PASSWORD,
    ConversationSpec,
    Said,
    add_conversation,
    add_coordinator,
)

OTHER = "second@example.org"
NEW_PASSWORD = "otter lantern quietly breakfast"


@pytest.fixture
def d(tmp_path: Path, postgres_server: Any, redis_server: Any) -> Iterator[Deployed]:
    """Return a line on real servers with an admin (who may open transcripts)."""
    with deploy(tmp_path, postgres_server, redis_server) as deployed:
        add_coordinator(deployed.line)
        deployed.app.config["CONSOLE_LOGIN_DELAY_SECONDS"] = 0.5
        yield deployed


def signed_in(d: Deployed, email: str = EMAIL, address: str = "203.0.113.5") -> Console:
    console = Console(d.app.test_client(), address=address)
    assert console.sign_in(email, PASSWORD).status_code == 302
    console.get("/console/account/")
    return console


def copy_of(d: Deployed, console: Console) -> Console:
    """Return another browser holding a copy of the console's session cookie."""
    thief = Console(d.app.test_client(), address=console.address)
    cookie = console.client.get_cookie("session")
    assert cookie is not None
    thief.client.set_cookie("session", cookie.value)
    return thief


def audit(d: Deployed, action: str) -> list[AuditEvent]:
    with d.line.db.session() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# -- 3. signing out ends the session -------------------------------------------------------


def test_a_cookie_copied_before_sign_out_is_dead_after_it(d: Deployed) -> None:
    console = signed_in(d)
    thief = copy_of(d, console)
    assert thief.get("/console/").status_code == 200  # the copy works while the session lives
    assert console.post("/console/logout").status_code == 302
    assert thief.get("/console/").status_code == 302  # sent to sign in
    with d.line.db.session() as session:
        held = session.scalars(select(ConsoleSession)).one()
        assert held.end_reason == "signed_out" and held.ended_at is not None


def test_changing_the_password_ends_every_other_session(d: Deployed) -> None:
    console = signed_in(d)
    elsewhere = signed_in(d, address="203.0.113.6")
    weak = console.post(
        "/console/account/password",
        {"current": PASSWORD, "new": "password1234", "repeat": "password1234"},
    )
    assert weak.status_code == 400 and "harder to guess" in weak.get_data(as_text=True)
    changed = console.post(
        "/console/account/password",
        {"current": PASSWORD, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    assert console.get("/console/").status_code == 200  # this browser goes on
    assert elsewhere.get("/console/").status_code == 302  # the other is signed out
    assert audit(d, "password.changed")


def test_an_admin_ends_another_accounts_sessions(d: Deployed) -> None:
    add_coordinator(d.line, OTHER, role="coordinator", transcripts=False)
    admin = signed_in(d)
    other = signed_in(d, OTHER, address="203.0.113.7")
    with d.line.db.session() as session:
        other_id = session.scalar(select(Coordinator.id).where(Coordinator.email == OTHER))
    admin.get("/console/accounts/")
    assert admin.post(f"/console/accounts/{other_id}/sessions/end").status_code == 302
    assert other.get("/console/").status_code == 302
    assert admin.get("/console/").status_code == 200
    # Anyone can sign themselves out everywhere else.
    again = signed_in(d, OTHER, address="203.0.113.7")
    there = signed_in(d, OTHER, address="203.0.113.8")
    assert again.post("/console/account/sessions/end").status_code == 302
    assert there.get("/console/").status_code == 302 and again.get("/console/").status_code == 200


# -- 4. sign-in throttling -----------------------------------------------------------------


def test_an_attack_over_many_addresses_slows_the_account_but_never_locks_it(d: Deployed) -> None:
    for n in range(20):
        attacker = Console(d.app.test_client(), address=f"198.51.100.{n % 4 + 1}")
        attacker.sign_in(EMAIL, "not the password")
        time.sleep(0.05)
    # From a fresh address, the real person waits at most the (capped) delay, not 15 minutes.
    person = Console(d.app.test_client(), address="203.0.113.50")
    deadline = time.monotonic() + 65
    while (answer := person.sign_in(EMAIL, PASSWORD)).status_code == 429:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert answer.status_code == 302


def test_unknown_emails_from_one_address_never_slow_a_known_account(d: Deployed) -> None:
    d.app.config["CONSOLE_LOGIN_LIMIT"] = 3  # twelve attempts per address
    attacker = Console(d.app.test_client(), address="198.51.100.9")
    for n in range(12):
        assert attacker.sign_in(f"nobody{n}@example.org", "guess").status_code == 401
    assert attacker.sign_in(EMAIL, PASSWORD).status_code == 429  # that address is stopped
    assert signed_in(d, address="203.0.113.9")  # the account is not


def test_concurrent_wrong_passwords_get_no_more_checks_than_the_limit(d: Deployed) -> None:
    d.app.config["CONSOLE_LOGIN_DELAY_SECONDS"] = 30
    statuses: list[int] = []
    start = threading.Barrier(12)

    def guess(n: int) -> None:
        console = Console(d.app.test_client(), address=f"198.51.100.{n + 1}")
        console.get("/console/login")
        start.wait()
        statuses.append(
            console.post("/console/login", {"email": EMAIL, "password": "x"}).status_code
        )

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [401] * 5 + [429] * 7  # five password checks, no more
    assert len(audit(d, "sign_in.failed")) == 5


def test_behind_a_proxy_each_client_is_counted_by_its_own_address(
    tmp_path: Path, postgres_server: Any, redis_server: Any
) -> None:
    with deploy(tmp_path, postgres_server, redis_server) as plain:
        add_coordinator(plain.line)
        proxied_settings = plain.line.settings.with_changes(proxy_hops=1)
        plain.line.settings = proxied_settings  # type: ignore[misc]
        app = create_app(line=plain.line)
        app.config["CONSOLE_LOGIN_LIMIT"] = 1  # four attempts per address

        def from_client(address: str) -> Console:
            console = Console(app.test_client(), address="10.0.0.2")  # the proxy
            console.client.environ_base["HTTP_X_FORWARDED_FOR"] = address
            return console

        attacker = from_client("198.51.100.20")
        for n in range(4):
            assert attacker.sign_in(f"x{n}@example.org", "guess").status_code == 401
        assert attacker.sign_in("y@example.org", "guess").status_code == 429
        # Another coordinator behind the same proxy is not the attacker.
        assert from_client("203.0.113.21").sign_in(EMAIL, PASSWORD).status_code == 302
        entry = audit(plain, "sign_in")[-1]
        assert "203.0.113.21" in entry.detail
        # A client cannot forge its way past the proxy's own header (one hop is trusted).
        forged = Console(app.test_client(), address="10.0.0.2")
        forged.client.environ_base["HTTP_X_FORWARDED_FOR"] = "1.2.3.4, 198.51.100.20"
        assert forged.sign_in("z@example.org", "guess").status_code == 429


def test_passwords_are_checked_for_strength() -> None:
    assert password_problem("password1234", "a@example.org")
    assert password_problem("aaaaaaaaaaaaaaaa")
    assert password_problem("coordinator@example.org1", "coordinator@example.org")
    assert password_problem("short") == "Use at least 12 characters."
    assert password_problem(NEW_PASSWORD, "a@example.org") is None


def test_the_cli_refuses_a_weak_password_and_makes_the_first_account_admin(
    d: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "DATABASE_URL": d.line.settings.database_url,
        "REDIS_URL": d.line.settings.redis_url or "",
        "PEERLINE_INSTANCE": d.line.settings.instance_path,
        "SECRET_KEY": d.line.settings.secret_key,
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    weak = runner.invoke(
        main,
        ["coordinator", "create", "new@example.org", "--password-stdin"],
        input="password1234\n",
    )
    assert weak.exit_code != 0 and "too weak" in weak.output
    made = runner.invoke(
        main,
        ["coordinator", "create", "new@example.org", "--password-stdin"],
        input=NEW_PASSWORD + "\n",
    )
    assert made.exit_code == 0, made.output
    assert "(coordinator)" in made.output  # an admin exists already
    with d.line.db.session() as session:
        row = session.scalars(
            select(Coordinator).where(Coordinator.email == "new@example.org")
        ).one()
        assert (row.role, row.transcripts) == ("coordinator", False)


# -- 5. roles ------------------------------------------------------------------------------


def test_roles_and_the_transcript_permission(d: Deployed) -> None:
    conversation = add_conversation(
        d.line,
        ConversationSpec(
            created_at=utcnow() - timedelta(hours=1),
            wait=60,
            supporter="Sam",
            messages=[Said("texter", "a private sentence", 0)],
        ),
    )
    add_coordinator(d.line, OTHER, role="coordinator", transcripts=False)
    plain = signed_in(d, OTHER, address="203.0.113.30")
    # A coordinator runs the rota, queue, alerts and reports ...
    for page in ("/console/", "/console/rota/", "/console/reports/", "/console/conversations/"):
        assert plain.get(page).status_code == 200, page
    # ... but manages no accounts and opens no transcript.
    assert plain.get("/console/accounts/").status_code == 403
    assert "Accounts" not in plain.get("/console/").get_data(as_text=True).split("<main")[0]
    page = plain.get(f"/console/conversations/{conversation}")
    assert "may not open transcripts" in page.get_data(as_text=True)
    refused = plain.post(
        f"/console/conversations/{conversation}/transcript", {"reason": "to follow up a concern"}
    )
    assert refused.status_code == 403
    assert "a private sentence" not in refused.get_data(as_text=True)
    assert not audit(d, "transcript.opened")
    # An admin grants the permission (audited); the next request has it.
    admin = signed_in(d)
    admin.get("/console/accounts/")
    with d.line.db.session() as session:
        other_id = session.scalar(select(Coordinator.id).where(Coordinator.email == OTHER))
    granted = admin.post(
        f"/console/accounts/{other_id}/access", {"role": "coordinator", "transcripts": "y"}
    )
    assert granted.status_code == 302
    assert audit(d, "account.access")
    plain.get(f"/console/conversations/{conversation}")
    opened = plain.post(
        f"/console/conversations/{conversation}/transcript", {"reason": "to follow up a concern"}
    )
    assert opened.status_code == 200 and "a private sentence" in opened.get_data(as_text=True)
    (entry,) = audit(d, "transcript.opened")
    assert entry.actor == OTHER and entry.detail == "to follow up a concern"
    # An admin cannot take away their own admin role (the line would lose its admin).
    with d.line.db.session() as session:
        admin_id = session.scalar(select(Coordinator.id).where(Coordinator.email == EMAIL))
    assert (
        admin.post(f"/console/accounts/{admin_id}/access", {"role": "coordinator"}).status_code
        == 400
    )


def test_the_audit_log_cannot_be_edited_from_the_console(d: Deployed) -> None:
    rules = [rule for rule in d.app.url_map.iter_rules() if rule.endpoint.startswith("console.")]
    audit_rules = [rule for rule in rules if rule.endpoint.startswith("console.audit.")]
    assert audit_rules
    for rule in audit_rules:
        assert (rule.methods or set()) <= {"GET", "HEAD", "OPTIONS"}, rule.rule
    admin = signed_in(d)
    admin.get("/console/audit/")
    before = len(audit(d, "sign_in"))
    for method in ("post", "put", "delete", "patch"):
        answer = getattr(admin.client, method)("/console/audit/", data={"csrf_token": admin.token})
        assert answer.status_code == 405
    assert len(audit(d, "sign_in")) == before
