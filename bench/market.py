"""Market fan-out: one symbol's `@bookTicker` and `@depth@100ms` plus ten symbols' `@aggTrade`
to every connection (issue 11, "Speed"), against raw picows and nats-server's WebSocket
listener pushing the same payloads.

    .venv/bin/python -m bench.market [--connections 1000] [--burst-ms 2000] [--duration 5]

Servers run pinned to core 0, this load process pins itself to core 1. Each connection counts
text frames (userstream, picows) or NATS `MSG`s (nats-server sends its protocol in binary
frames, several messages per frame).

- userstream: `bench/market.py --serve` runs `Server` with a burst source (ten symbols
  `B0USDT`..`B9USDT` cloned from BTCUSDT; per 50 ms tick one top-of-book change on `B0USDT`
  half-way between ticks and `--trades-per-tick` trades per symbol on the tick at
  alternating prices, so each is its own aggTrade) on a virtual clock:
  `POST /admin/v1/clock/advance` of `--burst-ms` makes every connection receive a known
  number of frames, the same way `burst n` drives the picows broadcaster. The source's
  updates go through `MarketState`, the depth batches, the encoders and the hub exactly as
  in `serve`.
- picows raw (coalesce): `bench/picows_broadcaster.py` with a file of the same payloads in
  the same mix, each connection's burst in one write.
- nats-server: one NATS subject per stream (twelve), every WebSocket subscriber on all of
  them, the payloads PUBlished over one pipelined TCP connection.

Reported: delivered messages/s and server CPU µs per message; then, on a real clock, the
latency from a source update to its receipt at half the measured userstream rate
(`--trades-per-tick` chosen for it; `--latency-rate` runs only this part, at a given rate),
read on every 20th connection. The update is the book change for the real-time
`@bookTicker` (its `T`), and the cadence point for the streams with a stated speed,
`@depth@100ms` and `@aggTrade` (their `E`): what a client of Binance waits for. The same
latency is then read from raw picows sending the same frames on the same schedule
(`_serve_floor`): one core's floor, since every update is a write to every connection and
the connection written last waits for all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import picows

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token"
SYMBOLS = [f"B{i}USDT" for i in range(10)]
TICK_MS = 50
BOOK_LEAD_MS = TICK_MS // 2  # the book changes between the service's ticks
TRADE_QTY = Decimal("1.001")
START_MS = 1_767_225_600_000
SAMPLE_EVERY_CONN = 20


# ------------------------------------------------------------------------------------------
# the server side (`--serve`): runs in its own process, imports only userstream


def _symbols_file(directory: Path) -> Path:
    from importlib import resources

    packaged = json.loads(resources.files("userstream").joinpath("data/symbols.json").read_text())
    btc = next(s for s in packaged["symbols"] if s["symbol"] == "BTCUSDT")
    rows = [{**btc, "symbol": name, "pair": name, "baseAsset": name[:-4]} for name in SYMBOLS]
    path = directory / "symbols.json"
    path.write_text(json.dumps({"assets": packaged["assets"], "symbols": rows}))
    return path


class BurstSource:
    """A `MarketSource` whose load is set by `trades_per_tick` (fractions accumulate)."""

    def __init__(self, trades_per_tick: float) -> None:
        from userstream.market.book import OrderBook
        from userstream.market.types import Level

        self._rate = trades_per_tick
        self._owed = 0.0
        self._now = 0
        self._trade_id = 0
        self._books = {s: OrderBook(s, 1_000) for s in SYMBOLS}
        self._base = Decimal("60000.0")
        self._tick = Decimal("0.1")
        for book in self._books.values():
            book.replace(
                [Level(self._base - self._tick * k, Decimal("1.000")) for k in range(1, 21)],
                [Level(self._base + self._tick * k, Decimal("1.000")) for k in range(1, 21)],
                1_000,
            )
        self._flip = 0

    @property
    def symbols(self) -> Sequence[str]:
        return SYMBOLS

    def book(self, symbol: str) -> Any:
        return self._books[symbol]

    def mark(self, symbol: str) -> Any:
        from userstream.market.types import MarkUpdate

        return MarkUpdate(
            symbol, self._base, self._base, self._base, Decimal("0.0001"), Decimal("0.0001"),
            self._now - self._now % 28_800_000 + 28_800_000, self._now,
        )  # fmt: skip

    def next_update_ms(self) -> int:
        """The next book change or trade tick (`server.market.TimedSource`): on a real clock
        the service advances at each, so `@bookTicker` leaves at the change."""
        tick = self._now - self._now % TICK_MS + TICK_MS
        return tick - BOOK_LEAD_MS if tick - BOOK_LEAD_MS > self._now else tick

    def advance(self, now_ms: int) -> list[Any]:
        from userstream.market.types import BookUpdate, Level, Trade

        previous, self._now = self._now, now_ms
        if previous == 0:
            return []
        out: list[Any] = []
        # the book change of tick t is at t - BOOK_LEAD_MS, its trades at t
        first_tick = previous - previous % TICK_MS + TICK_MS - TICK_MS
        for tick in range(first_tick, now_ms + BOOK_LEAD_MS + 1, TICK_MS):
            if previous < tick - BOOK_LEAD_MS <= now_ms:
                self._flip ^= 1
                book = self._books[SYMBOLS[0]]
                first = book.last_update_id + 1
                qty = Decimal("1.000") + Decimal(self._flip) / 1000
                bids = (
                    Level(self._base - self._tick, qty),
                    Level(self._base - self._tick * 5, qty),
                )
                asks = (
                    Level(self._base + self._tick, qty),
                    Level(self._base + self._tick * 5, qty),
                )
                update = BookUpdate(SYMBOLS[0], first, first + 2, bids, asks, tick - BOOK_LEAD_MS)
                book.apply(update)
                out.append(update)
            if not previous < tick <= now_ms:
                continue
            self._owed += self._rate
            count, self._owed = int(self._owed), self._owed - int(self._owed)
            for symbol in SYMBOLS:
                for n in range(count):
                    self._trade_id += 1
                    price = self._base + self._tick * (n % 2)
                    out.append(Trade(symbol, self._trade_id, price, TRADE_QTY, n % 2 == 0, tick))
        return out


async def _serve(trades_per_tick: float, virtual: bool) -> None:
    from userstream import ManualClock, Server, ServerConfig
    from userstream.clock import SystemClock
    from userstream.server.app import WeightLimits

    with tempfile.TemporaryDirectory(prefix="userstream-market-bench-") as tmp:
        config = ServerConfig(
            port=0,
            data_dir=Path(tmp),
            clock=ManualClock(START_MS) if virtual else SystemClock(),
            admin_token=TOKEN,
            weight_limits=WeightLimits(per_minute=1_000_000_000),
            symbols_file=str(_symbols_file(Path(tmp))),
            market_source=BurstSource(trades_per_tick),
            max_unsent_bytes=256 * 1024 * 1024,
            tune_gc=True,
        )
        async with Server(config) as server:
            print(f"userstream listening on {server.url}", flush=True)
            await asyncio.Event().wait()


def _floor_payloads(trades: int, depth: bool, stamp: int) -> list[bytes]:
    """A grid tick's frames as userstream sends them at this load, stamped `stamp`: one
    aggTrade per trade of every symbol, and the depth diff every 100 ms."""
    import msgspec

    from userstream.protocol.market import AggTradeEvent, DepthUpdateEvent

    encode = msgspec.json.Encoder().encode
    out = []
    if depth:
        levels = [("59999.90", "1.001"), ("59999.50", "1.001")]
        asks = [("60000.10", "1.001"), ("60000.50", "1.001")]
        out.append(
            encode(
                DepthUpdateEvent(
                    "depthUpdate", stamp, stamp, SYMBOLS[0], 1004, 1006, 1003, levels, asks
                )
            )
        )
    for n in range(trades):
        for s in SYMBOLS:
            price = "60000.10" if n % 2 else "60000.00"
            event = AggTradeEvent(
                "aggTrade", stamp, s, n, price, "1.001", "1.001", n, n, stamp, n % 2 == 0
            )
            out.append(encode(event))
    return out


async def _serve_floor(trades_per_tick: float) -> None:
    """The latency floor beside `_serve`: raw picows on the same real-clock schedule (the book
    change half-way between ticks, each tick's trades at the tick, a depth diff every 100 ms),
    each update's frames framed once and written to every connection in one
    `transport.write`, as `picows_broadcaster.py --mode coalesce` does: nothing between the
    update and the sockets but the writes themselves."""
    import msgspec

    from userstream.clock import SystemClock
    from userstream.protocol.market import BookTickerEvent
    from userstream.protocol.wsframes import text_frame

    encode = msgspec.json.Encoder().encode
    clients: list[picows.WSTransport] = []

    class Listener(picows.WSListener):
        def on_ws_connected(self, transport: picows.WSTransport) -> None:
            clients.append(transport)

        def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
            clients.remove(transport)

    server = await picows.ws_create_server(lambda _request: Listener(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"floor listening on ws://127.0.0.1:{port}", flush=True)

    async def send(payloads: list[bytes]) -> None:
        blob = b"".join(text_frame(payload) for payload in payloads)
        for client in clients:
            client.underlying_transport.write(blob)
        # uvloop writes at the end of this turn and times its next poll from the clock read
        # at the turn's start: two turns make it read the clock again (as `Scheduler` does)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    clock = SystemClock()
    owed = 0.0
    now = clock.now_ms()
    tick = now - now % TICK_MS + TICK_MS
    while True:
        book_at = tick - BOOK_LEAD_MS
        await clock.sleep_until(book_at)
        book = BookTickerEvent("bookTicker", tick, SYMBOLS[0], "59999.90", "1.001",
                               "60000.10", "1.001", book_at, book_at)  # fmt: skip
        await send([encode(book)])
        await clock.sleep_until(tick)
        owed += trades_per_tick
        count, owed = int(owed), owed - int(owed)
        await send(_floor_payloads(count, tick % 100 == 0, tick))
        tick += TICK_MS


# ------------------------------------------------------------------------------------------
# the load side


def _streams() -> list[str]:
    first = SYMBOLS[0].lower()
    return [f"{first}@bookTicker", f"{first}@depth@100ms"] + [
        f"{s.lower()}@aggTrade" for s in SYMBOLS
    ]


def frames_per_connection(burst_ms: int, trades_per_tick: float) -> int:
    """Frames one connection gets from a burst: a bookTicker per tick, a depth diff per
    100 ms, one aggTrade per trade (consecutive trades never merge: prices alternate)."""
    ticks = burst_ms // TICK_MS
    return ticks + burst_ms // 100 + round(ticks * trades_per_tick) * len(SYMBOLS)


def sample_payloads(trades_per_tick: int) -> list[bytes]:
    """One 100 ms of the userstream burst's payloads, in its mix, encoded by the same structs."""
    import msgspec

    from userstream.protocol.market import AggTradeEvent, BookTickerEvent, DepthUpdateEvent

    encode = msgspec.json.Encoder().encode
    now = START_MS
    book = encode(
        BookTickerEvent("bookTicker", 1003, SYMBOLS[0], "59999.90", "1.001", "60000.10",
                        "1.001", now, now)
    )  # fmt: skip
    levels = [("59999.90", "1.001"), ("59999.50", "1.001")]
    asks = [("60000.10", "1.001"), ("60000.50", "1.001")]
    depth = encode(
        DepthUpdateEvent("depthUpdate", now, now, SYMBOLS[0], 1004, 1006, 1003, levels, asks)
    )
    aggs = [
        encode(AggTradeEvent("aggTrade", now, s, 7, "60000.10", "1.001", "1.001", 9, 9, now, True))
        for s in SYMBOLS
    ]
    return [book, depth, book] + aggs * (2 * trades_per_tick)


@contextmanager
def _process(cmd: list[str], marker: str) -> Iterator[str]:
    from bench.common import start_pinned, stop

    process, value = start_pinned(
        cmd, lambda line: line.split()[-1] if line.startswith(marker) else None
    )
    try:
        yield f"{value}|{process.pid}"
    finally:
        stop(process)


async def _http(port: int, method: str, path: str, body: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    answer = await reader.read()
    writer.close()
    return answer


async def _run_bursts(
    urls: list[str],
    kind: str,
    publish: Any,
    per_conn: int,
    bursts: int,
    pid: int,
    carry: int = 0,
) -> tuple[float, float]:
    """Connect, run `bursts` bursts of `per_conn` frames per connection; (msgs/s, µs/msg).
    `carry` frames per connection of each burst only go out with the next one."""
    from bench.common import Counter, Received, cpu_seconds
    from bench.nats_fanout import NatsCounter

    received = Received()
    conns = []
    for url in urls:
        factory = (
            (lambda: NatsCounter(received, b"mkt.>"))
            if kind == "nats"
            else (lambda: Counter(received))
        )
        transport, _ = await picows.ws_connect(factory, url)
        conns.append(transport)
    await asyncio.sleep(0.5)  # subscriptions in place (SUBSCRIBE-free URL forms answer no ACK)
    base = received.count
    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    for index in range(bursts):
        await publish(index)
        await received.settle(base + ((index + 1) * per_conn - carry) * len(urls))
    wall = received.last - wall0
    cpu = cpu_seconds(pid) - cpu0
    count = received.count - base
    for conn in conns:
        conn.disconnect()
    return count / wall, cpu / max(count, 1) * 1e6


async def _userstream(args: argparse.Namespace) -> tuple[float, float]:
    serve = [sys.executable, str(Path(__file__)), "--serve", "--trades-per-tick",
             str(args.trades_per_tick), "--virtual"]  # fmt: skip
    with _process(serve, "userstream listening on") as found:
        url, pid = found.split("|")
        port = int(url.rsplit(":", 1)[1])
        target = "/stream?streams=" if args.combined else "/ws?streams="
        joined = "/".join(_streams())
        urls = [f"ws://127.0.0.1:{port}{target}{joined}"] * args.connections
        per_conn = frames_per_connection(args.burst_ms, args.trades_per_tick)
        body = json.dumps({"ms": args.burst_ms, "stepMs": 1000}).encode()

        async def publish(index: int) -> None:
            asyncio.get_running_loop().create_task(
                _http(port, "POST", "/admin/v1/clock/advance", body)
            )

        # Each symbol's last aggregate of a burst is final only 100 ms later: in the next one.
        carry = len(SYMBOLS)
        return await _run_bursts(urls, "ws", publish, per_conn, args.bursts, int(pid), carry)


async def _picows(args: argparse.Namespace) -> tuple[float, float]:
    payloads = sample_payloads(int(args.trades_per_tick))
    per_conn = frames_per_connection(args.burst_ms, args.trades_per_tick)
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as file:
        file.write(b"\n".join(payloads) + b"\n")
        file.flush()
        script = str(ROOT / "bench" / "picows_broadcaster.py")
        cmd = [sys.executable, script, "--payloads", file.name, "--mode", "coalesce"]
        with _process(cmd, "ready") as found:
            port, pid = (int(part) for part in found.split("|"))
            urls = [f"ws://127.0.0.1:{port}/m"] * args.connections
            control, _ = await picows.ws_connect(picows.WSListener, f"ws://127.0.0.1:{port}/")

            async def publish(index: int) -> None:
                control.send(picows.WSMsgType.TEXT, f"burst {per_conn}".encode())

            try:
                return await _run_bursts(urls, "ws", publish, per_conn, args.bursts, pid)
            finally:
                control.disconnect()


async def _nats(args: argparse.Namespace) -> tuple[float, float]:
    from bench.nats_fanout import nats_websocket_server, open_publisher, pub

    payloads = sample_payloads(int(args.trades_per_tick))
    per_conn = frames_per_connection(args.burst_ms, args.trades_per_tick)
    subjects = [b"mkt.book", b"mkt.depth"] + [b"mkt.agg." + s.encode() for s in SYMBOLS]
    names = [subjects[0], subjects[1], subjects[0]] + subjects[2:] * (2 * int(args.trades_per_tick))
    pubs = [pub(name, payload) for name, payload in zip(names, payloads, strict=True)]
    blob = b"".join(pubs) * (per_conn // len(pubs)) + b"".join(pubs[: per_conn % len(pubs)])
    with nats_websocket_server() as server:
        _, writer = await open_publisher(server.port)
        urls = [f"ws://127.0.0.1:{server.ws_port}/"] * args.connections

        async def publish(index: int) -> None:
            writer.write(blob)
            await writer.drain()

        try:
            return await _run_bursts(urls, "nats", publish, per_conn, args.bursts, server.pid)
        finally:
            writer.close()


class _Drain(asyncio.Protocol):
    """A connection that only has to be written to: after the WebSocket handshake it reads
    and drops whatever arrives, one callback per read instead of one per frame."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._head = b""
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport.write(
            f"GET {self._path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        if self.open.done():
            return
        self._head += data
        if b"\r\n\r\n" in self._head:
            if not self._head.startswith(b"HTTP/1.1 101"):
                self.open.set_exception(RuntimeError(self._head.split(b"\r\n")[0].decode()))
            else:
                self.open.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(ConnectionError("closed before the handshake"))


async def _latency(args: argparse.Namespace, rate: float, floor: bool = False) -> list[float]:
    """Update→receive at `rate` delivered msgs/s on a real clock, sampled per connection:
    from userstream, or (`floor`) from raw picows on the same schedule (`_serve_floor`).

    Every connection is written the same frames, but only every `SAMPLE_EVERY_CONN`th one
    parses them: the others drop what they read (`_Drain`). One process on one core stands
    in for a thousand clients, each of which would parse its own frames on its own machine;
    parsing all of them here (`--parse-every-connection`) makes a tick's last sampled
    receipt wait for this process to work through every connection's frames (37,000 at
    half load), not for the server to write them."""
    per_conn_per_s = rate / args.connections
    trades = max(0.05, (per_conn_per_s - 30) / (20 * len(SYMBOLS)))
    mode = "--floor-serve" if floor else "--serve"
    serve = [sys.executable, str(Path(__file__)), mode, "--trades-per-tick", str(trades)]
    marker = "floor listening on" if floor else "userstream listening on"
    latencies: list[float] = []

    class Stamps(picows.WSListener):
        def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
            payload = frame.get_payload_as_bytes()
            # from the update for a real-time stream, from the cadence point for the others
            at = payload.find(b'"T":' if payload.startswith(b'{"e":"bookTicker"') else b'"E":')
            if at >= 0:
                end = payload.find(b",", at)
                latencies.append(time.time_ns() / 1e6 - int(payload[at + 4 : end]))

    with _process(serve, marker) as found:
        url = found.split("|")[0]
        port = int(url.rsplit(":", 1)[1])
        target = f"ws://127.0.0.1:{port}/ws?streams=" + "/".join(_streams())
        path = target.split(str(port), 1)[1]
        loop = asyncio.get_running_loop()
        conns: list[picows.WSTransport] = []
        drains: list[_Drain] = []
        for index in range(args.connections):
            if index % SAMPLE_EVERY_CONN == 0 or args.parse_every_connection:
                factory = Stamps if index % SAMPLE_EVERY_CONN == 0 else picows.WSListener
                transport, _ = await picows.ws_connect(factory, target)
                conns.append(transport)
            else:
                _, drain = await loop.create_connection(lambda: _Drain(path), "127.0.0.1", port)
                await drain.open
                drains.append(drain)
        await asyncio.sleep(1.0)
        latencies.clear()
        await asyncio.sleep(args.duration)
        for conn in conns:
            conn.disconnect()
        for drain in drains:
            assert drain.transport is not None
            drain.transport.abort()
    return sorted(latencies)


def _percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q / 100))] if values else float("nan")


async def _main(args: argparse.Namespace) -> None:
    from bench.common import machine, pin_load, raise_nofile

    pin_load()
    raise_nofile()
    per_conn = frames_per_connection(args.burst_ms, args.trades_per_tick)
    print(
        f"# {machine()}; {args.connections} connections x 12 streams; "
        f"{per_conn} msgs per connection per burst, {args.bursts} bursts",
        flush=True,
    )
    results = {}
    for name, run in (("userstream", _userstream), ("picows raw (coalesce)", _picows),
                      ("nats-server websocket", _nats)):  # fmt: skip
        if args.latency_rate:
            break
        rate, cpu = await run(args)
        results[name] = rate
        print(f"{name:<24} {rate:>12,.0f} msgs/s  {cpu:6.2f} µs/msg server CPU", flush=True)
    if results:
        share = results["userstream"] / results["picows raw (coalesce)"]
        print(f"userstream / picows raw: {share:.0%}", flush=True)
    if args.latency or args.latency_rate:
        rate = args.latency_rate or results["userstream"] / 2
        load = "" if args.latency_rate else " (half load)"
        for name, floor in (("userstream", False), ("picows raw (coalesce)", True)):
            values = await _latency(args, rate, floor)
            print(
                f"{name} at ~{rate:,.0f} msgs/s{load}, update→receive over "
                f"{len(values)} samples: p50 {_percentile(values, 50):.2f} "
                f"p99 {_percentile(values, 99):.2f} ms (stamps have 1 ms resolution)",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--virtual", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor-serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--trades-per-tick", type=float, default=2.0)
    parser.add_argument("--burst-ms", type=int, default=2000, help="virtual ms per burst")
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--combined", action="store_true", help="/stream envelopes")
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--duration", type=float, default=5.0, help="latency run, seconds")
    parser.add_argument(
        "--latency-rate", type=float, default=0.0, help="only the latency run, at this msgs/s"
    )
    parser.add_argument(
        "--parse-every-connection",
        action="store_true",
        help="latency run: every connection parses its frames, not only the sampled ones",
    )
    args = parser.parse_args()
    import uvloop

    if args.serve:
        uvloop.run(_serve(args.trades_per_tick, args.virtual))
    elif args.floor_serve:
        uvloop.run(_serve_floor(args.trades_per_tick))
    else:
        uvloop.run(_main(args))


if __name__ == "__main__":
    main()
