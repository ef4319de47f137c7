"""Fold user-data events into an account's state: balances, positions, open orders and the
per-symbol settings the events carry (user-data spec §5.2, §5.4, §5.6).

Sans-I/O and venue-independent: a client's account mirror starts an `AccountFold` from a
REST snapshot and applies every event it receives; the venue's tests start one from the
engine's snapshot and check that the events reproduce the engine's state at every step.

What the events carry, and so what the fold holds:

* ACCOUNT_UPDATE `B[]`: wallet and cross wallet balance per asset.
* ACCOUNT_UPDATE `P[]`: a position per (symbol, position side) — amount, entry and break-even
  price, accumulated realized PnL, isolated wallet — and the symbol's margin type. A zero
  amount removes the position. Unrealized PnL is left out: it moves with the mark price,
  which sends no user-data event, so a mirror computes it from the mark.
* ORDER_TRADE_UPDATE: an order is open while its status is NEW or PARTIALLY_FILLED and
  leaves the open set on any final status.
* ACCOUNT_CONFIG_UPDATE: `ac` sets a symbol's leverage, `ai` the Multi-Assets mode.

Other events (TRADE_LITE, MARGIN_CALL, ALGO_UPDATE, …) change none of this.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from userstream.protocol.events import (
    AccountConfigUpdate,
    AccountUpdate,
    Event,
    OrderStatus,
    OrderTradeUpdate,
    OrderUpdate,
)

__all__ = ["AccountFold", "AccountSnapshot", "FoldBalance", "FoldOrder", "FoldPosition"]

_OPEN = frozenset({OrderStatus.NEW.value, OrderStatus.PARTIALLY_FILLED.value})


class FoldBalance(msgspec.Struct, frozen=True, kw_only=True):
    """One asset's balance as `B[]` reports it."""

    asset: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal


class FoldPosition(msgspec.Struct, frozen=True, kw_only=True):
    """One non-zero position as `P[]` reports it (margin type lower-case)."""

    symbol: str
    position_side: str
    position_amount: Decimal
    entry_price: Decimal
    breakeven_price: Decimal
    accumulated_realized: Decimal
    margin_type: str
    isolated_wallet: Decimal


class FoldOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One open order as ORDER_TRADE_UPDATE `o` reports it; `update_time` is `o.T`."""

    order_id: int
    symbol: str
    client_order_id: str
    side: str
    position_side: str
    order_type: str
    time_in_force: str
    original_quantity: Decimal
    price: Decimal
    average_price: Decimal
    filled_quantity: Decimal
    status: str
    reduce_only: bool
    price_match: str
    self_trade_prevention_mode: str
    good_till_date: int
    update_time: int

    @classmethod
    def from_update(cls, o: OrderUpdate) -> FoldOrder:
        """The record of the order an ORDER_TRADE_UPDATE `o` describes, open or final."""
        return cls(
            order_id=o.order_id,
            symbol=o.symbol,
            client_order_id=o.client_order_id,
            side=o.side,
            position_side=o.position_side,
            order_type=o.order_type,
            time_in_force=o.time_in_force,
            original_quantity=o.original_quantity,
            price=o.original_price,
            average_price=o.average_price,
            filled_quantity=o.filled_accumulated_quantity,
            status=o.order_status,
            reduce_only=o.reduce_only,
            price_match=o.price_match,
            self_trade_prevention_mode=o.self_trade_prevention_mode,
            good_till_date=o.good_till_date,
            update_time=o.trade_time,
        )


class AccountSnapshot(msgspec.Struct, kw_only=True):
    """An account's state as far as events describe it. Positions are keyed by
    `(symbol, position side)`; `margin_types` holds `"cross"`/`"isolated"` per symbol."""

    balances: dict[str, FoldBalance] = msgspec.field(default_factory=dict)
    positions: dict[tuple[str, str], FoldPosition] = msgspec.field(default_factory=dict)
    open_orders: dict[int, FoldOrder] = msgspec.field(default_factory=dict)
    leverages: dict[str, int] = msgspec.field(default_factory=dict)
    margin_types: dict[str, str] = msgspec.field(default_factory=dict)
    multi_assets_margin: bool = False
    dual_side_position: bool = False


class AccountFold:
    """Applies events to a snapshot; `state` is the current account state.

    The fold copies the snapshot it starts from, so the caller's object is never changed.
    """

    __slots__ = ("state",)

    def __init__(self, snapshot: AccountSnapshot | None = None) -> None:
        base = snapshot if snapshot is not None else AccountSnapshot()
        self.state = AccountSnapshot(
            balances=dict(base.balances),
            positions=dict(base.positions),
            open_orders=dict(base.open_orders),
            leverages=dict(base.leverages),
            margin_types=dict(base.margin_types),
            multi_assets_margin=base.multi_assets_margin,
            dual_side_position=base.dual_side_position,
        )

    def apply(self, event: Event) -> None:
        """Apply one event; events that carry no account state are ignored."""
        if isinstance(event, OrderTradeUpdate):
            self._order(event)
        elif isinstance(event, AccountUpdate):
            self._account(event)
        elif isinstance(event, AccountConfigUpdate):
            if event.leverage_config is not None:
                config = event.leverage_config
                self.state.leverages[config.symbol] = config.leverage
            if event.account_info_config is not None:
                self.state.multi_assets_margin = event.account_info_config.multi_assets_mode

    def _order(self, event: OrderTradeUpdate) -> None:
        o = event.order
        if o.order_status not in _OPEN:
            self.state.open_orders.pop(o.order_id, None)
            return
        self.state.open_orders[o.order_id] = FoldOrder.from_update(o)

    def _account(self, event: AccountUpdate) -> None:
        for balance in event.update.balances:
            self.state.balances[balance.asset] = FoldBalance(
                asset=balance.asset,
                wallet_balance=balance.wallet_balance,
                cross_wallet_balance=balance.cross_wallet_balance,
            )
        for p in event.update.positions:
            self.state.margin_types[p.symbol] = p.margin_type
            key = (p.symbol, p.position_side)
            if not p.position_amount:
                self.state.positions.pop(key, None)
                continue
            self.state.positions[key] = FoldPosition(
                symbol=p.symbol,
                position_side=p.position_side,
                position_amount=p.position_amount,
                entry_price=p.entry_price,
                breakeven_price=p.breakeven_price,
                accumulated_realized=p.accumulated_realized,
                margin_type=p.margin_type,
                isolated_wallet=p.isolated_wallet,
            )
