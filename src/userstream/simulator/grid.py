"""A long grid strategy and its STRATEGY_UPDATE / GRID_UPDATE events (spec §5.7, §5.8).

The grid buys a lot a few levels below the mark and sells its most recent lot one level
above that lot's price. Unsold lots are "unmatched" (`uq`, their average price `up`, their
commissions `uf`); a sale matches a lot and adds `(sell - buy) x qty` to `mp`; `r` is `mp`
minus every commission the grid has paid. Its orders carry the strategy id in `si`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from userstream.protocol.events import (
    GridUpdate,
    GridUpdateData,
    StrategyStatus,
    StrategyUpdate,
    StrategyUpdateData,
)
from userstream.simulator.ledger import ZERO, money, trim

__all__ = ["Lot", "SimGrid", "grid_event", "strategy_event"]

GRID = "GRID"


@dataclass(slots=True)
class Lot:
    quantity: Decimal
    price: Decimal
    commission: Decimal


@dataclass(slots=True)
class SimGrid:
    strategy_id: int
    symbol: str
    spacing: Decimal
    quantity: Decimal
    status: StrategyStatus = StrategyStatus.NEW
    lots: list[Lot] = field(default_factory=list)
    matched_pnl: Decimal = ZERO
    commissions: Decimal = ZERO
    orders: int = 0

    def buy(self, price: Decimal, commission: Decimal) -> None:
        self.lots.append(Lot(self.quantity, price, commission))
        self.commissions += commission

    def sell(self, price: Decimal, commission: Decimal) -> None:
        lot = self.lots.pop()
        self.matched_pnl += (price - lot.price) * lot.quantity
        self.commissions += commission


def strategy_event(grid: SimGrid, op_code: int, now_ms: int) -> StrategyUpdate:
    """STRATEGY_UPDATE with `grid`'s status; `op_code` is one of §5.7's 8001-8015."""
    return StrategyUpdate(
        transaction_time=now_ms,
        event_time=now_ms,
        strategy=StrategyUpdateData(
            strategy_id=grid.strategy_id,
            strategy_type=GRID,
            strategy_status=grid.status,
            symbol=grid.symbol,
            update_time=now_ms,
            op_code=op_code,
        ),
    )


def grid_event(grid: SimGrid, now_ms: int) -> GridUpdate:
    """GRID_UPDATE after a grid sub-order filled."""
    quantity = sum((lot.quantity for lot in grid.lots), ZERO)
    notional = sum((lot.quantity * lot.price for lot in grid.lots), ZERO)
    fee = sum((lot.commission for lot in grid.lots), ZERO)
    return GridUpdate(
        transaction_time=now_ms,
        event_time=now_ms,
        grid=GridUpdateData(
            strategy_id=grid.strategy_id,
            strategy_type=GRID,
            strategy_status=grid.status,
            symbol=grid.symbol,
            realized_pnl=money(grid.matched_pnl - grid.commissions),
            unmatched_average_price=trim(money(notional / quantity)) if quantity else ZERO,
            unmatched_quantity=trim(quantity),
            unmatched_fee=money(-fee),
            matched_pnl=money(grid.matched_pnl),
            update_time=now_ms,
        ),
    )
