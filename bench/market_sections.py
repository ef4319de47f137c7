"""The market-side sections of `python -m bench.run` (issue 11 "Speed", issues 13 and 14):

- market fan-out: `bench.market` (userstream beside the raw picows broadcaster and
  nats-server's WebSocket listener, then update→receive latency at half load), run as its
  command line, whose printed rows are the figures;
- the synthetic source's and `MarketState`'s cost per update (`bench.market_source`);
- risk: trigger checks per mark tick and one funding settlement over many positions
  (`bench.risk`, run as its command line);
- the account mirror's apply rate (`bench.mirror.apply_rate`).

Each section has its table and a plot under docs/img/; `Sizes.make(quick)` picks modest
durations (the full set adds about two minutes to bench.run, `--quick` about forty seconds).
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt

from bench import market_source, mirror
from bench.common import ROOT
from userstream.market.types import MarketUpdate

__all__ = [
    "PLOTS",
    "STEPS",
    "MarketSections",
    "Sizes",
    "command",
    "parse_market",
    "parse_risk",
    "plot",
    "render",
    "run",
]

STEPS = 4  # progress steps of `run`
PLOTS = ("market-fanout", "market-source", "risk-triggers", "mirror-apply")


@dataclass(frozen=True)
class Sizes:
    connections: int
    bursts: int
    burst_ms: int
    latency_s: float
    source_seconds: int
    repeat: int
    orders: int
    ticks: int
    mirror_events: int

    @classmethod
    def make(cls, quick: bool) -> Sizes:
        if quick:
            return cls(200, 2, 500, 2.0, 20, 1, 1_000, 200, 20_000)
        return cls(1000, 3, 2000, 5.0, 120, 3, 10_000, 2_000, 200_000)

    @property
    def market_args(self) -> list[str]:
        return [
            "--connections", str(self.connections), "--bursts", str(self.bursts),
            "--burst-ms", str(self.burst_ms), "--latency", "--duration", f"{self.latency_s:g}",
        ]  # fmt: skip

    @property
    def risk_args(self) -> list[str]:
        return ["--orders", str(self.orders), "--accounts", "100", "--ticks", str(self.ticks)]


@dataclass
class MarketSections:
    sizes: Sizes
    fanout: dict[str, tuple[float, float]] = field(default_factory=dict)  # msgs/s, µs/msg
    latency: tuple[float, float, float] | None = None  # rate, p50 ms, p99 ms
    latency_floor: tuple[float, float, float] | None = None  # the same, raw picows
    source: dict[str, tuple[float, float]] = field(default_factory=dict)  # µs/update, upd/s
    updates_per_second: float = 0.0
    book: list[tuple[str, float]] = field(default_factory=list)  # (call, µs)
    index: list[tuple[int, float]] = field(default_factory=list)  # (orders, µs per tick)
    scan_us: float = 0.0
    engine_us: float = 0.0
    funding: tuple[int, float, float] | None = None  # positions, ms, µs per position
    mirror_rate: float = 0.0


async def command(module: str, args: list[str]) -> str:
    """Run `python -m module args` from the repository root; its standard output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{module} failed ({process.returncode}): {err.decode()[-2000:]}")
    return out.decode()


_NUMBER = r"([\d,]+(?:\.\d+)?)"


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def parse_market(out: str, sections: MarketSections) -> None:
    """The rows `bench.market` prints: `<server>  <n> msgs/s  <x> µs/msg server CPU`, and
    `<server> at ~<rate> msgs/s ... p50 <a> p99 <b> ms` for the half-load latency runs
    (userstream, then raw picows on the same schedule)."""
    for line in out.splitlines():
        row = re.match(rf"^(\S.*?)\s+{_NUMBER} msgs/s\s+{_NUMBER} µs/msg", line)
        if row:
            sections.fanout[row[1].strip()] = (_num(row[2]), _num(row[3]))
        quantiles = re.search(rf"^(.*?) at ~{_NUMBER} msgs/s.*p50 {_NUMBER}.*p99 {_NUMBER}", line)
        if quantiles:
            figures = (_num(quantiles[2]), _num(quantiles[3]), _num(quantiles[4]))
            if quantiles[1] == "userstream":
                sections.latency = figures
            else:
                sections.latency_floor = figures
    if not sections.fanout:
        raise RuntimeError(f"bench.market printed no rows:\n{out}")


