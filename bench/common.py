"""What every benchmark shares: events, pinned server processes, counting clients, /proc reads.

Servers under test run pinned to core 0 (`taskset -c 0`); the load generator pins itself to
core 1 (`pin_load()`). Every figure is taken from /proc: CPU time from `/proc/<pid>/stat`
(utime + stime, the process and its reaped children), RSS from `/proc/<pid>/status`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import picows

from userstream.protocol.codec import encode_event
from userstream.protocol.events import (
    AccountUpdate,
    AccountUpdateData,
    Balance,
    Event,
    OrderTradeUpdate,
    OrderUpdate,
    Position,
    TradeLite,
)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CORE = 0
LOAD_CORE = 1
# Latency runs carry the publish time (time.time_ns(), 19 digits) in the client order id.
STAMP_PREFIX = b'"c":"t'
STAMP_DIGITS = 19
STAMP_PLACEHOLDER = "t" + "0" * STAMP_DIGITS
UNLIMITED_WEIGHT = 1_000_000_000
WAIT_S = 60.0  # no single wait for frames or answers lasts longer
QUIET_S = 0.5  # a server that sent nothing for this long has lost the rest
SERVER_LOG_ENV = "BENCH_SERVER_LOG"
LOSS_TOLERANCE = 0.02  # pacing waits for 98% of a round: nchan drops some under load


def pin_load() -> None:
    """Pin this (load generator) process to the load core, away from the server."""
    os.sched_setaffinity(0, {LOAD_CORE})


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit; returns the new soft limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and of its threads (and of its live children, for nginx)."""
    total = _own_cpu(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            total += _own_cpu(int(child))
    return total


def _own_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` plus its live children (nginx workers)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    total = 0
    for one in pids:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def machine() -> str:
    model = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{model}, {os.cpu_count()} cores, {mem_kb / 2**20:.0f} GiB, Linux {platform.release()}"


def versions() -> dict[str, str]:
    found = {"Python": platform.python_version()}
    for name in ("userstream", "picows", "uvloop", "msgspec", "httptools", "pydantic"):
        try:
            found[name] = version(name)
        except Exception:
            continue
    return found


# events


def order_trade_update(n: int) -> OrderTradeUpdate:
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


def trade_lite(n: int) -> TradeLite:
    now = 1_771_856_732_584 + n
    return TradeLite(
        event_time=now,
        transaction_time=now,
        symbol="SOLUSDT",
        original_quantity=Decimal("12.50"),
        original_price=Decimal("80.1900"),
        is_maker=True,
        client_order_id=f"bench_{n:012d}",
        side="BUY",
        last_filled_price=Decimal("80.1900"),
        last_filled_quantity=Decimal("0.10"),
        trade_id=3_181_138_052 + n,
        order_id=199_033_476_993 + n,
    )


def account_update(n: int) -> AccountUpdate:
    now = 1_771_856_732_584 + n
    return AccountUpdate(
        transaction_time=now,
        event_time=now,
        update=AccountUpdateData(
            balances=(
                Balance(
                    asset="USDT",
                    wallet_balance=Decimal("10234.51208360"),
                    cross_wallet_balance=Decimal("10234.51208360"),
                    balance_change=Decimal("0"),
                ),
            ),
            positions=(
                Position(
                    symbol="SOLUSDT",
                    position_amount=Decimal("2.30"),
                    entry_price=Decimal("80.18500000"),
                    accumulated_realized=Decimal("-1.20431000"),
                    unrealized_pnl=Decimal("0.01150000"),
                    margin_type="cross",
                    isolated_wallet=Decimal("0"),
                    position_side="BOTH",
                    margin_asset="USDT",
                    breakeven_price=Decimal("80.22510000"),
                ),
            ),
            reason="ORDER",
        ),
    )


def realistic_events(count: int) -> list[Event]:
    """A fill as Binance sends it: ORDER_TRADE_UPDATE, TRADE_LITE, ACCOUNT_UPDATE, repeated."""
    makers: list[Callable[[int], Event]] = [order_trade_update, trade_lite, account_update]
    return [makers[n % 3](n) for n in range(count)]


def encoded_events(count: int) -> list[bytes]:
    return [encode_event(event) for event in realistic_events(count)]


def stamped(raw: bytes) -> bytes:
    """`raw` with its client order id (if any) replaced by the latency stamp placeholder."""
    start = raw.find(b'"c":"')
    if start < 0:
        return raw
    start += 5
    end = raw.index(b'"', start)
    return raw[:start] + STAMP_PLACEHOLDER.encode() + raw[end:]


def stamp_offsets(body: bytes) -> list[int]:
    """Where each stamp's digits start in `body`."""
    offsets, at = [], body.find(STAMP_PREFIX)
    while at >= 0:
        offsets.append(at + len(STAMP_PREFIX))
        at = body.find(STAMP_PREFIX, at + 1)
    return offsets


def apply_stamp(body: bytearray, offsets: list[int], now_ns: int) -> None:
    digits = str(now_ns).rjust(STAMP_DIGITS, "0").encode()
    for offset in offsets:
        body[offset : offset + STAMP_DIGITS] = digits


def read_stamp(payload: bytes) -> int:
    """The publish time in a received frame, or -1."""
    at = payload.find(STAMP_PREFIX)
    if at < 0:
        return -1
    at += len(STAMP_PREFIX)
    return int(payload[at : at + STAMP_DIGITS])


# counting clients


class Received:
    """Frames received on every connection; `wait_for(n)` resumes once n have arrived."""

    def __init__(self) -> None:
        self.count = 0
        self.waiter: asyncio.Future[None] | None = None
        self.target = 0
        self.latencies_ns: list[int] | None = None
        self.last = 0.0

    def hit(self) -> None:
        self.count += 1
        self.last = time.perf_counter()
        if self.waiter is not None and self.count >= self.target and not self.waiter.done():
            self.waiter.set_result(None)

    def hits(self, frames: int) -> None:
        """`frames` more frames arrived at once (a counting connection's read)."""
        self.count += frames
        self.last = time.perf_counter()
        if self.waiter is not None and self.count >= self.target and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait_for(self, target: int) -> None:
        if self.count >= target:
            return
        self.target = target
        self.waiter = asyncio.get_running_loop().create_future()
        async with asyncio.timeout(WAIT_S):
            await self.waiter

    async def settle(self, target: int) -> None:
        """Wait for `target` frames, or until none has arrived for `QUIET_S` (frames lost)."""
        while self.count < target:
            before = self.count
            try:
                self.target = target
                self.waiter = asyncio.get_running_loop().create_future()
                async with asyncio.timeout(QUIET_S):
                    await self.waiter
            except TimeoutError:
                if self.count == before:
                    return


class Counter(picows.WSListener):
    """Counts text frames (and reads latency stamps once `received.latencies_ns` is set, on
    the connections that measure).

    The count reaches `received` once per read (picows flags the last complete frame of each
    read `last_in_buffer`), not once per frame: a frame read costs the load process less, and
    so does every frame after it in that read, whose stamps are read that much sooner."""

    def __init__(self, received: Received, measures: bool = True, sample_every: int = 1) -> None:
        self.received = received
        self.measures = measures
        self.sample_every = sample_every
        self.frames = 0
        self._unreported = 0

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == picows.WSMsgType.TEXT:
            self.frames += 1
            self._unreported += 1
            latencies = self.received.latencies_ns
            if latencies is not None and self.measures and not self.frames % self.sample_every:
                stamp = read_stamp(frame.get_payload_as_bytes())
                if stamp > 0:
                    latencies.append(time.time_ns() - stamp)
        elif frame.msg_type == picows.WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        if frame.last_in_buffer and self._unreported:
            self.received.hits(self._unreported)
            self._unreported = 0


class TextListener(picows.WSListener):
    """A picows client listener that answers pings and hands each text frame's payload to
    `on_text` (the load's WebSocket API and user stream clients)."""

    transport: picows.WSTransport | None = None

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == picows.WSMsgType.TEXT:
            self.on_text(frame.get_payload_as_bytes())
        elif frame.msg_type == picows.WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())

    def on_text(self, payload: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.transport is not None:
            self.transport.disconnect()


OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING = 0x0, 0x1, 0x2, 0x8, 0x9
CLOSE_NORMAL = 1000


class FrameTally:
    """Counts the data messages in a stream of server WebSocket frames fed in chunks of any size.

    Only frame headers are read (RFC 6455 section 5.2; server frames are unmasked): a data
    payload is skipped, not copied or decoded, so a connection that only counts costs the load
    process a few hundred nanoseconds a frame instead of a parsed message. Control frames (at
    most 125 bytes) are kept whole in `controls` for the caller to answer.
    """

    def __init__(self) -> None:
        self._pending = b""  # an incomplete header or control frame
        self._skip = 0  # payload bytes of the current data frame still to come
        self._owed = 0  # 1 when the frame being skipped ends a message
        self.controls: list[tuple[int, bytes]] = []

    def feed(self, data: bytes) -> int:
        """How many data messages `data` completes."""
        done = 0
        if self._skip:
            if self._skip > len(data):
                self._skip -= len(data)
                return 0
            data = data[self._skip :]
            self._skip = 0
            done, self._owed = self._owed, 0
        if self._pending:
            data = self._pending + data
            self._pending = b""
        pos, size = 0, len(data)
        while pos < size:
            if size - pos < 2:
                self._pending = data[pos:]
                break
            first, length = data[pos], data[pos + 1]
            if length & 0x80:
                raise ValueError("a server frame is masked (RFC 6455 section 5.1)")
            head = 2
            if length == 126:
                head = 4
                if size - pos < head:
                    self._pending = data[pos:]
                    break
                length = int.from_bytes(data[pos + 2 : pos + 4])
            elif length == 127:
                head = 10
                if size - pos < head:
                    self._pending = data[pos:]
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10])
            end = pos + head + length
            opcode = first & 0x0F
            if opcode >= OP_CLOSE:
                if end > size:
                    self._pending = data[pos:]
                    break
                self.controls.append((opcode, data[pos + head : end]))
            elif end > size:
                self._skip = end - size
                self._owed = first >> 7
                break
            else:
                done += first >> 7
            pos = end
        return done


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (RFC 6455 section 5.3) carrying a control payload (<= 125 B)."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked


class CountingConnection(asyncio.Protocol):
    """A WebSocket client that only counts the messages it receives, from their frame headers.

    What a latency run's connections that read no stamps use: their share of the load
    process's core goes to the connections that do (see `fanout.latency`). `close()` is the
    close handshake (RFC 6455 section 7): a Close frame, then the server's, then TCP close.
    """

    def __init__(self, received: Received, host: str, path: str) -> None:
        self.received = received
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n\r\n"
        ).encode()
        self.tally = FrameTally()
        self.transport: asyncio.Transport | None = None
        self._head = b""
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._closing = False

    @classmethod
    async def open(cls, received: Received, url: str) -> CountingConnection:
        """Connect to a `ws://host:port/path` URL and finish the opening handshake."""
        address, _, path = url.removeprefix("ws://").partition("/")
        host, _, port = address.rpartition(":")
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            lambda: cls(received, address, "/" + path), host, int(port)
        )
        async with asyncio.timeout(WAIT_S):
            await connection.opened
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the opening handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self._head += data
            head, found, data = self._head.partition(b"\r\n\r\n")
            if not found:
                return
            self._head = b""
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(f"handshake refused: {head[:200]!r}"))
                return
            self.opened.set_result(None)
            if not data:
                return
        frames = self.tally.feed(data)
        if frames:
            self.received.hits(frames)
        if self.tally.controls:
            self._answer(self.tally.controls)
            self.tally.controls = []

    def _answer(self, controls: list[tuple[int, bytes]]) -> None:
        assert self.transport is not None
        for opcode, payload in controls:
            if opcode == OP_PING:
                self.transport.write(client_frame(0xA, payload))
            elif opcode == OP_CLOSE:
                if not self._closing:
                    self._closing = True
                    self.transport.write(client_frame(OP_CLOSE, payload[:2]))
                self.transport.close()

    def close(self) -> None:
        """Start the close handshake; `closed` resolves once the connection is gone."""
        if self.transport is None or self._closing or self.transport.is_closing():
            return
        self._closing = True
        self.transport.write(client_frame(OP_CLOSE, CLOSE_NORMAL.to_bytes(2)))


