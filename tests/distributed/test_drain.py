"""Graceful drain of a gateway node (issue #15): SIGTERM takes the node out of rotation, its
clients are closed with 1001 a few at a time and carry on from another node with the same
listenKey."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
from websockets.asyncio.client import ClientConnection

from tests.distributed.conftest import Gateways, numbered, receive_numbered, wait_for
from tests.functional.wsclient import ws_connect
from tests.nats_fixtures import NatsServer

CLIENTS = 4
DRAIN_S = 1.5


async def test_sigterm_drains_a_gateway_and_clients_move_to_another(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    extra = ("--drain-seconds", str(DRAIN_S))
    async with Gateways(nats_server.url, tmp_path, clock="real", extra=extra) as gw:
        a, b = gw.start(2)
        account = await a.create_account()
        key = await a.listen_key(account)
        clients = [await ws_connect(f"{a.ws}/ws/{key}").__aenter__() for _ in range(CLIENTS)]
        await a.wait_following(1)

        a.process.process.send_signal(signal.SIGTERM)

        async def not_ready() -> bool:
            async with aiohttp.ClientSession() as http, http.get(f"{a.url}/ready") as response:
                return response.status == 503

        await wait_for(not_ready, "the draining node fails /ready")

        async def closed(ws: ClientConnection) -> tuple[int | None, float]:
            await ws.wait_closed()
            return ws.close_code, time.monotonic()

        results = await asyncio.wait_for(asyncio.gather(*(closed(ws) for ws in clients)), 10)
        assert [code for code, _ in results] == [1001] * CLIENTS
        times = sorted(t for _, t in results)
        # Four closes over 1.5 s are 0.375 s apart by design; at once would be no spread.
        assert times[-1] - times[0] >= DRAIN_S / 2
        assert a.process.process.wait(timeout=10) == 0

        # The same listenKey carries on at the other node.
        async with ws_connect(f"{b.ws}/ws/{key}") as moved:
            await b.wait_following(1)
            await b.publish(account, [numbered(1)])
            assert await receive_numbered(moved, 1) == [1]
