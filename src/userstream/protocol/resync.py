"""Merging a REST snapshot with the events that raced it, and when to take the next one.

Sans-I/O: data and `now` in, data out. The account mirror (`client/mirror.py`) is the adapter.

Why the merge is safe (the rules the unit tests pin):

* The stream is ordered per connection (spec UDS §4.6) and complete between two `StreamGap`s.
* Every event the client received **before** it sent a snapshot request happened before the
  venue computed the answer, so the snapshot already contains it: such events are not applied
  to the snapshot again (they were buffered only to be discarded). This is the *fence*.
* An event received after the fence may or may not be contained. Each entity in a snapshot
  carries its own version (an order's `updateTime` and `executedQty`, a position's or an
  asset's `updateTime`): an event older than that version is contained and skipped, so a fill
  the snapshot already counts is never counted twice, and no view ever steps back in time.
* Every other event after the fence is applied. ACCOUNT_UPDATE rows and ORDER_TRADE_UPDATE
  orders carry whole states (`wb`, `pa`, `z`, `X`), not deltas, so applying an event whose
  effect is already in the snapshot cannot double-count, and the last event of an entity
  decides its state. An order absent from the snapshot is either closed (its terminal event
  follows its earlier ones on the stream and removes it again) or new (kept): an order seen
  only in events is kept.

Snapshots are coalesced and rate-limited (`SnapshotPlanner`): a gap while one is in flight
asks for exactly one more after it (the one in flight may predate the lost events), a burst
of gaps costs at most one snapshot per `min_interval_ms`, and a failed one is retried with
doubling delays. Request weight itself is accounted by the REST client (`X-MBX-USED-WEIGHT-1M`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

import msgspec

from userstream.protocol.events import (
    AccountUpdate,
    AlgoUpdate,
    Event,
    OrderTradeUpdate,
)
from userstream.protocol.snapshot import OpenAlgoOrder, OpenOrder, PositionRisk

__all__ = [
    "FINAL_ORDER_STATUSES",
    "PlannerState",
    "SnapshotPlanner",
    "Versions",
    "contained",
    "trim",
]

FINAL_ORDER_STATUSES: Final = frozenset(
    {"FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"}
)
"""Order statuses after which an order is no longer open (spec trading §4.2)."""
_FINAL = FINAL_ORDER_STATUSES


@dataclass(slots=True)
class Versions:
    """What each entity of one snapshot already reflects.

    Attributes:
        balances: asset -> `updateTime` of its `/fapi/v3/account` row.
        positions: `(symbol, positionSide)` -> `updateTime` of its positionRisk row.
        orders: orderId -> (`updateTime`, `executedQty`) of its openOrders row.
        algo_orders: algoId -> `updateTime` of its openAlgoOrders row.
    """

    balances: dict[str, int] = field(default_factory=dict)
    positions: dict[tuple[str, str], int] = field(default_factory=dict)
    orders: dict[int, tuple[int, Decimal]] = field(default_factory=dict)
    algo_orders: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        balances: dict[str, int],
        positions: tuple[PositionRisk, ...],
        orders: tuple[OpenOrder, ...],
        algo_orders: tuple[OpenAlgoOrder, ...] = (),
    ) -> Versions:
        return cls(
            balances=dict(balances),
            positions={(p.symbol, p.position_side): p.update_time for p in positions},
            orders={o.order_id: (o.update_time, o.executed_quantity) for o in orders},
            algo_orders={a.algo_id: a.update_time for a in algo_orders},
        )


def contained(event: OrderTradeUpdate, versions: Versions) -> bool:
    """True if the snapshot's row for this order already reflects `event`.

    Older by update time, or at the same millisecond with no more filled than the row (two
    fills of one taker order share a millisecond; the row may sit between them).
    """
    seen = versions.orders.get(event.order.order_id)
    if seen is None:
        return False
    update_time, executed = seen
    order = event.order
    if order.trade_time != update_time:
        return order.trade_time < update_time
    if order.order_status in _FINAL or order.execution_type == "AMENDMENT":
        return False  # the row shows the order open: its end (or amendment) came after
    return order.filled_accumulated_quantity <= executed


def trim(event: Event, versions: Versions) -> Event | None:
    """`event` without what the snapshot behind `versions` already contains; None if nothing
    is left. Call it only for events received after the snapshot request was sent (the
    fence); events received before it are contained whole."""
    if isinstance(event, OrderTradeUpdate):
        return None if contained(event, versions) else event
    if isinstance(event, AccountUpdate):
        time = event.transaction_time
        update = event.update
        balances = tuple(b for b in update.balances if time >= versions.balances.get(b.asset, 0))
        positions = tuple(
            p
            for p in update.positions
            if time >= versions.positions.get((p.symbol, p.position_side), 0)
        )
        if len(balances) == len(update.balances) and len(positions) == len(update.positions):
            return event
        if not balances and not positions:
            return None
        return msgspec.structs.replace(
            event,
            update=msgspec.structs.replace(update, balances=balances, positions=positions),
        )
    if isinstance(event, AlgoUpdate):
        seen = versions.algo_orders.get(event.order.algo_id)
        return None if seen is not None and event.transaction_time < seen else event
    return event


class PlannerState(enum.StrEnum):
    IDLE = "idle"
    WANTED = "wanted"
    IN_FLIGHT = "in_flight"


@dataclass(slots=True)
class SnapshotPlanner:
    """When to take the next snapshot: coalesced, at most one per `min_interval_ms`.

    Usage: `request(reason)` on start and on every gap; when `due(now)` is true call
    `started(now)` and take the snapshot; then `finished(now, ok)`. If a request came in
    while one was in flight, `state` is WANTED again afterwards.
    """

    min_interval_ms: int = 1_000
    retry_first_ms: int = 500
    retry_max_ms: int = 30_000
    state: PlannerState = PlannerState.IDLE
    again: bool = False
    """A request came in while a snapshot was in flight: take one more after it."""
    reasons: list[str] = field(default_factory=list)
    """Why the next snapshot is wanted (gap reasons, "start", "self-check"), oldest first."""
    last_started_ms: int | None = None
    failures: int = 0
    not_before_ms: int = 0
    """A 429/418 said when to come back (`Retry-After`): no snapshot before then."""

    def request(self, reason: str) -> None:
        self.reasons.append(reason)
        if self.state is PlannerState.IN_FLIGHT:
            self.again = True
        else:
            self.state = PlannerState.WANTED

    def next_start_ms(self) -> int:
        """The earliest moment the wanted snapshot may start."""
        if self.last_started_ms is None:
            return self.not_before_ms
        wait = self.min_interval_ms
        if self.failures:
            wait = max(wait, min(self.retry_first_ms * 2 ** (self.failures - 1), self.retry_max_ms))
        return max(self.last_started_ms + wait, self.not_before_ms)

    def due(self, now_ms: int) -> bool:
        return self.state is PlannerState.WANTED and now_ms >= self.next_start_ms()

    def started(self, now_ms: int) -> list[str]:
        """Mark the snapshot as in flight; returns the reasons it covers."""
        self.state = PlannerState.IN_FLIGHT
        self.again = False
        self.last_started_ms = now_ms
        reasons, self.reasons = self.reasons, []
        return reasons

    def finished(
        self, ok: bool, reasons: list[str], now_ms: int = 0, retry_after_ms: int = 0
    ) -> None:
        """The snapshot ended; a failed one is wanted again for the same `reasons`, not
        before `retry_after_ms` from `now_ms` (a 429's `Retry-After`)."""
        self.not_before_ms = now_ms + retry_after_ms if retry_after_ms else 0
        if ok:
            self.failures = 0
        else:
            self.failures += 1
            self.reasons[:0] = reasons
        self.state = PlannerState.WANTED if (self.again or not ok) else PlannerState.IDLE
        self.again = False
