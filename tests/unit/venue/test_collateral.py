"""Multi-assets mode collateral: the valuation and a USDC-only account trading USDT-M."""

from __future__ import annotations

from decimal import Decimal

from tests.venue_fixtures import make_engine
from userstream.protocol.events import Event, OrderType, Side
from userstream.protocol.fold import AccountFold
from userstream.venue import Deposit, NewOrder, OrderView, VenueError, Withdraw
from userstream.venue.collateral import collateral_value
from userstream.venue.state import AssetBalance

D = Decimal
BTC = "BTCUSDT"
BNB = "BNBUSDT"


def marks(symbol: str) -> Decimal | None:
    return {"BNBUSDT": D("600"), "BTCUSDT": D("100000")}.get(symbol)


def test_collateral_value_applies_index_and_haircut() -> None:
    balances = [
        AssetBalance(asset="USDT", wallet_balance=D("500")),  # settlement asset: not collateral
        AssetBalance(asset="USDC", wallet_balance=D("1000")),  # 1000 x 1 x 0.9999
        AssetBalance(asset="BNB", wallet_balance=D("2")),  # 2 x 600 x 0.95
        AssetBalance(asset="ETH", wallet_balance=D("1")),  # no ETHUSDT price: not counted
        AssetBalance(asset="BTC", wallet_balance=D("-0.1")),  # a debt backs nothing
        AssetBalance(asset="DOGE", wallet_balance=D("100")),  # not a collateral asset
    ]
    assert collateral_value(balances, marks) == D("999.9") + D("1140")


def test_collateral_value_without_collateral_is_zero() -> None:
    assert collateral_value([AssetBalance(asset="USDT", wallet_balance=D("10"))], marks) == 0


def buy(qty: str) -> NewOrder:
    return NewOrder(symbol=BTC, side=Side.BUY, order_type=OrderType.MARKET, quantity=D(qty))


def test_usdc_only_account_trades_only_in_multi_assets_mode() -> None:
    engine, market = make_engine()
    engine.handle(1, Deposit(asset="USDC", amount=D("1000")), 1)
    fold = AccountFold(engine.snapshot(1))
    # Single-asset mode: USDC does not back a USDT-M position.
    assert engine.handle(1, buy("0.01"), 2).result == VenueError(-2019, "Margin is insufficient.")
    (usdt,) = [b for b in engine.balances(1) if b.asset == "USDT"]
    assert usdt.available_balance == 0
    events: list[Event] = list(engine.risk.set_multi_assets(1, True, 3).events)
    (usdt,) = [b for b in engine.balances(1) if b.asset == "USDT"]
    assert usdt.available_balance == D("999.9")  # 1000 USDC x 1 x (1 - 0.0001)
    assert usdt.margin_balance == D("999.9")
    assert usdt.cross_wallet_balance == 0
    # 0.01 BTC at 100000.1 with leverage 20: 50.0005 margin + 0.4 taker fee fit in 999.9.
    opened = engine.handle(1, buy("0.01"), 4)
    assert isinstance(opened.result, OrderView)
    events += opened.events
    (usdt,) = [b for b in engine.balances(1) if b.asset == "USDT"]
    assert usdt.position_initial_margin == D("50")
    assert usdt.available_balance < D("999.9") - D("50")
    # The USDC backs the position: only what the position does not need can leave.
    assert engine.handle(1, Withdraw(asset="USDC", amount=D("1000")), 5).result == VenueError(
        -2018, "Balance is insufficient."
    )
    withdrawn = engine.handle(1, Withdraw(asset="USDC", amount=D("100")), 5)
    assert not isinstance(withdrawn.result, VenueError)
    events += withdrawn.events
    # The mark falls 1%: a 10 USDT loss against 900 USDC of collateral is no margin call.
    market.set_mark(BTC, "99000")
    update = market.mark(BTC)
    assert engine.on_market([update], 6).get(1, []) == []
    assert engine.snapshot(1).positions
    for event in events:
        fold.apply(event)
    assert fold.state == engine.snapshot(1)