def parse_risk(out: str, sections: MarketSections) -> None:
    """The lines `bench.risk` prints (index per order count, direct scan, engine, funding)."""
    for line in out.splitlines():
        index = re.search(rf"index,\s+{_NUMBER} orders:\s+{_NUMBER} µs per tick", line)
        if index:
            sections.index.append((int(_num(index[1])), _num(index[2])))
        scan = re.search(rf"direct scan .* per tick:\s+{_NUMBER} µs", line)
        if scan:
            sections.scan_us = _num(scan[1])
        engine = re.search(rf"engine,.*:\s+{_NUMBER} µs per mark update", line)
        if engine:
            sections.engine_us = _num(engine[1])
        funding = re.search(
            rf"over {_NUMBER} positions: {_NUMBER} ms \({_NUMBER} µs per position", line
        )
        if funding:
            sections.funding = (int(_num(funding[1])), _num(funding[2]), _num(funding[3]))
    if not sections.index or sections.funding is None:
        raise RuntimeError(f"bench.risk printed no figures:\n{out}")


def measure_source(sections: MarketSections) -> None:
    sizes = sections.sizes
    best_source = best_state = float("inf")
    batches: list[list[MarketUpdate]] = []
    for _ in range(sizes.repeat):
        elapsed, batches = market_source.run_source(sizes.source_seconds, 100)
        best_source = min(best_source, elapsed)
        best_state = min(best_state, market_source.run_state(batches, 100))
    updates = sum(len(batch) for batch in batches)
    sections.updates_per_second = updates / sizes.source_seconds
    for name, best in (("synthetic source", best_source), ("MarketState fold", best_state)):
        sections.source[name] = (best / updates * 1e6, updates / best)
    sections.book = market_source.book_costs()


async def run(sizes: Sizes, step: Callable[[str], None]) -> MarketSections:
    sections = MarketSections(sizes)
    step("market fan-out (bench.market)")
    parse_market(await command("bench.market", sections.sizes.market_args), sections)
    step("market source cost (bench.market_source)")
    await asyncio.to_thread(measure_source, sections)
    step("risk triggers and funding (bench.risk)")
    parse_risk(await command("bench.risk", sections.sizes.risk_args), sections)
    step("mirror apply rate (bench.mirror)")
    events = mirror.mixed_events(sections.sizes.mirror_events)
    sections.mirror_rate = await asyncio.to_thread(mirror.apply_rate, events, sections.sizes.repeat)
    return sections


