"""The venue engine's CPU per order, without a server (issue #12, "per-order engine CPU").

    .venv/bin/python -m bench.venue_engine [--orders 2000] [--rounds 3] [--resting 0]
    .venv/bin/python -m bench.venue_engine --against /path/to/other/checkout --rounds 5
    .venv/bin/python -m bench.venue_engine --profile market|limit

One funded account on the default synthetic market, `Engine.handle` only:

- MARKET: 0.001 BTCUSDT market orders, alternating BUY and SELL (the order `bench.venue`
  sends; its "engine CPU per MARKET order" is this figure);
- LIMIT: a GTC BUY below the best bid (it rests, never crosses) and its cancel, per pair.

`--resting N` first rests N more LIMIT orders on the account (the per-order cost grows with
them). Each round runs in a fresh interpreter with `PYTHONPATH=<checkout>/src`, this
checkout first; `--against PATH` alternates it with another checkout (A B A B ...), and the
medians with min-max close the output. `--profile` runs one kind under cProfile (this
checkout) and prints the functions with the most own time.

CPU time is `time.process_time()` around the timed loop; figures are µs per order (per
pair for LIMIT).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("market", "limit")
QTY = Decimal("0.001")
LIMIT_QTY = Decimal("0.01")
START_MS = 1_800_000_000_000
WARMUP = 200


def _setup(resting: int) -> tuple[object, Decimal]:
    """A funded account 1 on a synthetic market, with `resting` LIMIT BUYs resting; returns
    the engine and a resting BUY price (below the best bid, on a tick)."""
    from userstream.market.synthetic import SyntheticMarket
    from userstream.protocol.events import OrderType, Side, TimeInForce
    from userstream.symbols import load_symbol_table
    from userstream.venue import Deposit, Engine, NewOrder

    table = load_symbol_table()
    market = SyntheticMarket(table.symbols, seed=0, start_ms=START_MS)
    engine = Engine(table.symbols, market)
    engine.handle(1, Deposit(asset="USDT", amount=Decimal(10**9)), START_MS)
    best = market.book("BTCUSDT").best_bid()
    assert best is not None
    price = (best.price * Decimal("0.99")).quantize(Decimal("0.1"))
    for n in range(resting):
        outcome = engine.handle(
            1,
            NewOrder(
                symbol="BTCUSDT",
                side=Side.BUY,
                order_type=OrderType.LIMIT,
                quantity=LIMIT_QTY,
                price=price - n,
                time_in_force=TimeInForce.GTC,
            ),
            START_MS,
        )
        assert not hasattr(outcome.result, "code"), outcome.result
    return engine, price


def measure(kind: str, orders: int, resting: int) -> float:
    """µs of CPU per MARKET order or per LIMIT place+cancel pair."""
    from userstream.protocol.events import OrderType, Side, TimeInForce
    from userstream.venue import CancelOrder, Engine, NewOrder
    from userstream.venue.commands import ResponseType

    engine, price = _setup(resting)
    assert isinstance(engine, Engine)
    handle = engine.handle
    if kind == "market":
        commands = [
            NewOrder(
                symbol="BTCUSDT",
                side=Side.BUY if n % 2 == 0 else Side.SELL,
                order_type=OrderType.MARKET,
                quantity=QTY,
                response_type=ResponseType.RESULT,
            )
            for n in range(orders + WARMUP)
        ]
        for command in commands[:WARMUP]:
            handle(1, command, START_MS)
        started = time.process_time()
        for command in commands[WARMUP:]:
            handle(1, command, START_MS)
        return (time.process_time() - started) / orders * 1e6
    place = NewOrder(
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=LIMIT_QTY,
        price=price + 1,
        time_in_force=TimeInForce.GTC,
        response_type=ResponseType.RESULT,
    )

    def pairs(count: int) -> None:
        for _ in range(count):
            placed = handle(1, place, START_MS).result
            order_id = getattr(placed, "order_id")  # noqa: B009 (an OrderView or an error)
            handle(1, CancelOrder(symbol="BTCUSDT", order_id=order_id), START_MS)

    pairs(WARMUP)
    started = time.process_time()
    pairs(orders)
    return (time.process_time() - started) / orders * 1e6


def _child(args: argparse.Namespace) -> None:
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        measure(args.profile, args.orders, args.resting)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    figures = {kind: measure(kind, args.orders, args.resting) for kind in KINDS}
    print(json.dumps(figures))


def _run(tree: Path, args: argparse.Namespace, *extra: str) -> str:
    """This script in a fresh interpreter importing `tree`'s `userstream`."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    command = [sys.executable, "-m", "bench.venue_engine", "--child"]
    command += ["--orders", str(args.orders), "--resting", str(args.resting), *extra]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{tree}: {done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--resting", type=int, default=0, help="LIMIT orders resting first")
    parser.add_argument("--against", type=Path, help="another checkout, alternated with this")
    parser.add_argument("--profile", choices=KINDS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    if args.profile:
        print(_run(ROOT, args, "--profile", args.profile))
        return
    trees = [ROOT] + ([args.against.resolve()] if args.against else [])
    results: dict[Path, list[dict[str, float]]] = {tree: [] for tree in trees}
    print(f"µs CPU per MARKET order / per LIMIT place+cancel pair, {args.orders} each,")
    print(f"{args.resting} resting orders")
    for round_ in range(1, args.rounds + 1):
        for tree in trees:
            figures = json.loads(_run(tree, args))
            results[tree].append(figures)
            row = "  ".join(f"{kind} {figures[kind]:6.1f}" for kind in KINDS)
            print(f"round {round_}  {tree}: {row}")
    for tree in trees:
        cells = []
        for kind in KINDS:
            values = [figures[kind] for figures in results[tree]]
            cells.append(
                f"{kind} {statistics.median(values):6.1f} ({min(values):.1f}-{max(values):.1f})"
            )
        print(f"median {tree}: {'  '.join(cells)}")


if __name__ == "__main__":
    main()
