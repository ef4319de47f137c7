"""Shared fixtures: a real server on 127.0.0.1, in this process or as a separate process.

`server` runs `userstream.Server` on the test's event loop with a `ManualClock`, so tests move
time directly. `server_process` runs `userstream serve` as a subprocess (real CLI, real clock
or `--clock virtual`) for clients that block their own thread, such as the official SDK's
synchronous REST client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.nats_fixtures import NatsCluster, NatsServer
from userstream import Account, ManualClock, Server, ServerConfig
from userstream.accounts import SqliteAccountStore

EVENT_FIXTURES = Path(__file__).parent / "fixtures" / "events"
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a fixed virtual start, so runs repeat.
ADMIN_TOKEN = "test-admin-token"


def event_fixture(name: str) -> dict[str, Any]:
    """A golden event payload from tests/fixtures/events (`name` with or without `.json`)."""
    path = EVENT_FIXTURES / (name if name.endswith(".json") else f"{name}.json")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@dataclass
class Harness:
    server: Server
    clock: ManualClock
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.server.http_url

    @property
    def ws(self) -> str:
        return self.server.ws_url

    def account(self, name: str = "trader") -> Account:
        accounts = self.server.accounts
        assert isinstance(accounts, SqliteAccountStore), "the embedded server owns its database"
        return accounts.create_now(name, self.clock.now_ms())

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with self.http.request(
            method, f"{self.url}/admin/v1/{path}", json=body, headers=headers
        ) as response:
            return response.status, await response.json(content_type=None)

    async def listen_key(self, account: Account) -> str:
        async with self.http.post(
            f"{self.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": account.api_key}
        ) as response:
            assert response.status == 200
            body = await response.json()
            return str(body["listenKey"])

    async def publish(self, account: Account, events: Any) -> int:
        status, body = await self.admin("POST", f"accounts/{account.id}/events", events)
        assert status == 200, body
        return int(body["accepted"])

    async def advance(self, ms: int) -> None:
        await self.clock.advance(ms)
        self.server.scheduler.run_due()


@asynccontextmanager
async def running_harness(
    data_dir: Path, clock: ManualClock | None = None, **overrides: Any
) -> AsyncIterator[Harness]:
    """An in-process server on 127.0.0.1:0 with a virtual clock; `overrides` go to
    `ServerConfig` (e.g. `weight_limits=`, `max_body_bytes=`). Pass the same `clock` to two
    servers on one `data_dir` to restart with time carried over."""
    clock = clock if clock is not None else ManualClock(START_MS)
    config = ServerConfig(
        port=0, data_dir=data_dir, clock=clock, admin_token=ADMIN_TOKEN, **overrides
    )
    async with Server(config) as app, aiohttp.ClientSession() as http:
        yield Harness(app, clock, http)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path / "data") as harness:
        yield harness


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    demo: dict[str, Any]

    @property
    def ws(self) -> str:
        return self.url.replace("http://", "ws://")

    @property
    def api_key(self) -> str:
        return str(self.demo["apiKey"])

    @property
    def secret_key(self) -> str:
        return str(self.demo["secretKey"])


def start_server_process(data_dir: Path, *extra: str) -> ServerProcess:
    """Run `userstream serve --port 0` on `data_dir`; its stderr goes to
    `<data_dir>.stderr.log`, whose tail is shown if the server does not come up."""
    env = {**os.environ, "USERSTREAM_ADMIN_TOKEN": ADMIN_TOKEN}
    stderr_path = data_dir.with_name(data_dir.name + ".stderr.log")
    stderr_path.parent.mkdir(parents=True, exist_ok=True)
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "userstream.cli",
                "serve",
                "--port",
                "0",
                "--data",
                str(data_dir),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
    assert process.stdout is not None
    url = ""
    demo: dict[str, Any] = {}
    for line in process.stdout:
        if line.startswith("userstream listening on "):
            url = line.split()[-1]
        elif line.startswith('{"demoAccount"'):
            demo = json.loads(line)["demoAccount"]
        elif line.startswith("userstream ready"):
            break
    proc = ServerProcess(process, url, data_dir, demo)
    if not url:
        stop_server_process(proc)
        tail = stderr_path.read_text()[-3000:]
        raise AssertionError(f"server did not start; its stderr ends with:\n{tail}")
    return proc


def stop_server_process(proc: ServerProcess) -> int:
    """SIGTERM, then wait up to 10 s; a process that hangs is killed and reaped (so nothing
    leaks into later tests) and the hang is still reported as `TimeoutExpired`."""
    proc.process.terminate()
    try:
        return proc.process.wait(timeout=10)
    finally:
        if proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait(timeout=10)
        if proc.process.stdout is not None:
            proc.process.stdout.close()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = start_server_process(tmp_path / "data")
    yield proc
    stop_server_process(proc)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real single-node `nats-server -js` on a loopback port, JetStream in `tmp_path`."""
    server = NatsServer.launch(tmp_path / "nats")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A real 3-node JetStream cluster on loopback ports."""
    cluster = NatsCluster.launch(tmp_path / "nats-cluster", size=3)
    try:
        yield cluster
    finally:
        cluster.stop()
