"""Real PostgreSQL and Redis servers for tests, started in temporary directories.

Import the fixtures into a conftest (or a test module) to register them::

    from tests.support.servers import postgres_server, redis_server  # noqa: F401

Both fixtures are session-scoped. Each yields a handle with ``.url``, ``.host``,
``.port``, ``stop()`` and ``start()`` (restart on the same port, for fault-injection
tests). ``postgres_server.create_database()`` makes a fresh database for one test.

When a server binary is missing the test is skipped, or fails when ``CI=true``.
PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
POLL_INTERVAL = 0.02


class ServerError(RuntimeError):
    """A test server failed to start or stop."""


def _missing(what: str) -> None:
    """Skip the test (fail it under CI) because a server binary is not installed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true, so this is an error, not a skip)", pytrace=False)
    pytest.skip(what)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], name: str, log: Path
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise ServerError(f"{name} exited with code {proc.returncode}; log:\n{_tail(log)}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise ServerError(f"{name} not ready after {STARTUP_TIMEOUT:.0f}s; log:\n{_tail(log)}")
        time.sleep(POLL_INTERVAL)


def _terminate(proc: subprocess.Popen[bytes] | None, sig: int, hard_sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.send_signal(hard_sig)
        proc.wait(STOP_TIMEOUT)


class _Server:
    """Common start/stop bookkeeping; subclasses give the command and readiness check."""

    name = "server"

    def __init__(self, tmpdir: Path, port: int) -> None:
        self.tmpdir = tmpdir
        self.host = HOST
        self.port = port
        self.log_path = tmpdir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _popen_kwargs(self) -> dict[str, Any]:
        return {}

    _stop_signal = signal.SIGTERM
    _kill_signal = signal.SIGKILL

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server (again) on the same port and wait until it answers."""
        if self.running:
            return
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmpdir,
                **self._popen_kwargs(),
            )
        try:
            _wait_until(self._ready, self._proc, f"{self.name} on port {self.port}", self.log_path)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Shut the server down (cleanly, but without waiting for clients)."""
        _terminate(self._proc, self._stop_signal, self._kill_signal)
        self._proc = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def _start_on_free_port(server: _Server, attempts: int = 3) -> None:
    """Start on a free port; retry in case another process took the port meanwhile."""
    for attempt in range(attempts):
        server.port = free_port()
        try:
            server.start()
            return
        except ServerError:
            if attempt == attempts - 1:
                raise


ServerKind = TypeVar("ServerKind", bound=_Server)


def _launched(server: ServerKind, *prepare: Callable[[], None]) -> ServerKind:
    """Prepare a server and start it on a free port; close it (and its files) if that fails."""
    try:
        for each in prepare:
            each()
        _start_on_free_port(server)
    except BaseException:
        server.close()
        raise
    return server


def _serving(server: ServerKind) -> Iterator[ServerKind]:
    """Yield a started server for a session fixture, and close it afterwards."""
    try:
        yield server
    finally:
        server.close()


# ---------------------------------------------------------------- Redis


def find_redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    for d in ("/usr/bin", "/usr/sbin", "/usr/local/bin"):
        candidate = os.path.join(d, "redis-server")
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class RedisServer(_Server):
    name = "redis"

    def __init__(self, binary: str, tmpdir: Path, port: int) -> None:
        super().__init__(tmpdir, port)
        self.binary = binary

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.tmpdir),
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip

    def _ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False


def start_redis() -> RedisServer:
    binary = find_redis_server()
    if binary is None:
        _missing("redis-server not found (install Debian's redis-server package)")
    assert binary is not None
    tmpdir = Path(tempfile.mkdtemp(prefix="peerline-redis-"))
    return _launched(RedisServer(binary, tmpdir, 0))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from _serving(start_redis())


# ---------------------------------------------------------------- PostgreSQL


def find_postgres_bindir() -> Path | None:
    """A directory with initdb and postgres: $PATH first, then Debian's newest version."""
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(
        versions,
        key=lambda p: tuple(int(x) for x in re.findall(r"\d+", p.parent.name)),
        reverse=True,
    )
    for d in candidates:
        if all(os.access(d / exe, os.X_OK) for exe in ("initdb", "postgres")):
            return d
    return None


_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresServer(_Server):
    name = "postgres"
    _stop_signal = signal.SIGINT  # "fast" shutdown: disconnect clients, then exit
    _kill_signal = signal.SIGQUIT  # "immediate" shutdown

    def __init__(self, bindir: Path, tmpdir: Path, port: int, run_as: str | None) -> None:
        super().__init__(tmpdir, port)
        self.bindir = bindir
        self.datadir = tmpdir / "data"
        self.user = "postgres"
        self.run_as = run_as

    def url_for(self, dbname: str) -> str:
        """SQLAlchemy URL for a database on this server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq connection string, for ``psycopg.connect()``."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo(dbname), connect_timeout=5, **kwargs)

    def create_database(self, name: str | None = None, template: str = "template0") -> str:
        """Create a database (a fresh name if none is given) and return its URL.

        It is empty, or a copy of ``template`` (a database nobody is connected to; for
        example one with the schema already migrated).
        """
        name = name or f"test_{uuid.uuid4().hex[:16]}"
        for n in (name, template):
            if not _DB_NAME.match(n):
                raise ValueError(f"unsuitable database name: {n!r}")
        with self.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        with self.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def _popen_kwargs(self) -> dict[str, Any]:
        if self.run_as is None:
            return {}
        return {"user": self.run_as, "group": pwd.getpwnam(self.run_as).pw_gid, "extra_groups": []}

    def initdb(self) -> None:
        cmd = [
            str(self.bindir / "initdb"),
            "-D", str(self.datadir),
            "-U", self.user,
            "-A", "trust",
            "--encoding", "UTF8",
            "--no-locale",
            "--no-sync",
        ]  # fmt: skip
        result = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=self.tmpdir,
            **self._popen_kwargs(),
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise ServerError(f"initdb failed ({result.returncode}):\n{output}")

    def _command(self) -> list[str]:
        return [
            str(self.bindir / "postgres"),
            "-D", str(self.datadir),
            "-p", str(self.port),
            "-h", self.host,
            "-k", str(self.tmpdir),
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "synchronous_commit=off",
            "-c", "max_connections=200",
        ]  # fmt: skip

    def _ready(self) -> bool:
        try:
            with self.connect() as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False


def start_postgres() -> PostgresServer:
    bindir = find_postgres_bindir()
    if bindir is None:
        _missing(
            "PostgreSQL initdb/postgres not found on PATH or in /usr/lib/postgresql/*/bin "
            "(install Debian's postgresql package)"
        )
    assert bindir is not None
    run_as: str | None = None
    if os.geteuid() == 0:
        run_as = "postgres"
        try:
            pw = pwd.getpwnam(run_as)
        except KeyError:
            _missing("running as root, but there is no 'postgres' user to run PostgreSQL as")
    tmpdir = Path(tempfile.mkdtemp(prefix="peerline-pg-"))
    if run_as is not None:
        os.chown(tmpdir, pw.pw_uid, pw.pw_gid)
    os.chmod(tmpdir, 0o700)
    server = PostgresServer(bindir, tmpdir, 0, run_as)
    return _launched(server, server.initdb)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    yield from _serving(start_postgres())
