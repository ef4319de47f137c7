"""The latest mark price of each held symbol for `userstream account watch` (issue 14 item 3).

Mark moves send no user-data event, so the mirror's marks are those of its last REST snapshot.
The view follows `<symbol>@markPrice@1s` on `<stream root>/market/stream?streams=…` (Binance
serves market streams on the `/market` route, market-data spec §1) for the symbols it holds
positions in, reconnecting whenever that set changes or the connection drops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Set
from decimal import Decimal

import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from userstream.protocol.market import MarkPriceEvent

_RECHECK_S = 1.0  # how often the held set is compared with the followed one


class _Combined(msgspec.Struct):
    stream: str
    data: MarkPriceEvent


class MarkFollower:
    """`marks` holds the latest `p` of each followed symbol's `markPrice@1s` frame."""

    def __init__(self, stream_url: str, held: Callable[[], Set[str]]) -> None:
        self._stream_url = stream_url.rstrip("/")
        self._held = held
        self.marks: dict[str, Decimal] = {}
        self._decoder = msgspec.json.Decoder(_Combined)

    async def run(self) -> None:
        """Follow until cancelled."""
        while True:
            symbols = frozenset(self._held())
            if not symbols:
                await asyncio.sleep(_RECHECK_S)
                continue
            names = "/".join(f"{s.lower()}@markPrice@1s" for s in sorted(symbols))
            with contextlib.suppress(OSError, WebSocketException, msgspec.DecodeError):
                async with connect(f"{self._stream_url}/market/stream?streams={names}") as ws:
                    while frozenset(self._held()) == symbols:
                        try:
                            raw = await asyncio.wait_for(ws.recv(), _RECHECK_S)
                        except TimeoutError:
                            continue
                        event = self._decoder.decode(raw).data
                        self.marks[event.s] = Decimal(event.p)
            await asyncio.sleep(_RECHECK_S)
