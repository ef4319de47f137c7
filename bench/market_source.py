"""The synthetic market's cost per update, and MarketState's cost to fold them.

    .venv/bin/python -m bench.market_source [--seconds 120] [--tick-ms 100] [--repeat 3]

Advances a `SyntheticMarket` over every packaged symbol through `--seconds` of virtual time in
`--tick-ms` steps (as the server's market loop would), then folds the same updates into a
`MarketState`. Reports, for the best of `--repeat` runs, µs per update and updates per
second of CPU for the source alone and for the state fold, and how many updates one
virtual second produces; then what the venue pays to read BTCUSDT's book: a taker's walk
(`OrderBook.walk`) and a 1000-level depth snapshot.
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections import Counter
from decimal import Decimal

from userstream.market.state import MarketState
from userstream.market.synthetic import SyntheticMarket
from userstream.market.types import MarketUpdate, Side
from userstream.symbols import load_symbol_table

START_MS = 1_789_459_200_000


def run_source(seconds: int, tick_ms: int) -> tuple[float, list[list[MarketUpdate]]]:
    market = SyntheticMarket(load_symbol_table().symbols, seed=1, start_ms=START_MS)
    batches: list[list[MarketUpdate]] = []
    began = time.perf_counter()
    for now in range(START_MS + tick_ms, START_MS + seconds * 1000 + 1, tick_ms):
        batches.append(market.advance(now))
    return time.perf_counter() - began, batches


def run_state(batches: list[list[MarketUpdate]], tick_ms: int) -> float:
    state = MarketState(_names())
    began = time.perf_counter()
    now = START_MS
    for batch in batches:
        now += tick_ms
        state.apply(batch, now)
    return time.perf_counter() - began


def book_costs() -> list[tuple[str, float]]:
    """µs per call of a walk and a snapshot on the synthetic BTCUSDT book after a minute."""
    market = SyntheticMarket(load_symbol_table().symbols, seed=1, start_ms=START_MS)
    market.advance(START_MS + 60_000)
    book = market.book("BTCUSDT")
    costs = []
    for label, call in (
        ("walk BUY 0.5 BTC", lambda: book.walk(Side.BUY, Decimal("0.5"))),
        ("walk BUY 20 BTC", lambda: book.walk(Side.BUY, Decimal("20"))),
        ("snapshot(1000)", lambda: book.snapshot(1000)),
    ):
        number, total = timeit.Timer(call).autorange()
        costs.append((label, total / number * 1e6))
    return costs


def _names() -> list[str]:
    return [s.symbol for s in load_symbol_table().symbols if s.status == "TRADING"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120, help="virtual seconds per run")
    parser.add_argument("--tick-ms", type=int, default=100, help="advance step, ms")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    source_best = state_best = float("inf")
    batches: list[list[MarketUpdate]] = []
    for _ in range(args.repeat):
        elapsed, batches = run_source(args.seconds, args.tick_ms)
        source_best = min(source_best, elapsed)
        state_best = min(state_best, run_state(batches, args.tick_ms))
    updates = sum(len(b) for b in batches)
    kinds = Counter(type(u).__name__ for b in batches for u in b)
    print(f"symbols: {len(_names())}, virtual time: {args.seconds} s, tick: {args.tick_ms} ms")
    print(f"updates: {updates} ({updates / args.seconds:.0f} per virtual second)")
    print("  " + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common()))
    for name, best in (("source", source_best), ("state", state_best)):
        print(
            f"{name:>6}: {best / updates * 1e6:6.2f} µs/update, "
            f"{updates / best:9.0f} updates/s, "
            f"{best / args.seconds * 100:5.2f} % of one core at 1x"
        )
    for label, micros in book_costs():
        print(f"book: {label}: {micros:.2f} µs")


if __name__ == "__main__":
    main()
