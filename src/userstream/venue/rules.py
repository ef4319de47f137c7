"""A symbol's trading rules, read once from its exchangeInfo entry (trading spec §2.2, §4.1).

Filter values are strings in exchangeInfo; here they are `Decimal`s, with the defaults
Binance applies when a filter is absent (no PERCENT_PRICE band, 200 open orders).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from userstream.protocol.exchange_info import (
    LotSize,
    MarketLotSize,
    MaxNumOrders,
    MinNotional,
    PercentPrice,
    PriceFilter,
    Symbol,
)

__all__ = ["SymbolRules"]

_DEFAULT_MAX_ORDERS = 200


@dataclass(frozen=True, slots=True)
class SymbolRules:
    symbol: str
    status: str
    margin_asset: str
    price_precision: int
    quantity_precision: int
    min_price: Decimal
    max_price: Decimal
    tick_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    step_size: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    market_step_size: Decimal
    min_notional: Decimal
    min_notional_text: str  # as exchangeInfo writes it, for the -4164 message
    multiplier_up: Decimal | None
    multiplier_down: Decimal | None
    max_num_orders: int

    @classmethod
    def of(cls, symbol: Symbol) -> SymbolRules:
        """The rules of one exchangeInfo symbol (its PRICE_FILTER and LOT_SIZE are required
        by the symbol file's checks)."""
        price = symbol.filter(PriceFilter)
        lot = symbol.filter(LotSize)
        if price is None or lot is None:
            raise ValueError(f"{symbol.symbol}: PRICE_FILTER and LOT_SIZE are required")
        market = symbol.filter(MarketLotSize)
        notional = symbol.filter(MinNotional)
        band = symbol.filter(PercentPrice)
        orders = symbol.filter(MaxNumOrders)
        return cls(
            symbol=symbol.symbol,
            status=symbol.status,
            margin_asset=symbol.margin_asset,
            price_precision=symbol.price_precision,
            quantity_precision=symbol.quantity_precision,
            min_price=Decimal(price.min_price),
            max_price=Decimal(price.max_price),
            tick_size=Decimal(price.tick_size),
            min_qty=Decimal(lot.min_qty),
            max_qty=Decimal(lot.max_qty),
            step_size=Decimal(lot.step_size),
            market_min_qty=Decimal(market.min_qty if market else lot.min_qty),
            market_max_qty=Decimal(market.max_qty if market else lot.max_qty),
            market_step_size=Decimal(market.step_size if market else lot.step_size),
            min_notional=Decimal(notional.notional if notional else "0"),
            min_notional_text=notional.notional if notional else "0",
            multiplier_up=Decimal(band.multiplier_up) if band else None,
            multiplier_down=Decimal(band.multiplier_down) if band else None,
            max_num_orders=orders.limit if orders else _DEFAULT_MAX_ORDERS,
        )