async def connect_all(
    urls: list[str],
    received: Received,
    measure_every: int = 1,
    sample_every: int = 1,
    count_raw: bool = False,
) -> list[picows.WSTransport | CountingConnection]:
    """Connect to `urls` in order; connection i reads latency stamps when
    `i % measure_every == measure_every - 1`, from every `sample_every`-th frame it gets
    (see `fanout.latency`). With `count_raw`, the connections that read no stamps are
    `CountingConnection`s instead of picows clients."""
    connections: list[picows.WSTransport | CountingConnection] = []
    for index, url in enumerate(urls):
        measures = index % measure_every == measure_every - 1
        if count_raw and not measures:
            connections.append(await CountingConnection.open(received, url))
            continue
        transport, _ = await picows.ws_connect(
            lambda m=measures: Counter(received, m, sample_every), url
        )
        connections.append(transport)
    return connections


async def close_all(connections: list[picows.WSTransport | CountingConnection]) -> None:
    """Close every connection; counting ones with the close handshake (bounded by QUIET_S)."""
    counting = []
    for connection in connections:
        if isinstance(connection, CountingConnection):
            connection.close()
            counting.append(connection.closed)
        else:
            connection.disconnect()
    if counting:
        await asyncio.wait(counting, timeout=QUIET_S)
        for connection in connections:
            if isinstance(connection, CountingConnection) and not connection.closed.done():
                assert connection.transport is not None
                connection.transport.abort()


