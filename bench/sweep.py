"""A hostile-input sweep against a real `userstream serve` process (issue 9, "Done means").

    python -m bench.sweep --seed 1 --count 500

Starts the server on 127.0.0.1:0 with a throw-away data folder, opens a bystander stream for
account A and one for account B, then runs each phase with seeded random inputs, bounded in
count (`--count`) and time (`--phase-seconds`):

    http        raw HTTP: mutated methods, paths, headers, request lines, chunked bodies
    websocket   raw frames: bad masks, lengths, opcodes, RSV bits, fragments, UTF-8, closes
    control     JSON control messages on /ws: mutated ids, params, methods, nesting, garbage
    flood       pipelined pings never read, a connection flood, a control-message burst
    slow        stream connections that never read while events pour in; slow-loris requests
    admin       bad tokens on every admin route; hostile JSON to the event intake
    isolation   account D's key on REST and the WebSocket API against A's listenKey
    sigkill     on a server of its own: SIGKILL mid-publish, restart on the same data folder

After every phase the server process must be alive, answer a ping, and both bystanders must
receive a new event of their own account; a bystander receiving another account's event is a
finding at any time. A finding is anything that should not happen: a 5xx, an answer that is not
HTTP, a close code outside RFC 6455 §7.4, a bad token accepted, a protocol error left open, a
bystander starved or a memory bound broken; after a SIGKILL, a server that does not come back, a
database that fails `PRAGMA integrity_check`, an acknowledged account or listenKey lost, an
acknowledged event dropped ahead of one delivered after it, or no events on a new connection.
The table lists counts per phase and the findings; `run_sweep` is what
`tests/functional/test_sweep.py` calls. For `sigkill`, `sent` and `answered` count events posted
and acknowledged, `closed` the kills, and `waiting` the acknowledged events still in flight at a
kill (summed over its two connections); its note line has the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import os
import random
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common import rss_bytes
from userstream.storage import DB_FILENAME

ADMIN_TOKEN = "sweep-admin-token-0123456789abcdef"
CONNECT_TIMEOUT_S = 5.0
START_TIMEOUT_S = 20.0
ANSWER_TIMEOUT_S = 2.0
CLOSE_CODES_ALLOWED = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1013}
CRLF = b"\r\n"


@dataclass
class PhaseResult:
    name: str
    sent: int = 0
    answered: int = 0
    closed: int = 0
    waiting: int = 0
    seconds: float = 0.0
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def find(self, what: str) -> None:
        if len(self.findings) < 20:
            self.findings.append(what)
        elif len(self.findings) == 20:
            self.findings.append("... more findings left off")


# the server under test


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    data_dir: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_mb(self) -> float:
        return rss_bytes(self.process.pid) / 2**20

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed by the server."""
        self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_server(data_dir: Path, *extra: str) -> Server:
    """`userstream serve` on 127.0.0.1:0 and `data_dir`, once it says it is ready; its stderr
    goes to `<data_dir>.stderr.log`, whose tail is in the error if it does not come up within
    `START_TIMEOUT_S`."""
    env = {**os.environ, "USERSTREAM_ADMIN_TOKEN": ADMIN_TOKEN}
    cmd = [sys.executable, "-m", "userstream.cli", "serve", "--port", "0"]
    # The flood phase must reach the write bound, not the IP's request weight.
    cmd += ["--data", str(data_dir), "--weight-per-minute", "1000000000", *extra]
    stderr_path = data_dir.with_name(data_dir.name + ".stderr.log")
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    assert process.stdout is not None
    # A server that hangs before "ready" is killed, which ends the read below.
    watchdog = threading.Timer(START_TIMEOUT_S, process.kill)
    watchdog.start()
    port = 0
    ready = False
    try:
        for line in process.stdout:
            if line.startswith("userstream listening on "):
                port = int(line.split()[-1].rsplit(":", 1)[1])
            elif line.startswith("userstream ready"):
                ready = True
                break
    finally:
        watchdog.cancel()
    if not (port and ready):
        process.kill()
        process.wait()
        process.stdout.close()
        tail = stderr_path.read_text()[-500:]
        raise RuntimeError(f"the server did not start (exit {process.returncode}): {tail!r}")
    return Server(process, port, data_dir)


# raw HTTP


