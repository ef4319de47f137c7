"""The latest mark price of each held symbol for `userstream account watch` (issue 14 item 3).

Mark moves send no user-data event, so the mirror's marks are those of its last REST snapshot.
The view follows `<symbol>@markPrice@1s` on `<stream root>/market/stream?streams=…` (Binance
serves market streams on the `/market` route, market-data spec §1) for the symbols it holds
positions in, reconnecting whenever that set changes or the connection drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Set
from decimal import Decimal

import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from userstream.client.backoff import Backoff
from userstream.clock import Clock, SystemClock
from userstream.protocol.market import MarkPriceEvent

_RECHECK_S = 1.0  # how often the held set is compared with the followed one


class _Combined(msgspec.Struct):
    stream: str
    data: MarkPriceEvent


class MarkFollower:
    """`marks` holds the latest `p` of each followed symbol's `markPrice@1s` frame.

    A dropped or refused connection is retried on the stream client's `Backoff` (at once,
    then full jitter growing to 3 s), restarted once a connection delivers a frame: a drop
    costs no second of marks, and a server that is down is not dialled every second forever.
    A change of the held set reconnects at once.
    """

    def __init__(
        self,
        stream_url: str,
        held: Callable[[], Set[str]],
        *,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._stream_url = stream_url.rstrip("/")
        self._held = held
        self._backoff = backoff or Backoff()
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self.marks: dict[str, Decimal] = {}
        self._decoder = msgspec.json.Decoder(_Combined)

    async def run(self) -> None:
        """Follow until cancelled."""
        delays = self._backoff.delays(self._rng)
        while True:
            symbols = frozenset(self._held())
            if not symbols:
                await asyncio.sleep(_RECHECK_S)
                continue
            if await self._follow(symbols):
                delays = self._backoff.delays(self._rng)
            if frozenset(self._held()) != symbols:
                continue  # follow the new set at once
            delay = next(delays, 0)  # unlimited: `Backoff()` has no max_attempts
            await self._clock.sleep_until(self._clock.now_ms() + delay)

    async def _follow(self, symbols: frozenset[str]) -> bool:
        """Follow `symbols` until the held set changes or the connection ends; True if it
        delivered a frame."""
        names = "/".join(f"{s.lower()}@markPrice@1s" for s in sorted(symbols))
        delivered = False
        with contextlib.suppress(OSError, WebSocketException, msgspec.DecodeError):
            async with connect(f"{self._stream_url}/market/stream?streams={names}") as ws:
                while frozenset(self._held()) == symbols:
                    try:
                        # Not `asyncio.wait_for`: on Python 3.11 it can swallow a cancel that
                        # lands as the frame arrives, and the follower then never stops.
                        async with asyncio.timeout(_RECHECK_S):
                            raw = await ws.recv()
                    except TimeoutError:
                        continue
                    delivered = True
                    event = self._decoder.decode(raw).data
                    self.marks[event.s] = Decimal(event.p)
        return delivered
