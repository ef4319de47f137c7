"""An order's answer formats each figure at its symbol's precision; zeros take a precomputed
string, which must be the string the quantize-and-format path writes (a negative zero keeps
its sign there)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from userstream.protocol import trading as t
from userstream.server.venue_routes import Formats, VenueRoutes
from userstream.symbols import load_symbol_table
from userstream.venue.views import OrderView

RULES = {
    s.symbol: t.SymbolRules(s.symbol, s.price_precision, s.quantity_precision)
    for s in load_symbol_table().symbols
}
FIGURES = ["0", "-0", "0E-12", "-0E+3", "0.000", "1.5", "-2.25", "65000.123456789"]


def _routes() -> VenueRoutes:
    # `order` reads only the formats, not the service.
    routes = object.__new__(VenueRoutes)
    routes.f = Formats(RULES)
    return routes


@pytest.mark.parametrize("figure", FIGURES)
@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
def test_each_figure_is_formatted_at_the_symbols_precision(symbol: str, figure: str) -> None:
    value = Decimal(figure)
    rules = RULES[symbol]
    view = OrderView(
        order_id=1,
        symbol=symbol,
        status="NEW",
        client_order_id="c",
        price=value,
        avg_price=value,
        orig_qty=Decimal("1"),
        executed_qty=value,
        cum_quote=value,
        time_in_force="GTC",
        order_type="LIMIT",
        reduce_only=False,
        side="BUY",
        position_side="BOTH",
        price_match="NONE",
        self_trade_prevention_mode="EXPIRE_MAKER",
        good_till_date=0,
        time=1,
        update_time=1,
        expiry_reason="",
        stop_price=value,
    )
    answer = _routes().order(view)
    average = max(5, rules.price_precision)
    assert answer.price == answer.stop_price == t.fmt(value, rules.price_precision)
    assert answer.avg_price == answer.cum_quote == t.fmt(value, average)
    assert answer.executed_qty == answer.cum_qty == t.fmt(value, rules.quantity_precision)
