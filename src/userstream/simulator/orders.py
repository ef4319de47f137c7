"""Orders and their ORDER_TRADE_UPDATE / TRADE_LITE events (spec §5.4, §5.5).

An order's `z` is the sum of every `l` reported for it, its `ap` is `Σ(l x L) / z`, and it
ends `FILLED` exactly when `z == q`. `b`/`a` carry the account's open LIMIT notional on each
side of the symbol after the event (3P-OBS 2026-07-31), not the order's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from userstream.protocol.events import (
    ExecutionType,
    ExpiryReason,
    OrderStatus,
    OrderTradeUpdate,
    OrderType,
    OrderUpdate,
    PositionSide,
    PriceMatch,
    SelfTradePreventionMode,
    Side,
    TimeInForce,
    TradeLite,
    WorkingType,
)
from userstream.simulator.ledger import ZERO, money, trim

__all__ = ["Fill", "SimOrder", "order_event", "trade_lite"]


@dataclass(slots=True)
class Fill:
    """One execution of an order."""

    quantity: Decimal
    price: Decimal
    trade_id: int
    commission: Decimal
    realized: Decimal
    maker: bool


@dataclass(slots=True)
class SimOrder:
    """An order as the matching engine sees it."""

    order_id: int
    client_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal  # 0 for MARKET
    original_type: OrderType
    margin_asset: str
    stop_price: Decimal = ZERO
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    strategy_id: int = 0
    filled: Decimal = ZERO
    filled_notional: Decimal = ZERO
    status: OrderStatus = OrderStatus.NEW

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    @property
    def signed(self) -> int:
        return 1 if self.side is Side.BUY else -1

    def average_price(self) -> Decimal:
        """`ap`: the quantity-weighted average of the fills so far, `0` before the first."""
        return trim(money(self.filled_notional / self.filled)) if self.filled else ZERO

    def record(self, fill: Fill) -> None:
        self.filled += fill.quantity
        self.filled_notional += fill.quantity * fill.price
        filled = self.filled == self.quantity
        self.status = OrderStatus.FILLED if filled else OrderStatus.PARTIALLY_FILLED


def order_event(
    order: SimOrder,
    execution: ExecutionType,
    now_ms: int,
    open_notional: tuple[Decimal, Decimal],
    fill: Fill | None = None,
    expiry_reason: ExpiryReason = ExpiryReason.NONE,
) -> OrderTradeUpdate:
    """The ORDER_TRADE_UPDATE for `order`'s current state; `fill` is the execution that
    produced it (execution type `TRADE`)."""
    bids, asks = open_notional
    return OrderTradeUpdate(
        transaction_time=now_ms,
        event_time=now_ms,
        order=OrderUpdate(
            symbol=order.symbol,
            client_order_id=order.client_id,
            side=order.side,
            order_type=order.order_type,
            time_in_force=order.time_in_force,
            original_quantity=order.quantity,
            original_price=order.price,
            average_price=order.average_price(),
            stop_price=order.stop_price,
            execution_type=execution,
            order_status=order.status,
            order_id=order.order_id,
            last_filled_quantity=fill.quantity if fill else ZERO,
            filled_accumulated_quantity=order.filled,
            last_filled_price=fill.price if fill else ZERO,
            commission=fill.commission if fill else ZERO,
            commission_asset=order.margin_asset,
            trade_time=now_ms,
            trade_id=fill.trade_id if fill else 0,
            bids_notional=trim(money(bids)),
            ask_notional=trim(money(asks)),
            is_maker=fill.maker if fill else False,
            reduce_only=order.reduce_only,
            working_type=WorkingType.CONTRACT_PRICE,
            original_order_type=order.original_type,
            position_side=PositionSide.BOTH,
            close_position=False,
            realized_profit=fill.realized if fill else ZERO,
            price_protection=False,
            strategy_id=order.strategy_id,
            ignored_ss=0,
            self_trade_prevention_mode=SelfTradePreventionMode.EXPIRE_MAKER,
            price_match=PriceMatch.NONE,
            good_till_date=0,
            expiry_reason=expiry_reason,
        ),
    )


def trade_lite(order: SimOrder, fill: Fill, now_ms: int) -> TradeLite:
    """The TRADE_LITE companion of a fill (spec §5.5)."""
    return TradeLite(
        event_time=now_ms,
        transaction_time=now_ms,
        symbol=order.symbol,
        original_quantity=order.quantity,
        original_price=order.price,
        is_maker=fill.maker,
        client_order_id=order.client_id,
        side=order.side,
        last_filled_price=fill.price,
        last_filled_quantity=fill.quantity,
        trade_id=fill.trade_id,
        order_id=order.order_id,
    )
