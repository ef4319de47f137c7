"""Risk-side costs of the venue: trigger checks per market update and one funding settlement.

    PYTHONPATH=src .venv/bin/python -m bench.risk [--orders 10000] [--accounts 100] [--ticks 2000]

1. Trigger checks. `--orders` resting conditional orders (STOP_MARKET / TAKE_PROFIT_MARKET
   both ways, and activated TRAILING_STOP_MARKET with 0.1-20 % callbacks) spread over
   `--accounts` accounts on one symbol and one working type, all far from the price. Then
   `--ticks` mark-price ticks of a random walk that stays clear of them: the cost of one tick
   through `AlgoBook.on_price` (the index) against checking every order on every tick (the
   direct scan the index replaces). The index is timed again at a tenth and at ten times the
   order count, to show the per-tick cost does not grow with orders that are far away.
   Then the same through the engine (`Engine.on_market` with one MarkUpdate, which also
   runs the margin check of every account).
2. Funding. One `FundingSettlement` over `--orders` open positions (one per account) through
   `Engine.on_market`: income, wallet, ACCOUNT_UPDATE and income row per position.

Both are single-threaded and in-process; the figures are µs of this process's CPU per unit.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from decimal import Decimal

from userstream.market.book import OrderBook
from userstream.market.types import FundingSettlement, Level, MarketUpdate, MarkUpdate
from userstream.protocol.events import OrderType, Side
from userstream.symbols import load_symbol_table
from userstream.venue import Deposit, Engine, NewOrder
from userstream.venue.algo import AlgoBook, NewAlgoOrder
from userstream.venue.triggers import Direction, direction_of, would_trigger

SYMBOL = "BTCUSDT"
MARK = "MARK_PRICE"
PRICE = Decimal(60000)


def _orders(count: int, accounts: int, seed: int) -> list[tuple[int, NewAlgoOrder]]:
    rng = random.Random(seed)
    out: list[tuple[int, NewAlgoOrder]] = []
    for n in range(count):
        account = n % accounts
        kind = n % 5
        if kind == 4:
            side = rng.choice(["BUY", "SELL"])
            cmd = NewAlgoOrder(
                symbol=SYMBOL,
                side=side,
                order_type="TRAILING_STOP_MARKET",
                quantity=Decimal("0.001"),
                callback_rate=Decimal(rng.randint(10, 200)) / 10,
                working_type=MARK,
                client_algo_id=f"t{n}",
            )
        else:
            order_type = "STOP_MARKET" if kind < 2 else "TAKE_PROFIT_MARKET"
            side = "BUY" if kind % 2 else "SELL"
            rising = direction_of(order_type, side) is Direction.RISE
            # Triggers 5-30 % away from the price: the walk below never reaches them.
            distance = Decimal(rng.randint(5_00, 30_00)) / 100_00 * PRICE
            trigger = (PRICE + distance if rising else PRICE - distance).quantize(Decimal("0.1"))
            cmd = NewAlgoOrder(
                symbol=SYMBOL,
                side=side,
                order_type=order_type,
                quantity=Decimal("0.001"),
                trigger_price=trigger,
                working_type=MARK,
                client_algo_id=f"s{n}",
            )
        out.append((account, cmd))
    return out


def _walk(ticks: int, seed: int) -> list[Decimal]:
    rng = random.Random(seed)
    price, out = PRICE, []
    for _ in range(ticks):
        # ±0.005 % steps, kept within ±0.08 % of the start: trailing stops (≥ 0.1 %) stay put.
        step = Decimal(rng.randint(-30, 30)) / 10
        price = min(max(price + step, PRICE - 48), PRICE + 48)
        out.append(price)
    return out


def _book(count: int, accounts: int) -> AlgoBook:
    book = AlgoBook()
    for n, (account, cmd) in enumerate(_orders(count, accounts, seed=count)):
        book.place(account, cmd, now_ms=0, working_price=PRICE, hedge_mode=False, client_id=f"g{n}")
    return book


def _per_tick_us(fn: Callable[[Decimal], int], prices: list[Decimal]) -> tuple[float, int]:
    fired = 0
    start = time.process_time()
    for price in prices:
        fired += fn(price)
    return (time.process_time() - start) / len(prices) * 1e6, fired


def bench_triggers(orders: int, accounts: int, ticks: int) -> None:
    prices = _walk(ticks, seed=1)
    print(f"trigger checks, {orders} resting orders over {accounts} accounts, {ticks} ticks")
    for count in (max(orders // 10, 1), orders, orders * 10):
        book = _book(count, accounts)

        def index_tick(price: Decimal, book: AlgoBook = book) -> int:
            return len(book.on_price(SYMBOL, MARK, price, 1)[0])

        us, fired = _per_tick_us(index_tick, prices)
        print(f"  index, {count:>7} orders: {us:8.2f} µs per tick ({fired} fired)")
    stops = [
        (direction_of(cmd.order_type, cmd.side), cmd.trigger_price)
        for _, cmd in _orders(orders, accounts, seed=orders)
        if cmd.trigger_price is not None
    ]

    def scan_tick(price: Decimal) -> int:
        return sum(1 for d, t in stops if t is not None and would_trigger(d, t, price))

    us, _ = _per_tick_us(scan_tick, prices[: max(ticks // 10, 1)])
    print(f"  direct scan of the {len(stops)} stops alone, per tick: {us:8.2f} µs")


class _StillMarket:
    """One symbol, a deep book around 60,000 and a mark the bench sets."""

    def __init__(self) -> None:
        self._book = OrderBook(SYMBOL)
        self._book.replace(
            [Level(Decimal("59999.9"), Decimal(10**6))],
            [Level(Decimal("60000.0"), Decimal(10**6))],
            1,
        )
        self.mark_price = PRICE

    @property
    def symbols(self) -> list[str]:
        return [SYMBOL]

    def advance(self, now_ms: int) -> list[MarketUpdate]:
        return []

    def book(self, symbol: str) -> OrderBook:
        return self._book

    def mark(self, symbol: str) -> MarkUpdate:
        p = self.mark_price
        return MarkUpdate(symbol, p, p, p, Decimal(0), Decimal(0), 0, 0)


def _engine(accounts: int) -> tuple[Engine, _StillMarket]:
    market = _StillMarket()
    symbols = [s for s in load_symbol_table().symbols if s.symbol == SYMBOL]
    engine = Engine(symbols, market)
    for account in range(accounts):
        engine.handle(account, Deposit(asset="USDT", amount=Decimal(100_000)), 0)
    return engine, market


def bench_engine_triggers(orders: int, accounts: int, ticks: int) -> None:
    engine, market = _engine(accounts)
    for account, cmd in _orders(orders, accounts, seed=orders):
        engine.risk.new_algo_order(account, cmd, 0)
    prices = _walk(ticks, seed=1)

    def tick(price: Decimal) -> int:
        market.mark_price = price
        return len(engine.on_market([market.mark(SYMBOL)], 1))

    us, _ = _per_tick_us(tick, prices)
    print(f"  engine, {orders:>6} orders, {accounts} accounts: {us:8.2f} µs per mark update")


def bench_funding(positions: int) -> None:
    engine, _ = _engine(positions)
    rng = random.Random(2)
    for account in range(positions):
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        qty = Decimal(rng.randint(1, 100)) / 1000
        order = NewOrder(symbol=SYMBOL, side=side, order_type=OrderType.MARKET, quantity=qty)
        engine.handle(account, order, 0)
    settle = FundingSettlement(SYMBOL, 28_800_000, Decimal("0.00010000"), Decimal("60000"))
    start = time.process_time()
    out = engine.on_market([settle], 28_800_000)
    elapsed = time.process_time() - start
    paid = sum(len(events) for events in out.values())
    print(
        f"one funding settlement over {positions} positions: {elapsed * 1e3:.1f} ms "
        f"({elapsed / positions * 1e6:.1f} µs per position; {paid} ACCOUNT_UPDATEs, "
        "margin check of every account included)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=2_000)
    args = parser.parse_args(argv)
    bench_triggers(args.orders, args.accounts, args.ticks)
    bench_engine_triggers(args.orders, args.accounts, max(args.ticks // 4, 1))
    bench_funding(args.orders)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
