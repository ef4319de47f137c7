"""Conditional orders of the Algo Order API (`/fapi/v1/algoOrder`, since 2025-12-09), sans-I/O.

What lives here (trading spec §2.4, §5.7; user-data spec §5.10):

* the request (`NewAlgoOrder`) and its checks, in the order of spec §4.1 where they overlap
  (-1102 missing, -1106 not allowed, -4136/-4137 closePosition, -4015 client id, -20132
  duplicate open `clientAlgoId`, -4061 position side, -2021 immediate trigger);
* the record of each algo order (`AlgoRecord`, a msgspec Struct so the venue's state exports
  it) and its status machine
  `NEW → TRIGGERING → TRIGGERED → FINISHED`, or `CANCELED` (user), `REJECTED` (the triggered
  order was refused: `rm` says why), `EXPIRED` (by the system: a `closePosition` order whose
  position is gone when it triggers);
* the ALGO_UPDATE event of every transition, built from the record, and the trigger index
  that tells which orders a price tick fires (`venue.triggers`).

The engine does the rest: it asks `AlgoBook.on_price` after each mark or trade price, places
the child order a fired record describes (MARKET for *_MARKET and trailing orders, LIMIT with
the order's price and time in force for STOP and TAKE_PROFIT), and reports back with
`triggered`, `rejected`, `expired` and `finished`.

The -20xxx codes are ccxt's mapping of Binance's algo service errors (spec §8 item 10);
their messages are not documented and are ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import msgspec

from userstream.exceptions import BinanceAPIError
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
    TimeInForce,
    WorkingType,
)
from userstream.venue.triggers import (
    Direction,
    Fired,
    FiredKind,
    TriggerIndex,
    direction_of,
    would_trigger,
)

__all__ = [
    "ALGO_TYPE",
    "CONDITIONAL_TYPES",
    "AlgoBook",
    "AlgoRecord",
    "AlgoState",
    "CancelAlgoOrder",
    "NewAlgoOrder",
    "algo_update",
    "trigger_reject",
]

ALGO_TYPE: Final = "CONDITIONAL"
CONDITIONAL_TYPES: Final = frozenset(
    {
        OrderType.STOP,
        OrderType.STOP_MARKET,
        OrderType.TAKE_PROFIT,
        OrderType.TAKE_PROFIT_MARKET,
        OrderType.TRAILING_STOP_MARKET,
    }
)
_WITH_PRICE: Final = frozenset({OrderType.STOP, OrderType.TAKE_PROFIT})
_CLOSE_POSITION_TYPES: Final = frozenset({OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET})
_FINAL: Final = frozenset(
    {AlgoStatus.FINISHED, AlgoStatus.CANCELED, AlgoStatus.REJECTED, AlgoStatus.EXPIRED}
)
_CLIENT_ID: Final = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
# callbackRate bounds: 0.1-10 %, the maximum raised to 20 % on 2026-10-23 (spec §2.4).
_MIN_CALLBACK: Final = Decimal("0.1")
_MAX_CALLBACK: Final = Decimal(20)

UNKNOWN_ALGO: Final = -20124
DUPLICATE_CLIENT_ALGO_ID: Final = -20132


def _error(code: int, msg: str) -> BinanceAPIError:
    return BinanceAPIError(code, msg)


def _mandatory(name: str) -> BinanceAPIError:
    return _error(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _not_required(name: str) -> BinanceAPIError:
    return _error(-1106, f"Parameter '{name}' sent when not required.")


def unknown_algo() -> BinanceAPIError:
    return _error(UNKNOWN_ALGO, "Algo order does not exist.")


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAlgoOrder:
    """`POST /fapi/v1/algoOrder` / WS API `algoOrder.place`, parsed (enums and numbers typed;
    `None` = parameter absent)."""

    symbol: str
    side: str
    order_type: str
    algo_type: str = ALGO_TYPE
    quantity: Decimal | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    time_in_force: str | None = None
    position_side: str | None = None
    working_type: str | None = None
    price_match: str | None = None
    close_position: bool | None = None
    price_protect: bool | None = None
    reduce_only: bool | None = None
    activate_price: Decimal | None = None
    callback_rate: Decimal | None = None
    client_algo_id: str | None = None
    self_trade_prevention_mode: str | None = None
    good_till_date: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAlgoOrder:
    """`DELETE /fapi/v1/algoOrder` / `algoOrder.cancel`; `algo_id` wins over the client id."""

    algo_id: int | None = None
    client_algo_id: str | None = None


class AlgoRecord(msgspec.Struct, kw_only=True):
    """One algo order of one account, open or final."""

    algo_id: int
    client_algo_id: str
    account_id: int
    symbol: str
    side: str
    position_side: str
    order_type: str
    time_in_force: str
    quantity: Decimal  # 0 for closePosition orders
    price: Decimal
    trigger_price: Decimal  # 0 for trailing orders
    working_type: str
    price_match: str
    close_position: bool
    price_protect: bool
    reduce_only: bool
    activate_price: Decimal | None
    callback_rate: Decimal | None
    self_trade_prevention_mode: str
    good_till_date: int
    create_time: int
    update_time: int
    status: str = AlgoStatus.NEW
    trigger_time: int = 0
    activated: bool = False
    # Trailing orders: the working price at placement or activation, where tracking of the
    # extreme restarts when the state is restored.
    tracking_price: Decimal = Decimal(0)
    actual_order_id: int = 0  # 0 until triggered ("" on the wire)
    actual_type: str = ""
    actual_price: Decimal = Decimal(0)
    executed_qty: Decimal = Decimal(0)
    reject_reason: str = ""

    @property
    def is_open(self) -> bool:
        return self.status not in _FINAL

    @property
    def is_trailing(self) -> bool:
        return self.order_type == OrderType.TRAILING_STOP_MARKET

    @property
    def child_type(self) -> str:
        """The type of the order placed at trigger: LIMIT for STOP/TAKE_PROFIT, else MARKET."""
        return OrderType.LIMIT if self.order_type in _WITH_PRICE else OrderType.MARKET


class AlgoState(msgspec.Struct, kw_only=True):
    """Every algo order of the venue and the id counter (exported with the engine's state)."""

    next_algo_id: int = 1
    orders: dict[int, AlgoRecord] = msgspec.field(default_factory=dict)


def algo_update(record: AlgoRecord, now_ms: int) -> AlgoUpdate:
    """The ALGO_UPDATE of `record` as it is now (spec §5.7; `ai` is "" until triggered,
    `ap`/`aq`/`act` only once triggered, `ia` only for trailing orders)."""
    triggered = record.actual_order_id != 0
    return AlgoUpdate(
        transaction_time=now_ms,
        event_time=now_ms,
        order=AlgoOrder(
            client_algo_id=record.client_algo_id,
            algo_id=record.algo_id,
            algo_type=ALGO_TYPE,
            order_type=record.order_type,
            symbol=record.symbol,
            side=record.side,
            position_side=record.position_side,
            time_in_force=record.time_in_force,
            quantity=record.quantity,
            status=record.status,
            order_id=str(record.actual_order_id) if triggered else "",
            average_price=record.actual_price if triggered else None,
            executed_quantity=record.executed_qty if triggered else None,
            actual_order_type=record.actual_type if triggered else None,
            trigger_price=record.trigger_price,
            price=record.price,
            self_trade_prevention_mode=record.self_trade_prevention_mode,
            working_type=record.working_type,
            price_match=record.price_match,
            close_position=record.close_position,
            price_protection=record.price_protect,
            reduce_only=record.reduce_only,
            trigger_time=record.trigger_time,
            good_till_date=record.good_till_date,
            reject_reason=record.reject_reason,
            is_activated=record.activated if record.is_trailing else None,
        ),
    )


def trigger_reject(record: AlgoRecord, now_ms: int) -> ConditionalOrderTriggerReject:
    """CONDITIONAL_ORDER_TRIGGER_REJECT for a refused trigger. Binance moved the reason into
    ALGO_UPDATE `rm` on 2025-12-15; the venue still sends this event after the ALGO_UPDATE
    for clients written against the older stream (nautilus handles both)."""
    return ConditionalOrderTriggerReject(
        event_time=now_ms,
        transaction_time=now_ms,
        reject=OrderReject(
            symbol=record.symbol, order_id=record.algo_id, reason=record.reject_reason
        ),
    )


def _check_shape(cmd: NewAlgoOrder, hedge_mode: bool) -> None:
    """Parameter presence and combinations, before any state is looked at."""
    if cmd.algo_type != ALGO_TYPE:
        raise _error(-1130, "Data sent for parameter 'algoType' is not valid.")
    if cmd.order_type not in CONDITIONAL_TYPES:
        raise _error(-1116, "Invalid orderType.")
    trailing = cmd.order_type == OrderType.TRAILING_STOP_MARKET
    close = bool(cmd.close_position)
    if close:
        if cmd.order_type not in _CLOSE_POSITION_TYPES:
            raise _error(
                -4136,
                f"Target strategy invalid for orderType {cmd.order_type},closePosition true",
            )
        if cmd.quantity is not None:
            raise _error(-4137, "Quantity must be zero with closePosition equals true")
        if cmd.reduce_only is not None:
            raise _not_required("reduceOnly")
    elif cmd.quantity is None:
        raise _mandatory("quantity")
    if trailing:
        if cmd.callback_rate is None:
            raise _mandatory("callbackRate")
        if not _MIN_CALLBACK <= cmd.callback_rate <= _MAX_CALLBACK:
            raise _error(-1130, "Data sent for parameter 'callbackRate' is not valid.")
        if cmd.trigger_price is not None:
            raise _not_required("triggerPrice")
    else:
        if cmd.trigger_price is None:
            raise _mandatory("triggerPrice")
        if cmd.activate_price is not None:
            raise _not_required("activatePrice")
        if cmd.callback_rate is not None:
            raise _not_required("callbackRate")
    if cmd.order_type in _WITH_PRICE:
        if cmd.price is None and cmd.price_match in (None, PriceMatch.NONE):
            raise _mandatory("price")
    elif cmd.price is not None:
        raise _not_required("price")
    if hedge_mode and cmd.reduce_only is not None:
        raise _not_required("reduceOnly")
    side = cmd.position_side or PositionSide.BOTH
    if hedge_mode == (side == PositionSide.BOTH):
        raise _error(-4061, "Order's position side does not match user's setting.")
    if cmd.client_algo_id is not None and not _CLIENT_ID.match(cmd.client_algo_id):
        raise _error(-4015, "Client order id length should not be more than 36 chars")


def _working_type(cmd: NewAlgoOrder) -> str:
    return cmd.working_type or WorkingType.CONTRACT_PRICE


class AlgoBook:
    """The venue's algo orders: records (`state`) plus their trigger index.

    `new_client_id` makes the 22-character id Binance generates when `clientAlgoId` is absent;
    the engine passes its own generator so ids look the same for both order kinds.
    """

    __slots__ = ("_index", "_open_client_ids", "state")

    def __init__(self, state: AlgoState | None = None) -> None:
        self.state = state if state is not None else AlgoState()
        self._index = TriggerIndex()
        self._open_client_ids: dict[tuple[int, str], int] = {}
        for record in self.state.orders.values():
            if record.is_open and record.status == AlgoStatus.NEW:
                self._open_client_ids[(record.account_id, record.client_algo_id)] = record.algo_id
                self._index_record(record, record.tracking_price)

    def __len__(self) -> int:
        """Open (untriggered) algo orders in the trigger index."""
        return len(self._index)

    def _index_record(self, record: AlgoRecord, price: Decimal) -> None:
        if record.is_trailing:
            assert record.callback_rate is not None
            self._index.add_trailing(
                record.algo_id,
                record.symbol,
                record.working_type,
                record.side,
                record.callback_rate,
                None if record.activated else record.activate_price,
                price,
            )
        else:
            direction = direction_of(record.order_type, record.side)
            self._index.add_stop(
                record.algo_id, record.symbol, record.working_type, direction, record.trigger_price
            )

    def place(
        self,
        account_id: int,
        cmd: NewAlgoOrder,
        *,
        now_ms: int,
        working_price: Decimal,
        hedge_mode: bool,
        client_id: str,
    ) -> tuple[AlgoRecord, AlgoUpdate]:
        """Accept a conditional order and index it; its NEW ALGO_UPDATE comes back with it.

        Args:
            working_price: the symbol's mark price (MARK_PRICE) or last price (CONTRACT_PRICE)
                now, for the -2021 check.
            client_id: the generated id to use when the request has no `clientAlgoId`.

        Raises:
            BinanceAPIError: the first rule the request breaks.
        """
        _check_shape(cmd, hedge_mode)
        client_algo_id = cmd.client_algo_id or client_id
        if (account_id, client_algo_id) in self._open_client_ids:
            raise _error(DUPLICATE_CLIENT_ALGO_ID, "The clientAlgoId is duplicated.")
        side = cmd.side
        trailing = cmd.order_type == OrderType.TRAILING_STOP_MARKET
        if trailing:
            if cmd.activate_price is not None and (
                cmd.activate_price <= working_price
                if side == "SELL"
                else cmd.activate_price >= working_price
            ):
                raise _error(-2021, "Order would immediately trigger.")
        else:
            assert cmd.trigger_price is not None
            direction: Direction = direction_of(cmd.order_type, side)
            if would_trigger(direction, cmd.trigger_price, working_price):
                raise _error(-2021, "Order would immediately trigger.")
        algo_id = self.state.next_algo_id
        self.state.next_algo_id += 1
        record = AlgoRecord(
            algo_id=algo_id,
            client_algo_id=client_algo_id,
            account_id=account_id,
            symbol=cmd.symbol,
            side=side,
            position_side=cmd.position_side or PositionSide.BOTH,
            order_type=cmd.order_type,
            time_in_force=cmd.time_in_force or TimeInForce.GTC,
            quantity=cmd.quantity if cmd.quantity is not None else Decimal(0),
            price=cmd.price if cmd.price is not None else Decimal(0),
            trigger_price=cmd.trigger_price if cmd.trigger_price is not None else Decimal(0),
            working_type=_working_type(cmd),
            price_match=cmd.price_match or PriceMatch.NONE,
            close_position=bool(cmd.close_position),
            price_protect=bool(cmd.price_protect),
            reduce_only=bool(cmd.reduce_only),
            activate_price=cmd.activate_price,
            callback_rate=cmd.callback_rate,
            self_trade_prevention_mode=(
                cmd.self_trade_prevention_mode or SelfTradePreventionMode.EXPIRE_MAKER
            ),
            good_till_date=cmd.good_till_date or 0,
            create_time=now_ms,
            update_time=now_ms,
            activated=trailing and cmd.activate_price is None,
            tracking_price=working_price,
        )
        self.state.orders[algo_id] = record
        self._open_client_ids[(account_id, client_algo_id)] = algo_id
        self._index_record(record, working_price)
        return record, algo_update(record, now_ms)

    def get(self, account_id: int, algo_id: int | None, client_algo_id: str | None) -> AlgoRecord:
        """One of the account's algo orders (`algoId` wins over `clientAlgoId`).

        Raises:
            BinanceAPIError: -1102 when neither is given, -20124 when there is no such order.
        """
        if algo_id is None and client_algo_id is None:
            raise _mandatory("algoId")
        if algo_id is None:
            assert client_algo_id is not None
            found = self._open_client_ids.get((account_id, client_algo_id))
            if found is None:
                found = next(
                    (
                        r.algo_id
                        for r in reversed(self.state.orders.values())
                        if r.account_id == account_id and r.client_algo_id == client_algo_id
                    ),
                    None,
                )
            algo_id = found
        record = self.state.orders.get(algo_id) if algo_id is not None else None
        if record is None or record.account_id != account_id:
            raise unknown_algo()
        return record

    def orders_of(self, account_id: int, symbol: str | None = None) -> Iterator[AlgoRecord]:
        """The account's algo orders, oldest first (all statuses)."""
        for record in self.state.orders.values():
            if record.account_id == account_id and (symbol is None or record.symbol == symbol):
                yield record

    def open_orders(self, account_id: int, symbol: str | None = None) -> list[AlgoRecord]:
        return [r for r in self.orders_of(account_id, symbol) if r.is_open]

    def cancel(self, account_id: int, cmd: CancelAlgoOrder, now_ms: int) -> AlgoUpdate:
        """Cancel one untriggered algo order.

        Raises:
            BinanceAPIError: -20124 unknown, or no longer cancellable (triggered or final).
        """
        record = self.get(account_id, cmd.algo_id, cmd.client_algo_id)
        if record.status != AlgoStatus.NEW:
            raise unknown_algo()
        return self._close(record, AlgoStatus.CANCELED, now_ms)

    def cancel_all(self, account_id: int, symbol: str, now_ms: int) -> list[AlgoUpdate]:
        """`DELETE /fapi/v1/algoOpenOrders`: every untriggered algo order of the symbol."""
        return [
            self._close(record, AlgoStatus.CANCELED, now_ms)
            for record in self.open_orders(account_id, symbol)
            if record.status == AlgoStatus.NEW
        ]

    def _close(self, record: AlgoRecord, status: str, now_ms: int) -> AlgoUpdate:
        self._index.remove(record.algo_id)
        record.status = status
        record.update_time = now_ms
        self._open_client_ids.pop((record.account_id, record.client_algo_id), None)
        return algo_update(record, now_ms)

    def on_price(
        self,
        symbol: str,
        working_type: str,
        price: Decimal,
        now_ms: int,
        *,
        protection_tripped: bool = False,
    ) -> tuple[list[AlgoRecord], list[AlgoUpdate]]:
        """Apply one tick of a working price.

        Returns the records that fired, now TRIGGERING (the engine places their child orders
        in this order), and the ALGO_UPDATEs to send: TRIGGERING for each fired record, and a
        second NEW with `ia=true` for each trailing order that reached its activation price.

        `protection_tripped` says the symbol's mark and last prices are further apart than its
        `triggerProtect` ratio: orders placed with `priceProtect=true` then do not trigger and
        stay NEW (Binance New-Order notes on priceProtect); the others fire as usual.
        """
        fired: list[Fired] = self._index.on_price(symbol, working_type, price)
        records: list[AlgoRecord] = []
        events: list[AlgoUpdate] = []
        for item in fired:
            record = self.state.orders[item.key]
            record.update_time = now_ms
            if item.kind is FiredKind.ACTIVATED:
                record.activated = True
                record.tracking_price = price
                events.append(algo_update(record, now_ms))
                continue
            if protection_tripped and record.price_protect:
                self._index_record(record, price)
                continue
            record.status = AlgoStatus.TRIGGERING
            record.trigger_time = now_ms
            records.append(record)
            events.append(algo_update(record, now_ms))
        return records, events

    def triggered(self, record: AlgoRecord, order_id: int, now_ms: int) -> AlgoUpdate:
        """The child order `order_id` was accepted: TRIGGERED with `ai` and `act`."""
        record.status = AlgoStatus.TRIGGERED
        record.actual_order_id = order_id
        record.actual_type = record.child_type
        record.update_time = now_ms
        self._open_client_ids.pop((record.account_id, record.client_algo_id), None)
        return algo_update(record, now_ms)

    def finished(
        self, record: AlgoRecord, average_price: Decimal, executed_qty: Decimal, now_ms: int
    ) -> AlgoUpdate:
        """The child order reached a final state: FINISHED with its fills (`ap`, `aq`)."""
        record.status = AlgoStatus.FINISHED
        record.actual_price = average_price
        record.executed_qty = executed_qty
        record.update_time = now_ms
        return algo_update(record, now_ms)

    def rejected(self, record: AlgoRecord, reason: str, now_ms: int) -> AlgoUpdate:
        """The child order was refused (margin, reduce-only): REJECTED with `rm`."""
        record.reject_reason = reason
        return self._close(record, AlgoStatus.REJECTED, now_ms)

    def expired(self, record: AlgoRecord, now_ms: int) -> AlgoUpdate:
        """Expired by the system (a closePosition order with nothing to close)."""
        return self._close(record, AlgoStatus.EXPIRED, now_ms)
