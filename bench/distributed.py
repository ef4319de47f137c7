"""Two gateway nodes on NATS JetStream against one embedded node, on the same load.

    .venv/bin/python -m bench.distributed [--accounts 200] [--conns 2] [--events 100]

Load: `--accounts` accounts, each with one listenKey and `--conns` stream connections
(spread round-robin over the nodes under test), and `--events` TRADE_LITE events per account
published through the admin API (round-robin over the nodes, batches of `--batch`). Each
event carries its publish time (ns) in `c`; clients record receive time - publish time.

Reported per setup: delivered events/s (frames received by all clients / time from first
publish to last frame), p50/p99 publish-to-receive latency, and CPU seconds from
`/proc/<pid>/stat` (utime + stime) of each gateway and of the nats-server process.
Every wait is bounded; every process started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect

TOKEN = "bench-admin-token"
CLK_TCK = os.sysconf("SC_CLK_TCK")
WAIT_S = 60.0
EVENT = {
    "e": "TRADE_LITE",
    "s": "BTCUSDT",
    "q": "0.001",
    "p": "0",
    "m": False,
    "c": "",
    "S": "BUY",
    "L": "64089.20",
    "l": "0.040",
    "t": 0,
    "i": 8886774,
}


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_nats(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = Path(sys.executable).parent / "nats-server"
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise TimeoutError("nats-server did not start")


@dataclass
class Node:
    process: subprocess.Popen[str]
    url: str

    @property
    def ws(self) -> str:
        return self.url.replace("http://", "ws://")


def start_node(data: Path, *extra: str) -> Node:
    env = {**os.environ, "USERSTREAM_ADMIN_TOKEN": TOKEN}
    args = ["serve", "--port", "0", "--data", str(data), "--weight-per-minute", "1000000000"]
    process = subprocess.Popen(
        [sys.executable, "-m", "userstream.cli", *args, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    url = ""
    for line in process.stdout:
        if line.startswith("userstream listening on "):
            url = line.split()[-1]
        elif line.startswith("userstream ready"):
            break
    if not url:
        process.kill()
        raise RuntimeError("gateway did not start")
    return Node(process, url)


def stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@dataclass
class Received:
    frames: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    last_ns: int = 0


async def _reader(ws: ClientConnection, received: Received, expected: int) -> None:
    for _ in range(expected):
        raw = await ws.recv()
        now = time.time_ns()
        event = json.loads(raw)
        received.frames += 1
        received.latencies_ns.append(now - int(event["c"][1:]))
        received.last_ns = now


async def _following(http: aiohttp.ClientSession, node: Node) -> int:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.get(f"{node.url}/admin/v1/stats", headers=headers) as response:
        stats = await response.json()
    cluster = stats.get("cluster")
    return int(cluster["following"]) if cluster else -1


async def run_load(nodes: Sequence[Node], args: argparse.Namespace) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        accounts: list[tuple[int, str]] = []
        for i in range(args.accounts):
            node = nodes[i % len(nodes)]
            async with http.post(
                f"{node.url}/admin/v1/accounts", json={"name": f"b{i}"}, headers=headers
            ) as response:
                body = await response.json()
            async with http.post(
                f"{node.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": body["apiKey"]}
            ) as response:
                key = (await response.json())["listenKey"]
            accounts.append((int(body["accountId"]), key))
        received = Received()
        sockets: list[ClientConnection] = []
        readers: list[asyncio.Task[None]] = []
        try:
            for i, (_, key) in enumerate(accounts):
                for c in range(args.conns):
                    node = nodes[(i + c) % len(nodes)]
                    ws = await connect(f"{node.ws}/ws/{key}", ping_interval=None, max_queue=None)
                    sockets.append(ws)
                    readers.append(asyncio.create_task(_reader(ws, received, args.events)))
            deadline = time.monotonic() + WAIT_S
            for node in nodes:  # every node follows the accounts it serves before we publish
                while 0 <= await _following(http, node) < min(args.accounts, len(accounts)):
                    if time.monotonic() > deadline:
                        raise TimeoutError("nodes never followed their accounts")
                    await asyncio.sleep(0.05)
            cpu_before = {n.process.pid: cpu_seconds(n.process.pid) for n in nodes}
            extra_pids = args.extra_pids
            extra_before = {p: cpu_seconds(p) for p in extra_pids}
            start_ns = time.time_ns()
            gate = asyncio.Semaphore(args.concurrency)

            async def publish(n: int, account_id: int, first: int) -> None:
                node = nodes[n % len(nodes)]
                async with gate:  # stamped when sent, not while queued here
                    batch = []
                    for t in range(first, min(first + args.batch, args.events)):
                        event = dict(EVENT)
                        event["t"] = t
                        event["c"] = f"t{time.time_ns()}"
                        batch.append(event)
                    async with http.post(
                        f"{node.url}/admin/v1/accounts/{account_id}/events",
                        json=batch,
                        headers=headers,
                    ) as response:
                        assert response.status == 200, await response.text()

            jobs = []
            n = 0
            for first in range(0, args.events, args.batch):
                for account_id, _ in accounts:
                    jobs.append(publish(n, account_id, first))
                    n += 1
            await asyncio.gather(*jobs)
            await asyncio.wait_for(asyncio.gather(*readers), WAIT_S)
            elapsed = (received.last_ns - start_ns) / 1e9
            cpu = {p: cpu_seconds(p) - c for p, c in cpu_before.items()}
            extra = {p: cpu_seconds(p) - c for p, c in extra_before.items()}
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            for ws in sockets:
                await ws.close()
    lat = sorted(received.latencies_ns)
    result = {
        "delivered": float(received.frames),
        "seconds": elapsed,
        "events_per_s": received.frames / elapsed,
        "p50_ms": lat[len(lat) // 2] / 1e6,
        "p99_ms": lat[int(len(lat) * 0.99)] / 1e6,
        "gateway_cpu_s": sum(cpu.values()),
        "nats_cpu_s": sum(extra.values()),
    }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--conns", type=int, default=2)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args(argv)
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="userstream-bench-") as tmp:
        root = Path(tmp)
        embedded = start_node(root / "embedded")
        try:
            args.extra_pids = []
            rows.append(("1 embedded node", asyncio.run(run_load([embedded], args))))
        finally:
            stop(embedded.process)
        nats, url = start_nats(root / "js")
        nodes: list[Node] = []
        try:
            for i in range(args.nodes):
                nodes.append(start_node(root / f"gw{i}", "--bus", url))
            args.extra_pids = [nats.pid]
            rows.append((f"{args.nodes} nodes on NATS", asyncio.run(run_load(nodes, args))))
        finally:
            for node in nodes:
                stop(node.process)
            stop(nats)
    total = args.accounts * args.conns * args.events
    print(
        f"load: {args.accounts} accounts x {args.conns} connections x {args.events} events "
        f"= {total} deliveries, batches of {args.batch}, {args.concurrency} publishes in flight"
    )
    print("| setup | delivered events/s | p50 ms | p99 ms | gateway CPU s | nats-server CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(
            f"| {name} | {r['events_per_s']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['gateway_cpu_s']:.2f} | {r['nats_cpu_s']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
