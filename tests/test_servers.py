"""The real-server fixtures work: Redis and PostgreSQL start, answer, stop and restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa

from tests.support import servers
from tests.support.servers import PostgresServer, RedisServer, postgres_server, redis_server  # noqa: F401

needs_servers = pytest.mark.servers


@pytest.fixture
def rclient(redis_server: RedisServer) -> Iterator[redis.Redis]:  # noqa: F811
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        yield client
    finally:
        client.close()


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


@needs_servers
def test_redis_set_and_get(redis_server: RedisServer, rclient: redis.Redis) -> None:  # noqa: F811
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    rclient.set("peerline:greeting", "hello")
    assert rclient.get("peerline:greeting") == b"hello"


@needs_servers
def test_redis_stop_and_start(redis_server: RedisServer, rclient: redis.Redis) -> None:  # noqa: F811
    rclient.set("before-restart", "1")
    redis_server.stop()
    assert not redis_server.running
    with pytest.raises(redis.ConnectionError):
        rclient.ping()
    redis_server.start()
    assert redis_server.running
    assert rclient.ping() is True
    assert rclient.get("before-restart") is None  # nothing is persisted across restarts


@needs_servers
def test_postgres_table_roundtrip(postgres_server: PostgresServer) -> None:  # noqa: F811
    url = postgres_server.create_database()
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL)"))
            conn.execute(sa.text("INSERT INTO note (body) VALUES (:b)"), [{"b": "hi"}, {"b": "ü"}])
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT body FROM note ORDER BY id")).scalars().all()
        assert rows == ["hi", "ü"]
    finally:
        engine.dispose()


@needs_servers
def test_create_database_is_isolated(postgres_server: PostgresServer) -> None:  # noqa: F811
    first = _engine(postgres_server.create_database("isolation_a"))
    second = _engine(postgres_server.create_database())
    try:
        assert first.url.database == "isolation_a"
        assert second.url.database != first.url.database
        with first.begin() as conn:
            conn.execute(sa.text("CREATE TABLE only_here (x int)"))
        with second.connect() as conn:
            found = conn.execute(sa.text("SELECT to_regclass('only_here')")).scalar()
        assert found is None
    finally:
        first.dispose()
        second.dispose()
    copy = _engine(postgres_server.create_database(template="isolation_a"))
    try:
        with copy.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM only_here")).scalar() == 0
    finally:
        copy.dispose()
    postgres_server.drop_database("isolation_a")
    with pytest.raises(ValueError):
        postgres_server.create_database('bad"name')


@needs_servers
def test_postgres_stop_and_start(postgres_server: PostgresServer) -> None:  # noqa: F811
    engine = _engine(postgres_server.url)
    try:
        postgres_server.stop()
        with pytest.raises(sa.exc.OperationalError):
            with engine.connect():
                pass
        postgres_server.start()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_missing_binary_skips_or_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(servers, "find_redis_server", lambda: None)
    monkeypatch.setattr(servers, "find_postgres_bindir", lambda: None)
    with pytest.raises(outcome, match="redis-server not found"):
        servers.start_redis()
    with pytest.raises(outcome, match="PostgreSQL initdb/postgres not found"):
        servers.start_postgres()
