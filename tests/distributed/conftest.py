"""Distributed-mode fixtures: a real nats-server (or a 3-node cluster) and real gateway
processes (`userstream serve --bus nats://...`) on loopback, driven over HTTP and WebSockets.

    async with Gateways(nats.url, tmp_path) as gw:
        a, b = gw.start(2)                       # two `serve` processes, --clock virtual
        account = await a.create_account()
        key = await a.listen_key(account)        # issued on A ...
        async with b.stream(key) as ws: ...      # ... works on B
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection

from tests.conftest import (
    ADMIN_TOKEN,
    ServerProcess,
    event_fixture,
    start_server_process,
    stop_server_process,
)
from tests.functional.wsclient import ws_connect

WAIT_S = 10.0
RECV_S = 5.0
RECOVERY_S = 20.0  # bound for recovery after a NATS restart or a cluster member loss


def numbered(n: int) -> dict[str, Any]:
    """A TRADE_LITE whose trade id `t` is `n`, so receivers can count and check order."""
    event = event_fixture("trade_lite_doc")
    event.update({"t": n})
    event.pop("E", None)
    event.pop("T", None)
    return event


@dataclass
class Account:
    id: int
    api_key: str


@dataclass
class Gateway:
    """One `userstream serve --bus ...` process and an HTTP session to it."""

    process: ServerProcess
    http: aiohttp.ClientSession
    name: str

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def ws(self) -> str:
        return self.process.ws

    @property
    def pid(self) -> int:
        return self.process.process.pid

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with self.http.request(
            method, f"{self.url}/admin/v1/{path}", json=body, headers=headers
        ) as response:
            return response.status, await response.json(content_type=None)

    async def create_account(self, name: str = "trader") -> Account:
        status, body = await self.admin("POST", "accounts", {"name": name})
        assert status == 200, body
        return Account(int(body["accountId"]), str(body["apiKey"]))

    async def rest(self, method: str, account: Account) -> tuple[int, Any]:
        async with self.http.request(
            method, f"{self.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": account.api_key}
        ) as response:
            return response.status, await response.json(content_type=None)

    async def listen_key(self, account: Account) -> str:
        status, body = await self.rest("POST", account)
        assert status == 200, body
        return str(body["listenKey"])

    async def publish(self, account: Account, events: list[dict[str, Any]]) -> int:
        status, body = await self.admin("POST", f"accounts/{account.id}/events", events)
        assert status == 200, body
        return int(body["accepted"])

    async def stats(self) -> dict[str, Any]:
        status, body = await self.admin("GET", "stats")
        assert status == 200, body
        result: dict[str, Any] = body
        return result

    async def now(self) -> int:
        status, body = await self.admin("GET", "clock")
        assert status == 200, body
        return int(body["now"])

    async def advance(self, ms: int) -> int:
        status, body = await self.admin("POST", "clock/advance", {"ms": ms})
        assert status == 200, body
        return int(body["now"])

    async def wait_following(self, accounts: int) -> None:
        """Until this node follows `accounts` accounts on the bus (their events reach it)."""
        await wait_for(lambda: self._following_at_least(accounts), f"{self.name} follows")

    async def _following_at_least(self, accounts: int) -> bool:
        stats = await self.stats()
        return int(stats["cluster"]["following"]) >= accounts

    @asynccontextmanager
    async def stream(self, listen_key: str) -> AsyncIterator[ClientConnection]:
        async with ws_connect(f"{self.ws}/ws/{listen_key}") as ws:
            yield ws

    def kill(self) -> None:
        self.process.process.kill()
        self.process.process.wait()


async def wait_for(check: Any, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {what}")
        await asyncio.sleep(0.02)


async def receive(ws: ClientConnection, timeout_s: float = RECV_S) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
    return message


async def receive_numbered(
    ws: ClientConnection, count: int, timeout_s: float = RECV_S
) -> list[int]:
    """The trade ids of the next `count` TRADE_LITE events (other events are skipped)."""
    seen: list[int] = []
    while len(seen) < count:
        event = await receive(ws, timeout_s)
        if event.get("e") == "TRADE_LITE":
            seen.append(int(event["t"]))
    return seen


@dataclass
class Gateways:
    """Gateway processes on one NATS URL (or comma-separated cluster URLs)."""

    bus: str
    directory: Path
    clock: str = "virtual"
    extra: tuple[str, ...] = ()
    nodes: list[Gateway] = field(default_factory=list)
    _http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Gateways:
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for node in self.nodes:
            if node.process.process.poll() is None:
                stop_server_process(node.process)
            elif node.process.process.stdout is not None:
                node.process.process.stdout.close()
        if self._http is not None:
            await self._http.close()

    def start(self, count: int = 1, bus: str | None = None) -> list[Gateway]:
        started = []
        for _ in range(count):
            name = f"gw{len(self.nodes) + 1}"
            process = start_server_process(
                self.directory / name,
                "--bus",
                bus or self.bus,
                "--clock",
                self.clock,
                "--reconcile-interval",
                "1",
                *self.extra,
            )
            assert self._http is not None
            node = Gateway(process, self._http, name)
            self.nodes.append(node)
            started.append(node)
        return started

    async def same_time(self) -> int:
        """Wait until every running node reads the same virtual time; return it."""
        nows: list[int] = []

        async def agree() -> bool:
            nows[:] = [await n.now() for n in self.nodes if n.process.process.poll() is None]
            return len(set(nows)) == 1

        await wait_for(agree, "nodes agree on the virtual time")
        return nows[0]
