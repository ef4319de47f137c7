"""listenKey operations per second: REST POST/PUT and WebSocket API start/ping.

    .venv/bin/python -m bench.listenkeys [--operations 20000]

The server runs with `--weight-per-minute 1000000000` so the request-weight limiter counts but
never throttles. 100 accounts are used round robin. REST requests are pipelined on 4
keep-alive connections; WebSocket API requests go over 4 connections in waves of 50 per
connection (the server queues at most 100 per connection). Every answer must be a 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass

import picows
import uvloop

from bench.common import (
    WAIT_S,
    PipelinedHttp,
    TextListener,
    UserstreamServer,
    cpu_seconds,
    http_request,
    machine,
    pin_load,
    userstream_server,
)

ACCOUNTS = 100
CONNECTIONS = 4
WAVE = 50


@dataclass
class OpsResult:
    operation: str
    count: int
    wall_s: float
    cpu_s: float

    @property
    def per_second(self) -> float:
        return self.count / self.wall_s

    @property
    def cpu_us_per_op(self) -> float:
        return self.cpu_s * 1e6 / self.count


async def rest(server: UserstreamServer, method: str, count: int) -> OpsResult:
    conns = [await PipelinedHttp.open("127.0.0.1", server.port) for _ in range(CONNECTIONS)]
    requests = [
        http_request(method, "/fapi/v1/listenKey", b"", {"X-MBX-APIKEY": account.api_key})
        for account in server.accounts
    ]
    per_conn = count // CONNECTIONS
    cpu0, wall0 = cpu_seconds(server.pid), time.perf_counter()
    for index, conn in enumerate(conns):
        conn.send(b"".join(requests[(index + n) % len(requests)] for n in range(per_conn)))
    for conn in conns:
        await conn.wait_answered(per_conn)
    wall, cpu = time.perf_counter() - wall0, cpu_seconds(server.pid) - cpu0
    for conn in conns:
        if conn.failed:
            raise RuntimeError(f"REST {method}: {conn.failed} refused: {conn.first_failure!r}")
        conn.close()
    return OpsResult(f"REST {method} /fapi/v1/listenKey", per_conn * CONNECTIONS, wall, cpu)


class WsApiClient(TextListener):
    def __init__(self) -> None:
        self.answered = 0
        self.failed = 0
        self.waiter: asyncio.Future[None] | None = None
        self.target = 0

    def on_text(self, payload: bytes) -> None:
        self.answered += 1
        if b'"status":200' not in payload:
            self.failed += 1
        if self.waiter is not None and self.answered >= self.target and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait_for(self, target: int) -> None:
        if self.answered >= target:
            return
        self.target = target
        self.waiter = asyncio.get_running_loop().create_future()
        async with asyncio.timeout(WAIT_S):
            await self.waiter


async def ws_api(server: UserstreamServer, method: str, count: int) -> OpsResult:
    url = f"ws://127.0.0.1:{server.port}/ws-fapi/v1?returnRateLimits=false"
    clients: list[tuple[picows.WSTransport, WsApiClient]] = []
    for _ in range(CONNECTIONS):
        transport, listener = await picows.ws_connect(WsApiClient, url)
        assert isinstance(listener, WsApiClient)
        clients.append((transport, listener))
    messages = [
        json.dumps({"id": str(n), "method": method, "params": {"apiKey": account.api_key}}).encode()
        for n, account in enumerate(server.accounts)
    ]
    waves = count // (CONNECTIONS * WAVE)

    async def drive(index: int, transport: picows.WSTransport, client: WsApiClient) -> None:
        for wave in range(waves):
            for n in range(WAVE):
                transport.send(picows.WSMsgType.TEXT, messages[(index + n) % len(messages)])
            await client.wait_for((wave + 1) * WAVE)

    cpu0, wall0 = cpu_seconds(server.pid), time.perf_counter()
    await asyncio.gather(*(drive(i, t, c) for i, (t, c) in enumerate(clients)))
    wall, cpu = time.perf_counter() - wall0, cpu_seconds(server.pid) - cpu0
    for transport, client in clients:
        transport.disconnect()
        if client.failed:
            raise RuntimeError(f"WS API {method}: {client.failed} failed")
    return OpsResult(f"WS API {method}", waves * WAVE * CONNECTIONS, wall, cpu)


async def run_all(count: int) -> tuple[str, list[OpsResult]]:
    with userstream_server() as server:
        await server.setup(ACCOUNTS)
        results = [
            await rest(server, "POST", count),
            await rest(server, "PUT", count),
            await ws_api(server, "userDataStream.start", count),
            await ws_api(server, "userDataStream.ping", count),
        ]
        return "userstream " + server.command.split(" userstream.cli ", 1)[-1], results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=20_000)
    args = parser.parse_args()
    pin_load()
    print(f"# {' '.join(sys.argv)}\n# {machine()}")
    command, results = await run_all(args.operations)
    print(f"# server: {command}")
    for result in results:
        print(
            f"{result.operation:<34} {result.per_second:>9,.0f}/s "
            f"{result.cpu_us_per_op:>7.1f} µs server CPU each"
        )


if __name__ == "__main__":
    uvloop.run(main())
