"""Helpers for the client's functional tests: a stream on the test server and its clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from tests.conftest import Harness
from userstream import Delivery, Endpoints, Keepalive, StreamGap, UserDataStream
from userstream.accounts import Account
from userstream.client.buffer import Item
from userstream.protocol.events import AccountConfigUpdate

MINUTE = 60_000
HOUR = 60 * MINUTE
RECV_TIMEOUT_S = 3.0


def endpoints(server: Harness) -> Endpoints:
    return Endpoints(server.url, f"{server.ws}/ws-fapi/v1", server.ws)


def make_stream(server: Harness, account: Account, **options: Any) -> UserDataStream:
    settings: dict[str, Any] = {
        "endpoints": endpoints(server),
        "clock": server.clock,
        "delivery": Delivery(reorder_window_ms=0),
        "keepalive": Keepalive(ping_interval_s=None),
        "rng": random.Random(7),
    }
    settings.update(options)
    return UserDataStream(account.api_key, **settings)


def leverage(n: int) -> dict[str, Any]:
    """A small event numbered by its leverage, so a sequence can be checked for loss."""
    return {"e": "ACCOUNT_CONFIG_UPDATE", "ac": {"s": "BTCUSDT", "l": n}}


def number(item: Item) -> int:
    assert isinstance(item, AccountConfigUpdate), item
    assert item.leverage_config is not None
    return item.leverage_config.leverage


async def next_item(stream: UserDataStream) -> Item:
    return await asyncio.wait_for(anext(stream), RECV_TIMEOUT_S)


async def next_gap(stream: UserDataStream) -> StreamGap:
    item = await next_item(stream)
    assert isinstance(item, StreamGap), item
    return item


async def settle(rounds: int = 3) -> None:
    """Let sockets deliver what is in flight (tiny real waits, no timing assumptions)."""
    for _ in range(rounds):
        await asyncio.sleep(0.005)


async def wait_for(condition: Callable[[], bool], timeout_s: float = RECV_TIMEOUT_S) -> None:
    """Poll a state the stream exposes only as data (its health), with tiny real waits."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the condition is data, not an event
            await asyncio.sleep(0.005)


async def advance(server: Harness, ms: int, step_ms: int = 3 * MINUTE) -> None:
    """Move the shared virtual clock in steps, letting pings, pongs and keepalives run."""
    while ms > 0:
        step = min(ms, step_ms)
        await server.advance(step)
        ms -= step
        await settle(2)
