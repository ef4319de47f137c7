"""The venue's order rate and order-to-event latency (issue #12, "Speed").

    .venv/bin/python -m bench.venue [--seconds 3] [--connections 4] [--depth 32]
    .venv/bin/python -m bench.venue --latency-only [--rate 3500] [--stall-log 1]

One `userstream serve` process pinned to the server core (bench/common.py), the default
synthetic market, every account funded; the load generator pinned to the other core. In one
run, on the same server:

1. `GET /fapi/v1/ping` over pipelined keep-alive connections: the server's own request rate;
2. signed MARKET orders over REST (`POST /fapi/v1/order`, HMAC in the query, the same
   pipelined connections), alternating BUY and SELL 0.001 BTCUSDT so the position stays
   small, while a user stream connection receives every fill's events;
3. the same orders over the WebSocket API (`order.place` after an Ed25519 `session.logon`,
   `--depth` requests in flight);
4. order → ORDER_TRADE_UPDATE (x=TRADE, X=FILLED) latency over the WebSocket API at half the
   rate measured in 3: from writing the request to the event arriving on the stream;
5. server CPU per order (from /proc over runs 2 and 3), and the engine's own CPU per order
   (`Engine.handle` of the same MARKET orders in this process, no I/O).

`--latency-only` runs 4 alone, for comparing builds on the latency tail: `--prefill` orders
over the WebSocket API at full speed first (the engine's state then holds about as many
orders as in a full run, and their rate is the one measured in 3), then `--seconds` of paced
orders at `--rate` (default: half the prefill's rate). `--stall-log MS` runs the server with
`USERSTREAM_STALL_LOG=MS` (server/stalls.py) and prints its loop stalls and garbage
collections during the paced phase only (SIGUSR1 before and after it).

`--profile PATH` runs the server under cProfile (statistics written to PATH when it stops):
the rates drop, the shares of the order path's parts are what it is for.

Figures go to docs/benchmarks.md with the command line; none are asserted anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import picows
import uvloop
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bench.common import (
    TOKEN,
    UNLIMITED_WEIGHT,
    WAIT_S,
    PipelinedHttp,
    TextListener,
    cpu_seconds,
    http_request,
    pin_load,
    start_pinned,
    stop,
)
from userstream.market.synthetic import SyntheticMarket
from userstream.protocol.events import OrderType, Side
from userstream.protocol.signing import ws_payload
from userstream.symbols import load_symbol_table
from userstream.venue import Deposit, Engine, NewOrder
from userstream.venue.commands import ResponseType

QTY = "0.001"
COMMAND = ".venv/bin/python -m bench.venue"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class VenueFigures:
    """One run's figures (rates per second, latencies in ms, CPU in µs per order)."""

    ping_rate: float = 0.0
    rest_rate: float = 0.0
    ws_rate: float = 0.0
    half_rate: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    server_cpu_us: float = 0.0
    rest_cpu_us: float = 0.0
    engine_cpu_us: float = 0.0
    lost: int = 0  # orders whose fill never reached the stream
    latency_only: bool = False
    client_cpu_us: float = 0.0  # this process's CPU per order in the latency phase
    latency_server_share: float = 0.0  # the server's CPU over the latency phase's wall time
    stalls: list[str] = field(default_factory=list)  # the server's stall log, latency phase

    def lines(self) -> list[str]:
        if self.latency_only:
            return [
                f"WS API MARKET orders (prefill): {self.ws_rate:,.0f}/s",
                self.latency_line(),
                f"load generator CPU in the latency phase: {self.client_cpu_us:.0f} µs/order",
                f"fills missing on the stream: {self.lost}",
                *self.stalls,
            ]
        return [
            f"GET /fapi/v1/ping: {self.ping_rate:,.0f} requests/s",
            f"REST MARKET orders: {self.rest_rate:,.0f}/s "
            f"({self.rest_rate / self.ping_rate:.0%} of ping); server CPU "
            f"{self.rest_cpu_us:.0f} µs/order",
            f"WS API MARKET orders: {self.ws_rate:,.0f}/s; server CPU "
            f"{self.server_cpu_us:.0f} µs/order",
            self.latency_line(),
            f"engine CPU per MARKET order (Engine.handle, no I/O): {self.engine_cpu_us:.0f} µs",
            f"fills missing on the stream: {self.lost}",
        ]

    def latency_line(self) -> str:
        return (
            f"order -> ORDER_TRADE_UPDATE at {self.half_rate:,.0f} orders/s (WS API): "
            f"p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms; server CPU "
            f"{self.latency_server_share:.0%} of its core"
        )


