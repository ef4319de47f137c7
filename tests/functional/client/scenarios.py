"""Fault scenarios for user-data-stream clients against a real server (issue 3, "Proof").

Not a test module: `test_fault_proof.py` and `bench/compare_clients.py` drive it. A
*scenario* publishes numbered `ORDER_TRADE_UPDATE` events (the client order id is
`seq-<n>`) before, during and after a fault; a *subject* (an adapter around one client
library) reports what its consumer saw to a `Sink`; `score()` turns the two records into a
`RunResult`.

Definitions (what the table in `docs/client-faults.md` means):

* **published**: events the admin API accepted (one request per event, except bursts).
* **on air**: published events the server queued to at least one stream connection of the
  account's live key, i.e. accepted while the subject had a connection up. Measured, not
  guessed: `events.delivered` of `GET /admin/v1/stats` is read after every publish, and each
  run has a server of its own, so a rise means "queued to one of the subject's sockets".
* **lost**: published events the consumer never received; **lost on air**: of those, the
  ones that were on air.
* **loss window**: a run of consecutive lost numbers. It is **announced** (`yes`) when the
  subject yielded an explicit "events may be missing" marker (`StreamGap`) after the last
  event before the window and before the first event after it; `hint` when it yielded only
  something a consumer would have to interpret (python-binance's `{"e": "error"}` dicts, a raw
  `listenKeyExpired`, the official SDK's connection `close` callback); else `no`.
* **duplicates**: event arrivals beyond the first of each number; **out of order**: arrivals
  with a number below one already seen.
* **recovered**: for every fault, an event published after the fault ended was received;
  **recovery time**: the longest, over the faults, from the end of a fault to the arrival of
  the first event published after it (events go out every `Profile.cadence_s`).
* **stopped silently**: not recovered, and no marker or hint after the last event it
  received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import aiohttp

from tests.conftest import (
    ADMIN_TOKEN,
    ServerProcess,
    start_server_process,
    stop_server_process,
)
from tests.functional.client.relay import Relay
from userstream import Endpoints, Keepalive, Reconnect, StreamGap, UserDataStream
from userstream.client.policy import DEFAULT_ROTATE_AFTER_MS
from userstream.clock import SystemClock
from userstream.protocol.events import OrderTradeUpdate
from userstream.server.app import ServerConfig, UserStreamServer
from userstream.server.liveness import LivenessPolicy

FIXTURE = Path(__file__).parents[2] / "fixtures" / "events" / "order_trade_update_doc.json"
SEQ_PREFIX = "seq-"
ADMIN_TIMEOUT_S = 5.0


def order_event(n: int) -> dict[str, Any]:
    """An ORDER_TRADE_UPDATE whose client order id carries `n`; the server stamps `E`/`T`."""
    event: dict[str, Any] = json.loads(FIXTURE.read_text())
    del event["E"], event["T"]
    event["o"]["c"] = f"{SEQ_PREFIX}{n}"
    return event


def seq_of(client_order_id: str) -> int | None:
    if client_order_id.startswith(SEQ_PREFIX):
        digits = client_order_id[len(SEQ_PREFIX) :]
        if digits.isdigit():
            return int(digits)
    return None


# --- what a subject's consumer saw ---------------------------------------------------------

ArrivalKind = Literal["event", "gap", "hint"]


@dataclass(frozen=True, slots=True)
class Arrival:
    kind: ArrivalKind
    at: float  # time.monotonic()
    seq: int = -1
    detail: str = ""


class Sink:
    """Where a subject's consumer records what it got; also the consumer's stall switch."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.seen: set[int] = set()
        self._running = asyncio.Event()
        self._running.set()
        self.closed = False

    def event(self, seq: int) -> None:
        if not self.closed:
            self.arrivals.append(Arrival("event", time.monotonic(), seq))
            self.seen.add(seq)

    def gap(self, detail: str) -> None:
        if not self.closed:
            self.arrivals.append(Arrival("gap", time.monotonic(), detail=detail))

    def hint(self, detail: str) -> None:
        if not self.closed:
            self.arrivals.append(Arrival("hint", time.monotonic(), detail=detail))

    async def gate(self) -> None:
        """A consumer awaits this before taking each item: `stall()` makes it sleep."""
        await self._running.wait()

    def stall(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()


# --- the venue: a real server, in this process or as a subprocess --------------------------


class Venue:
    """A running server with one account, driven over HTTP like any operator would."""

    def __init__(self) -> None:
        self.url = ""
        self.api_key = ""
        self.secret_key = ""
        self.account_id = 0
        self.max_lifetime_ms = LivenessPolicy().max_lifetime_ms
        self._delivered = 0
        self._http: aiohttp.ClientSession | None = None

    @property
    def ws(self) -> str:
        """Where stream connections go (a relay's address when the scenario has one)."""
        return self.url.replace("http://", "ws://")

    async def freeze(self) -> None:
        raise NotImplementedError("this venue has no relay")

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ADMIN_TIMEOUT_S))
        return self._http

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with self.http.request(
            method, f"{self.url}/admin/v1/{path}", json=body, headers=headers
        ) as response:
            return response.status, await response.json(content_type=None)

    async def delivered(self) -> int:
        status, body = await self.admin("GET", "stats")
        assert status == 200, body
        return int(body["events"]["delivered"])

    async def publish(self, events: list[dict[str, Any]]) -> int:
        """Publish `events`; return how many frames the server queued to stream sockets."""
        status, body = await self.admin("POST", f"accounts/{self.account_id}/events", events)
        assert status == 200, body
        now = await self.delivered()
        queued, self._delivered = now - self._delivered, now
        return queued

    async def drop(self, code: int, all_connections: bool = False) -> int:
        body: dict[str, Any] = {"code": code}
        if not all_connections:
            body["accountId"] = self.account_id
        status, answer = await self.admin("POST", "connections/drop", body)
        assert status == 200, answer
        return int(answer["dropped"])

    async def current_key(self) -> str:
        """The account's live key (POST returns it; Binance keeps one per account)."""
        async with self.http.post(
            f"{self.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": self.api_key}
        ) as response:
            assert response.status == 200
            return str((await response.json())["listenKey"])

    async def expire_key(self) -> None:
        key = await self.current_key()
        status, body = await self.admin("POST", f"listenKeys/{key}/expire")
        assert status == 200, body

    async def delete_key(self) -> None:
        """DELETE /fapi/v1/listenKey with the account's API key, behind the subject's back."""
        async with self.http.delete(
            f"{self.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": self.api_key}
        ) as response:
            assert response.status == 200, await response.text()

    async def restart(self, down_s: float = 0.0, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with `kill`), keep it down `down_s`, start
        it again (same data and port)."""
        raise NotImplementedError("this venue cannot restart")

    async def _create_account(self) -> None:
        status, body = await self.admin("POST", "accounts", {"name": "scenario"})
        assert status == 200, body
        self._credentials(body)

    def _credentials(self, body: dict[str, Any]) -> None:
        self.api_key = str(body["apiKey"])
        self.secret_key = str(body["secretKey"])
        self.account_id = int(body["accountId"])

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()


class InProcessVenue(Venue):
    """`UserStreamServer` on this loop with the real clock and a short connection lifetime,
    so the "24-hour" cap arrives after `max_lifetime_ms` of real time for every library."""

    def __init__(self, data_dir: Path, max_lifetime_ms: int, relay: bool = False) -> None:
        super().__init__()
        self.max_lifetime_ms = max_lifetime_ms
        self.relay: Relay | None = None
        self._with_relay = relay
        policy = LivenessPolicy(max_lifetime_ms=max_lifetime_ms)
        self.server = UserStreamServer(
            ServerConfig(
                port=0,
                data_dir=data_dir,
                clock=SystemClock(),
                admin_token=ADMIN_TOKEN,
                liveness=policy,
            )
        )

    @property
    def ws(self) -> str:
        if self.relay is not None:
            return f"ws://127.0.0.1:{self.relay.port}"
        return super().ws

    async def freeze(self) -> None:
        """Black-hole the stream connections open now (a half-open TCP connection)."""
        assert self.relay is not None
        self.relay.freeze_existing()

    async def start(self) -> None:
        await self.server.start()
        self.url = self.server.http_url
        if self._with_relay:
            self.relay = Relay(self.server.port)
            await self.relay.start()
        await self._create_account()

    async def aclose(self) -> None:
        await super().aclose()
        if self.relay is not None:
            await self.relay.aclose()
        await self.server.aclose()


class ProcessVenue(Venue):
    """`userstream serve` as a subprocess (real CLI, real clock); `restart()` sends SIGTERM
    (or SIGKILL) and starts it again on the same data directory and port."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.proc: ServerProcess | None = None

    async def start(self) -> None:
        self.proc = await asyncio.to_thread(start_server_process, self.data_dir)
        self.url = self.proc.url
        self._credentials(self.proc.demo)

    async def restart(self, down_s: float = 0.0, kill: bool = False) -> None:
        assert self.proc is not None
        port = self.url.rsplit(":", 1)[1]
        if kill:
            self.proc.process.kill()  # no close frames: every stream sees 1006
        await asyncio.to_thread(stop_server_process, self.proc)
        await asyncio.sleep(down_s)
        self.proc = await asyncio.to_thread(start_server_process, self.data_dir, "--port", port)
        assert self.proc.url == self.url
        self._delivered = await self.delivered()

    async def aclose(self) -> None:
        await super().aclose()
        if self.proc is not None:
            await asyncio.to_thread(stop_server_process, self.proc)


