"""The engine trading against the seeded synthetic market: random orders placed between
advances of a real book and tape, with the same checks as `test_engine_fold` (the fold of
the events equals the engine's snapshot; wallet, available balance and positions agree
with the fills) and some maker fills from the market's trades."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.venue_fixtures import venue_symbols
from userstream.market.synthetic import SyntheticMarket
from userstream.protocol.events import Event, OrderType, Side, TimeInForce
from userstream.protocol.fold import AccountFold
from userstream.venue import CancelOrder, Deposit, Engine, NewOrder, OrderView

D = Decimal
SYMBOLS = ("BTCUSDT", "ETHUSDT")

order_st = st.tuples(
    st.sampled_from(SYMBOLS),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.sampled_from(["MARKET", "GTC", "GTC", "GTC", "IOC"]),
    st.integers(-20, 20),  # limit price in ticks from the touch on the order's side
    st.integers(1, 30),  # quantity in steps
    st.integers(0, 4),  # 0: cancel an open order instead
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**16), st.lists(order_st, min_size=5, max_size=40))
def test_engine_on_the_synthetic_market(
    seed: int, orders: list[tuple[str, Side, str, int, int, int]]
) -> None:
    symbols = venue_symbols(*SYMBOLS)
    market = SyntheticMarket(symbols, seed=seed, start_ms=0)
    market.advance(1_000)
    engine = Engine(symbols, market)
    fold = AccountFold(engine.snapshot(1))
    now = 1_000
    deposits = D(0)

    def deliver(events: Sequence[Event]) -> None:
        for event in events:
            fold.apply(event)

    outcome = engine.handle(1, Deposit(asset="USDT", amount=D(1_000_000)), now)
    deposits += D(1_000_000)
    deliver(outcome.events)
    for symbol, side, kind, ticks, steps, cancel in orders:
        now += 250
        deliver(engine.on_market(market.advance(now), now).get(1, []))
        if cancel == 0 and engine.open_orders(1):
            target = engine.open_orders(1)[0]
            outcome = engine.handle(
                1, CancelOrder(symbol=target.symbol, order_id=target.order_id), now
            )
        else:
            book = market.book(symbol)
            touch = book.best_bid() if side is Side.BUY else book.best_ask()
            assert touch is not None
            tick = D("0.1") if symbol == "BTCUSDT" else D("0.01")
            qty = D("0.001") * steps * (1 if symbol == "BTCUSDT" else 20)
            if kind == "MARKET":
                command = NewOrder(
                    symbol=symbol, side=side, order_type=OrderType.MARKET, quantity=qty
                )
            else:
                command = NewOrder(
                    symbol=symbol,
                    side=side,
                    order_type=OrderType.LIMIT,
                    time_in_force=TimeInForce(kind),
                    quantity=qty,
                    price=touch.price + tick * ticks * (-1 if side is Side.BUY else 1),
                )
            outcome = engine.handle(1, command, now)
        deliver(outcome.events)
        assert fold.state == engine.snapshot(1)
        trades = engine.trades(1)
        (usdt,) = [b for b in engine.balances(1) if b.asset == "USDT"]
        realized = sum((t.realized_pnl for t in trades), D(0))
        fees = sum((t.commission for t in trades), D(0))
        assert usdt.wallet_balance == deposits + realized - fees
        assert usdt.available_balance >= 0
        for position in engine.positions(1):
            assert position.position_amt == sum(
                (t.qty if t.side == "BUY" else -t.qty)
                for t in trades
                if t.symbol == position.symbol
            )
    if isinstance(outcome.result, OrderView):
        assert engine.order(1, outcome.result.symbol, outcome.result.order_id) is not None
