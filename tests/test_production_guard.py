"""Production never runs the simulator: only `peerline serve` turns it on, on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakeredis import FakeRedis

from peerline.app import create_app
from peerline.cli import main
from peerline.service.migrate import upgrade
from peerline.service.settings import SettingsError, from_env
from tests.support.hardening import TWILIO_ENV, Deployed, deployed  # noqa: F401
from tests.support.servers import free_port


def test_gunicorn_without_twilio_credentials_refuses_to_start_and_names_them(
    tmp_path: Path, postgres_server: object, redis_server: object
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TWILIO_", "PEERLINE_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        DATABASE_URL=postgres_server.create_database(),  # type: ignore[attr-defined]
        REDIS_URL=redis_server.url,  # type: ignore[attr-defined]
        SECRET_KEY="production-secret",
        PEERLINE_INSTANCE=str(tmp_path),
        TWILIO_PHONE_NUMBER="+15550100000",
    )
    port = free_port()
    # The Procfile's web command, as a platform would run it.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "peerline.app:create_app()",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "refusing to start a web process without Twilio credentials" in done.stderr
    assert "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN" in done.stderr
    assert "TWILIO_PHONE_NUMBER" not in done.stderr.split("credentials: set")[-1].split("(")[0]


@pytest.fixture
def no_twilio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the Twilio credentials out of the environment, with an instance folder to use."""
    for name in TWILIO_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PEERLINE_INSTANCE", str(tmp_path))


def test_create_app_from_the_environment_refuses_without_credentials(
    no_twilio: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    with pytest.raises(SettingsError) as refused:
        create_app()
    assert "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_PHONE_NUMBER" in str(refused.value)
    # Settings built by hand but not for tests, and without the simulator: refused too.
    settings = from_env({"PEERLINE_INSTANCE": str(tmp_path), "REDIS_URL": "redis://x:1/0"})
    with pytest.raises(SettingsError):
        create_app(settings)


def test_a_deployed_line_has_no_simulator(deployed: Deployed) -> None:  # noqa: F811
    client = deployed.app.test_client()
    assert "simulator" not in deployed.app.blueprints
    assert client.get("/simulator/api/phones").status_code == 404
    assert client.get("/simulator").status_code == 404


def test_the_simulator_answers_only_this_machine(tmp_path: Path) -> None:
    settings = from_env({"PEERLINE_INSTANCE": str(tmp_path), "SECRET_KEY": "s"})
    upgrade(settings.database_url)
    app = create_app(settings.with_changes(simulator=True), redis=FakeRedis())
    client = app.test_client()
    assert client.get("/simulator/api/phones").status_code == 200
    far = client.get("/simulator/api/phones", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert far.status_code == 403
    # Without `peerline serve` asking for it, embedded settings for tests get no simulator.
    plain = create_app(settings.with_changes(testing=True), redis=FakeRedis())
    assert plain.test_client().get("/simulator/api/phones").status_code == 404
    app.extensions["peerline"].db.engine.dispose()
    plain.extensions["peerline"].db.engine.dispose()


def test_serve_refuses_to_listen_beyond_loopback_without_credentials(
    no_twilio: None, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "5999"])
    assert result.exit_code != 0
    assert "listens only on this machine" in result.output
    assert not (tmp_path / "peerline.db").exists()  # refused before touching anything