@dataclass(frozen=True)
class LatencyOptions:
    """`--latency-only` and its companions (see the module docstring)."""

    only: bool = False
    rate: float | None = None  # orders/s of the paced phase; None: half the measured rate
    prefill: int = 20_000
    stall_log_ms: float | None = None


FILLED = b'"X":"FILLED"'
CLIENT_ID = b'"c":"'  # the only "c" key in an ORDER_TRADE_UPDATE is the order's


class Fills(TextListener):
    """The user stream's reader: counts the fills' final ORDER_TRADE_UPDATE frames; with
    `timed`, records the arrival time of each client order id.

    A picows listener, as are the WebSocket API's (`WsApi`): the load generator then spends
    little of its core per frame, so what the latency phase measures is the server's, not
    queueing in this process."""

    def __init__(self) -> None:
        self.count = 0
        self.arrivals: dict[str, float] = {}
        self.timed = False
        self._target = 0
        self._reached = asyncio.Event()

    @classmethod
    async def open(cls, ws_url: str, listen_key: str) -> Fills:
        _, fills = await picows.ws_connect(cls, f"{ws_url}/private/ws?listenKey={listen_key}")
        assert isinstance(fills, Fills)
        return fills

    def on_text(self, payload: bytes) -> None:
        if b"ORDER_TRADE_UPDATE" not in payload or FILLED not in payload:
            return
        self.count += 1
        if self.count >= self._target:
            self._reached.set()
        if self.timed:
            # The client order id, sliced out: `json.loads` of every FILLED event cost
            # the load generator ~10 µs of its ~160 per order.
            start = payload.index(CLIENT_ID) + len(CLIENT_ID)
            self.arrivals[payload[start : payload.index(b'"', start)].decode()] = (
                time.perf_counter()
            )

    async def wait(self, target: int, limit_s: float = 30.0) -> None:
        """Until `target` fills have arrived, or `limit_s` passed (a loss shows in the count)."""
        self._target = target
        self._reached = asyncio.Event()
        if self.count < target:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reached.wait(), limit_s)


