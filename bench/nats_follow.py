"""How a gateway node follows 10,000 accounts on NATS JetStream: the chosen design (one
ordered consumer with a `filter_subjects` list) against one ordered consumer per account.

    .venv/bin/python -m bench.nats_follow [--accounts 10000]

Starts a real `nats-server -js` (tests/nats_fixtures.py) in a temp dir, and reports for each
design the time to follow every account, the server's and this process's resident memory
growth, and the publish-to-handler latency of one event afterwards. The figures quoted in
`userstream/bus/nats/events.py` come from this script.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import nats.js.errors
from nats.aio.msg import Msg
from tests.nats_fixtures import NatsServer

from userstream.bus.nats import NatsConnection, NatsEventBus
from userstream.protocol.codec import parse_admin_events


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


EVENT = parse_admin_events(
    b'{"e":"TRADE_LITE","E":1,"T":1,"s":"BTCUSDT","q":"1","p":"1",'
    b'"m":false,"c":"x","S":"BUY","L":"1","l":"1","t":1,"i":1}',
    1,
)


async def filtered(server: NatsServer, accounts: int) -> dict[str, float]:
    connection = await NatsConnection.connect(server.url)
    producer = await NatsConnection.connect(server.url)
    bus, out = NatsEventBus(connection), NatsEventBus(producer)
    await bus.open()
    await out.open()
    got = asyncio.Event()
    bus.subscribe(lambda account_id, events: got.set())
    server_before, node_before = rss_mb(server.process.pid), rss_mb()  # type: ignore[union-attr]
    started = time.perf_counter()
    await asyncio.gather(*(bus.follow(a) for a in range(1, accounts + 1)))
    follow_s = time.perf_counter() - started
    rebuilds = bus.resubscribes
    started = time.perf_counter()
    await bus.follow(accounts + 1)  # one more account once 10k are followed
    one_more_s = time.perf_counter() - started
    sent = time.perf_counter()
    await out.publish(accounts // 2, EVENT)
    await asyncio.wait_for(got.wait(), 10)
    latency_ms = (time.perf_counter() - sent) * 1000
    figures = {
        "follow_s": follow_s,
        "rebuilds": rebuilds,
        "one_more_s": one_more_s,
        "server_mb": rss_mb(server.process.pid) - server_before,  # type: ignore[union-attr]
        "node_mb": rss_mb() - node_before,
        "latency_ms": latency_ms,
    }
    await bus.aclose()
    await out.aclose()
    await connection.aclose()
    await producer.aclose()
    return figures


async def per_account(server: NatsServer, accounts: int) -> dict[str, object]:
    connection = await NatsConnection.connect(server.url)
    bus = NatsEventBus(connection, stream="PER_ACCOUNT", subject_prefix="per.account")
    await bus.open()
    got = asyncio.Event()

    async def on_message(msg: Msg) -> None:
        got.set()

    server_before, node_before = rss_mb(server.process.pid), rss_mb()  # type: ignore[union-attr]
    started = time.perf_counter()
    subs = []
    refused = ""
    for a in range(1, accounts + 1):
        try:
            subs.append(
                await connection.js.subscribe(
                    bus.subject(a), stream="PER_ACCOUNT", cb=on_message, ordered_consumer=True
                )
            )
        except nats.js.errors.APIError as error:
            refused = str(error.description)
            break
    follow_s = time.perf_counter() - started
    sent = time.perf_counter()
    await bus.publish(len(subs) // 2, EVENT)
    await asyncio.wait_for(got.wait(), 10)
    latency_ms = (time.perf_counter() - sent) * 1000
    figures: dict[str, object] = {
        "followed": len(subs),
        "refused": refused,
        "follow_s": follow_s,
        "server_mb": rss_mb(server.process.pid) - server_before,  # type: ignore[union-attr]
        "node_mb": rss_mb() - node_before,
        "latency_ms": latency_ms,
    }
    await bus.aclose()
    await connection.aclose()
    return figures


async def main(accounts: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer.launch(Path(tmp) / "a")
        try:
            print("one consumer, filter_subjects:", await filtered(server, accounts))
        finally:
            server.stop()
        server = NatsServer.launch(Path(tmp) / "b")
        try:
            print("one consumer per account:    ", await per_account(server, accounts))
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().accounts))