def _bars(path: Path, title: str, ylabel: str, rows: list[tuple[str, float]], fmt: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    bars = ax.bar([label for label, _ in rows], [value for _, value in rows])
    ax.bar_label(bars, fmt=fmt, fontsize=8, padding=1)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot(sections: MarketSections, img: Path) -> list[str]:
    """Write the sections' plots into `img`; their paths relative to the document."""
    img.mkdir(parents=True, exist_ok=True)
    sizes = sections.sizes
    fanout_rows = [(name, rate / 1000) for name, (rate, _) in sections.fanout.items()]
    title = f"Market fan-out, {sizes.connections:,} connections × 12 streams (server on one core)"
    _bars(img / "market-fanout.png", title, "delivered msgs/s (thousands)", fanout_rows, "%.0f")
    source_rows = [(name, us) for name, (us, _) in sections.source.items()]
    source_rows += [(f"book: {call}", us) for call, us in sections.book]
    _bars(img / "market-source.png", "Market source: CPU per update and per book read",
          "µs", source_rows, "%.2f")  # fmt: skip
    risk_rows = [(f"index, {n:,} orders", us) for n, us in sections.index]
    risk_rows += [
        ("direct scan", sections.scan_us),
        ("engine (+ margin checks)", sections.engine_us),
    ]
    _bars(img / "risk-triggers.png", "Trigger checks: µs per mark tick", "µs per tick",
          risk_rows, "%.1f")  # fmt: skip
    _bars(img / "mirror-apply.png", "Account mirror: events applied per second (one core)",
          "events/s (thousands)", [("AccountMirror.apply", sections.mirror_rate / 1000),
                                   ("target", 200.0)], "%.0f")  # fmt: skip
    return [f"img/{name}.png" for name in PLOTS]


def render(sections: MarketSections) -> list[str]:
    """The sections' Markdown (the plots are `plot`'s)."""
    sizes = sections.sizes
    out = [
        "",
        "## Market fan-out (issue 11)",
        "",
        f"`.venv/bin/python -m bench.market {' '.join(sizes.market_args)}`: every connection "
        "subscribes to one symbol's `@bookTicker` and `@depth@100ms` and ten symbols' "
        "`@aggTrade` (twelve streams); userstream runs its real market path (source → "
        "`MarketState` → depth batches → encoders → hub) on a virtual clock advanced in bursts, "
        "beside the raw picows broadcaster and nats-server's WebSocket listener pushing the "
        "same payloads to the same number of connections.",
        "",
        "![market fan-out](img/market-fanout.png)",
        "",
        "| server | delivered msgs/s | server CPU µs/msg |",
        "|---|---:|---:|",
        *(f"| {name} | {rate:,.0f} | {cpu:.2f} |" for name, (rate, cpu) in sections.fanout.items()),
    ]
    ours = sections.fanout.get("userstream", (0.0, 0.0))[0]
    raw = sections.fanout.get("picows raw (coalesce)", (0.0, 0.0))[0]
    if ours and raw:
        out += ["", f"userstream delivers {ours / raw:.0%} of the raw broadcaster (target ≥ 70%)."]
    if sections.latency is not None:
        rate, p50, p99 = sections.latency
        out += [
            "",
            f"Half load (~{rate:,.0f} msgs/s, real clock), update → receive on every 20th "
            f"connection: p50 {p50:.2f} ms, p99 {p99:.2f} ms (target p99 ≤ 2 ms). The other "
            "connections are written the same frames but only drain their sockets: one load "
            "process stands in for 1,000 clients, and parsing every frame of all of them "
            "measured that process rather than the server. The update "
            "is the book change (`T`) for the real-time `@bookTicker`, the cadence point (`E`) "
            "for `@depth@100ms` and `@aggTrade`; both have 1 ms resolution.",
        ]
    if sections.latency_floor is not None:
        _, p50, p99 = sections.latency_floor
        out += [
            "",
            f"Raw picows on the same schedule and load (each update's frames framed once and "
            f"written to every connection, nothing else in the process): p50 {p50:.2f} ms, "
            f"p99 {p99:.2f} ms. That is the floor of one core here: a loopback TCP write costs "
            "about 8 µs of kernel time on this VM, so one update to 1,000 connections takes "
            "about 8 ms to write, and the connection written last waits for all of it "
            "(bench/analysis.md, market latency).",
        ]
    out += [
        "",
        "## Market source: cost per update",
        "",
        f"`.venv/bin/python -m bench.market_source --seconds {sizes.source_seconds} "
        f"--repeat {sizes.repeat}`: the seeded synthetic market over every packaged symbol in "
        f"100 ms steps ({sections.updates_per_second:,.0f} updates per virtual second), then "
        "the same updates folded into `MarketState`; best run. The book rows are what the "
        "venue pays to read BTCUSDT's book.",
        "",
        "![market source](img/market-source.png)",
        "",
        "| work | µs / update | updates / s of CPU |",
        "|---|---:|---:|",
        *(f"| {name} | {us:.2f} | {rate:,.0f} |" for name, (us, rate) in sections.source.items()),
        *(f"| book: {call} | {us:.2f} (per call) | |" for call, us in sections.book),
        "",
        "## Risk: trigger checks and funding (issue 13)",
        "",
        f"`.venv/bin/python -m bench.risk {' '.join(sizes.risk_args)}`: resting conditional "
        "orders far from a random-walk mark, the cost of one mark tick through the trigger "
        "index against scanning every stop, and through the engine (which also checks every "
        "account's margin); then one funding settlement over one open position per account.",
        "",
        "![risk](img/risk-triggers.png)",
        "",
        "| work | µs per tick |",
        "|---|---:|",
        *(f"| trigger index, {n:,} resting orders | {us:.2f} |" for n, us in sections.index),
        f"| direct scan of {sizes.orders:,} orders' stops | {sections.scan_us:.2f} |",
        f"| engine, {sizes.orders:,} orders over 100 accounts | {sections.engine_us:.2f} |",
    ]
    if sections.funding is not None:
        positions, ms, us = sections.funding
        out += [
            "",
            f"One funding settlement over {positions:,} positions: {ms:.1f} ms "
            f"({us:.1f} µs per position: income, wallet, ACCOUNT_UPDATE and income row).",
        ]
    out += [
        "",
        "## Account mirror: apply rate (issue 14)",
        "",
        f"`.venv/bin/python -m bench.mirror --events {sizes.mirror_events} --repeat "
        f"{sizes.repeat}` (apply part): mixed ORDER_TRADE_UPDATE / ACCOUNT_UPDATE events over "
        "50 symbols fed to `AccountMirror.apply`, decoded up front; best run.",
        "",
        "![mirror](img/mirror-apply.png)",
        "",
        f"- {sections.mirror_rate:,.0f} events/s (target 200,000).",
    ]
    return out
