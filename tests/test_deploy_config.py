"""The compose stack's configuration: passwords as secret files, never in the environment."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from peerline.service.settings import SettingsError, from_env

REPO = Path(__file__).resolve().parents[1]
BASE_ENV = {"DATABASE_URL": "sqlite:///unused.db", "SECRET_KEY": "k"}


def test_a_setting_can_come_from_a_file(tmp_path: Path) -> None:
    url = tmp_path / "redis_url"
    url.write_text("redis://:pa%24%24@redis:6379/2\n")
    settings = from_env({**BASE_ENV, "REDIS_URL_FILE": str(url)})
    assert settings.redis_url == "redis://:pa%24%24@redis:6379/2"
    # A value in the environment itself wins over the file.
    assert from_env(
        {**BASE_ENV, "REDIS_URL": "redis://x/0", "REDIS_URL_FILE": str(url)}
    ).redis_url == ("redis://x/0")
    with pytest.raises(SettingsError, match="REDIS_URL_FILE: cannot read"):
        from_env({**BASE_ENV, "REDIS_URL_FILE": str(tmp_path / "missing")})


def test_compose_keeps_passwords_out_of_the_environment(tmp_path: Path) -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    text = (REPO / "compose.yaml").read_text()
    assert "REDIS_PASSWORD" not in text and "${POSTGRES_PASSWORD" not in text
    services = compose["services"]
    for name in ("release", "web", "worker"):
        environment = {
            **compose["x-peerline"]["environment"],
            **services[name].get("environment", {}),
        }
        assert environment["DATABASE_URL_FILE"] == "/run/secrets/database_url"
        assert environment["REDIS_URL_FILE"] == "/run/secrets/redis_url"
    assert (
        services["db"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    )
    assert "/run/secrets/redis_auth.conf" in services["redis"]["command"]
    # deploy/make-secrets writes one password each, the same in every file that names it.
    folder = tmp_path / "secrets"
    subprocess.run([str(REPO / "deploy" / "make-secrets"), str(folder)], check=True)
    assert set(compose["secrets"]) == {p.name for p in folder.iterdir()}
    pg = (folder / "postgres_password").read_text().strip()
    redis = (folder / "redis_auth.conf").read_text().strip().removeprefix("requirepass ")
    assert pg != redis and len(pg) >= 24
    assert f":{pg}@db:5432/" in (folder / "database_url").read_text()
    settings = from_env({"SECRET_KEY": "k", "REDIS_URL_FILE": str(folder / "redis_url"),
                         "DATABASE_URL_FILE": str(folder / "database_url")})  # fmt: skip
    assert f":{redis}@redis:6379/0" in (settings.redis_url or "")
    assert pg in settings.database_url
    assert oct(folder.stat().st_mode)[-3:] == "700"
    # A second run refuses rather than change passwords a running stack uses.
    again = subprocess.run(
        [str(REPO / "deploy" / "make-secrets"), str(folder)], capture_output=True
    )
    assert again.returncode != 0
