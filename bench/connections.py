"""Idle connections: RSS per stream connection and time to open them all.

    .venv/bin/python -m bench.connections [--connections 10000]

Opens N WebSocket stream connections (`/ws/<listenKey>`, one account) from this process with
raw asyncio sockets (handshake only, no per-connection client objects), 256 handshakes in
flight, and reads the server's RSS from /proc before and after. The same is done against the
raw picows broadcaster as the baseline. Both processes raise RLIMIT_NOFILE to its hard limit.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time
from dataclasses import dataclass

import uvloop

from bench.common import (
    ROOT,
    machine,
    pin_load,
    raise_nofile,
    rss_bytes,
    start_pinned,
    stop,
    userstream_server,
)

IN_FLIGHT = 256
SETTLE_S = 1.0


@dataclass
class ConnectResult:
    server: str
    connections: int
    connect_s: float
    rss_before: int
    rss_after: int

    @property
    def per_connection_kb(self) -> float:
        return (self.rss_after - self.rss_before) / self.connections / 1024

    @property
    def per_second(self) -> float:
        return self.connections / self.connect_s


async def open_idle(port: int, path: str, count: int) -> list[asyncio.StreamWriter]:
    """Open `count` WebSocket connections to `path` and leave them idle."""
    writers: list[asyncio.StreamWriter] = []
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one() -> None:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                (
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"handshake refused: {head[:200]!r}")
            writers.append(writer)

    async with asyncio.timeout(300):
        await asyncio.gather(*(one() for _ in range(count)))
    return writers


def close_all(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.transport.abort()


async def measure_userstream(count: int) -> ConnectResult:
    with userstream_server() as server:
        await server.setup(1)
        await asyncio.sleep(SETTLE_S)
        before = rss_bytes(server.pid)
        start = time.perf_counter()
        writers = await open_idle(server.port, f"/ws/{server.listen_keys[0]}", count)
        elapsed = time.perf_counter() - start
        await asyncio.sleep(SETTLE_S)
        after = rss_bytes(server.pid)
        close_all(writers)
        return ConnectResult("userstream", count, elapsed, before, after)


async def measure_picows(count: int) -> ConnectResult:
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as file:
        file.write(b"{}\n")
        file.flush()
        script = str(ROOT / "bench" / "picows_broadcaster.py")
        process, port = start_pinned(
            [sys.executable, script, "--payloads", file.name],
            lambda line: line.split()[1] if line.startswith("ready") else None,
        )
        try:
            await asyncio.sleep(SETTLE_S)
            before = rss_bytes(process.pid)
            start = time.perf_counter()
            writers = await open_idle(int(port), "/a0", count)
            elapsed = time.perf_counter() - start
            await asyncio.sleep(SETTLE_S)
            after = rss_bytes(process.pid)
            close_all(writers)
            return ConnectResult("picows raw", count, elapsed, before, after)
        finally:
            stop(process)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    args = parser.parse_args()
    pin_load()
    raise_nofile()
    print(f"# {' '.join(sys.argv)}\n# {machine()}")
    for result in (
        await measure_picows(args.connections),
        await measure_userstream(args.connections),
    ):
        print(
            f"{result.server:<12} {result.connections:,} connections in {result.connect_s:.2f} s "
            f"({result.per_second:,.0f}/s); RSS {result.rss_before / 2**20:.1f} -> "
            f"{result.rss_after / 2**20:.1f} MiB, {result.per_connection_kb:.1f} KiB each"
        )


if __name__ == "__main__":
    uvloop.run(main())
