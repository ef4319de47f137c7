"""Helpers for the market functional tests: a server with a market, a local order book kept
by the documented futures algorithm (market-data spec §2.3)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from tests.conftest import Harness, running_harness
from tests.market_source import TinyMarket
from userstream.market.types import MarketSource

RECV_TIMEOUT_S = 5.0


@asynccontextmanager
async def market_harness(
    data_dir: Path, source: MarketSource | None = None, **overrides: Any
) -> AsyncIterator[Harness]:
    async with running_harness(
        data_dir, market_source=source if source is not None else TinyMarket(), **overrides
    ) as harness:
        yield harness


async def recv_json(ws: ClientConnection) -> Any:
    message = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    return json.loads(message)


async def get_json(harness: Harness, path: str) -> tuple[int, Any, dict[str, str]]:
    async with harness.http.get(harness.url + path) as response:
        return response.status, await response.json(content_type=None), dict(response.headers)


class LocalBook:
    """A book kept from `depthUpdate` diffs after a REST snapshot, as Binance documents it."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.last_u = int(snapshot["lastUpdateId"])
        self.bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
        self.asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
        self.synced = False

    def apply(self, event: dict[str, Any]) -> None:
        """Apply one diff; raises AssertionError on a gap (where a client would resync)."""
        first, final, prev = event["U"], event["u"], event["pu"]
        if not self.synced:
            if final < self.last_u:
                return
            assert first <= self.last_u <= final or prev == self.last_u, (event, self.last_u)
            self.synced = True
        else:
            assert prev == self.last_u, f"gap: pu {prev} after u {self.last_u}"
        for side, levels in ((self.bids, event["b"]), (self.asks, event["a"])):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(qty)
        self.last_u = final

    def matches(self, snapshot: dict[str, Any]) -> bool:
        bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
        asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
        return bids == self.bids and asks == self.asks