class WsApi(TextListener):
    """A WebSocket API connection: `call` sends one request and waits for its answer;
    `answers` is given every answer frame (the order phases count them) instead."""

    def __init__(self) -> None:
        self.answers: Callable[[bytes], None] | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    @classmethod
    async def open(cls, ws_url: str) -> WsApi:
        _, api = await picows.ws_connect(cls, f"{ws_url}/ws-fapi/v1")
        assert isinstance(api, WsApi)
        return api

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.transport.send(picows.WSMsgType.TEXT, request)

    async def call(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = asyncio.get_running_loop().create_future()
        self._waiting[str(request["id"])] = answer
        self.send(json.dumps(request).encode())
        return await asyncio.wait_for(answer, WAIT_S)

    def on_text(self, payload: bytes) -> None:
        if self.answers is not None:
            self.answers(payload)
            return
        answer = json.loads(payload)
        waiting = self._waiting.pop(str(answer.get("id")), None)
        if waiting is not None and not waiting.done():
            waiting.set_result(answer)


def signed_order(api_key: str, secret: bytes, side: str, client_id: str | None = None) -> bytes:
    params = {"symbol": "BTCUSDT", "side": side, "type": "MARKET", "quantity": QTY}
    if client_id is not None:
        params["newClientOrderId"] = client_id
    query = urlencode({**params, "recvWindow": 60000, "timestamp": int(time.time() * 1000)})
    signature = hmac.new(secret, query.encode(), hashlib.sha256).hexdigest()
    return http_request(
        "POST", f"/fapi/v1/order?{query}&signature={signature}", b"", {"X-MBX-APIKEY": api_key}
    )


async def pipelined_rate(
    port: int, make: Any, connections: int, depth: int, seconds: float
) -> tuple[float, int]:
    """Requests/s over `connections` keep-alive connections, `depth` in flight on each."""
    conns = [await PipelinedHttp.open("127.0.0.1", port) for _ in range(connections)]
    sent = [0] * connections
    stop_at = time.perf_counter() + seconds

    async def drive(i: int) -> None:
        conn = conns[i]
        while time.perf_counter() < stop_at:
            conn.send(b"".join(make() for _ in range(depth)))
            sent[i] += depth
            await conn.wait_answered(sent[i])

    started = time.perf_counter()
    await asyncio.gather(*(drive(i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    failed = sum(c.failed for c in conns)
    if failed:
        print("first failure:", conns[0].first_failure[:300] or b"(another connection)")
    for conn in conns:
        conn.close()
    return sum(sent) / elapsed, failed


async def ws_orders(
    ws: WsApi,
    count: int,
    depth: int,
    rate: float | None,
    sends: dict[str, float],
    first: int = 0,
) -> float:
    """Send `count` order.place requests (`depth` in flight, or paced at `rate`/s), client
    order ids numbered from `first`; returns the achieved rate."""
    in_flight = asyncio.Semaphore(depth)
    done = asyncio.get_running_loop().create_future()
    answered = 0

    def answer(frame: bytes) -> None:
        nonlocal answered
        answered += 1
        in_flight.release()
        if b'"status":200' not in frame:
            print("refused:", frame[:200])
        if answered == count and not done.done():
            done.set_result(None)

    ws.answers = answer
    started = time.perf_counter()
    try:
        for n in range(count):
            await in_flight.acquire()
            if rate is not None:
                delay = started + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            client_id = f"b{first + n}"
            side = "BUY" if n % 2 == 0 else "SELL"
            request = (
                b'{"id":%d,"method":"order.place","params":{"symbol":"BTCUSDT","side":"%s",'
                b'"type":"MARKET","quantity":"%s","newClientOrderId":"%s"}}'
                % (n, side.encode(), QTY.encode(), client_id.encode())
            )
            sends[client_id] = time.perf_counter()
            ws.send(request)
        await asyncio.wait_for(done, 60)
    finally:
        ws.answers = None
    return count / (time.perf_counter() - started)


def engine_cpu_per_order(orders: int) -> float:
    """µs of CPU per MARKET order in `Engine.handle`, no I/O."""
    table = load_symbol_table()
    market = SyntheticMarket(table.symbols, seed=0, start_ms=1_800_000_000_000)
    engine = Engine(table.symbols, market)
    now = 1_800_000_000_000
    engine.handle(1, Deposit(asset="USDT", amount=Decimal(10**9)), now)
    commands = [
        NewOrder(
            symbol="BTCUSDT",
            side=Side.BUY if n % 2 == 0 else Side.SELL,
            order_type=OrderType.MARKET,
            quantity=Decimal(QTY),
            response_type=ResponseType.RESULT,
        )
        for n in range(orders)
    ]
    started = time.process_time()
    for command in commands:
        engine.handle(1, command, now)
    return (time.process_time() - started) / orders * 1e6


class ServerReady:
    """`start_pinned`'s readiness check for a venue server: keeps the URL it announces and
    returns the demo account line (`serve --initial-balance` prints it once ready)."""

    def __init__(self) -> None:
        self.url = ""

    def __call__(self, line: str) -> str | None:
        if line.startswith("userstream listening on "):
            self.url = line.split()[-1]
        elif line.startswith('{"demoAccount"'):
            return line
        return None


def serve_args(data: str) -> list[str]:
    """`userstream serve` arguments for order load: a funded demo account and no limits."""
    return [
        *("-m", "userstream.cli", "serve", "--port", "0", "--data", data),
        *("--admin-token", TOKEN, "--initial-balance", "1000000000"),
        *("--weight-per-minute", str(UNLIMITED_WEIGHT)),
        *("--orders-per-10s", str(UNLIMITED_WEIGHT)),
        *("--orders-per-minute", str(UNLIMITED_WEIGHT)),
    ]


@dataclass(frozen=True)
class DemoTrader:
    """The demo account as the load uses it: HMAC keys for REST, an Ed25519 key registered
    through the admin API for the WebSocket API's `session.logon`, and its listenKey."""

    api_key: str
    secret: bytes
    listen_key: str
    ed_key: str
    private: Ed25519PrivateKey

    @classmethod
    async def open(cls, url: str, demo: dict[str, Any]) -> DemoTrader:
        api_key = demo["apiKey"]
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": api_key}
            ) as response:
                listen_key = (await response.json())["listenKey"]
            private = Ed25519PrivateKey.generate()
            pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            async with http.post(
                f"{url}/admin/v1/accounts/{demo['accountId']}/apiKeys",
                json={"publicKey": pem.decode()},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as response:
                ed_key = (await response.json())["apiKey"]
        return cls(api_key, demo["secretKey"].encode(), listen_key, ed_key, private)

    async def logon(self, ws: WsApi) -> None:
        logon: dict[str, Any] = {"apiKey": self.ed_key, "timestamp": int(time.time() * 1000)}
        logon["signature"] = base64.b64encode(self.private.sign(ws_payload(logon))).decode()
        reply = await ws.call({"id": "logon", "method": "session.logon", "params": logon})
        assert reply["status"] == 200, reply


class AlternatingOrders:
    """Signed REST MARKET orders, BUY and SELL in turn (the position stays small); `count`
    is how many were made."""

    def __init__(self, trader: DemoTrader) -> None:
        self.trader = trader
        self.count = 0

    def __call__(self) -> bytes:
        self.count += 1
        side = "BUY" if self.count % 2 else "SELL"
        return signed_order(self.trader.api_key, self.trader.secret, side)


async def run(
    seconds: float,
    connections: int,
    depth: int,
    profile: str | None = None,
    latency: LatencyOptions = LatencyOptions(),
) -> VenueFigures:
    """Start the server, measure, stop it (bench/run.py calls this too). With `profile`, the
    server runs under cProfile and writes its statistics there when it stops."""
    ready = ServerReady()
    with tempfile.TemporaryDirectory() as data:
        stderr = os.path.join(data, "stderr.log")
        # The server's stderr goes nowhere (bench/common.py) unless its stall log is asked
        # for: then `env` and `sh` set the variable and redirect, and exec the server in the
        # same process (its pid is the one signalled and measured).
        wrap = (
            [
                "env",
                f"USERSTREAM_STALL_LOG={latency.stall_log_ms:g}",
                "sh",
                "-c",
                'exec "$@" 2>"$0"',
                stderr,
            ]
            if latency.stall_log_ms is not None
            else []
        )
        process, line = start_pinned(
            [
                *wrap,
                sys.executable,
                *(["-m", "cProfile", "-o", profile] if profile else []),
                *serve_args(os.path.join(data, "venue")),
            ],
            ready,
        )
        try:
            figures = await measure(
                process.pid,
                ready.url,
                json.loads(line)["demoAccount"],
                seconds,
                connections,
                depth,
                latency,
            )
        finally:
            stop(process)
        if latency.stall_log_ms is not None:
            figures.stalls = paced_stalls(stderr)
        return figures


_STALLED = re.compile(r"stalled ([0-9.]+) ms")


def paced_stalls(path: str) -> list[str]:
    """The stall log's lines between the SIGUSR1 before the paced phase and the one after."""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    ends = [n for n, line in enumerate(lines) if "garbage collections:" in line]
    if len(ends) < 2:
        return ["stall log: no summary for the paced phase", *lines[-5:]]
    phase = lines[ends[0] + 1 : ends[1] + 1]
    stalls = sorted(
        float(found.group(1)) for line in phase if (found := _STALLED.search(line)) is not None
    )
    collections = [line for line in phase if "garbage collection of" in line]
    summaries = [line.split("WARNING", 1)[-1].strip() for line in phase[-2:]]
    return [
        f"server loop stalls in the paced phase: {len(stalls)}"
        + (f" ({', '.join(f'{s:.1f}' for s in stalls[-12:])} ms longest)" if stalls else ""),
        f"slow garbage collections in the paced phase: {len(collections)}",
        *summaries,
    ]


async def measure(
    pid: int,
    url: str,
    demo: dict[str, Any],
    seconds: float,
    connections: int,
    depth: int,
    latency: LatencyOptions = LatencyOptions(),
) -> VenueFigures:
    figures = VenueFigures(latency_only=latency.only)
    port = int(url.rsplit(":", 1)[1])
    ws_url = url.replace("http://", "ws://")
    trader = await DemoTrader.open(url, demo)
    fills = await Fills.open(ws_url, trader.listen_key)
    in_flight = min(64, depth * connections)
    try:
        count = latency.prefill
        if not latency.only:
            ping = http_request("GET", "/fapi/v1/ping", b"", {})
            ping_rate, _ = await pipelined_rate(port, lambda: ping, connections, depth, seconds)
            figures.ping_rate = ping_rate

            orders = AlternatingOrders(trader)
            before, cpu_before = fills.count, cpu_seconds(pid)
            rest_rate, failed = await pipelined_rate(port, orders, connections, depth, seconds)
            rest_cpu = cpu_seconds(pid) - cpu_before
            await fills.wait(before + orders.count - failed)
            figures.rest_rate = rest_rate
            figures.rest_cpu_us = rest_cpu / max(orders.count, 1) * 1e6
            figures.lost += orders.count - failed - (fills.count - before)
            count = max(1000, int(rest_rate * seconds))

        ws = await WsApi.open(ws_url)
        try:
            await trader.logon(ws)
            before, cpu_before = fills.count, cpu_seconds(pid)
            ws_rate = await ws_orders(ws, count, in_flight, None, {})
            cpu = cpu_seconds(pid) - cpu_before
            await fills.wait(before + count)
            figures.ws_rate, figures.server_cpu_us = ws_rate, cpu / count * 1e6
            figures.lost += count - (fills.count - before)

            rate = latency.rate or ws_rate / 2
            paced = int(rate * seconds) if latency.only else count // 2
            sends: dict[str, float] = {}
            fills.timed = True
            fills.arrivals.clear()
            before = fills.count
            if latency.stall_log_ms is not None:
                os.kill(pid, signal.SIGUSR1)
            client_before = time.process_time()
            server_before, wall_before = cpu_seconds(pid), time.perf_counter()
            await ws_orders(ws, paced, in_flight, rate, sends, first=count)
            await fills.wait(before + paced, 5)
            figures.latency_server_share = (cpu_seconds(pid) - server_before) / (
                time.perf_counter() - wall_before
            )
            figures.client_cpu_us = (time.process_time() - client_before) / paced * 1e6
            if latency.stall_log_ms is not None:
                os.kill(pid, signal.SIGUSR1)
            latencies = sorted(
                (fills.arrivals[c] - sent) * 1e3 for c, sent in sends.items() if c in fills.arrivals
            )
            figures.half_rate = rate
            figures.p50_ms = statistics.median(latencies)
            figures.p99_ms = latencies[int(len(latencies) * 0.99) - 1]
            figures.lost += paced - len(latencies)
        finally:
            ws.close()
    finally:
        fills.close()
    if not latency.only:
        figures.engine_cpu_us = engine_cpu_per_order(2000)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="See the module docstring (bench/venue.py) for what each phase measures.",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each rate run")
    parser.add_argument("--connections", type=int, default=4, help="REST keep-alive connections")
    parser.add_argument("--depth", type=int, default=32, help="requests in flight per connection")
    parser.add_argument(
        "--profile", metavar="PATH", help="run the server under cProfile, statistics to PATH"
    )
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="only the order -> event latency: --prefill orders at full speed, then "
        "--seconds of orders paced at --rate",
    )
    parser.add_argument(
        "--rate",
        type=float,
        help="orders/s of the latency phase (default: half the measured WS API rate)",
    )
    parser.add_argument(
        "--prefill",
        type=int,
        default=LatencyOptions.prefill,
        help="with --latency-only, WS API orders at full speed first (the state a full run "
        "builds, and the rate measured)",
    )
    parser.add_argument(
        "--stall-log",
        type=float,
        metavar="MS",
        help="run the server with USERSTREAM_STALL_LOG=MS and print its loop stalls and "
        "slow garbage collections during the latency phase",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the figures as one JSON object (bench.run)"
    )
    args = parser.parse_args()
    pin_load()
    latency = LatencyOptions(args.latency_only, args.rate, max(1, args.prefill), args.stall_log)
    figures = uvloop.run(run(args.seconds, args.connections, args.depth, args.profile, latency))
    print(json.dumps(dataclasses.asdict(figures)) if args.json else "\n".join(figures.lines()))


async def run_apart(seconds: float, connections: int, depth: int) -> VenueFigures:
    """`run` in a new load process (`COMMAND --json`), as the command line runs it.

    `bench.run` measures the venue this way: its own process holds every earlier section's
    objects, and the garbage collector's passes over them would pause the load generator in
    the middle of the latency phase.
    """
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.venue", "--json", "--seconds", f"{seconds:g}"),
        *("--connections", str(connections), "--depth", str(depth)),
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bench.venue failed (exit status {process.returncode})")
    return VenueFigures(**json.loads(out.decode().splitlines()[-1]))


if __name__ == "__main__":
    main()