# --- subjects, profiles, runs ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """Timings shared by every subject in a run (real seconds)."""

    cadence_s: float = 0.05
    """Time between published events."""
    per_phase: int = 6
    """Events published before the first fault and after each fault."""
    drops: int = 3
    """Faults in the "dropped every few events" scenarios."""
    tail_s: float = 2.5
    """Events keep coming this long after the last fault (time to recover)."""
    settle_s: float = 1.0
    """Longest wait for stragglers at a quiesce point or at the end."""
    keepalive_s: float = 2.0
    """Every subject's keepalive period (python-binance's `user_timeout`, the SDK user's
    PUT loop, our `keepalive_interval_ms`): the shipped 5 and 30 minutes, compressed."""
    max_lifetime_ms: int = 3_000
    """The server's connection cap ("24 hours"), compressed."""
    burst: int = 300
    """Events published at once while the consumer is stalled."""
    stall_s: float = 1.0
    start_timeout_s: float = 10.0
    stop_timeout_s: float = 6.0


QUICK = Profile(
    cadence_s=0.04,
    per_phase=4,
    drops=2,
    tail_s=1.0,
    settle_s=0.5,
    max_lifetime_ms=1_500,
    burst=200,
    stall_s=0.5,
)
"""Short runs for the test suite."""


