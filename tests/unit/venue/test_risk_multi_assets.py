"""Multi-assets mode in liquidation: the collateral value moves the liquidation and bankruptcy
prices, and a USDT wallet the forced close leaves negative is refilled by auto-exchange."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from tests.unit.venue.test_risk_engine import Folded, kinds
from tests.venue_fixtures import HandMarket, make_engine
from userstream.protocol.events import AccountUpdate, OrderType, Side
from userstream.venue import ChangeLeverage, Deposit, Engine, NewOrder
from userstream.venue.brackets import brackets_for
from userstream.venue.collateral import Exchange, auto_exchange
from userstream.venue.margin import Leg, liquidation_price
from userstream.venue.state import AssetBalance

D = Decimal
BTC = "BTCUSDT"


def _marks(symbol: str) -> Decimal | None:
    return {"BTCUSDT": D(100000), "ETHUSDT": D(4000)}.get(symbol)


def test_auto_exchange_sells_in_proportion_at_the_auto_exchange_rate() -> None:
    # Multi-Assets Info example: −20,000 covered by 20,000 / 97.5 % of BTC's value.
    (part,) = auto_exchange(D(20000), [AssetBalance(asset="BTC", wallet_balance=D(1))], _marks)
    assert part == Exchange(
        "BTC", (D(20000) / D(97500)).quantize(D("1e-8"), ROUND_CEILING), D(20000)
    )
    # Two assets worth 97,500 and 39,000 at their rates share 1,365 as 5 : 2.
    parts = auto_exchange(
        D(1365),
        [
            AssetBalance(asset="BTC", wallet_balance=D(1)),
            AssetBalance(asset="ETH", wallet_balance=D(10)),
        ],
        _marks,
    )
    assert [(p.asset, p.covered) for p in parts] == [("BTC", D(975)), ("ETH", D(390))]
    # Not enough collateral: all of it is sold, the rest is not covered.
    (short,) = auto_exchange(D(5000), [AssetBalance(asset="USDC", wallet_balance=D(100))], _marks)
    assert short == Exchange("USDC", D(100), D("99.99"))
    assert auto_exchange(D(5), [AssetBalance(asset="XRP", wallet_balance=D(100))], _marks) == []


def _multi_assets_long() -> tuple[Engine, HandMarket]:
    engine, market = make_engine()
    engine.handle(1, Deposit(asset="USDT", amount=D(1000)), 1)
    engine.risk.set_multi_assets(1, True, 1)
    engine.handle(1, Deposit(asset="USDC", amount=D(1000)), 1)
    engine.handle(1, ChangeLeverage(symbol=BTC, leverage=20), 1)
    engine.handle(
        1, NewOrder(symbol=BTC, side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.1")), 2
    )
    return engine, market


def test_liquidation_price_counts_the_collateral() -> None:
    engine, _ = _multi_assets_long()
    snapshot = engine.snapshot(1)
    position = snapshot.positions[(BTC, "BOTH")]
    wallet = snapshot.balances["USDT"].cross_wallet_balance
    expected = liquidation_price(
        brackets_for(BTC),
        [Leg("BOTH", position.position_amount, position.entry_price)],
        wallet + D("999.9"),  # 1,000 USDC at index 1 × 0.9999
        D(100000),
    )
    assert engine.risk.liquidation_price(1, BTC, "BOTH") == expected.quantize(D("1e-8"))
    single, _ = make_engine()
    single.handle(1, Deposit(asset="USDT", amount=D(1000)), 1)
    single.handle(1, ChangeLeverage(symbol=BTC, leverage=20), 1)
    single.handle(
        1, NewOrder(symbol=BTC, side=Side.BUY, order_type=OrderType.MARKET, quantity=D("0.1")), 2
    )
    # ~1,000 USDT more margin on 0.1 BTC: about 10,000 lower.
    gap = single.risk.liquidation_price(1, BTC, "BOTH") - engine.risk.liquidation_price(
        1, BTC, "BOTH"
    )
    assert D(9900) < gap < D(10100)


def test_liquidation_auto_exchanges_the_collateral_for_the_deficit() -> None:
    engine, market = _multi_assets_long()
    fold = Folded(engine)
    price = engine.risk.liquidation_price(1, BTC, "BOTH")
    mark = (price - D(5)).quantize(D("0.1"))
    market.set_book(BTC, [(str(mark), "50")], [(str(mark + 1), "50")], str(mark))
    events = engine.on_market([market.mark(BTC)], 10).get(1, [])
    fold.apply(events)
    assert kinds(events)[-3:] == ["ORDER:CALCULATED", "AccountUpdate", "AccountUpdate"]
    exchange = events[-1]
    assert isinstance(exchange, AccountUpdate)
    assert exchange.update.reason == "AUTO_EXCHANGE"
    usdt, usdc = exchange.update.balances
    assert (usdt.asset, usdc.asset) == ("USDT", "USDC")
    assert usdt.wallet_balance == 0  # the deficit, exactly covered
    sold = -usdc.balance_change
    assert sold == (usdt.balance_change / D("0.9999")).quantize(D("1e-8"), ROUND_CEILING)
    assert usdc.wallet_balance == D(1000) - sold
    # The account lost its USDT margin and the collateral value, never more.
    assert D(990) < usdt.balance_change < D("999.9")
    snapshot = engine.snapshot(1)
    assert snapshot.positions == {}
    rows = engine.risk.income(1, 10, start_ms=0, limit=10**9)
    for asset in ("USDT", "USDC"):
        total = sum((r.income for r in rows if r.asset == asset), D(0))
        assert snapshot.balances[asset].wallet_balance == total
    assert {r.income_type for r in rows} >= {"AUTO_EXCHANGE", "REALIZED_PNL", "TRANSFER"}
    assert "INSURANCE_CLEAR" not in {r.income_type for r in rows}
