"""Auto-deleveraging: the part of a forced order the market's book cannot take at the
bankruptcy price closes the other accounts' opposite positions, best LeveragePnL first."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.venue.test_risk_engine import Folded, kinds
from tests.venue_fixtures import make_engine
from userstream.protocol.events import Event, OrderTradeUpdate, OrderType, Side, TimeInForce
from userstream.venue import ChangeLeverage, Deposit, NewOrder
from userstream.venue.adl import (
    Candidate,
    allocate,
    leverage_pnl,
    quantile,
    quantile_sides,
    ranked,
)

D = Decimal
BTC = "BTCUSDT"


def test_leverage_pnl_is_the_faq_formula() -> None:
    # Pnl Percent = max(0, 40.2) / max(1, 4.27); Margin Ratio = MM / (WB + UP).
    score = leverage_pnl(D("40.2"), D("4.27"), D("5.967"), D("40.2"))
    assert score == (D("40.2") / D("4.27")) * (D("5.967") / D("44.47"))
    assert leverage_pnl(D(-5), D(100), D(1), D(-5)) == 0  # no profit, no score
    assert leverage_pnl(D(5), D(-10), D(1), D(5)) == 0  # margin balance ≤ 0: ratio 0
    assert leverage_pnl(D(1), D("0.5"), D(1), D(1)) == D(1) * (D(1) / D("1.5"))  # max(1, WB)


def test_quantile_buckets_the_rank_into_five() -> None:
    scores = [D(n) for n in range(1, 11)]
    assert [quantile(s, scores) for s in scores] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert quantile(D(3), [D(3)]) == 4  # alone at the head of the queue
    assert quantile(D(0), [D(0), D(1)]) == 0


def test_quantile_sides_follow_binances_keys() -> None:
    # One-way (or isolated hedge): each side its own value, BOTH for the one-way position.
    assert quantile_sides(False, {"BOTH": 3}, {"BOTH"}) == {"LONG": 0, "SHORT": 0, "BOTH": 3}
    assert quantile_sides(False, {"LONG": 1, "SHORT": 2}, {"LONG", "SHORT"}) == {
        "LONG": 1,
        "SHORT": 2,
        "BOTH": 0,
    }
    # Cross hedge: HEDGE is a marker, and both open sides show one shared value.
    assert quantile_sides(True, {"LONG": 1, "SHORT": 3}, {"LONG", "SHORT"}) == {
        "LONG": 3,
        "SHORT": 3,
        "HEDGE": 0,
    }
    assert quantile_sides(True, {"LONG": 2}, {"LONG"}) == {"LONG": 2, "SHORT": 0, "HEDGE": 0}


def test_allocate_walks_the_ranked_queue() -> None:
    a = Candidate(1, "BOTH", D("-0.05"), D(2), D(10))
    b = Candidate(2, "BOTH", D("-0.08"), D(1), D(30))
    c = Candidate(3, "BOTH", D("-0.08"), D(1), D(40))
    queue = ranked([b, a, c])
    assert queue == [a, c, b]  # score, then the larger uPnL
    assert allocate(queue, D("0.1")) == [(a, D("0.05")), (c, D("0.05"))]
    assert allocate(queue, D(1)) == [(a, D("0.05")), (c, D("0.08")), (b, D("0.08"))]


def _order(side: Side, qty: str, **kw: object) -> NewOrder:
    return NewOrder(symbol=BTC, side=side, order_type=OrderType.MARKET, quantity=D(qty), **kw)  # type: ignore[arg-type]


def _only(events: list[Event], prefix: str) -> OrderTradeUpdate:
    (found,) = [
        e
        for e in events
        if isinstance(e, OrderTradeUpdate) and e.order.client_order_id.startswith(prefix)
    ]
    return found


def test_golden_adl_when_the_book_is_thin() -> None:
    engine, market = make_engine()
    # Account 1: 0.1 long at 20x on 1,000 USDT. Accounts 2 and 3 short 0.08 and 0.05; 3 has
    # the smaller wallet, so the higher LeveragePnL once the price falls.
    for account, cash in ((1, "1000"), (2, "20000"), (3, "2000")):
        engine.handle(account, Deposit(asset="USDT", amount=D(cash)), 1)
        engine.handle(account, ChangeLeverage(symbol=BTC, leverage=20), 1)
    engine.handle(1, _order(Side.BUY, "0.1"), 2)
    engine.handle(2, _order(Side.SELL, "0.08"), 2)
    engine.handle(3, _order(Side.SELL, "0.05"), 2)
    resting = NewOrder(
        symbol=BTC,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=D("0.01"),
        price=D(80000),
        time_in_force=TimeInForce.GTC,
    )
    engine.handle(3, resting, 3)
    folds = {a: Folded(engine, a) for a in (1, 2, 3)}
    liquidation = engine.risk.liquidation_price(1, BTC, "BOTH")
    mark = (liquidation - D(5)).quantize(D("0.1"))
    # The operator thinned the book: 0.02 bid at the mark, the rest far below.
    market.set_book(
        BTC, [(str(mark), "0.02"), ("50000", "100")], [(str(mark + 1), "50")], str(mark)
    )
    assert engine.risk.adl_quantile(3, BTC, "BOTH") == 4
    assert engine.risk.adl_quantile(2, BTC, "BOTH") == 2
    assert engine.risk.adl_quantile(1, BTC, "BOTH") == 0  # losing long
    out = engine.on_market([market.mark(BTC)], 10)
    for account, fold in folds.items():
        fold.apply(out.get(account, []))

    forced = _only(out[1], "autoclose-").order
    assert (forced.order_status, forced.original_quantity) == ("FILLED", D("0.1"))
    # The bankruptcy price before the fee: where account 1's margin balance is 0.
    # 1,000 less the taker fee of the opening fill (0.0005 × 0.1 × 100,000.1 = 5.000005).
    entry1, wallet1 = D("100000.1"), D(1000) - D("5.000005")
    adl_price = (entry1 - wallet1 / D("0.1")).quantize(D("0.1"), rounding="ROUND_CEILING")
    assert D(50000) < adl_price < mark  # the 0.02 bid at the mark is taken, not the rest

    # 0.08 to deleverage: account 3's whole 0.05 first, then 0.03 of account 2's 0.08.
    assert kinds(out[3]) == ["ORDER:CANCELED", "ORDER:CALCULATED", "AccountUpdate"]
    assert kinds(out[2]) == ["ORDER:CALCULATED", "AccountUpdate"]
    for account, qty, entry in ((3, "0.05", D(100000)), (2, "0.03", D(100000))):
        o = _only(out[account], "adl_autoclose-").order
        assert (o.order_type, o.original_order_type, o.execution_type, o.order_status) == (
            "LIQUIDATION",
            "LIQUIDATION",
            "CALCULATED",
            "FILLED",
        )
        assert (o.side, o.time_in_force, o.reduce_only) == ("BUY", "IOC", True)
        assert (o.last_filled_quantity, o.last_filled_price) == (D(qty), adl_price)
        assert o.commission == 0
        assert o.realized_profit == D(qty) * (entry - adl_price)
    assert engine.snapshot(3).positions == {}
    assert engine.snapshot(2).positions[(BTC, "BOTH")].position_amount == D("-0.05")
    assert engine.snapshot(1).positions == {}
    # Wallets: deposits + realized PnL − fees, exactly.
    for account in (1, 2, 3):
        rows = engine.risk.income(account, 10, start_ms=0, limit=10**9)
        wallet = engine.snapshot(account).balances["USDT"].wallet_balance
        assert wallet == sum((r.income for r in rows), D(0))
        assert wallet >= 0


def test_a_deep_book_takes_the_forced_order_and_nobody_is_deleveraged() -> None:
    engine, market = make_engine()
    for account, cash in ((1, "1000"), (2, "20000")):
        engine.handle(account, Deposit(asset="USDT", amount=D(cash)), 1)
        engine.handle(account, ChangeLeverage(symbol=BTC, leverage=20), 1)
    engine.handle(1, _order(Side.BUY, "0.1"), 2)
    engine.handle(2, _order(Side.SELL, "0.08"), 2)
    mark = (engine.risk.liquidation_price(1, BTC, "BOTH") - D(5)).quantize(D("0.1"))
    market.set_book(BTC, [(str(mark), "50")], [(str(mark + 1), "50")], str(mark))
    out = engine.on_market([market.mark(BTC)], 10)
    assert "ORDER:CALCULATED" in kinds(out[1])
    assert 2 not in out
    assert engine.snapshot(2).positions[(BTC, "BOTH")].position_amount == D("-0.08")


def test_only_positions_in_profit_at_the_bankruptcy_price_are_deleveraged() -> None:
    engine, market = make_engine()
    for account, cash in ((1, "1000"), (2, "20000")):
        engine.handle(account, Deposit(asset="USDT", amount=D(cash)), 1)
        engine.handle(account, ChangeLeverage(symbol=BTC, leverage=20), 1)
    engine.handle(1, _order(Side.BUY, "0.1"), 2)
    liquidation = engine.risk.liquidation_price(1, BTC, "BOTH")
    # Account 2 shorts below account 1's bankruptcy price: it would close at a loss.
    low = (liquidation - D(2000)).quantize(D("0.1"))
    market.set_book(BTC, [(str(low - 1), "50")], [(str(low), "50")], str(low))
    engine.handle(2, _order(Side.SELL, "0.08"), 3)
    market.set_book(BTC, [("50000", "50")], [("50001", "50")], str(liquidation - 5))
    out = engine.on_market([market.mark(BTC)], 10)
    assert "ORDER:CALCULATED" in kinds(out[1])
    assert 2 not in out  # the insurance fund takes it
