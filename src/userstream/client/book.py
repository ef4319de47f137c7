"""The account mirror's state: loaded from a REST snapshot, moved by events, read as views.

`Book.from_snapshot` turns REST rows into views and records each entity's version for the
merge (`protocol/resync.py`); `Book.apply` moves the state with one event and returns the
order view that changed (for `wait_for_order`). It also remembers recently closed orders by
client order id and the latest fills.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

from userstream.client.mirror_views import (
    AlgoOrderView,
    BalanceView,
    MirrorState,
    OrderView,
    PositionView,
)
from userstream.client.rest import Snapshot
from userstream.protocol.events import (
    AccountConfigUpdate,
    AccountUpdate,
    AlgoUpdate,
    Event,
    OrderTradeUpdate,
)
from userstream.protocol.resync import FINAL_ORDER_STATUSES, Versions, trim

__all__ = ["Book"]

ZERO: Final = Decimal(0)
_RECENT_FILLS = 100
_ALGO_FINAL: Final = frozenset({"CANCELED", "TRIGGERED", "FINISHED", "REJECTED", "EXPIRED"})
"""Algo statuses after which the algo order is no longer open: once TRIGGERED it lives on
as a normal order (spec trading §5.7)."""
# symbolConfig/MARGIN_CALL spell margin types CROSSED/ISOLATED; ACCOUNT_UPDATE cross/isolated.
_MARGIN_TYPE: Final = {"CROSSED": "cross", "ISOLATED": "isolated"}


class Book:
    """Mutable account state; the mirror replaces it whole on each resync."""

    __slots__ = (
        "_algo",
        "_balances",
        "_closed",
        "_closed_limit",
        "_fill_ids",
        "_leverage",
        "_margin_types",
        "_orders",
        "_positions",
        "fills",
        "multi_assets",
        "versions",
    )

    def __init__(self, closed_orders: int = 1_000) -> None:
        self._balances: dict[str, BalanceView] = {}
        self._positions: dict[tuple[str, str], PositionView] = {}
        self._orders: dict[int, OrderView] = {}
        self._algo: dict[int, AlgoOrderView] = {}
        self._leverage: dict[str, int] = {}
        self._margin_types: dict[str, str] = {}
        self.multi_assets: bool | None = None
        self._closed: OrderedDict[str, OrderView] = OrderedDict()
        self._closed_limit = closed_orders
        self.fills: deque[OrderTradeUpdate] = deque()
        self._fill_ids: set[tuple[str, int]] = set()
        self.versions = Versions()

    # --- views ------------------------------------------------------------------------------

    @property
    def balances(self) -> Mapping[str, BalanceView]:
        return self._balances

    @property
    def positions(self) -> Mapping[tuple[str, str], PositionView]:
        return self._positions

    @property
    def open_orders(self) -> Mapping[int, OrderView]:
        return self._orders

    @property
    def algo_orders(self) -> Mapping[int, AlgoOrderView]:
        return self._algo

    @property
    def leverage(self) -> Mapping[str, int]:
        return self._leverage

    def state(self) -> MirrorState:
        return MirrorState(
            balances=dict(self._balances),
            positions=dict(self._positions),
            open_orders=dict(self._orders),
            algo_orders=dict(self._algo),
            leverage=dict(self._leverage),
            multi_assets=self.multi_assets,
        )

    def order_by_client_id(self, client_order_id: str) -> OrderView | None:
        for order in self._orders.values():
            if order.client_order_id == client_order_id:
                return order
        return self._closed.get(client_order_id)

    # --- snapshot ---------------------------------------------------------------------------

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, like: Book | None = None) -> Book:
        """The state a REST snapshot describes. `like` hands over the memory that REST does
        not return (recently closed orders, recent fills) and the parts a venue does not
        serve (its leverage and margin types, if `symbolConfig` is missing)."""
        book = cls(like._closed_limit if like is not None else 1_000)
        if like is not None:
            book._closed = OrderedDict(like._closed)
            book.fills = deque(like.fills)
            book._fill_ids = set(like._fill_ids)
        if snapshot.symbol_config is not None:
            for config in snapshot.symbol_config:
                book._leverage[config.symbol] = config.leverage
                book._margin_types[config.symbol] = _MARGIN_TYPE.get(
                    config.margin_type, config.margin_type
                )
        elif like is not None:
            book._leverage = dict(like._leverage)
            book._margin_types = dict(like._margin_types)
        if snapshot.account_config is not None:
            book.multi_assets = snapshot.account_config.multi_assets_margin
        elif snapshot.account.multi_assets_margin is not None:
            book.multi_assets = snapshot.account.multi_assets_margin
        elif like is not None:
            book.multi_assets = like.multi_assets
        for asset in snapshot.account.assets:
            book._balances[asset.asset] = BalanceView(
                asset.asset, asset.wallet_balance, asset.cross_wallet_balance, asset.update_time
            )
        for row in snapshot.positions:
            if row.position_amount == ZERO:
                continue  # a row listed for its open orders only
            margin_type = row.margin_type or book._margin_types.get(row.symbol)
            book._positions[(row.symbol, row.position_side)] = PositionView(
                symbol=row.symbol,
                position_side=row.position_side,
                amount=row.position_amount,
                entry_price=row.entry_price,
                breakeven_price=row.breakeven_price,
                unrealized_pnl=row.unrealized_profit,
                margin_type=margin_type,
                isolated_wallet=row.isolated_wallet,
                mark_price=row.mark_price,
                update_time=row.update_time,
            )
        for o in snapshot.orders:
            book._orders[o.order_id] = OrderView(
                symbol=o.symbol,
                order_id=o.order_id,
                client_order_id=o.client_order_id,
                side=o.side,
                position_side=o.position_side,
                order_type=o.order_type,
                time_in_force=o.time_in_force,
                status=o.status,
                price=o.price,
                original_quantity=o.original_quantity,
                executed_quantity=o.executed_quantity,
                average_price=o.average_price,
                stop_price=o.stop_price,
                reduce_only=o.reduce_only,
                update_time=o.update_time,
            )
        for a in snapshot.algo_orders or ():
            book._algo[a.algo_id] = AlgoOrderView(
                symbol=a.symbol,
                algo_id=a.algo_id,
                client_algo_id=a.client_algo_id,
                side=a.side,
                position_side=a.position_side,
                order_type=a.order_type,
                status=a.status,
                quantity=a.quantity,
                trigger_price=a.trigger_price,
                price=a.price,
                update_time=a.update_time,
            )
        if snapshot.algo_orders is None and like is not None:
            book._algo = dict(like._algo)
        book.versions = Versions.of(
            {a.asset: a.update_time for a in snapshot.account.assets},
            snapshot.positions,
            snapshot.orders,
            snapshot.algo_orders or (),
        )
        return book

    @classmethod
    def merged(
        cls, snapshot: Snapshot, raced: Sequence[Event], like: Book | None = None
    ) -> tuple[Book, int]:
        """The snapshot's state plus the events received after its fence (`raced`) that it
        does not contain (`protocol/resync.py`); also how many of those were applied."""
        book = cls.from_snapshot(snapshot, like)
        kept = 0
        for event in raced:
            trimmed = trim(event, book.versions)
            if trimmed is not None:
                book.apply(trimmed)
                kept += 1
        return book, kept

    # --- events -----------------------------------------------------------------------------

    def apply(self, event: Event) -> OrderView | None:
        """Move the state by one event; the order view it changed, if any."""
        if isinstance(event, OrderTradeUpdate):
            return self._order(event)
        if isinstance(event, AccountUpdate):
            self._account(event)
        elif isinstance(event, AccountConfigUpdate):
            if event.leverage_config is not None:
                self._leverage[event.leverage_config.symbol] = event.leverage_config.leverage
            elif event.account_info_config is not None:
                self.multi_assets = event.account_info_config.multi_assets_mode
        elif isinstance(event, AlgoUpdate):
            self._algo_order(event)
        return None

    def _account(self, event: AccountUpdate) -> None:
        time = event.transaction_time
        for b in event.update.balances:
            self._balances[b.asset] = BalanceView(
                b.asset, b.wallet_balance, b.cross_wallet_balance, time
            )
        for p in event.update.positions:
            key = (p.symbol, p.position_side)
            self._margin_types[p.symbol] = p.margin_type
            if p.position_amount == ZERO:
                self._positions.pop(key, None)
                continue
            old = self._positions.get(key)
            self._positions[key] = PositionView(
                symbol=p.symbol,
                position_side=p.position_side,
                amount=p.position_amount,
                entry_price=p.entry_price,
                breakeven_price=p.breakeven_price,
                unrealized_pnl=p.unrealized_pnl,
                margin_type=p.margin_type,
                isolated_wallet=p.isolated_wallet,
                mark_price=old.mark_price if old is not None else None,
                update_time=time,
            )

    def _order(self, event: OrderTradeUpdate) -> OrderView:
        o = event.order
        view = OrderView(
            symbol=o.symbol,
            order_id=o.order_id,
            client_order_id=o.client_order_id,
            side=o.side,
            position_side=o.position_side,
            order_type=o.order_type,
            time_in_force=o.time_in_force,
            status=o.order_status,
            price=o.original_price,
            original_quantity=o.original_quantity,
            executed_quantity=o.filled_accumulated_quantity,
            average_price=o.average_price,
            stop_price=o.stop_price,
            reduce_only=o.reduce_only,
            update_time=o.trade_time,
        )
        if o.execution_type in ("TRADE", "CALCULATED"):
            self._fill(event)
        if o.order_status in FINAL_ORDER_STATUSES:
            self._orders.pop(o.order_id, None)
            closed = self._closed
            closed[o.client_order_id] = view
            closed.move_to_end(o.client_order_id)
            if len(closed) > self._closed_limit:
                closed.popitem(last=False)
        else:
            self._orders[o.order_id] = view
        return view

    def _fill(self, event: OrderTradeUpdate) -> None:
        # By trade id: a fill applied live while a snapshot was in flight is applied to the
        # merged state again unless the snapshot contained it; it is listed once.
        key = (event.order.symbol, event.order.trade_id)
        if key in self._fill_ids:
            return
        self._fill_ids.add(key)
        self.fills.append(event)
        if len(self.fills) > _RECENT_FILLS:
            old = self.fills.popleft().order
            self._fill_ids.discard((old.symbol, old.trade_id))

    def _algo_order(self, event: AlgoUpdate) -> None:
        a = event.order
        if a.status in _ALGO_FINAL:
            self._algo.pop(a.algo_id, None)
            return
        self._algo[a.algo_id] = AlgoOrderView(
            symbol=a.symbol,
            algo_id=a.algo_id,
            client_algo_id=a.client_algo_id,
            side=a.side,
            position_side=a.position_side,
            order_type=a.order_type,
            status=a.status,
            quantity=a.quantity,
            trigger_price=a.trigger_price,
            price=a.price,
            update_time=event.transaction_time,
        )
