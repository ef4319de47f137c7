"""Conditional orders through the Algo Service and their ALGO_UPDATE events (spec §5.10).

Lifecycle: `NEW` (waiting for the mark price to cross the trigger) → `TRIGGERING` (condition
met) → `TRIGGERED` (a MARKET order with `ai` = its order id is in the matching engine) →
`FINISHED` (that order filled; `ap`/`aq`/`act` report it). Side paths: `CANCELED` (the user
gave up waiting) and `REJECTED` (a reduce-only order with nothing left to reduce, `rm` says
why).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from userstream.protocol.events import (
    AlgoOrder,
    AlgoStatus,
    AlgoUpdate,
    ConditionalOrderTriggerReject,
    OrderReject,
    OrderType,
    PositionSide,
    PriceMatch,
    SelfTradePreventionMode,
    Side,
    TimeInForce,
    WorkingType,
)
from userstream.simulator.orders import SimOrder

__all__ = ["REDUCE_ONLY_REJECT", "SimAlgo", "algo_event", "trigger_reject_event"]

REDUCE_ONLY_REJECT: Final = "Reduce Only reject"  # the doc example's `rm`


@dataclass(slots=True)
class SimAlgo:
    algo_id: int
    client_algo_id: str
    symbol: str
    side: Side
    order_type: OrderType  # STOP_MARKET or TAKE_PROFIT_MARKET
    quantity: Decimal
    trigger_price: Decimal
    reduce_only: bool
    status: AlgoStatus = AlgoStatus.NEW
    order: SimOrder | None = None
    trigger_time: int = 0
    waited: int = 0
    reject_reason: str = ""

    def triggered_by(self, mark: Decimal) -> bool:
        """Whether `mark` meets the trigger: a stop buys above and sells below the trigger
        price, a take-profit the other way round."""
        rising = (self.side is Side.BUY) == (self.order_type is OrderType.STOP_MARKET)
        return mark >= self.trigger_price if rising else mark <= self.trigger_price


def algo_event(algo: SimAlgo, now_ms: int) -> AlgoUpdate:
    """The ALGO_UPDATE for `algo`'s current status; the engine fields only once triggered."""
    order = algo.order
    return AlgoUpdate(
        transaction_time=now_ms,
        event_time=now_ms,
        order=AlgoOrder(
            client_algo_id=algo.client_algo_id,
            algo_id=algo.algo_id,
            algo_type="CONDITIONAL",
            order_type=algo.order_type,
            symbol=algo.symbol,
            side=algo.side,
            position_side=PositionSide.BOTH,
            time_in_force=TimeInForce.GTC,
            quantity=algo.quantity,
            status=algo.status,
            order_id=str(order.order_id) if order else "",
            average_price=order.average_price() if order else None,
            executed_quantity=order.filled if order else None,
            actual_order_type=order.order_type if order else None,
            trigger_price=algo.trigger_price,
            price=Decimal(0),
            self_trade_prevention_mode=SelfTradePreventionMode.EXPIRE_MAKER,
            working_type=WorkingType.CONTRACT_PRICE,
            price_match=PriceMatch.NONE,
            close_position=False,
            price_protection=False,
            reduce_only=algo.reduce_only,
            trigger_time=algo.trigger_time,
            good_till_date=0,
            reject_reason=algo.reject_reason,
        ),
    )


def trigger_reject_event(
    algo: SimAlgo, order_id: int, now_ms: int
) -> ConditionalOrderTriggerReject:
    """The deprecated CONDITIONAL_ORDER_TRIGGER_REJECT (§5.9, superseded by ALGO_UPDATE `rm`
    on 2025-12-15), for clients that still listen for it."""
    return ConditionalOrderTriggerReject(
        event_time=now_ms,
        transaction_time=now_ms,
        reject=OrderReject(symbol=algo.symbol, order_id=order_id, reason=algo.reject_reason),
    )
