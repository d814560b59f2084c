"""Hosts on one machine: network namespaces on a private /24 behind a bridge (root only).

Each host is a namespace joined to the bridge by a veth pair; the root namespace is the
bridge's `.1` (where the test's Twilio and load balancer listen). Cutting a host sets its
veth down, as a pulled cable would: its connections hang rather than fail. Everything made
is removed on close, even after a failure.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import threading
from types import TracebackType

from tests.support.servers import _missing


def require_root_and_ip() -> None:
    """Skip (fail under CI=true) unless network namespaces can be made here."""
    if os.geteuid() != 0:
        _missing("network namespaces need root (CI runs as root)")
    if shutil.which("ip") is None:
        _missing("`ip` not found (install Debian's iproute2)")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Network:
    """A bridge and the namespaces joined to it."""

    def __init__(self) -> None:
        self.tag = f"{os.getpid() % 10000:04d}"
        taken = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
        while True:
            self.subnet = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
            if f" {self.subnet}." not in taken:
                break
        self.bridge = f"plb{self.tag}"
        self.gateway = f"{self.subnet}.1"
        self.hosts: dict[str, str] = {}
        _ip("link", "add", self.bridge, "type", "bridge")
        try:
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise

    def namespace(self, name: str) -> str:
        return f"pl{self.tag}{name}"

    def _veth(self, name: str) -> str:
        return f"pl{self.tag}{name}h"

    def add_host(self, name: str) -> str:
        """Make a host on the bridge; return its address."""
        address = f"{self.subnet}.{10 + len(self.hosts)}"
        ns, veth, inner = self.namespace(name), self._veth(name), f"pl{self.tag}{name}n"
        self.hosts[name] = address
        _ip("netns", "add", ns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", inner)
        _ip("-n", ns, "link", "set", inner, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        return address

    def prefix(self, name: str) -> list[str]:
        """Return the command prefix that runs a program on a host."""
        return ["ip", "netns", "exec", self.namespace(name)]

    def cut(self, name: str) -> None:
        """Cut a host off the network (its link goes down)."""
        _ip("link", "set", self._veth(name), "down")

    def restore(self, name: str) -> None:
        """Plug a host back in."""
        _ip("link", "set", self._veth(name), "up")

    def close(self) -> None:
        """Remove every namespace (and so its veth pair) and the bridge."""
        for name in self.hosts:
            subprocess.run(["ip", "netns", "del", self.namespace(name)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    def __enter__(self) -> Network:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Balancer:
    """A TCP load balancer: each connection to the next backend that answers, in turn."""

    def __init__(self, host: str, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.listener = socket.create_server((host, 0))
        self.address = self.listener.getsockname()[:2]
        self._turn = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        for _ in self.backends:
            self._turn += 1
            backend = self.backends[self._turn % len(self.backends)]
            try:
                upstream = socket.create_connection(backend, timeout=1)
                break
            except OSError:
                continue
        else:
            client.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join(timeout=30)
        upstream.close()
        client.close()

    def close(self) -> None:
        self.listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
