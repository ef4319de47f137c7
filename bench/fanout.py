"""Fan-out: userstream's publish-and-deliver path against raw picows and nchan, per shape.

    .venv/bin/python -m bench.fanout [--shape 1000x1] [--events 400] [--batch 25] [--latency]
        [--duration 3] [--rate EVENTS_PER_S] [--timeline PATH]

A shape is accounts × connections per account. Each connection receives `--events` realistic
events (ORDER_TRADE_UPDATE, TRADE_LITE, ACCOUNT_UPDATE in turn, built through the protocol
models, 270-520 bytes). Servers under test run pinned to core 0; this process (publisher and
the picows clients that count frames) pins itself to core 1.

Servers, all paced the same way (a round of `--batch` events per connection is published, and
the next round goes out once every connection has received the round before it: two rounds in
flight, so memory stays bounded):

- userstream, batched: `POST /admin/v1/accounts/{id}/events` with `--batch` events in a JSON
  array per request, requests pipelined on keep-alive connections;
- userstream, 1 event per request: the same, one event per request;
- nchan: `POST /pub/<channel>`, one event per request (nchan's only form), pipelined;
- picows raw (send): `bench/picows_broadcaster.py`, one `WSTransport.send` per frame;
- picows raw (coalesce): the same broadcaster writing each connection's round in one write.

Reported: delivered events/s (wall), server CPU µs per delivered event (/proc/<pid>/stat),
load-process CPU share (a figure near 100% means the load generator, not the server, set the
pace), and with `--latency` publish→receive latency at 50% of the measured maximum (or at
`--rate`, without the throughput runs): the publish time (time.time_ns()) travels in each
event's client order id and is compared on receipt.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import picows
import uvloop

from bench.common import (
    LOSS_TOLERANCE,
    ROOT,
    PipelinedHttp,
    Received,
    UserstreamServer,
    admin_publish_request,
    apply_stamp,
    close_all,
    connect_all,
    cpu_seconds,
    encoded_events,
    http_request,
    machine,
    pin_load,
    raise_nofile,
    stamp_offsets,
    stamped,
    start_pinned,
    stop,
    userstream_server,
    versions,
)
from bench.nchan import nchan_server
from bench.timeline import Timeline

PUBLISH_CONNECTIONS = 8
# The user-stream servers run without the synthetic market: nothing here subscribes to it,
# and its ticks (every 50 ms, up to milliseconds of loop time each) would land in the
# latency tail as stalls that no user-stream deployment without a market has.
SERVE_ARGS = ("--market", "none")
LATENCY_TICK_S = 0.001  # libuv timers have 1 ms resolution; less would spin
SAMPLE_EVERY = 4  # latency runs with one connection per account: stamps read on 1 frame in 4


@dataclass(frozen=True)
class Shape:
    accounts: int
    per_account: int

    @property
    def connections(self) -> int:
        return self.accounts * self.per_account

    @property
    def label(self) -> str:
        return f"{self.accounts:,} × {self.per_account:,}"

    @classmethod
    def parse(cls, text: str) -> Shape:
        accounts, per_account = text.lower().split("x")
        return cls(int(accounts), int(per_account))


@dataclass
class Result:
    server: str
    shape: Shape
    delivered: int
    wall_s: float
    cpu_s: float
    load_cpu_s: float
    per_request: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    offered_per_s: float = 0.0
    lost: int = 0

    @property
    def per_second(self) -> float:
        return self.delivered / self.wall_s

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s * 1e6 / self.delivered

    @property
    def server_cpu_share(self) -> float:
        return self.cpu_s / self.wall_s

    @property
    def load_cpu_share(self) -> float:
        return self.load_cpu_s / self.wall_s

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_ns)
        index = min(len(ordered) - 1, int(q / 100 * len(ordered)))
        return ordered[index] / 1e6


# the servers under test, each exposing: connection URLs, a publisher, and the server pid


class Target:
    name = ""
    per_request = 0
    command = ""

    @property
    def pid(self) -> int:
        raise NotImplementedError

    def urls(self) -> list[str]:
        raise NotImplementedError

    async def open_publisher(self, stack: AsyncExitStack) -> None:
        raise NotImplementedError

    def publish_round(self, index: int) -> None:
        """Send the round of events that gives every connection `batch` more frames."""
        raise NotImplementedError

    def timed_requests(self, latency: bool) -> list[tuple[bytearray, list[int], int]]:
        """(request template, stamp offsets, publisher index) for paced latency runs."""
        raise NotImplementedError

    def send(self, publisher: int, data: bytes | bytearray) -> None:
        raise NotImplementedError

    def check(self) -> None:
        """Raise if any request was refused."""


class HttpPublisher(Target):
    """A target fed by pipelined HTTP requests (userstream admin API, nchan)."""

    def __init__(self, shape: Shape, events: list[bytes], batch: int, per_request: int) -> None:
        self.shape = shape
        self.events = events
        self.batch = batch
        self.per_request = per_request
        self.port = 0
        self.http: list[PipelinedHttp] = []

    async def open_publisher(self, stack: AsyncExitStack) -> None:
        count = min(PUBLISH_CONNECTIONS, self.shape.accounts)
        self.http = [await PipelinedHttp.open("127.0.0.1", self.port) for _ in range(count)]
        for conn in self.http:
            stack.callback(conn.close)

    def send(self, publisher: int, data: bytes | bytearray) -> None:
        self.http[publisher].send(data)

    def check(self) -> None:
        for conn in self.http:
            if conn.failed:
                raise RuntimeError(f"{self.name}: {conn.failed} refused: {conn.first_failure!r}")

    def request(self, account: int, body: bytes) -> bytes:
        raise NotImplementedError

    def body(self, events: list[bytes]) -> bytes:
        raise NotImplementedError

    def publish_round(self, index: int) -> None:
        start = index * self.batch
        size = len(self.events)
        chunks = [
            self.body([self.events[(i + j) % size] for j in range(self.per_request)])
            for i in range(start, start + self.batch, self.per_request)
        ]
        count = len(self.http)
        for account in range(self.shape.accounts):
            data = b"".join(self.request(account, chunk) for chunk in chunks)
            self.http[account % count].send(data)

    def timed_requests(self, latency: bool) -> list[tuple[bytearray, list[int], int]]:
        events = [stamped(raw) for raw in self.events[: self.per_request * 3]]
        bodies = [
            self.body(events[i : i + self.per_request])
            for i in range(0, len(events), self.per_request)
        ]
        out = []
        for account in range(self.shape.accounts):
            for body in bodies:
                request = self.request(account, body)
                out.append((bytearray(request), stamp_offsets(request), account % len(self.http)))
        return out


class UserstreamTarget(HttpPublisher):
    def __init__(self, shape: Shape, events: list[bytes], batch: int, per_request: int) -> None:
        super().__init__(shape, events, batch, per_request)
        self.name = "userstream" if per_request > 1 else "userstream 1/req"
        self._stream_urls: list[str] = []
        self._account_ids: list[int] = []
        self._pid = 0
        self._server: UserstreamServer | None = None

    @contextmanager
    def running(self) -> Iterator[None]:
        with userstream_server(*SERVE_ARGS) as server:
            self._pid = server.pid
            self.port = server.port
            self.command = "userstream " + server.command.split(" userstream.cli ", 1)[-1]
            self._server = server
            yield

    async def prepare(self) -> None:
        server = self._server
        assert server is not None
        await server.setup(self.shape.accounts)
        self._account_ids = [account.id for account in server.accounts]
        self._stream_urls = [
            server.stream_url(account)
            for account in range(self.shape.accounts)
            for _ in range(self.shape.per_account)
        ]

    @property
    def pid(self) -> int:
        return self._pid

    def urls(self) -> list[str]:
        return self._stream_urls

    def body(self, events: list[bytes]) -> bytes:
        return events[0] if len(events) == 1 else b"[" + b",".join(events) + b"]"

    def request(self, account: int, body: bytes) -> bytes:
        return admin_publish_request(self._account_ids[account], body)


class NchanTarget(HttpPublisher):
    def __init__(self, shape: Shape, events: list[bytes], batch: int) -> None:
        super().__init__(shape, events, batch, 1)
        self.name = "nchan"
        self._pid = 0

    @contextmanager
    def running(self) -> Iterator[None]:
        with nchan_server(self.shape.connections + 1000) as server:
            self._pid = server.pid
            self.port = server.port
            self.command = server.config
            yield

    async def prepare(self) -> None:
        return None

    @property
    def pid(self) -> int:
        return self._pid

    def urls(self) -> list[str]:
        return [
            f"ws://127.0.0.1:{self.port}/sub/a{account}"
            for account in range(self.shape.accounts)
            for _ in range(self.shape.per_account)
        ]

    def body(self, events: list[bytes]) -> bytes:
        assert len(events) == 1
        return events[0]

    def request(self, account: int, body: bytes) -> bytes:
        return http_request("POST", f"/pub/a{account}", body, {})


class PicowsTarget(Target):
    def __init__(self, shape: Shape, events: list[bytes], batch: int, mode: str) -> None:
        self.shape = shape
        self.events = events
        self.batch = batch
        self.mode = mode
        self.name = f"picows raw ({mode})"
        self._pid = 0
        self.port = 0
        self.control: picows.WSTransport | None = None

    @contextmanager
    def running(self) -> Iterator[None]:
        with tempfile.NamedTemporaryFile(suffix=".jsonl") as file:
            file.write(b"\n".join(self.events[:3000]) + b"\n")
            file.flush()
            script = str(ROOT / "bench" / "picows_broadcaster.py")
            process, port = start_pinned(
                [sys.executable, script, "--payloads", file.name, "--mode", self.mode],
                lambda line: line.split()[1] if line.startswith("ready") else None,
            )
            self._pid, self.port = process.pid, int(port)
            self.command = f"python bench/picows_broadcaster.py --mode {self.mode}"
            try:
                yield
            finally:
                stop(process)

    async def prepare(self) -> None:
        return None

    @property
    def pid(self) -> int:
        return self._pid

    def urls(self) -> list[str]:
        return [
            f"ws://127.0.0.1:{self.port}/a{account}"
            for account in range(self.shape.accounts)
            for _ in range(self.shape.per_account)
        ]

    async def open_publisher(self, stack: AsyncExitStack) -> None:
        self.control, _ = await picows.ws_connect(
            lambda: picows.WSListener(), f"ws://127.0.0.1:{self.port}/"
        )
        stack.callback(self.control.disconnect)

    def publish_round(self, index: int) -> None:
        assert self.control is not None
        self.control.send(picows.WSMsgType.TEXT, f"burst {self.batch}".encode())


# runs


def disconnect_all(conns: list[picows.WSTransport]) -> None:
    for conn in conns:
        conn.disconnect()


async def throughput(target: Target, shape: Shape, events: int, batch: int) -> Result:
    """Publish `events` per connection in rounds of `batch`, two rounds in flight."""
    received = Received()
    async with AsyncExitStack() as stack:
        conns = await connect_all(target.urls(), received)
        stack.push_async_callback(close_all, conns)
        await target.open_publisher(stack)
        rounds = events // batch
        per_round = batch * shape.connections
        load0, cpu0, wall0 = time.process_time(), cpu_seconds(target.pid), time.perf_counter()
        for index in range(rounds):
            if index >= 2:
                await received.settle(int((index - 1) * per_round * (1 - LOSS_TOLERANCE)))
                target.check()
            target.publish_round(index)
        await received.settle(rounds * per_round)
        wall = received.last - wall0
        cpu, load = cpu_seconds(target.pid) - cpu0, time.process_time() - load0
        target.check()
        result = Result(
            target.name, shape, received.count, wall, cpu, load, getattr(target, "per_request", 0)
        )
        result.lost = rounds * per_round - received.count
        return result


async def latency(
    target: Target,
    shape: Shape,
    rate: float,
    duration_s: float,
    parse_every: bool = False,
    timeline: Timeline | None = None,
) -> Result:
    """Publish at `rate` delivered events/s for `duration_s`; latency of the stamped frames.

    Stamps are read on a sample of the frames; the others are only counted. Reading a stamp
    costs the load process ~2 µs a frame, so reading them all would add the load generator's
    own queueing to every figure, and at 600k frames/s saturate its core. With several
    connections per account the last one of each account reads them all: it is the one the
    server writes to last, so the sample is not flattering. With one connection per account
    every connection reads every `SAMPLE_EVERY`-th frame (25 mod 4 = 1, so every position in
    a request is sampled alike). The connections that read no stamps at all count messages from
    their frame headers (`CountingConnection`), a fraction of what a parsed message costs, so
    that the load process's core is not what the sampled connections wait for; `parse_every`
    gives them picows clients instead.

    The load process's garbage collector is off while it measures (as `timeit` does): after
    the runs before it, a collection can stall the process for milliseconds, and every
    frame it has not read yet by then counts as late.

    A server run with `USERSTREAM_STALL_LOG` (and `BENCH_SERVER_LOG` to keep its stderr) gets
    SIGUSR1 as the paced publishing starts and once every frame is in, so its stall log sums
    up the measured phase on its own (server/stalls.py). A `timeline` records the run window
    by window (bench/timeline.py).
    """
    stall_log = bool(os.environ.get("USERSTREAM_STALL_LOG")) and isinstance(
        target, UserstreamTarget
    )
    received = Received()
    received.latencies_ns = []
    gc.collect()
    gc.disable()
    async with AsyncExitStack() as stack:
        stack.callback(gc.enable)
        conns = await connect_all(
            target.urls(),
            received,
            measure_every=shape.per_account,
            sample_every=SAMPLE_EVERY if shape.per_account == 1 else 1,
            count_raw=not parse_every,
        )
        stack.push_async_callback(close_all, conns)
        await target.open_publisher(stack)
        templates = target.timed_requests(latency=True)
        per_request_frames = target.per_request * shape.per_account
        requests_per_s = rate / per_request_frames
        sent = 0
        if stall_log:
            os.kill(target.pid, signal.SIGUSR1)
        load0, cpu0, wall0 = time.process_time(), cpu_seconds(target.pid), time.perf_counter()
        if timeline is not None:
            timeline.start(received)
        while True:
            elapsed = time.perf_counter() - wall0
            if elapsed >= duration_s:
                break
            due = int(elapsed * requests_per_s) - sent
            for _ in range(due):
                body, offsets, publisher = templates[sent % len(templates)]
                apply_stamp(body, offsets, time.time_ns())
                target.send(publisher, body)
                sent += 1
            if timeline is not None:
                timeline.tick(sent * per_request_frames, received)
            await asyncio.sleep(LATENCY_TICK_S)
        await received.settle(sent * per_request_frames)
        if stall_log:
            os.kill(target.pid, signal.SIGUSR1)
        wall = received.last - wall0
        cpu, load = cpu_seconds(target.pid) - cpu0, time.process_time() - load0
        target.check()
        result = Result(target.name, shape, received.count, wall, cpu, load, target.per_request)
        result.latencies_ns = received.latencies_ns
        result.offered_per_s = rate
        result.lost = sent * per_request_frames - received.count
        return result


Runner = Callable[[Target], Awaitable[Result]]


async def measure(target: UserstreamTarget | NchanTarget | PicowsTarget, run: Runner) -> Result:
    with target.running():
        await target.prepare()
        return await run(target)


def print_result(result: Result) -> None:
    line = (
        f"{result.server:<24} {result.shape.label:>11} {result.per_second:>12,.0f}/s "
        f"{result.cpu_us_per_event:>7.2f} µs/event  server CPU {result.server_cpu_share:>4.0%}  "
        f"load CPU {result.load_cpu_share:>4.0%}"
    )
    if result.latencies_ns:
        line += (
            f"  p50 {result.percentile_ms(50):.2f} p99 {result.percentile_ms(99):.2f} "
            f"p99.9 {result.percentile_ms(99.9):.2f} ms"
        )
    print(line, flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=Shape.parse, default=Shape(1000, 1))
    parser.add_argument("--events", type=int, default=400, help="events per connection")
    parser.add_argument("--batch", type=int, default=25, help="events per connection per round")
    parser.add_argument("--latency", action="store_true", help="also latency at 50%% of max")
    parser.add_argument("--duration", type=float, default=3.0, help="latency run, seconds")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="with --latency: publish at this many delivered events/s and skip the "
        "throughput runs (for comparing builds at one load)",
    )
    parser.add_argument(
        "--parse-every-connection",
        action="store_true",
        help="latency runs: every connection parses its frames with picows, also those that "
        "read no stamps (by default these count messages from frame headers)",
    )
    parser.add_argument(
        "--timeline",
        type=Path,
        default=None,
        help="with --latency: write the latency run window by window to this CSV, and its "
        "plot beside it (bench/timeline.py)",
    )
    args = parser.parse_args()
    pin_load()
    raise_nofile()
    shape: Shape = args.shape
    events = encoded_events(max(args.events, 3000))
    size = sum(map(len, events)) / len(events)
    print(f"# {' '.join(sys.argv)}")
    print(f"# {machine()}; {versions()}; {shape.label}, {args.events} events of {size:.0f} B")

    async def run(target: Target) -> Result:
        return await throughput(target, shape, args.events, args.batch)

    rate: float = args.rate or 0.0

    timeline: Timeline | None = None

    async def timed(target: Target) -> Result:
        nonlocal timeline
        if args.timeline is not None:
            timeline = Timeline(target.pid)
        return await latency(
            target, shape, rate, args.duration, args.parse_every_connection, timeline
        )

    def print_latency(result: Result) -> None:
        print_result(result)
        if timeline is not None:
            print(f"timeline: {args.timeline}, {timeline.write(args.timeline)}")

    if args.latency and rate:
        target = UserstreamTarget(shape, events, args.batch, args.batch)
        print_latency(await measure(target, timed))
        return
    targets: list[UserstreamTarget | NchanTarget | PicowsTarget] = [
        PicowsTarget(shape, events, args.batch, "send"),
        PicowsTarget(shape, events, args.batch, "coalesce"),
        NchanTarget(shape, events, args.batch),
        UserstreamTarget(shape, events, args.batch, args.batch),
    ]
    results = [await measure(target, run) for target in targets]
    for result in results:
        print_result(result)
    if args.latency:
        rate = results[-1].per_second / 2
        print_latency(await measure(UserstreamTarget(shape, events, args.batch, args.batch), timed))


if __name__ == "__main__":
    uvloop.run(main())
