"""Run Alembic's migrations from code, for the CLI, the release step and tests."""

from __future__ import annotations

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    """Return an Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", "peerline:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database up to the given revision."""
    command.upgrade(alembic_config(database_url), revision)
