"""Fan-out benchmark: userstream's stream data plane against a raw picows broadcaster.

    .venv/bin/python bench/fanout.py [--connections 100] [--events 20000] [--batch 500]

Each server under test runs in its own process pinned to core 0 (`taskset`); this process (the
publisher and the picows clients that count frames) runs on core 1. Events are realistic
ORDER_TRADE_UPDATE payloads (~420 bytes) built through the protocol models. Both servers are
paced the same way: a batch is published, and the next one goes out once every connection has
received the batch before it (two batches in flight), so memory stays bounded.

Printed per server: delivered events/s (wall), server CPU µs per delivered event (from
/proc/<pid>/stat), and userstream's figures as a percentage of the baseline measured in the
same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import picows
import uvloop

from userstream.protocol.codec import encode_event
from userstream.protocol.events import OrderTradeUpdate, OrderUpdate

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def realistic_event(n: int) -> OrderTradeUpdate:
    now = 1_771_856_732_584 + n
    return OrderTradeUpdate(
        transaction_time=now,
        event_time=now,
        order=OrderUpdate(
            symbol="SOLUSDT",
            client_order_id=f"bench_{n:012d}",
            side="BUY",
            order_type="LIMIT",
            time_in_force="GTC",
            original_quantity=Decimal("12.50"),
            original_price=Decimal("80.1900"),
            average_price=Decimal("80.1850"),
            stop_price=Decimal("0"),
            execution_type="TRADE",
            order_status="PARTIALLY_FILLED",
            order_id=199_033_476_993 + n,
            last_filled_quantity=Decimal("0.10"),
            filled_accumulated_quantity=Decimal("2.30"),
            last_filled_price=Decimal("80.1900"),
            commission_asset="USDT",
            commission=Decimal("0.00320760"),
            trade_time=now,
            trade_id=3_181_138_052 + n,
            bids_notional=Decimal("821.93"),
            ask_notional=Decimal("0"),
            is_maker=True,
            reduce_only=False,
            working_type="CONTRACT_PRICE",
            original_order_type="LIMIT",
            position_side="BOTH",
            close_position=False,
            realized_profit=Decimal("0"),
            price_protection=False,
            strategy_id=0,
            ignored_ss=0,
            self_trade_prevention_mode="EXPIRE_MAKER",
            price_match="NONE",
            good_till_date=0,
            expiry_reason="0",
        ),
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Counter(picows.WSListener):
    def __init__(self, on_frame: Callable[[], None]) -> None:
        self.on_frame = on_frame

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == picows.WSMsgType.TEXT:
            self.on_frame()
        elif frame.msg_type == picows.WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())


@dataclass
class Result:
    name: str
    delivered: int
    wall_s: float
    cpu_s: float

    @property
    def per_second(self) -> float:
        return self.delivered / self.wall_s

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s * 1e6 / self.delivered


class Received:
    def __init__(self) -> None:
        self.count = 0
        self.waiter: asyncio.Future[None] | None = None
        self.target = 0

    def hit(self) -> None:
        self.count += 1
        if self.waiter is not None and self.count >= self.target and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait_for(self, target: int) -> None:
        if self.count >= target:
            return
        self.target = target
        self.waiter = asyncio.get_running_loop().create_future()
        async with asyncio.timeout(60):
            await self.waiter


async def connect_all(url: str, n: int, received: Received) -> list[picows.WSTransport]:
    transports = []
    for _ in range(n):
        transport, _ = await picows.ws_connect(lambda: Counter(received.hit), url)
        transports.append(transport)
    return transports


def start(cmd: list[str], ready: Callable[[str], str | None]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        ["taskset", "-c", "0", *cmd], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        value = ready(line)
        if value:
            return process, value
    raise RuntimeError(f"{cmd[0]} did not start")


async def run_userstream(args: argparse.Namespace, events: list[bytes]) -> Result:
    with tempfile.TemporaryDirectory() as data:
        process, url = start(
            [
                sys.executable,
                "-m",
                "userstream.cli",
                "serve",
                "--port",
                "0",
                "--data",
                data,
                "--admin-token",
                TOKEN,
            ],
            lambda line: line.split()[-1] if line.startswith("userstream listening on") else None,
        )
        try:
            await asyncio.sleep(0.3)
            created = await asyncio.to_thread(
                subprocess.check_output,
                [sys.executable, "-m", "userstream.cli", "account", "create", "--data", data],
            )
            api_key = json.loads(created)["apiKey"]
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    f"{url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": api_key}
                ) as response:
                    listen_key = (await response.json())["listenKey"]
                account_id = 2  # the demo account is 1
                received = Received()
                ws = url.replace("http://", "ws://")
                conns = await connect_all(
                    f"{ws}/private/ws?listenKey={listen_key}", args.connections, received
                )
                headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
                bodies = [
                    b"[" + b",".join(events[i : i + args.batch]) + b"]"
                    for i in range(0, len(events), args.batch)
                ]

                async def publish(body: bytes) -> None:
                    async with http.post(
                        f"{url}/admin/v1/accounts/{account_id}/events", data=body, headers=headers
                    ) as response:
                        assert response.status == 200, await response.text()

                result = await paced("userstream", process.pid, bodies, publish, received, args)
                for conn in conns:
                    conn.disconnect()
                return result
        finally:
            process.terminate()
            process.wait()


async def run_picows(args: argparse.Namespace, payload: bytes) -> Result:
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        file.write(payload)
        file.flush()
        process, port = start(
            [sys.executable, str(ROOT / "bench" / "picows_broadcaster.py"), "--payload", file.name],
            lambda line: line.split()[1] if line.startswith("ready") else None,
        )
        try:
            received = Received()
            url = f"ws://127.0.0.1:{port}/"
            conns = await connect_all(url, args.connections, received)
            control, _ = await picows.ws_connect(lambda: Counter(lambda: None), url)
            batches = [min(args.batch, args.events - i) for i in range(0, args.events, args.batch)]

            async def publish(n: Any) -> None:
                control.send(picows.WSMsgType.TEXT, f"burst {n}".encode())

            result = await paced("picows raw", process.pid, batches, publish, received, args)
            for conn in [*conns, control]:
                conn.disconnect()
            return result
        finally:
            process.terminate()
            process.wait()


async def paced(
    name: str,
    pid: int,
    batches: list[Any],
    publish: Callable[[Any], Any],
    received: Received,
    args: argparse.Namespace,
) -> Result:
    per_batch = args.batch * args.connections
    total = args.events * args.connections
    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    for index, batch in enumerate(batches):
        if index >= 2:
            await received.wait_for((index - 1) * per_batch)
        await publish(batch)
    await received.wait_for(total)
    wall, cpu = time.perf_counter() - wall0, cpu_seconds(pid) - cpu0
    return Result(name, received.count, wall, cpu)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    events = [encode_event(realistic_event(n)) for n in range(args.events)]
    size = sum(map(len, events)) / len(events)
    print(f"# {' '.join(sys.argv)}")
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, picows {version('picows')}; "
        f"{args.connections} connections x {args.events} events of {size:.0f} bytes"
    )
    baseline = await run_picows(args, events[0])
    ours = await run_userstream(args, events)
    print(f"{'server':<12} {'delivered/s':>12} {'CPU us/event':>13} {'wall s':>7}")
    for result in (baseline, ours):
        print(
            f"{result.name:<12} {result.per_second:>12,.0f} {result.cpu_us_per_event:>13.2f} "
            f"{result.wall_s:>7.2f}"
        )
    print(
        f"userstream / baseline: throughput {100 * ours.per_second / baseline.per_second:.0f}%, "
        f"CPU per event {100 * ours.cpu_us_per_event / baseline.cpu_us_per_event:.0f}%"
    )


if __name__ == "__main__":
    uvloop.run(main())