class Subject(Protocol):
    """One client library behind one interface: start, report to the sink, stop."""

    name: str

    async def start(self, venue: Venue, sink: Sink, profile: Profile) -> None:
        """Connect; return once events published now will reach the subject."""
        ...

    async def aclose(self) -> None:
        """Stop the library's tasks and sockets (bounded in time by the caller)."""
        ...


@dataclass(frozen=True, slots=True)
class Published:
    seq: int
    at: float
    on_air: bool


@dataclass(frozen=True, slots=True)
class Fault:
    label: str
    start: float
    end: float
    last_seq_before: int


@dataclass
class Run:
    """One scenario against one subject: publishes, injects faults, records."""

    venue: Venue
    sink: Sink
    profile: Profile
    ready_at: float = 0.0
    published: list[Published] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    @property
    def last_seq(self) -> int:
        return self.published[-1].seq if self.published else 0

    async def publish(self, count: int) -> None:
        """Publish `count` events one by one, `cadence_s` apart."""
        for _ in range(count):
            seq = self.last_seq + 1
            at = time.monotonic()
            queued = await self.venue.publish([order_event(seq)])
            self.published.append(Published(seq, at, queued > 0))
            await asyncio.sleep(self.profile.cadence_s)

    async def publish_for(self, seconds: float) -> None:
        await self.publish(max(1, round(seconds / self.profile.cadence_s)))

    async def burst(self, count: int) -> None:
        """Publish `count` events in one request."""
        first = self.last_seq + 1
        at = time.monotonic()
        queued = await self.venue.publish([order_event(n) for n in range(first, first + count)])
        self.published.extend(Published(n, at, queued > 0) for n in range(first, first + count))

    async def fault(self, label: str, action: Awaitable[Any]) -> None:
        last = self.last_seq
        start = time.monotonic()
        await action
        self.faults.append(Fault(label, start, time.monotonic(), last))
        # A key's end is announced to its sockets (a `listenKeyExpired` frame counts as
        # delivered): take a fresh baseline so it is not mistaken for an event on air.
        self.venue._delivered = await self.venue.delivered()

    def mark_fault(self, label: str, at: float) -> None:
        """A fault the server causes on its own (the connection cap) at a known moment."""
        last = max((p.seq for p in self.published if p.at < at), default=0)
        self.faults.append(Fault(label, at, at, last))

    async def quiesce(self, everything: bool = False) -> None:
        """Wait (at most `settle_s`) until the subject has every on-air event published so
        far, or with `everything`, every published event."""
        wanted = {p.seq for p in self.published if everything or p.on_air}
        deadline = time.monotonic() + self.profile.settle_s
        while not wanted <= self.sink.seen and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


