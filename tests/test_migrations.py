"""The migrations build exactly the schema the models describe, and go down again."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from peerline.service.migrate import alembic_config, upgrade
from peerline.service.models import Base
from tests.support.servers import PostgresServer


def differences(url: str) -> list[object]:
    """Return what autogenerate would still change after every migration has run."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))
    finally:
        engine.dispose()


def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'line.db'}"
    upgrade(url)
    assert differences(url) == []


@pytest.mark.servers
def test_postgres_schema_matches_the_models_and_downgrades(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    upgrade(url)
    assert differences(url) == []
    engine = create_engine(url)
    indexes = {i["name"] for i in inspect(engine).get_indexes("supporters")}
    engine.dispose()
    assert "ix_supporters_sms_ready" in indexes
    command.downgrade(alembic_config(url), "base")
    engine = create_engine(url)
    assert inspect(engine).get_table_names() == ["alembic_version"]
    engine.dispose()
