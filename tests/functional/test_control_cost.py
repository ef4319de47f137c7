"""Control messages cannot starve other clients (issue #9 item 3).

Six `/ws` connections, each under the 10 messages/s limit (spec §4.5), send 63 KB of valid
JSON made of nested empty arrays. Before the depth and `method` checks ran in C, each such
message cost ~25 ms of Python in the server and a bystander's ping waited 0.2-2.7 s. The
server runs as its own process (`userstream serve`), so the clients' work does not share its
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
from websockets.exceptions import ConnectionClosed

from tests.conftest import ServerProcess
from tests.functional.wsclient import ws_connect

ATTACKERS = 6
PER_SECOND = 8  # under Binance's 10 incoming messages per second per connection
ATTACK_S = 3.0
BYSTANDER_BOUND_S = 1.0
NESTED = (
    b'{"method":"LIST_SUBSCRIPTIONS","id":1,"x":[' + b",".join([b"[]"] * 21_000) + b"]}"
).decode()


async def _attack(url: str, stop: asyncio.Event) -> int:
    """Send at a steady rate; a server that falls behind reads the frames in bursts and
    disconnects for the rate, so reconnect and go on."""
    sent = 0
    while not stop.is_set():
        with contextlib.suppress(ConnectionClosed):
            async with ws_connect(url) as ws:
                while not stop.is_set():
                    await ws.send(NESTED)
                    sent += 1
                    await asyncio.sleep(1 / PER_SECOND)
    return sent


async def test_a_bystander_is_answered_while_nested_json_floods(
    server_process: ServerProcess,
) -> None:
    stop = asyncio.Event()
    attackers = [
        asyncio.create_task(_attack(server_process.ws + "/ws", stop)) for _ in range(ATTACKERS)
    ]
    worst = 0.0
    answered = 0
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + ATTACK_S
            while time.monotonic() < deadline:
                started = time.monotonic()
                async with http.get(server_process.url + "/fapi/v1/ping") as response:
                    assert response.status == 200
                worst = max(worst, time.monotonic() - started)
                answered += 1
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        sent = await asyncio.gather(*attackers)
    assert min(sent) > 0
    assert answered > 0
    assert worst < BYSTANDER_BOUND_S, f"a bystander's ping took {worst:.3f} s"
