"""A Redis master, a replica and three Sentinels for tests, on one address or in a network
namespace (`prefix` runs each server inside it, e.g. ``ip netns exec data``).

The Sentinels decide quickly (the master is down after 1 s without an answer), so a test that
kills the master sees the replica promoted in a few seconds.
"""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from tests.support.servers import (
    HOST,
    RedisServer,
    ServerError,
    _missing,
    find_redis_server,
    free_port,
)

MASTER_NAME = "peerline"
DOWN_AFTER_MS = 1000


def make_tls_files(folder: Path, host: str) -> dict[str, Path]:
    """Make a test CA and a certificate for `host` (an address) with openssl."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, key, cert = folder / "ca.crt", folder / "server.key", folder / "server.crt"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (folder / "san.cnf").write_text(f"subjectAltName=IP:{host}\n")
    for command in (
        ["req", "-x509", *ec, "-keyout", folder / "ca.key", "-out", ca, "-days", "2",
         "-subj", "/CN=peerline test CA"],
        ["req", *ec, "-keyout", key, "-out", folder / "server.csr", "-subj", f"/CN={host}"],
        ["x509", "-req", "-in", folder / "server.csr", "-CA", ca, "-CAkey", folder / "ca.key",
         "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", folder / "san.cnf"],
    ):  # fmt: skip
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
    return {"ca": ca, "key": key, "cert": cert}


class _Prefixed(RedisServer):
    """A redis-server run through a command prefix, with extra arguments."""

    def __init__(
        self, binary: str, tmpdir: Path, host: str, port: int, prefix: list[str], *args: str
    ) -> None:
        tmpdir.mkdir(parents=True, exist_ok=True)
        super().__init__(binary, tmpdir, port)
        self.host = host
        self.prefix = prefix
        self.args = list(args)
        self.tls: dict[str, Path] = {}  # with files: TLS only, on the same port

    def _tls_args(self) -> list[str]:
        if not self.tls:
            return []
        return [
            "--port", "0", "--tls-port", str(self.port),
            "--tls-cert-file", str(self.tls["cert"]), "--tls-key-file", str(self.tls["key"]),
            "--tls-ca-cert-file", str(self.tls["ca"]), "--tls-auth-clients", "no",
            "--tls-replication", "yes",
        ]  # fmt: skip

    def _command(self) -> list[str]:
        # Clients on other hosts have no password to give: a private test network.
        return [
            *self.prefix, *super()._command(), "--protected-mode", "no", *self.args,
            *self._tls_args(),
        ]  # fmt: skip

    def _ready(self) -> bool:
        # A server with a password answers a bare PING with NOAUTH: up all the same.
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as raw:
                if not self.tls:
                    raw.sendall(b"PING\r\n")
                    return raw.recv(64).startswith((b"+PONG", b"-NOAUTH"))
                context = ssl.create_default_context(cafile=str(self.tls["ca"]))
                with context.wrap_socket(raw, server_hostname=self.host) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def kill(self) -> None:
        """Die at once, as a crashed machine would."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()
        self._proc = None


class _Sentinel(_Prefixed):
    name = "sentinel"

    def _command(self) -> list[str]:
        conf = self.tmpdir / f"sentinel-{self.port}.conf"
        conf.write_text(self.conf)
        return [
            *self.prefix,
            self.binary, str(conf), "--sentinel",
            "--port", str(self.port), "--bind", self.host, "--logfile", "",
            "--protected-mode", "no", *self._tls_args(),
        ]  # fmt: skip

    conf = ""