ScenarioFn = Callable[[Run], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    body: ScenarioFn
    needs_restart: bool = False
    needs_relay: bool = False
    compressed_cap: bool = False
    """Run the server with `Profile.max_lifetime_ms` as its connection cap (else 24 h)."""


def _drops(code: int) -> ScenarioFn:
    async def body(run: Run) -> None:
        await run.publish(run.profile.per_phase)
        for _ in range(run.profile.drops):
            await run.quiesce()
            await run.fault(f"drop {code}", run.venue.drop(code))
            await run.publish(run.profile.per_phase)

    return body


async def _key_expired(run: Run) -> None:
    await run.publish(run.profile.per_phase)
    await run.quiesce()
    await run.fault("admin expire", run.venue.expire_key())
    await run.publish(run.profile.per_phase)


async def _key_deleted(run: Run) -> None:
    await run.publish(run.profile.per_phase)
    await run.quiesce()
    await run.fault("REST DELETE", run.venue.delete_key())
    await run.publish(run.profile.per_phase)


def _restart(kill: bool) -> ScenarioFn:
    async def body(run: Run) -> None:
        await run.publish(run.profile.per_phase)
        await run.quiesce()
        signal = "SIGKILL" if kill else "SIGTERM"
        await run.fault(f"{signal} + restart", run.venue.restart(kill=kill))
        await run.publish(run.profile.per_phase)

    return body


OUTAGE_S = 30.0
HALF_OPEN_WATCH_S = 50.0
"""Events keep coming this long after a connection goes half-open: websockets' default
keepalive (20 s ping + 20 s timeout) notices after 33-40 s."""


async def _outage(run: Run) -> None:
    await run.publish(run.profile.per_phase)
    await run.quiesce()
    await run.fault(f"{OUTAGE_S:g} s outage", run.venue.restart(down_s=OUTAGE_S))
    await run.publish(run.profile.per_phase)


async def _half_open(run: Run) -> None:
    await run.publish(run.profile.per_phase)
    await run.quiesce()
    await run.fault("half-open", run.venue.freeze())
    await run.publish_for(HALF_OPEN_WATCH_S)


async def _cap(run: Run) -> None:
    lifetime_s = run.profile.max_lifetime_ms / 1000
    await run.publish_for(lifetime_s - (time.monotonic() - run.ready_at))
    run.mark_fault("connection cap", run.ready_at + lifetime_s)


async def _stall(run: Run) -> None:
    await run.publish(run.profile.per_phase)
    await run.quiesce()
    run.sink.stall()
    await run.burst(run.profile.burst)
    await asyncio.sleep(run.profile.stall_s)
    last = run.last_seq
    start = time.monotonic()
    run.sink.resume()
    run.faults.append(Fault("consumer stalled", start, start, last))
    await run.publish(run.profile.per_phase)


SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario(
            "drop_1006", "connection dropped every few events (1006, no close frame)", _drops(1006)
        ),
        Scenario("drop_1000", "connection closed every few events (1000)", _drops(1000)),
        Scenario("key_expired", "listenKey expired server-side (listenKeyExpired)", _key_expired),
        Scenario("key_deleted", "listenKey DELETEd behind the client's back", _key_deleted),
        Scenario(
            "restart",
            "server process restarted (SIGTERM, same data and port)",
            _restart(kill=False),
            needs_restart=True,
        ),
        Scenario(
            "restart_kill",
            "server process killed and restarted (SIGKILL, same data and port)",
            _restart(kill=True),
            needs_restart=True,
        ),
        Scenario(
            "outage_30s",
            f"server down for {OUTAGE_S:g} s (SIGTERM, then started again)",
            _outage,
            needs_restart=True,
        ),
        Scenario(
            "half_open",
            "half-open connection (a relay black-holes it, no FIN, no RST)",
            _half_open,
            needs_relay=True,
        ),
        Scenario(
            "cap_24h",
            "crossing the 24-hour connection cap (compressed)",
            _cap,
            compressed_cap=True,
        ),
        Scenario("stall", "consumer stalled during a burst", _stall),
    )
}