# pipelined HTTP/1.1 (the load generator's publisher; cheap enough not to be the bottleneck)


class PipelinedHttp(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection that writes requests back to back and counts answers.

    Answers are counted by their status lines; the bodies of the servers under test (JSON, or
    nchan's plain-text channel info) never contain `HTTP/1.1 `.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.answered = 0
        self.failed = 0
        self.first_failure = b""
        self._tail = b""
        self._waiter: asyncio.Future[None] | None = None
        self._target = 0
        self.lost = asyncio.get_event_loop().create_future()

    @classmethod
    async def open(cls, host: str, port: int) -> PipelinedHttp:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("server closed the connection"))

    def data_received(self, data: bytes) -> None:
        chunk = self._tail + data
        answers = chunk.count(b"HTTP/1.1 ")
        ok = chunk.count(b"HTTP/1.1 2")
        if ok != answers and not self.first_failure:
            self.first_failure = chunk[:400]
        self.answered += answers
        self.failed += answers - ok
        self._tail = chunk[-10:]
        if (b"HTTP/1.1 ") in self._tail:
            # Counted already: keep only what follows it so it is not counted twice.
            self._tail = self._tail[self._tail.rindex(b"HTTP/1.1 ") + 9 :]
        if self._waiter is not None and self.answered >= self._target and not self._waiter.done():
            self._waiter.set_result(None)

    def send(self, data: bytes | bytearray) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def wait_answered(self, target: int) -> None:
        if self.answered >= target:
            return
        self._target = target
        self._waiter = asyncio.get_running_loop().create_future()
        async with asyncio.timeout(WAIT_S):
            await self._waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def http_request(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# servers under test


def _server_limits() -> None:
    raise_nofile()


def start_pinned(
    cmd: list[str], ready: Callable[[str], str | None], timeout: float = 30.0
) -> tuple[subprocess.Popen[str], str]:
    """Start `cmd` pinned to the server core; returns it and `ready(line)` of its stdout.

    The server's stderr is dropped unless `$BENCH_SERVER_LOG` names a file to append it to
    (e.g. to read what `USERSTREAM_STALL_LOG` reports during a run)."""
    log_path = os.environ.get(SERVER_LOG_ENV)
    with open(log_path or os.devnull, "a") as stderr:
        process = subprocess.Popen(
            ["taskset", "-c", str(SERVER_CORE), *cmd],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            preexec_fn=_server_limits,
        )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        value = ready(line)
        if value:
            return process, value
        if time.monotonic() > deadline:
            break
    process.kill()
    process.wait()
    raise RuntimeError(f"{cmd} did not start")


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


@dataclass(frozen=True)
class BenchAccount:
    id: int
    api_key: str


@dataclass
class UserstreamServer:
    """A `userstream serve` process; `setup()` adds accounts, each with an active listenKey."""

    process: subprocess.Popen[str]
    url: str
    accounts: list[BenchAccount] = field(default_factory=list)
    listen_keys: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def command(self) -> str:
        args = cast(list[str], self.process.args)
        return " ".join(args[3:])

    def stream_url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/{self.listen_keys[index]}"

    async def setup(self, accounts: int) -> None:
        """Create `accounts` accounts (admin API) and start a listenKey for each (REST)."""
        created = await pipelined_json(
            self.port,
            [
                http_request(
                    "POST",
                    "/admin/v1/accounts",
                    f'{{"name":"bench{n}"}}'.encode(),
                    {"Authorization": f"Bearer {TOKEN}"},
                )
                for n in range(accounts)
            ],
        )
        self.accounts = [BenchAccount(int(c["accountId"]), str(c["apiKey"])) for c in created]
        started = await pipelined_json(
            self.port,
            [
                http_request("POST", "/fapi/v1/listenKey", b"", {"X-MBX-APIKEY": a.api_key})
                for a in self.accounts
            ],
        )
        self.listen_keys = [str(answer["listenKey"]) for answer in started]


SERVE_ARGS = ["--admin-token", TOKEN, "--weight-per-minute", str(UNLIMITED_WEIGHT)]


@contextmanager
def userstream_server(*extra: str) -> Iterator[UserstreamServer]:
    """Run `userstream serve` on a free port with a fresh data directory until exit;
    `extra` are more `serve` arguments."""
    with tempfile.TemporaryDirectory(prefix="userstream-bench-") as tmp:
        cmd = [sys.executable, "-m", "userstream.cli", "serve", "--port", "0", "--data", tmp]
        process, url = start_pinned(
            [*cmd, *SERVE_ARGS, *extra],
            lambda line: line.split()[-1] if line.startswith("userstream listening on") else None,
        )
        try:
            yield UserstreamServer(process, url)
        finally:
            stop(process)


async def pipelined_json(port: int, requests: list[bytes]) -> list[dict[str, Any]]:
    """Send `requests` back to back on one connection; the JSON bodies of the 200 answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers: list[dict[str, Any]] = []
    try:
        writer.write(b"".join(requests))
        await writer.drain()
        async with asyncio.timeout(WAIT_S):
            for _ in requests:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"refused: {head + body!r}")
                answers.append(json.loads(body))
    finally:
        writer.close()
    return answers


def admin_publish_request(account_id: int, body: bytes) -> bytes:
    return http_request(
        "POST",
        f"/admin/v1/accounts/{account_id}/events",
        body,
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
