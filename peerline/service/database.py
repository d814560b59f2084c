"""The engine and sessions: one per request or job, never shared across processes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from peerline.service import metrics
from peerline.service.availability import watch_rota_changes


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine suited to the database behind the URL."""
    # A failing statement's error names its parameters otherwise: a transcript reason, a login
    # email, a supporter's name would land in the logs.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            # The web threads and the in-process worker each take their own connection.
            poolclass=NullPool,
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" below open transactions, not the sqlite3 module.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # SQLite has no row locks: take the write lock up front, so two steps of one
            # conversation never read the same state and both write.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    event.listen(engine, "handle_error", _without_values)
    event.listen(engine, "handle_error", metrics.database_error)
    return engine


# SQLSTATE classes whose messages quote the values at fault: data exceptions ("invalid input
# syntax for type integer: ...") and integrity violations ("Key (email)=(...) already exists").
_VALUE_CLASSES = ("22", "23")


def _without_values(context: Any) -> None:
    """Strip the values PostgreSQL quotes in an error, keeping its kind and what it concerns."""
    original = context.original_exception
    diag = getattr(original, "diag", None)
    state = getattr(diag, "sqlstate", None)
    if not state or not state.startswith(_VALUE_CLASSES):
        return
    parts = [state, type(original).__name__]
    for label in ("table_name", "column_name", "constraint_name", "datatype_name"):
        value = getattr(diag, label, None)
        if value:
            parts.append(f"{label.removesuffix('_name')}={value}")
    text = " ".join(parts) + " (values withheld from logs)"
    original.args = (text, *original.args[1:])
    # SQLAlchemy's error copied the text when it wrapped the driver's: replace that copy too.
    wrapped = context.sqlalchemy_exception
    if wrapped is not None and wrapped.args:
        kind = type(original)
        wrapped.args = (f"({kind.__module__}.{kind.__name__}) {text}", *wrapped.args[1:])


class Database:
    """Hold the engine and hand out sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Each process caches the rotas it reads; a change through these sessions tells them.
        watch_rota_changes(self.sessions)

    @property
    def is_postgres(self) -> bool:
        """Say whether row locks such as FOR UPDATE SKIP LOCKED are available."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session that commits on success and rolls back on error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Drop pooled connections, as a forked worker must before it starts."""
        self.engine.dispose(close=False)