def rotate_after_ms(cap_ms: int) -> int:
    """Our rotation point for a server's cap: the default (23.5 h) unless it is compressed."""
    if cap_ms >= LivenessPolicy().max_lifetime_ms:
        return DEFAULT_ROTATE_AFTER_MS
    return max(cap_ms - 1_000, cap_ms // 2)


class OurSubject:
    """`userstream.UserDataStream` with its defaults, except the compressed timings every
    subject gets (keepalive period) and a rotation point before the compressed cap."""

    name = "userstream"

    def __init__(self) -> None:
        self.stream: UserDataStream | None = None
        self._consumer: asyncio.Task[None] | None = None

    async def start(self, venue: Venue, sink: Sink, profile: Profile) -> None:
        self.stream = UserDataStream(
            venue.api_key,
            endpoints=Endpoints(venue.url, f"{venue.ws}/ws-fapi/v1", venue.ws),
            keepalive=Keepalive(listen_key_interval_ms=round(profile.keepalive_s * 1000)),
            reconnect=Reconnect(rotate_after_ms=rotate_after_ms(venue.max_lifetime_ms)),
            rng=random.Random(7),
        )
        await self.stream.start()
        self._consumer = asyncio.create_task(self._consume(self.stream, sink))

    @staticmethod
    async def _consume(stream: UserDataStream, sink: Sink) -> None:
        try:
            while True:
                await sink.gate()
                item = await anext(stream)
                if isinstance(item, StreamGap):
                    sink.gap(f"{item.reason.value}: {item.detail}")
                elif isinstance(item, OrderTradeUpdate):
                    seq = seq_of(item.order.client_order_id)
                    if seq is not None:
                        sink.event(seq)
        except StopAsyncIteration:
            sink.hint("stream ended")
        except Exception as exc:
            sink.hint(f"stream failed: {exc!r}")

    async def aclose(self) -> None:
        await stop_task(self._consumer)
        if self.stream is not None:
            await self.stream.aclose()


# --- scoring ----------------------------------------------------------------------------------

Announced = Literal["yes", "hint", "no", "-"]
ANNOUNCED_RANK: dict[Announced, int] = {"no": 0, "hint": 1, "yes": 2, "-": 3}


@dataclass(frozen=True, slots=True)
class RunResult:
    scenario: str
    subject: str
    published: int
    on_air: int
    received: int
    lost: int
    lost_on_air: int
    loss_windows: list[tuple[int, int]]
    announced: Announced
    unannounced_windows: list[tuple[int, int]]
    duplicates: int
    out_of_order: int
    gaps: int
    hints: int
    recovered: bool
    recovery_s: float | None
    stopped_silently: bool
    markers: list[str] = field(default_factory=list)
    """Distinct gap markers and hints the consumer saw, in order of first appearance."""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.subject}/{self.scenario}: published {self.published} (on air "
            f"{self.on_air}), received {self.received}, lost {self.lost} (on air "
            f"{self.lost_on_air}) in {self.loss_windows}, announced {self.announced}, "
            f"duplicates {self.duplicates}, out of order {self.out_of_order}, recovered "
            f"{self.recovered} in {self.recovery_s}, silent stop {self.stopped_silently}, "
            f"notes {self.notes}"
        )


