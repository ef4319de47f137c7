"""What closed stream connections leave behind in the server (issue #9 item 1).

    .venv/bin/python -m bench.closed_connections [--connections 10000] [--parallel 100]

Opens `--connections` connections to `/ws/<listenKey>` on an in-process server on 127.0.0.1
(a virtual clock, so no timer fires while it runs), has each send part of a 65,000-byte frame
and hang up, waits until the server has seen every one close, then prints the scheduler's heap
entries (live and cancelled), the gateway's subscribers for the key, and how many connection
objects (`WebSocketConnection`, `StreamSession`, `Liveness`) the garbage collector can still
reach. A server that forgets a closed connection completely prints 0 for all but the heap's
live timers.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from pathlib import Path

from userstream.accounts import SqliteAccountStore
from userstream.clock import ManualClock
from userstream.server.app import ServerConfig, UserStreamServer
from userstream.server.liveness import Liveness
from userstream.server.streams import StreamSession
from userstream.server.websocket import WebSocketConnection

START_MS = 1_767_225_600_000
# The header of a masked text frame declaring 65,000 bytes, and its first 1,000 bytes.
PARTIAL_FRAME = bytes((0x81, 0x80 | 126)) + (65_000).to_bytes(2, "big") + b"\0" * 1004

_UPGRADE = (
    "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def open_and_close(port: int, target: str) -> None:
    """One connection: upgrade, a partial frame, then a hang-up without a close frame."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_UPGRADE.format(target=target).encode("ascii"))
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101 "):
        raise AssertionError(head)
    writer.write(PARTIAL_FRAME)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def churn(app: UserStreamServer, target: str, connections: int, parallel: int) -> None:
    """Open and close `connections` connections, `parallel` at a time, then wait (up to 30 s)
    until the server has handled every close."""
    for start in range(0, connections, parallel):
        batch = min(parallel, connections - start)
        await asyncio.gather(*(open_and_close(app.port, target) for _ in range(batch)))
    await wait_until_closed(app)


async def wait_until_closed(app: UserStreamServer, timeout_s: float = 30) -> None:
    """Wait until the server has handled the close of every stream connection."""
    deadline = time.monotonic() + timeout_s
    # Polled: the server's public surface has no event for "every stream has closed".
    while app.streams and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


def reachable_connection_objects() -> int:
    gc.collect()
    kinds = (WebSocketConnection, StreamSession, Liveness)
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kinds))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        clock = ManualClock(START_MS)
        app = UserStreamServer(ServerConfig(port=0, data_dir=Path(data), clock=clock))
        await app.start()
        try:
            accounts = app.accounts
            assert isinstance(accounts, SqliteAccountStore)
            account = accounts.create_now("churn", clock.now_ms())
            key = (await app.keys.start(account)).key
            heap_before = len(app.scheduler._heap)
            started = time.perf_counter()
            await churn(app, f"/ws/{key}", args.connections, args.parallel)
            elapsed = time.perf_counter() - started
            print(f"{args.connections} connections opened and closed in {elapsed:.1f} s")
            print(f"streams still registered: {len(app.streams)}")
            print(f"scheduler heap entries: {heap_before} before, {len(app.scheduler._heap)} after")
            print(f"gateway subscribers for the key: {len(app.gateway.subscribers(key))}")
            print(f"reachable connection objects: {reachable_connection_objects()}")
        finally:
            await app.aclose()


if __name__ == "__main__":
    asyncio.run(main())