async def http_exchange(port: int, raw: bytes, wait_s: float = ANSWER_TIMEOUT_S) -> bytes | None:
    """Send `raw` on a new connection; the bytes answered until close or `wait_s` (None if
    nothing arrived in time)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port), CONNECT_TIMEOUT_S
    )
    try:
        writer.write(raw)
        try:
            first = await asyncio.wait_for(reader.read(65536), wait_s)
        except (TimeoutError, ConnectionError):
            return None
        rest = b""
        with contextlib.suppress(TimeoutError, ConnectionError):
            rest = await asyncio.wait_for(reader.read(65536), 0.05)
        return first + rest
    finally:
        writer.transport.abort()


def http_request(
    method: str, path: str, headers: list[tuple[str, str]] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def status_of(answer: bytes) -> int | None:
    """The status of the first response in `answer`, or None if it is not HTTP/1.1."""
    line = answer.split(CRLF, 1)[0]
    parts = line.split(b" ", 2)
    if len(parts) < 2 or parts[0] != b"HTTP/1.1" or not parts[1].isdigit():
        return None
    return int(parts[1])


async def try_json_call(
    port: int, method: str, path: str, headers: list[tuple[str, str]], body: object = None
) -> tuple[int, object] | None:
    """One request on its own connection: the status and decoded JSON body, or None if no
    complete answer came (the server refused the connection, died or timed out)."""
    raw = json.dumps(body).encode() if body is not None else b""
    try:
        answer = await http_exchange(
            port, http_request(method, path, [*headers, ("Connection", "close")], raw), 5.0
        )
    except OSError:  # refused, reset, or no connection within CONNECT_TIMEOUT_S
        return None
    status = status_of(answer) if answer else None
    if answer is None or status is None:
        return None
    _, _, payload = answer.partition(CRLF + CRLF)
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:  # cut short
        return None


async def json_call(
    port: int, method: str, path: str, headers: list[tuple[str, str]], body: object = None
) -> tuple[int, object]:
    answer = await try_json_call(port, method, path, headers, body)
    assert answer is not None, f"{method} {path}: no answer"
    return answer


# raw WebSocket


def ws_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    length: int | None = None,
) -> bytes:
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawWs:
    """A hand-rolled WebSocket client that sends whatever bytes it is told to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, target: str, rcvbuf: int | None = None) -> RawWs:
        """The handshake done; `rcvbuf` shrinks the socket's receive buffer, so that a
        connection nobody reads backs up into the server's write buffer soon."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)),
                CONNECT_TIMEOUT_S,
            )
        except BaseException:
            sock.close()
            raise
        # The reader's own buffer is as small, or it would soak up what the server has.
        reader, writer = await asyncio.open_connection(sock=sock, limit=rcvbuf or 2**16)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            http_request(
                "GET",
                target,
                [
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", key),
                    ("Sec-WebSocket-Version", "13"),
                ],
            )
        )
        head = await asyncio.wait_for(reader.readuntil(CRLF + CRLF), CONNECT_TIMEOUT_S)
        if status_of(head) != 101:
            writer.transport.abort()
            raise ConnectionError(f"handshake refused: {head[:80]!r}")
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def text(self, payload: bytes) -> None:
        self.send(ws_frame(0x1, payload))

    async def frame(self, wait_s: float) -> tuple[int, bytes]:
        """The next server frame (opcode, payload); pings are answered and skipped."""
        while True:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), wait_s)
            if b1 & 0x80:
                raise ConnectionError("the server masked a frame")
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(n)
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self.send(ws_frame(0xA, payload))
                continue
            return opcode, payload

    async def close_code(self, wait_s: float) -> int | None:
        """Read until the server's close frame: its code (1005 if none), or None if the
        connection closed without one; TimeoutError if neither happened within `wait_s`."""
        deadline = time.monotonic() + wait_s
        try:
            while True:
                opcode, payload = await self.frame(max(0.01, deadline - time.monotonic()))
                if opcode == 0x8:
                    return int(struct.unpack("!H", payload[:2])[0]) if payload else 1005
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    def abort(self) -> None:
        self.writer.transport.abort()


# the sweep


@dataclass
class Account:
    id: int
    api_key: str
    listen_key: str
    symbol: str


ADMIN = [("Authorization", f"Bearer {ADMIN_TOKEN}")]


async def create_account(port: int, name: str, symbol: str) -> Account:
    """A new account and its listenKey, through the admin API and REST."""
    status, body = await json_call(port, "POST", "/admin/v1/accounts", ADMIN, {"name": name})
    assert status == 200, body
    assert isinstance(body, dict)
    api_key = str(body["apiKey"])
    status, key = await json_call(port, "POST", "/fapi/v1/listenKey", [("X-MBX-APIKEY", api_key)])
    assert status == 200, key
    assert isinstance(key, dict)
    return Account(int(body["accountId"]), api_key, str(key["listenKey"]), symbol)


class Bystander:
    """A stream connection for one account that checks every event is that account's."""

    def __init__(self, account: Account, ws: RawWs, others: Callable[[str], None]) -> None:
        self.account = account
        self.ws = ws
        self.report = others
        self.seen: asyncio.Queue[int] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                opcode, payload = await self.ws.frame(3600)
                if opcode == 0x8:
                    self.report(f"bystander {self.account.symbol} closed: {payload[:60]!r}")
                    return
                event = json.loads(payload)
                if event.get("e") != "ACCOUNT_CONFIG_UPDATE":
                    continue
                symbol = event["ac"]["s"]
                if symbol != self.account.symbol:
                    self.report(f"{self.account.symbol}'s stream got {symbol}'s event")
                else:
                    self.seen.put_nowait(int(event["ac"]["l"]))


# SIGKILL mid-publish

KILL_PUBLISHERS = 4  # concurrent publishers, each posting its batches one after another
KILL_ACCOUNTS = 200  # accounts created per round at most (the kill usually comes first)
KILL_ROUND_TIMEOUT_S = 60.0
KILL_TIME_BASE = 1_700_000_000_000  # an event's `T` is this + publisher * 10**7 + batch * 1000 + i
# Sent first, so that what follows waits in the server's own buffer for the stalled connection:
# more than the kernel's socket buffers take (net.ipv4.tcp_wmem's maximum is 4 MB by default),
# under `--max-unsent-bytes` of the phase's server.
KILL_BALLAST_BATCHES = 16  # of 100 ACCOUNT_UPDATEs with 100 balances each: ~7 MB
KILL_SERVER_OPTIONS = ("--max-unsent-bytes", str(64 * 2**20))


@dataclass
class Delivery:
    """One stream connection's share of the acknowledged events, over every round."""

    delivered: int = 0  # acknowledged and received
    in_flight: int = 0  # acknowledged, never received: in the server's write buffer at the kill
    early: int = 0  # received, though the acknowledgement never arrived

    def __str__(self) -> str:
        return f"{self.delivered} delivered, {self.in_flight} in flight, {self.early} early"


@dataclass
class KillCounts:
    """What the SIGKILL phase saw over all its rounds (events unless named otherwise)."""

    kills: int = 0
    restarts: int = 0
    posted: int = 0
    acked: int = 0
    reading: Delivery = field(default_factory=Delivery)  # a connection read as fast as it can
    stalled: Delivery = field(default_factory=Delivery)  # one read only after the kill
    after_restart: int = 0  # received on a new connection after a restart
    accounts: int = 0  # accounts whose creation was acknowledged, the victim's included
    accounts_kept: int = 0  # acknowledged accounts (and listenKeys) found after the last restart

    def note(self) -> str:
        return (
            f"{self.kills} kills, {self.restarts} restarts; events posted {self.posted}, "
            f"acknowledged {self.acked}; reading connection: {self.reading}; stalled "
            f"connection: {self.stalled}; received after a restart {self.after_restart}; "
            f"accounts acknowledged {self.accounts}, found after the restart "
            f"{self.accounts_kept}"
        )


def config_updates(account: Account, times: list[int]) -> list[dict[str, object]]:
    """ACCOUNT_CONFIG_UPDATE events told apart by their `T`."""
    return [
        {"e": "ACCOUNT_CONFIG_UPDATE", "T": t, "ac": {"s": account.symbol, "l": 1 + t % 125}}
        for t in times
    ]