def _windows(lost: list[int]) -> list[tuple[int, int]]:
    windows: list[tuple[int, int]] = []
    for n in lost:
        if windows and windows[-1][1] == n - 1:
            windows[-1] = (windows[-1][0], n)
        else:
            windows.append((n, n))
    return windows


def score(scenario: str, subject: str, run: Run, notes: list[str]) -> RunResult:
    arrivals = run.sink.arrivals
    published = [p.seq for p in run.published]
    on_air = {p.seq for p in run.published if p.on_air}
    first_at: dict[int, int] = {}
    duplicates = out_of_order = 0
    highest = 0
    for index, arrival in enumerate(arrivals):
        if arrival.kind != "event":
            continue
        if arrival.seq in first_at:
            duplicates += 1
            continue
        first_at[arrival.seq] = index
        if arrival.seq < highest:
            out_of_order += 1
        highest = max(highest, arrival.seq)
    lost = [n for n in published if n not in first_at]
    windows = _windows(lost)

    verdicts: list[tuple[tuple[int, int], Announced]] = []
    for lo, hi in windows:
        begin = first_at.get(lo - 1, -1)
        end = first_at.get(hi + 1, len(arrivals))
        kinds = {a.kind for a in arrivals[begin + 1 : end]}
        verdict: Announced = "yes" if "gap" in kinds else "hint" if "hint" in kinds else "no"
        verdicts.append(((lo, hi), verdict))
    announced: Announced = min(
        (v for _, v in verdicts), key=ANNOUNCED_RANK.__getitem__, default="-"
    )

    recovery: list[float] = []
    recovered = True
    for fault in run.faults:
        after = [arrivals[i].at for n, i in first_at.items() if n > fault.last_seq_before]
        if after:
            recovery.append(max(0.0, min(after) - fault.end))
        else:
            recovered = False
    last_event = max(first_at.values(), default=-1)
    silent = not recovered and all(a.kind == "event" for a in arrivals[last_event + 1 :])
    return RunResult(
        scenario=scenario,
        subject=subject,
        published=len(published),
        on_air=len(on_air),
        received=len(first_at),
        lost=len(lost),
        lost_on_air=sum(1 for n in lost if n in on_air),
        loss_windows=windows,
        announced=announced,
        unannounced_windows=[w for w, v in verdicts if v != "yes"],
        duplicates=duplicates,
        out_of_order=out_of_order,
        gaps=sum(1 for a in arrivals if a.kind == "gap"),
        hints=sum(1 for a in arrivals if a.kind == "hint"),
        recovered=recovered,
        recovery_s=max(recovery) if recovery and recovered else None,
        stopped_silently=silent,
        markers=list(dict.fromkeys(f"{a.kind}: {a.detail}" for a in arrivals if a.kind != "event")),
        notes=notes,
    )


async def run_scenario(
    scenario: Scenario,
    subject: Subject,
    profile: Profile,
    data_dir: Path,
) -> RunResult:
    """Start a fresh server, the subject, the scenario and a tail; score what arrived."""
    venue: InProcessVenue | ProcessVenue
    if scenario.needs_restart:
        venue = ProcessVenue(data_dir)
    else:
        cap = (
            profile.max_lifetime_ms if scenario.compressed_cap else LivenessPolicy().max_lifetime_ms
        )
        venue = InProcessVenue(data_dir, cap, relay=scenario.needs_relay)
    notes: list[str] = []
    sink = Sink()
    await venue.start()
    try:
        run = Run(venue, sink, profile)
        await asyncio.wait_for(subject.start(venue, sink, profile), profile.start_timeout_s)
        run.ready_at = time.monotonic()
        venue._delivered = await venue.delivered()
        try:
            await scenario.body(run)
            await run.publish_for(profile.tail_s)
            await run.quiesce(everything=True)
        finally:
            sink.closed = True
            try:
                await asyncio.wait_for(subject.aclose(), profile.stop_timeout_s)
            except TimeoutError:
                notes.append(f"did not stop within {profile.stop_timeout_s:g} s")
            notes.extend(getattr(subject, "notes", []))
    finally:
        await venue.aclose()
    return score(scenario.key, subject.name, run, notes)


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
