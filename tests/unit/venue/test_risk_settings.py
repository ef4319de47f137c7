"""The venue's own risk numbers (Binance publishes no margin-call threshold) are settings."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.venue.helpers import funded, market_order
from tests.unit.venue.test_risk_engine import kinds, move
from userstream.protocol.events import Side
from userstream.venue import ChangeLeverage
from userstream.venue.margin import MARGIN_CALL_RATIO

D = Decimal
BTC = "BTCUSDT"


def test_the_margin_call_ratio_is_a_setting() -> None:
    engine, market = funded("1000")
    engine.handle(1, ChangeLeverage(symbol=BTC, leverage=20), 2)
    engine.handle(1, market_order(Side.BUY, "0.1"), 3)
    assert engine.risk.margin_call_ratio == MARGIN_CALL_RATIO == D("0.8")
    at_half = engine.risk.liquidation_price(1, BTC, "BOTH", margin_ratio=D("0.5"))
    at_default = engine.risk.liquidation_price(1, BTC, "BOTH", margin_ratio=MARGIN_CALL_RATIO)
    between = ((at_half + at_default) / 2).quantize(D("0.1"))
    assert move(engine, market, str(between), 4) == []  # below 80 %: no call by default
    engine.risk.margin_call_ratio = D("0.5")
    assert kinds(move(engine, market, str(between - D("0.1")), 5)) == ["MarginCall"]