class SentinelSet:
    """A master, a replica and three Sentinels watching them; with `password` the master and
    replica require it, with `sentinel_password` the Sentinels require theirs."""

    def __init__(
        self,
        host: str = HOST,
        prefix: list[str] | None = None,
        *,
        password: str | None = None,
        sentinel_password: str | None = None,
        tls: bool = False,
    ) -> None:
        binary = find_redis_server()
        if binary is None:
            _missing("redis-server not found (install Debian's redis-server package)")
        assert binary is not None
        self.binary = binary
        self.host = host
        self.prefix = prefix or []
        self.password, self.sentinel_password = password, sentinel_password
        self.tmpdir = Path(tempfile.mkdtemp(prefix="peerline-sentinel-"))
        self.master = self._redis("a", free_port())
        self.replica = self._redis("b", free_port(), "--replicaof", host, str(self.master.port))
        self.sentinels: list[_Sentinel] = []
        for index in range(3):
            sentinel = _Sentinel(binary, self.tmpdir / f"s{index}", host, free_port(), self.prefix)
            sentinel.conf = (
                f"sentinel monitor {MASTER_NAME} {host} {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} 4000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            if password:
                sentinel.conf += f"sentinel auth-pass {MASTER_NAME} {password}\n"
            if sentinel_password:
                # Its own password, and the one it gives the other Sentinels.
                sentinel.conf += (
                    f"requirepass {sentinel_password}\nsentinel sentinel-pass {sentinel_password}\n"
                )
            self.sentinels.append(sentinel)
        self.servers: list[_Prefixed] = [self.master, self.replica, *self.sentinels]
        # With tls, every server (Sentinels too) speaks TLS only, with a test CA's certificate.
        self.tls = make_tls_files(self.tmpdir / "tls", host) if tls else {}
        for server in self.servers:
            server.tls = self.tls
        self.client_tls: dict[str, Any] = (
            {"ssl": True, "ssl_ca_certs": str(self.tls["ca"])} if tls else {}
        )

    def _redis(self, name: str, port: int, *args: str) -> _Prefixed:
        if self.password:
            args = (*args, "--requirepass", self.password, "--masterauth", self.password)
        return _Prefixed(
            self.binary,
            self.tmpdir / name,
            self.host,
            port,
            self.prefix,
            "--repl-ping-replica-period", "1",
            "--repl-timeout", "5",
            *args,
        )  # fmt: skip

    @property
    def env(self) -> dict[str, str]:
        """The line's environment for these servers."""
        scheme = "rediss" if self.tls else "redis"
        auth = f":{self.password}@" if self.password else ""
        query = f"?ssl_ca_certs={self.tls['ca']}" if self.tls else ""
        env = {
            "REDIS_SENTINELS": ",".join(f"{s.host}:{s.port}" for s in self.sentinels),
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            "REDIS_URL": f"{scheme}://{auth}sentinel/0{query}",
        }
        if self.sentinel_password:
            env["REDIS_SENTINEL_PASSWORD"] = self.sentinel_password
        return env

    @property
    def url(self) -> str:
        """Return the URL of the master as the Sentinels name it now."""
        host, port = self.master_address()
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{host}:{port}/0"

    def start(self) -> SentinelSet:
        """Start every server and wait until the Sentinels know each other and the replica."""
        try:
            for server in self.servers:
                server.start()
            self.wait_watched()
        except BaseException:
            self.close()
            raise
        return self

    def _sentinel_view(self, sentinel: _Sentinel) -> dict[str, Any]:
        with Redis(
            sentinel.host,
            sentinel.port,
            password=self.sentinel_password,
            socket_timeout=1,
            decode_responses=True,
            **self.client_tls,
        ) as r:
            view: dict[str, Any] = r.execute_command("SENTINEL", "MASTER", MASTER_NAME)
            return view

    def wait_watched(self, timeout: float = 30.0) -> None:
        """Wait until each Sentinel sees the other two and a replica of the master."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                views = [self._sentinel_view(s) for s in self.sentinels]
                host, port = self.master_address()
                with Redis(
                    host, port, password=self.password, socket_timeout=1, **self.client_tls
                ) as master:
                    master.set("peerline:test:replicated", "1")
                    synced = int(master.wait(1, 100)) >= 1
                if synced and all(
                    int(v["num-other-sentinels"]) >= 2
                    and int(v["num-slaves"]) >= 1
                    and "s_down" not in v["flags"]
                    for v in views
                ):
                    return
            except (OSError, KeyError, ValueError) as exc:
                views = [repr(exc)]  # type: ignore[list-item]
            if time.monotonic() > deadline:
                raise ServerError(f"sentinels not ready: {views}")
            time.sleep(0.2)

    def master_address(self) -> tuple[str, int]:
        """Return the master's address as the Sentinels name it now."""
        first = self.sentinels[0]
        with Redis(
            first.host,
            first.port,
            password=self.sentinel_password,
            socket_timeout=1,
            **self.client_tls,
        ) as r:
            host, port = r.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            return (host.decode() if isinstance(host, bytes) else host), int(port)

    def wait_on_replica(self, key: str, timeout: float = 10.0) -> None:
        """Wait until the replica has a key (written to the master)."""
        with Redis(
            self.replica.host, self.replica.port, password=self.password, **self.client_tls
        ) as direct:
            deadline = time.monotonic() + timeout
            while not direct.exists(key):
                if time.monotonic() > deadline:
                    raise ServerError(f"the replica never had {key}")
                time.sleep(0.05)

    def kill_master(self) -> tuple[_Prefixed, _Prefixed]:
        """Kill whichever server is master now; return it and the one to be promoted."""
        _, port = self.master_address()
        dead = self.master if self.master.port == port else self.replica
        heir = self.replica if dead is self.master else self.master
        dead.kill()
        return dead, heir

    def wait_promoted(self, heir: _Prefixed, timeout: float = 30.0) -> float:
        """Wait until the Sentinels name `heir` master; return the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                if self.master_address()[1] == heir.port:
                    return time.monotonic() - start
            except OSError:
                pass
            time.sleep(0.05)
        raise ServerError(f"no promotion after {timeout:.0f}s")

    def flush(self) -> None:
        """Empty the master (the replica follows)."""
        host, port = self.master_address()
        with Redis(host, port, password=self.password, **self.client_tls) as r:
            r.flushall()
            r.wait(1, 2000)

    def close(self) -> None:
        for server in reversed(self.servers):
            try:
                server.stop()
            except (ServerError, OSError):
                pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    """A fresh master, replica and three Sentinels for one test (a failover changes them)."""
    servers = SentinelSet().start()
    try:
        yield servers
    finally:
        servers.close()
