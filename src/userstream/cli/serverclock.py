"""A clock that follows a `userstream serve` server's clock, for `listen --local`.

With `serve --clock virtual`, time on the server moves only through
`POST /admin/v1/clock/advance`. A client on real time would keep its listenKey alive on
real time and let it expire when the server's clock jumps an hour. `FollowingClock` is real
time plus the largest offset seen between the server's `GET /fapi/v1/time` and this
machine, read every `poll_s`: it never goes backwards, keeps moving while the server is
unreachable (so reconnect backoff still ends), and wakes sleepers whose deadline a jump
passed at the next read. Against a real-clock server the offset stays about zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp

POLL_S = 0.25
# Below this the server and this machine agree: network delay, not a clock jump.
JITTER_MS = 1_000


class FollowingClock:
    """`Clock` (userstream.clock) on real time plus the server's lead over it."""

    is_virtual = False

    def __init__(self, rest_url: str, poll_s: float = POLL_S) -> None:
        self._url = rest_url.rstrip("/") + "/fapi/v1/time"
        self._poll_s = poll_s
        self._offset_ms = 0
        self._moved = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self._offset_ms

    async def sleep_until(self, deadline_ms: int) -> None:
        while (remaining := deadline_ms - self.now_ms()) > 0:
            self._moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), remaining / 1000)

    def follow(self, server_ms: int) -> None:
        """Take the server's time as read now; only a lead beyond `JITTER_MS` moves us."""
        lead = server_ms - self.now_ms()
        if lead > JITTER_MS:
            self._offset_ms += lead
            self._moved.set()

    async def __aenter__(self) -> FollowingClock:
        self._task = asyncio.create_task(self._poll(), name="userstream-listen-clock")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        timeout = aiohttp.ClientTimeout(total=max(self._poll_s, 1.0))
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                # A server that is down or busy is read again next time; real time goes on.
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                    async with http.get(self._url) as response:
                        if response.status == 200:
                            self.follow(int((await response.json())["serverTime"]))
                await asyncio.sleep(self._poll_s)
