"""`account watch`'s mark-price follower retries on the client's `Backoff`, not a flat second.

A real WebSocket server on 127.0.0.1 plays the market stream route. The follower's clock is
a `ManualClock` that never moves here: whatever it does without the clock moving, it does
without waiting, and whatever needs a backoff wait does not happen until the clock moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import msgspec
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from tests.functional.client.helpers import RECV_TIMEOUT_S, wait_for
from userstream.cli.watch_marks import MarkFollower
from userstream.clock import ManualClock

DROPS = 5


class MarkRoute:
    """Each connection gets one `markPrice@1s` frame of BTCUSDT, then a close (a drop);
    while `refusing`, handshakes are answered 503 instead."""

    def __init__(self) -> None:
        self.connections = 0
        self.refused = 0
        self.refusing = False
        self.port = 0

    def _request(self, connection: ServerConnection, request: Request) -> Response | None:
        assert request.path.startswith("/market/stream?streams=btcusdt@markPrice@1s")
        if self.refusing:
            self.refused += 1
            return Response(503, "Service Unavailable", Headers(), b"")
        return None

    async def _handler(self, connection: ServerConnection) -> None:
        self.connections += 1
        price = 100 + self.connections
        data = {"e": "markPriceUpdate", "E": 1, "s": "BTCUSDT", "p": f"{price}.0"}
        data |= {"ap": "0", "i": "0", "P": "0", "r": "0", "T": 1}
        await connection.send(msgspec.json.encode({"stream": "x", "data": data}).decode())
        await connection.close()


@asynccontextmanager
async def mark_route() -> AsyncIterator[MarkRoute]:
    route = MarkRoute()
    async with serve(route._handler, "127.0.0.1", 0, process_request=route._request) as server:
        route.port = server.sockets[0].getsockname()[1]
        yield route


@asynccontextmanager
async def following(route: MarkRoute, clock: ManualClock) -> AsyncIterator[MarkFollower]:
    url = f"ws://127.0.0.1:{route.port}"
    marks = MarkFollower(url, lambda: {"BTCUSDT"}, clock=clock, rng=random.Random(7))
    task = asyncio.create_task(marks.run())
    try:
        yield marks
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_dropped_connection_that_delivered_is_redialled_at_once() -> None:
    clock = ManualClock()
    async with mark_route() as route, following(route, clock) as marks:
        # A flat 1 s pause after each drop would take 4 s for these 5 connections.
        await wait_for(lambda: route.connections >= DROPS, RECV_TIMEOUT_S)
        assert marks.marks["BTCUSDT"] >= Decimal(100 + DROPS - 1)


async def test_a_refusing_server_is_retried_on_the_backoff_not_every_second() -> None:
    clock = ManualClock()
    async with mark_route() as route:
        route.refusing = True
        async with following(route, clock) as marks:
            # At once, then a jittered wait on the (frozen) clock: two attempts, no more.
            await wait_for(lambda: route.refused == 2)
            await asyncio.sleep(1.2)  # a flat 1 s retry would have dialled a third time
            assert route.refused == 2
            route.refusing = False
            await clock.advance(3_000)  # past any wait of the young failure
            await wait_for(lambda: route.connections >= 1)
            await wait_for(lambda: "BTCUSDT" in marks.marks)