def ballast(batch: int) -> list[dict[str, object]]:
    """100 large ACCOUNT_UPDATE events (~4.5 KB each)."""
    balances = [{"a": f"A{i}", "wb": "1000.5", "cw": "1000.5", "bc": "0"} for i in range(100)]
    return [
        {"e": "ACCOUNT_UPDATE", "T": batch * 100 + i, "a": {"B": balances, "P": [], "m": "ORDER"}}
        for i in range(100)
    ]


async def collect_times(ws: RawWs, into: list[int]) -> int | None:
    """Append each ACCOUNT_CONFIG_UPDATE's `T` until the connection ends; the server's close
    code if it sent a close frame, None if the connection just ended."""
    try:
        while True:
            opcode, payload = await ws.frame(3600)
            if opcode == 0x8:
                return int(struct.unpack("!H", payload[:2])[0]) if payload else 1005
            event = json.loads(payload)
            if event.get("e") == "ACCOUNT_CONFIG_UPDATE":
                into.append(int(event["T"]))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def check_delivery(
    result: PhaseResult,
    name: str,
    counts: Delivery,
    posted: list[list[int]],
    acked: set[int],
    received: list[int],
) -> None:
    """A publisher posts its next batch only once the last one is acknowledged, and one
    connection's events leave in the order they were handed to it, so the events of each
    publisher that a connection received must be a prefix of those it posted: a gap is an
    acknowledged event dropped, not one still in flight."""
    for p, times in enumerate(posted):
        got = [t for t in received if (t - KILL_TIME_BASE) // 10**7 == p]
        if got != times[: len(got)]:
            result.find(f"{name}: publisher {p}'s events came out of order, twice or with a gap")
    strays = set(received) - {t for times in posted for t in times}
    if strays:
        result.find(f"{name}: {len(strays)} events arrived that were never posted")
    seen = set(received)
    counts.delivered += len(acked & seen)
    counts.in_flight += len(acked - seen)
    counts.early += len(seen - acked)


def read_database(data_dir: Path) -> tuple[list[str], dict[str, str]]:
    """`PRAGMA integrity_check`'s lines, and each stored apiKey's listenKey ("" if none), read
    while the server runs (WAL lets a reader in)."""
    db = sqlite3.connect(f"file:{data_dir / DB_FILENAME}?mode=ro", uri=True)
    try:
        integrity = [str(row[0]) for row in db.execute("PRAGMA integrity_check")]
        rows = db.execute(
            "SELECT a.api_key, coalesce(k.listen_key, '') FROM accounts a"
            " LEFT JOIN listen_keys k ON k.account_id = a.id"
        )
        return integrity, {str(api_key): str(key) for api_key, key in rows}
    finally:
        db.close()


class Sweep:
    def __init__(self, server: Server, seed: int, count: int, phase_seconds: float) -> None:
        self.server = server
        self.port = server.port
        self.rng = random.Random(seed)
        self.count = count
        self.phase_seconds = phase_seconds
        self.admin = ADMIN
        self.marker = 0
        self.leaks: list[str] = []
        self.accounts: dict[str, Account] = {}
        self.bystanders: list[Bystander] = []

    async def setup(self) -> None:
        for name, symbol in (
            ("A", "BTCUSDT"),
            ("B", "ETHUSDT"),
            ("C", "BNBUSDT"),
            ("D", "XRPUSDT"),
        ):
            self.accounts[name] = await create_account(self.port, name, symbol)
        for name in ("A", "B"):
            account = self.accounts[name]
            ws = await RawWs.open(self.port, f"/private/ws?listenKey={account.listen_key}")
            self.bystanders.append(Bystander(account, ws, self.leaks.append))

    async def publish(self, account: Account, leverage: int, count: int = 1) -> int:
        event = {"e": "ACCOUNT_CONFIG_UPDATE", "ac": {"s": account.symbol, "l": leverage}}
        status, _ = await json_call(
            self.port,
            "POST",
            f"/admin/v1/accounts/{account.id}/events",
            self.admin,
            [event] * count,
        )
        return status

    async def check(self, result: PhaseResult) -> None:
        """Alive, answering, and each bystander receives its next event."""
        for leak in self.leaks:
            result.find(leak)
        self.leaks.clear()
        if not self.server.alive:
            result.find(f"server exited with {self.server.process.returncode}")
            return
        answer = await http_exchange(self.port, http_request("GET", "/fapi/v1/ping"), 5.0)
        if answer is None or status_of(answer) != 200:
            result.find("a ping after the phase was not answered")
        for bystander in self.bystanders:
            self.marker = self.marker % 125 + 1
            if await self.publish(bystander.account, self.marker) != 200:
                result.find("publishing to a bystander failed")
                continue
            try:
                while await asyncio.wait_for(bystander.seen.get(), 5.0) != self.marker:
                    pass
            except TimeoutError:
                result.find(f"bystander {bystander.account.symbol} got nothing after the phase")

    async def run_cases(
        self, result: PhaseResult, cases: list[Callable[[], Awaitable[None]]], parallel: int = 32
    ) -> None:
        """Run `cases` `parallel` at a time until done or the phase's time is up."""
        deadline = time.monotonic() + self.phase_seconds
        pending = iter(cases)
        gate = asyncio.Semaphore(parallel)

        async def one(case: Callable[[], Awaitable[None]]) -> None:
            async with gate:
                if time.monotonic() > deadline:
                    return
                result.sent += 1
                try:
                    await case()
                except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
                    result.closed += 1

        await asyncio.gather(*(one(case) for case in pending))

    # phase: raw HTTP

    def http_case(self) -> bytes:
        rng = self.rng
        a = self.accounts["C"]
        templates = [
            http_request("GET", "/fapi/v1/ping"),
            http_request("GET", "/api/v3/time?x=1"),
            http_request("POST", "/fapi/v1/listenKey", [("X-MBX-APIKEY", a.api_key)]),
            http_request("PUT", "/fapi/v1/listenKey", [("X-MBX-APIKEY", a.api_key)], b"a=1"),
            http_request("POST", f"/admin/v1/accounts/{a.id}/events", self.admin, b"[]"),
            http_request(
                "GET",
                f"/ws/{a.listen_key}",
                [
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ("Sec-WebSocket-Version", "13"),
                ],
            ),
            b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\na=1\r\n0\r\n\r\n",
        ]
        raw = bytearray(rng.choice(templates))
        for _ in range(rng.randint(1, 3)):
            raw = bytearray(self._mutate_http(bytes(raw)))
        return bytes(raw)

    def _mutate_http(self, raw: bytes) -> bytes:
        rng = self.rng
        line, _, rest = raw.partition(CRLF)
        parts = line.split(b" ")
        kind = rng.randrange(12)
        if kind == 0 and parts:  # method
            parts[0] = rng.choice(
                [
                    b"get",
                    b"G\x00T",
                    b"CONNECT",
                    b"TRACE",
                    b"OPTIONS",
                    b"HEAD",
                    b"X" * 5000,
                    b"",
                    b"PRI",
                    b"DELETE",
                    "GÉT".encode(),
                ]
            )
        elif kind == 1 and len(parts) > 1:  # path
            parts[1] = rng.choice(
                [
                    b"/"
                    + os.urandom(rng.randint(1, 40))
                    .replace(b" ", b"_")
                    .replace(b"\r", b"")
                    .replace(b"\n", b""),
                    b"/../admin/v1/stats",
                    b"/fapi/v1/%00ping",
                    b"/%2e%2e/admin/v1/stats",
                    b"*",
                    b"http://evil/fapi/v1/ping",
                    b"/fapi/v1/ping?" + b"a=" * 5000,
                    b"/" * 9000,
                    b"/ws/" + b"A" * 64 + b"?listenKey=",
                ]
            )
        elif kind == 2:  # version
            parts[-1] = rng.choice(
                [b"HTTP/1.0", b"HTTP/0.9", b"HTTP/2.0", b"HTTP/1.1x", b"", b"HTTPS/1.1"]
            )
        elif kind == 3:  # an extra header
            name = rng.choice(
                [
                    b"Content-Length",
                    b"Transfer-Encoding",
                    b"Connection",
                    b"Upgrade",
                    b"X-MBX-APIKEY",
                    b"Authorization",
                    b"Expect",
                    b"X" * 300,
                ]
            )
            value = rng.choice(
                [
                    b"-1",
                    b"99999999999999999999",
                    b"chunked",
                    b"close",
                    b"gzip, chunked",
                    b"websocket",
                    b"\x00\xff",
                    b"100-continue",
                    b"v" * 40000,
                    b" 5",
                ]
            )
            rest = name + b": " + value + CRLF + rest
        elif kind == 4:  # many headers
            rest = (
                b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(rng.choice([50, 101, 500]))) + rest
            )
        elif kind == 5:  # a malformed header line
            rest = (
                rng.choice(
                    [b"NoColon\r\n", b" folded: line\r\n", b": empty-name\r\n", b"A\rB: c\r\n"]
                )
                + rest
            )
        elif kind == 6:  # byte flips
            data = bytearray(raw)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            return bytes(data)
        elif kind == 7:  # truncation
            return raw[: rng.randrange(1, len(raw) + 1)]
        elif kind == 8:  # a chunked body, right or wrong
            body = rng.choice(
                [
                    b"5\r\nhello\r\n0\r\n\r\n",
                    b"zz\r\nhello\r\n0\r\n\r\n",
                    b"ffffffffffffffff\r\nx\r\n",
                    b"5\r\nhel",
                    b'1;ext="x"\r\na\r\n0\r\nT: v\r\n\r\n',
                    b"-1\r\n\r\n",
                    b"100000\r\n" + b"a" * 70000,
                ]
            )
            head, _, _ = rest.partition(CRLF + CRLF)
            return line + CRLF + b"Transfer-Encoding: chunked\r\n" + head + CRLF + CRLF + body
        elif kind == 9:  # control bytes in the request line
            parts.insert(
                rng.randrange(len(parts) + 1), rng.choice([b"\x00", b"\r", b"\n", b"\t", b"  "])
            )
        elif kind == 10:  # an oversized request line
            parts[min(1, len(parts) - 1)] = b"/" + b"a" * rng.choice([8000, 8200, 70000])
        else:  # a second request pipelined behind
            return raw + rng.choice(
                [http_request("GET", "/fapi/v1/time"), b"\r\n\r\n", os.urandom(30)]
            )
        return b" ".join(parts) + CRLF + rest

    async def phase_http(self) -> PhaseResult:
        result = PhaseResult("http")

        async def case(raw: bytes) -> None:
            answer = await http_exchange(self.port, raw, 1.0)
            if answer is None:
                result.waiting += 1  # an incomplete request: the server waits, as it should
                return
            if not answer:
                result.closed += 1
                return
            status = status_of(answer)
            result.answered += 1
            if status is None:
                result.find(f"not HTTP: {answer[:60]!r} for {raw[:60]!r}")
            elif status >= 500:
                result.find(f"{status} for {raw[:80]!r}")

        cases = [self.http_case() for _ in range(self.count)]
        await self.run_cases(result, [functools.partial(case, raw) for raw in cases])
        return result

    # phase: WebSocket frames

    def ws_case(self) -> tuple[list[bytes], bool | None]:
        """Frames to send and whether they break the protocol (the server must close; None:
        it may)."""
        rng = self.rng
        text = b'{"method":"LIST_SUBSCRIPTIONS","id":1}'
        quoted = '{"method":"LIST_SUBSCRIPTIONS","id":1,"x":"é"}'.encode()  # split inside é
        good = [
            [ws_frame(0x1, text)],
            [ws_frame(0x9, b"hi")],
            [ws_frame(0xA, b"")],
            [ws_frame(0x1, text[:5], fin=False), ws_frame(0x9, b""), ws_frame(0x0, text[5:])],
            [ws_frame(0x1, quoted[:3], fin=False), ws_frame(0x0, quoted[3:])],
        ]
        # A stream connection closes with 1008 on a message that is not JSON; either way is
        # right for these, as long as the code is one an endpoint may send.
        either = [
            [ws_frame(0x2, os.urandom(rng.randint(0, 300)))],
            [ws_frame(0x1, os.urandom(rng.randint(0, 30)).hex().encode())],
        ]
        bad = [
            [ws_frame(0x1, text, mask=False)],
            [ws_frame(rng.choice([3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]), b"x")],
            [ws_frame(0x1, text, rsv=rng.randint(1, 7))],
            [ws_frame(0x0, b"orphan continuation")],
            [ws_frame(0x9, b"x", fin=False)],
            [ws_frame(0x9, b"p" * 126)],
            [ws_frame(0x1, b"\xff\xfe" + os.urandom(rng.randint(0, 20)))],
            [ws_frame(0x1, b"\xed\xa0\x80")],  # an encoded surrogate
            [ws_frame(0x1, b"a", fin=False), ws_frame(0x1, b"b")],
            [ws_frame(0x8, b"\x03")],  # a one-byte close payload
            [ws_frame(0x8, struct.pack("!H", rng.choice([0, 999, 1005, 1006, 1015, 2000, 5000])))],
            [ws_frame(0x8, struct.pack("!H", 1000) + b"\xc3")],
            [ws_frame(0x1, b"x" * (70 * 1024))],
            [ws_frame(0x1, b"", length=2**63 + 1)[:10]],
        ]
        draw = rng.random()
        if draw < 0.3:
            return list(rng.choice(good)), False
        if draw < 0.4:
            return list(rng.choice(either)), None
        return list(rng.choice(bad)), True

    async def phase_websocket(self) -> PhaseResult:
        result = PhaseResult("websocket")
        c = self.accounts["C"]

        async def case(frames: list[bytes], breaks: bool | None) -> None:
            ws = await RawWs.open(self.port, f"/ws/{c.listen_key}")
            try:
                for frame in frames:
                    ws.send(frame)
                if not breaks:
                    ws.send(ws_frame(0x8, struct.pack("!H", 1000)))
                try:
                    code = await ws.close_code(ANSWER_TIMEOUT_S)
                except TimeoutError:
                    result.find(f"no close after {frames[0][:20]!r} (breaks: {breaks})")
                    return
                result.answered += 1
                if code is None:
                    result.closed += 1
                elif code not in CLOSE_CODES_ALLOWED or (code == 1011):
                    result.find(f"close code {code} after {frames[0][:20]!r}")
                elif breaks is False and code != 1000:
                    result.find(f"close {code} for a valid exchange {frames[0][:20]!r}")
            finally:
                ws.abort()

        cases = [self.ws_case() for _ in range(self.count)]
        await self.run_cases(result, [functools.partial(case, f, b) for f, b in cases])
        return result

    # phase: control messages

    def control_case(self) -> bytes:
        rng = self.rng
        ids: list[object] = [1, 0, -1, 2**63, 2**64 + 1, 1.5, "x", None, [], {}, True, "9" * 100]
        params: list[object] = [
            [],
            ["btcusdt@aggTrade"],
            [self.accounts["C"].listen_key],
            [1, None],
            ["combined", True],
            "string",
            {"a": 1},
            ["x" * 2000],
        ]
        message: dict[str, object] = {
            "method": rng.choice(
                [
                    "SUBSCRIBE",
                    "UNSUBSCRIBE",
                    "LIST_SUBSCRIPTIONS",
                    "SET_PROPERTY",
                    "GET_PROPERTY",
                    "subscribe",
                    "",
                    "NOPE",
                    None,
                    7,
                ]
            ),
            "params": rng.choice(params),
            "id": rng.choice(ids),
        }
        for key in list(message):
            if rng.random() < 0.15:
                del message[key]
        if rng.random() < 0.2:
            message[rng.choice(["extra", "", "id "])] = rng.choice(ids)
        raw = json.dumps(message).encode()
        kind = rng.randrange(8)
        if kind == 0:
            depth = rng.choice([10, 127, 128, 200, 5000])
            raw = raw[:-1] + b',"x":' + b"[" * depth + b"]" * depth + b"}"
        elif kind == 1:
            raw = raw.replace(b'"', b"'", rng.randint(1, 4))
        elif kind == 2:
            raw = raw[: rng.randrange(len(raw))]
        elif kind == 3:
            raw = b'{"method":"LIST_SUBSCRIPTIONS","id":1,"x":[' + b"[]," * 20000 + b"[]]}"
        return raw

    async def phase_control(self) -> PhaseResult:
        result = PhaseResult("control")
        per_connection = 5  # under the 10 messages per second a connection may send

        async def case(messages: list[bytes]) -> None:
            result.sent += len(messages) - 1  # `run_cases` counted the connection as one
            ws = await RawWs.open(self.port, "/ws")
            try:
                for message in messages:
                    ws.text(message)
                for _ in messages:
                    opcode, payload = await ws.frame(ANSWER_TIMEOUT_S)
                    if opcode == 0x8:
                        code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                        result.closed += 1
                        if code not in CLOSE_CODES_ALLOWED or code == 1011:
                            result.find(f"close code {code} for {message[:60]!r}")
                        return
                    result.answered += 1
                    try:
                        json.loads(payload)
                    except ValueError:
                        result.find(f"a reply that is not JSON: {payload[:60]!r}")
            except TimeoutError:
                result.waiting += 1  # Binance answers nothing to some messages either
            finally:
                ws.abort()

        batches = [
            [self.control_case() for _ in range(per_connection)]
            for _ in range(max(1, self.count // per_connection))
        ]
        await self.run_cases(result, [functools.partial(case, b) for b in batches], parallel=16)
        return result

    # phase: floods

    async def bystander_pings(self, seconds: float) -> list[float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        latencies: list[float] = []
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                start = time.perf_counter()
                writer.write(http_request("GET", "/fapi/v1/ping"))
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n{}"), 5.0)
                latencies.append(time.perf_counter() - start)
                await asyncio.sleep(0.005)
        finally:
            writer.close()
        return latencies

    async def phase_flood(self) -> PhaseResult:
        result = PhaseResult("flood")
        pings = min(200_000, self.count * 200)
        rss_before = self.server.rss_mb()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
        _, attacker = await asyncio.open_connection(sock=sock)
        attacker.write(http_request("GET", "/fapi/v1/ping") * pings)
        result.sent += pings
        try:
            latencies = sorted(await self.bystander_pings(min(3.0, self.phase_seconds)))
        except TimeoutError:
            latencies = [float("inf")]
        rss_after = self.server.rss_mb()
        attacker.transport.abort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        result.answered += len(latencies)
        result.notes.append(
            f"{pings} pipelined pings unread: RSS {rss_before:.0f} -> {rss_after:.0f} MB, "
            f"bystander p99 {p99:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
        )
        if rss_after - rss_before > 64:
            result.find(f"RSS grew {rss_after - rss_before:.0f} MB under a pipelined flood")
        if latencies[-1] > 1.0:
            result.find(f"a bystander ping took {latencies[-1] * 1000:.0f} ms during the flood")

        # A connection flood: open and drop many at once.
        opened = []
        for _ in range(min(500, self.count)):
            with contextlib.suppress(OSError):
                opened.append(await asyncio.open_connection("127.0.0.1", self.port))
        result.sent += len(opened)
        for _, writer in opened:
            writer.transport.abort()

        # A burst of control messages over Binance's 10 per second: the connection is closed.
        ws = await RawWs.open(self.port, "/ws")
        try:
            for i in range(50):
                ws.text(b'{"method":"LIST_SUBSCRIPTIONS","id":%d}' % i)
            result.sent += 50
            try:
                await ws.close_code(5.0)
                result.closed += 1
            except TimeoutError:
                result.find("50 control messages in a burst did not close the connection")
        finally:
            ws.abort()
        return result

    # phase: slow readers

    async def phase_slow(self) -> PhaseResult:
        result = PhaseResult("slow")
        c = self.accounts["C"]
        rss_before = self.server.rss_mb()
        readers: list[RawWs] = []
        for _ in range(5):
            readers.append(await RawWs.open(self.port, f"/ws/{c.listen_key}"))
        loris = []
        for _ in range(20):
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(b"GET /fapi/v1/ping HTTP/1.1\r\nHo")
            loris.append(writer)
        batches = max(1, min(200, self.count // 5))
        for i in range(batches):
            if await self.publish(c, i % 125 + 1, 200) != 200:
                result.find("publishing to the slow readers' account failed")
                break
            result.sent += 200
        await asyncio.sleep(0.5)
        rss_after = self.server.rss_mb()
        result.notes.append(
            f"5 unread streams x {batches * 200} events: RSS {rss_before:.0f} -> {rss_after:.0f} MB"
        )
        if rss_after - rss_before > 100:
            result.find(f"RSS grew {rss_after - rss_before:.0f} MB with 5 unread streams")
        for ws in readers:
            ws.abort()
        for writer in loris:
            writer.transport.abort()
        return result

    # phase: admin

    async def phase_admin(self) -> PhaseResult:
        result = PhaseResult("admin")
        rng = self.rng
        c = self.accounts["C"]
        bad_tokens = [
            [],
            [("Authorization", "Bearer")],
            [("Authorization", "Bearer wrong")],
            [("Authorization", "bearer " + ADMIN_TOKEN[:-1])],
            [("Authorization", "Basic " + base64.b64encode(ADMIN_TOKEN.encode()).decode())],
            [("Authorization", ADMIN_TOKEN)],
            [("Authorization", "Bearer " + ADMIN_TOKEN + "x")],
            [("X-Admin-Token", ADMIN_TOKEN)],
        ]
        routes = [
            ("POST", "/admin/v1/accounts"),
            ("POST", f"/admin/v1/accounts/{c.id}/events"),
            ("GET", "/admin/v1/clock"),
            ("POST", "/admin/v1/clock/advance"),
            ("POST", "/admin/v1/connections/drop"),
            ("GET", "/admin/v1/stats"),
            ("POST", f"/admin/v1/listenKeys/{c.listen_key}/expire"),
            ("GET", "/admin/v1"),
            ("GET", f"/admin/v1/stats?token={ADMIN_TOKEN}"),
        ]

        async def bad_token(method: str, path: str, headers: list[tuple[str, str]]) -> None:
            answer = await http_exchange(self.port, http_request(method, path, headers, b"{}"), 5.0)
            result.answered += 1
            if answer is None or status_of(answer) != 401:
                result.find(
                    f"{method} {path} with {headers} answered {answer[:40] if answer else None!r}"
                )

        # Not `connections/drop` with the good token: dropping every connection is its job.
        hostile: list[bytes] = [
            b"[" * 100000,
            b'{"e":"ACCOUNT_CONFIG_UPDATE","ac":{"s":"BNBUSDT","l":1}}' * 2,
            b"\xff\xfe",
            b'[{"e":"ACCOUNT_CONFIG_UPDATE","ac":{"s":"' + b"x" * 60000 + b'","l":1}}]',
            b'[{"e":"ORDER_TRADE_UPDATE"}]',
            b'[{"e":"ACCOUNT_CONFIG_UPDATE","ac":{"s":"BNBUSDT","l":NaN}}]',
            b'[{"e":"ACCOUNT_CONFIG_UPDATE","e":"MARGIN_CALL","ac":{"s":"BNBUSDT","l":1}}]',
            b"null",
            b"",
            b'{"e":"listenKeyExpired"}',
            b'[{"e":"ACCOUNT_CONFIG_UPDATE","ac":{"s":"BNBUSDT","l":1e400}}]',
            b'[{"e":"\\u0000","ac":{}}]',
            b"[" + b"{}," * 20000 + b"{}]",
        ]
        good = [("Authorization", f"Bearer {ADMIN_TOKEN}")]

        async def hostile_json(path: str, body: bytes) -> None:
            answer = await http_exchange(self.port, http_request("POST", path, good, body), 5.0)
            result.answered += 1
            status = status_of(answer) if answer else None
            if status is None or status >= 500:
                result.find(
                    f"POST {path} {body[:50]!r} answered {answer[:60] if answer else None!r}"
                )

        cases: list[Callable[[], Awaitable[None]]] = []
        for _ in range(self.count):
            if rng.random() < 0.5:
                method, path = rng.choice(routes)
                headers = rng.choice(bad_tokens)
                cases.append(functools.partial(bad_token, method, path, headers))
            else:
                path = rng.choice(
                    [
                        f"/admin/v1/accounts/{c.id}/events",
                        "/admin/v1/accounts",
                        "/admin/v1/clock/advance",
                        "/admin/v1/accounts/99999999999999999999/events",
                        "/admin/v1/accounts/-1/events",
                    ]
                )
                body = rng.choice(hostile)
                cases.append(functools.partial(hostile_json, path, body))
        await self.run_cases(result, cases, parallel=16)
        return result

    # phase: isolation

    async def phase_isolation(self) -> PhaseResult:
        result = PhaseResult("isolation")
        a, d = self.accounts["A"], self.accounts["D"]
        attempts = 0
        for _ in range(max(1, self.count // 50)):
            for method in ("PUT", "DELETE", "POST"):
                for params in ("", f"?listenKey={a.listen_key}"):
                    status, _ = await json_call(
                        self.port,
                        method,
                        f"/fapi/v1/listenKey{params}",
                        [("X-MBX-APIKEY", d.api_key)],
                    )
                    attempts += 1
                    if status >= 500:
                        result.find(f"{method} listenKey answered {status}")
            ws = await RawWs.open(self.port, "/ws-fapi/v1")
            try:
                for i, method in enumerate(
                    ("userDataStream.ping", "userDataStream.stop", "userDataStream.start")
                ):
                    request = {
                        "id": i,
                        "method": method,
                        "params": {"apiKey": d.api_key, "listenKey": a.listen_key},
                    }
                    ws.text(json.dumps(request).encode())
                    opcode, payload = await ws.frame(ANSWER_TIMEOUT_S)
                    attempts += 1
                    if opcode != 0x1 or json.loads(payload).get("status", 500) >= 500:
                        result.find(f"WS API {method} answered {payload[:60]!r}")
            finally:
                ws.abort()
            await self.publish(d, 1, 5)
        # A's key still works for A, under A's own API key.
        status, body = await json_call(
            self.port, "PUT", "/fapi/v1/listenKey", [("X-MBX-APIKEY", a.api_key)]
        )
        if status != 200 or not isinstance(body, dict) or body.get("listenKey") != a.listen_key:
            result.find(f"A's listenKey was disturbed by D: {status} {body}")
        result.sent = result.answered = attempts
        return result

    # phase: SIGKILL mid-publish

    async def phase_sigkill(self) -> PhaseResult:
        """On a server of its own: SIGKILL it while batches pour into an open stream and
        accounts are being created, restart it on the same data folder, and check what
        survived. An acknowledgement promises that the events were validated and handed to the
        connections present, with no replay (Binance has none either), so events still in the
        server's write buffer at the kill are counted, not flagged."""
        result = PhaseResult("sigkill")
        counts = KillCounts()
        with tempfile.TemporaryDirectory(prefix="userstream-sigkill-") as tmp:
            data = Path(tmp) / "data"
            server: Server | None = await asyncio.to_thread(
                start_server, data, *KILL_SERVER_OPTIONS
            )
            try:
                assert server is not None
                victim = await create_account(server.port, "victim", "BTCUSDT")
                keys = {victim.api_key: victim.listen_key}
                counts.accounts += 1
                for _ in range(max(1, min(5, self.count // 100))):
                    server = await self.kill_round(result, counts, server, victim, keys)
                    if server is None:
                        break
            finally:
                if server is not None:
                    server.stop()
        result.sent, result.answered = counts.posted, counts.acked
        result.closed = counts.kills
        result.waiting = counts.reading.in_flight + counts.stalled.in_flight
        result.notes.append(counts.note())
        return result

    async def kill_round(
        self,
        result: PhaseResult,
        counts: KillCounts,
        server: Server,
        victim: Account,
        keys: dict[str, str],
    ) -> Server | None:
        """One SIGKILL and restart; the restarted server, or None if it did not come up."""
        rng = self.rng
        loop = asyncio.get_running_loop()
        target = f"/private/ws?listenKey={victim.listen_key}"
        reading = await RawWs.open(server.port, target)
        stalled = await RawWs.open(server.port, target, rcvbuf=4096)
        received: list[int] = []
        stalled_received: list[int] = []
        reader = loop.create_task(collect_times(reading, received))
        for b in range(KILL_BALLAST_BATCHES):
            answer = await try_json_call(
                server.port,
                "POST",
                f"/admin/v1/accounts/{victim.id}/events",
                ADMIN,
                ballast(b),
            )
            if answer is None or answer[0] != 200:
                result.find(f"ballast batch {b} answered {answer}")
                break
        batches = max(2, min(50, self.count // 4))
        sizes = [[rng.randint(1, 100) for _ in range(batches)] for _ in range(KILL_PUBLISHERS)]
        # The kill lands a few milliseconds after a batch is sent: before the server reads it,
        # while it hands it out, or after it answered.
        kill_at = rng.randint(2, KILL_PUBLISHERS * batches // 2)
        kill_delay = rng.uniform(0.0, 0.005)
        posted: list[list[int]] = [[] for _ in range(KILL_PUBLISHERS)]
        acked: set[int] = set()
        batches_posted = 0
        killed = False
        events_path = f"/admin/v1/accounts/{victim.id}/events"

        def kill() -> None:
            nonlocal killed
            if killed:
                return
            killed = True
            if not server.alive:
                result.find(f"the server exited by itself with {server.process.returncode}")
            server.kill()
            counts.kills += 1

        async def publisher(p: int) -> None:
            nonlocal batches_posted
            for b, size in enumerate(sizes[p]):
                if killed:
                    return
                times = [KILL_TIME_BASE + p * 10**7 + b * 1000 + i for i in range(size)]
                posted[p] += times
                counts.posted += size
                batches_posted += 1
                if batches_posted == kill_at:
                    loop.call_later(kill_delay, kill)
                answer = await try_json_call(
                    server.port, "POST", events_path, ADMIN, config_updates(victim, times)
                )
                if answer is None:
                    return  # the kill came first; this batch was not acknowledged
                if answer[0] != 200:
                    result.find(f"a batch of {size} was refused before the kill: {answer}")
                    return
                acked.update(times)
                counts.acked += size

        async def creator() -> None:
            """Accounts and listenKeys written to the database while the kill comes."""
            for i in range(KILL_ACCOUNTS):
                if killed:
                    return
                answer = await try_json_call(
                    server.port, "POST", "/admin/v1/accounts", ADMIN, {"name": f"sigkill-{i}"}
                )
                if answer is None:
                    return
                status, body = answer
                if status != 200 or not isinstance(body, dict):
                    result.find(f"creating an account before the kill: {answer}")
                    return
                api_key = str(body["apiKey"])
                keys[api_key] = ""
                counts.accounts += 1
                answer = await try_json_call(
                    server.port, "POST", "/fapi/v1/listenKey", [("X-MBX-APIKEY", api_key)]
                )
                if answer is None:
                    return
                if answer[0] != 200 or not isinstance(answer[1], dict):
                    result.find(f"creating a listenKey before the kill: {answer}")
                    return
                keys[api_key] = str(answer[1]["listenKey"])

        try:
            await asyncio.wait_for(
                asyncio.gather(creator(), *(publisher(p) for p in range(KILL_PUBLISHERS))),
                KILL_ROUND_TIMEOUT_S,
            )
        except TimeoutError:
            result.find(f"publishing did not end within {KILL_ROUND_TIMEOUT_S} s")
        kill()  # if the publishers stopped before `kill_at`
        # What the kernel still holds for the stalled connection drains now; what was in the
        # server's own buffer died with it.
        for ws, into, name in (
            (reading, received, "reading"),
            (stalled, stalled_received, "stalled"),
        ):
            task = reader if ws is reading else loop.create_task(collect_times(ws, into))
            try:
                close_code = await asyncio.wait_for(task, 5.0)
            except TimeoutError:
                result.find(f"the {name} stream stayed open 5 s after the server was killed")
                close_code = None
            finally:
                ws.abort()
            if close_code is not None:
                result.find(f"the {name} stream was closed with {close_code} before the kill")
        check_delivery(result, "reading", counts.reading, posted, acked, received)
        check_delivery(result, "stalled", counts.stalled, posted, acked, stalled_received)

        try:
            restarted = await asyncio.to_thread(start_server, server.data_dir, *KILL_SERVER_OPTIONS)
        except RuntimeError as exc:
            result.find(f"no restart after SIGKILL: {exc}")
            return None
        counts.restarts += 1
        try:
            await self.check_restart(result, counts, restarted, victim, keys)
        except BaseException:
            restarted.stop()
            raise
        return restarted

    async def check_restart(
        self,
        result: PhaseResult,
        counts: KillCounts,
        server: Server,
        victim: Account,
        keys: dict[str, str],
    ) -> None:
        """The database is sound, every acknowledged account and listenKey is in it and
        works, and a new connection on the victim's listenKey gets new events."""
        try:
            integrity, stored = await asyncio.to_thread(read_database, server.data_dir)
        except sqlite3.DatabaseError as exc:
            result.find(f"the database after SIGKILL: {exc!r}")
            return
        if integrity != ["ok"]:
            result.find(f"the database after SIGKILL: integrity_check says {integrity[:3]}")
        lost = [k for k, key in keys.items() if k not in stored or (key and stored[k] != key)]
        counts.accounts_kept = len(keys) - len(lost)
        if lost:
            result.find(f"{len(lost)} of {len(keys)} acknowledged accounts or listenKeys lost")
        others = [k for k in keys if keys[k] and k != victim.api_key]
        for api_key in [victim.api_key, *self.rng.sample(others, min(2, len(others)))]:
            answer = await try_json_call(
                server.port, "PUT", "/fapi/v1/listenKey", [("X-MBX-APIKEY", api_key)]
            )
            if answer != (200, {"listenKey": keys[api_key]}):
                result.find(f"a listenKey keepalive after the restart answered {answer}")

        try:
            ws = await RawWs.open(server.port, f"/private/ws?listenKey={victim.listen_key}")
        except (ConnectionError, TimeoutError) as exc:
            result.find(f"the listenKey's stream after the restart: {exc}")
            return
        try:
            times = [KILL_TIME_BASE + KILL_PUBLISHERS * 10**7 + i for i in range(20)]
            answer = await try_json_call(
                server.port,
                "POST",
                f"/admin/v1/accounts/{victim.id}/events",
                ADMIN,
                config_updates(victim, times),
            )
            if answer is None or answer[0] != 200:
                result.find(f"publishing after the restart answered {answer}")
                return
            got: list[int] = []
            deadline = time.monotonic() + 5.0
            with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                while len(got) < len(times):
                    opcode, payload = await ws.frame(max(0.01, deadline - time.monotonic()))
                    if opcode != 0x1:
                        break
                    got.append(int(json.loads(payload)["T"]))
            counts.after_restart += len(got)
            if got != times:
                result.find(f"{len(got)} of {len(times)} events after the restart, in order")
        finally:
            ws.abort()

    async def run(self) -> list[PhaseResult]:
        phases = [
            self.phase_http,
            self.phase_websocket,
            self.phase_control,
            self.phase_flood,
            self.phase_slow,
            self.phase_admin,
            self.phase_isolation,
            self.phase_sigkill,
        ]
        results = []
        for phase in phases:
            start = time.monotonic()
            try:
                result = await phase()
            except Exception as exc:  # a phase that cannot run is itself a finding
                result = PhaseResult(phase.__name__.removeprefix("phase_"))
                result.find(f"the phase failed: {exc!r}")
            await self.check(result)
            result.seconds = time.monotonic() - start
            results.append(result)
        return results


async def run_sweep(seed: int, count: int, phase_seconds: float = 30.0) -> list[PhaseResult]:
    with tempfile.TemporaryDirectory(prefix="userstream-sweep-") as tmp:
        server = start_server(Path(tmp) / "data")
        try:
            sweep = Sweep(server, seed, count, phase_seconds)
            await sweep.setup()
            try:
                return await sweep.run()
            finally:
                for bystander in sweep.bystanders:
                    bystander.task.cancel()
                    bystander.ws.abort()
        finally:
            server.stop()


def table(results: list[PhaseResult], seed: int, count: int) -> Table:
    out = Table(title=f"hostile-input sweep, seed {seed}, count {count}")
    for column in ("phase", "sent", "answered", "closed", "waiting", "s", "findings"):
        out.add_column(column, justify="left" if column == "phase" else "right")
    for r in results:
        out.add_row(
            r.name,
            str(r.sent),
            str(r.answered),
            str(r.closed),
            str(r.waiting),
            f"{r.seconds:.1f}",
            str(len(r.findings)),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=500, help="inputs per phase")
    parser.add_argument("--phase-seconds", type=float, default=30.0, help="time bound per phase")
    args = parser.parse_args()
    results = asyncio.run(run_sweep(args.seed, args.count, args.phase_seconds))
    console = Console()
    console.print(table(results, args.seed, args.count))
    for r in results:
        for note in r.notes:
            console.print(f"{r.name}: {note}")
    findings = [f"{r.name}: {f}" for r in results for f in r.findings]
    console.print(f"findings: {len(findings)}")
    for finding in findings:
        console.print(f"  {finding}", markup=False)
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
