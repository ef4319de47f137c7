"""The account mirror's state: the fold (`protocol/fold.py`) started from a REST snapshot.

`Book.from_snapshot` turns the REST rows into the fold's `AccountSnapshot` and records each
entity's version for the merge (`protocol/resync.py`); `Book.apply` hands each event to the
fold. Around the fold the book keeps what a mirror needs and an account's state does not
hold: the open algo orders (ALGO_UPDATE), recently closed orders by client order id (for
`wait_for_order`), the latest fills, and the mark prices the last snapshot reported.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

from userstream.client.mirror_views import AlgoOrderView, MirrorState
from userstream.client.rest import Snapshot
from userstream.protocol.events import AlgoUpdate, Event, OrderTradeUpdate
from userstream.protocol.fold import (
    AccountFold,
    AccountSnapshot,
    FoldBalance,
    FoldOrder,
    FoldPosition,
)
from userstream.protocol.resync import FINAL_ORDER_STATUSES, Versions, trim

__all__ = ["Book"]

_RECENT_FILLS = 100
_ALGO_FINAL: Final = frozenset({"CANCELED", "TRIGGERED", "FINISHED", "REJECTED", "EXPIRED"})
"""Algo statuses after which the algo order is no longer open: once TRIGGERED it lives on
as a normal order (spec trading §5.7)."""
# symbolConfig spells margin types CROSSED/ISOLATED; ACCOUNT_UPDATE (and the fold) cross/isolated.
_MARGIN_TYPE: Final = {"CROSSED": "cross", "ISOLATED": "isolated"}


class Book:
    """Mutable account state; the mirror replaces it whole on each resync."""

    __slots__ = (
        "_closed",
        "_closed_limit",
        "_fill_ids",
        "algo",
        "config_known",
        "fills",
        "fold",
        "marks",
        "versions",
    )

    def __init__(self, closed_orders: int = 1_000, fold: AccountFold | None = None) -> None:
        self.fold = fold if fold is not None else AccountFold()
        self.algo: dict[int, AlgoOrderView] | None = None
        """Open algo orders; None until a snapshot of a venue that serves them."""
        self.marks: dict[str, Decimal] = {}
        self.config_known = (False, False)
        """Whether a snapshot said (leverage and margin types, the account's modes)."""
        self._closed: OrderedDict[str, FoldOrder] = OrderedDict()
        self._closed_limit = closed_orders
        self.fills: deque[OrderTradeUpdate] = deque()
        self._fill_ids: set[tuple[str, int]] = set()
        self.versions = Versions()

    # --- views ------------------------------------------------------------------------------

    @property
    def balances(self) -> Mapping[str, FoldBalance]:
        return self.fold.state.balances

    @property
    def positions(self) -> Mapping[tuple[str, str], FoldPosition]:
        return self.fold.state.positions

    @property
    def open_orders(self) -> Mapping[int, FoldOrder]:
        return self.fold.state.open_orders

    def state(self) -> MirrorState:
        s = self.fold.state
        symbols, account = self.config_known
        return MirrorState(
            balances=dict(s.balances),
            positions=dict(s.positions),
            open_orders=dict(s.open_orders),
            algo_orders=dict(self.algo) if self.algo is not None else None,
            leverage=dict(s.leverages) if symbols else None,
            margin_types=dict(s.margin_types) if symbols else None,
            multi_assets=s.multi_assets_margin if account else None,
        )

    def order_by_client_id(self, client_order_id: str) -> FoldOrder | None:
        for order in self.fold.state.open_orders.values():
            if order.client_order_id == client_order_id:
                return order
        return self._closed.get(client_order_id)

    # --- snapshot ---------------------------------------------------------------------------

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, like: Book | None = None) -> Book:
        """The state a REST snapshot describes. `like` hands over the memory that REST does
        not return (recently closed orders, recent fills) and the parts a venue does not
        serve (leverage and margin types without `symbolConfig`, …)."""
        before = like.fold.state if like is not None else AccountSnapshot()
        state = AccountSnapshot(
            leverages=dict(before.leverages),
            margin_types=dict(before.margin_types),
            multi_assets_margin=before.multi_assets_margin,
            dual_side_position=before.dual_side_position,
        )
        symbols_known, account_known = like.config_known if like is not None else (False, False)
        if snapshot.symbol_config is not None:
            symbols_known = True
            state.leverages = {c.symbol: c.leverage for c in snapshot.symbol_config}
            state.margin_types = {
                c.symbol: _MARGIN_TYPE.get(c.margin_type, c.margin_type)
                for c in snapshot.symbol_config
            }
        if snapshot.account_config is not None:
            account_known = True
            state.multi_assets_margin = snapshot.account_config.multi_assets_margin
            state.dual_side_position = snapshot.account_config.dual_side_position
        elif snapshot.account.multi_assets_margin is not None:
            account_known = True
            state.multi_assets_margin = snapshot.account.multi_assets_margin
        for asset in snapshot.account.assets:
            state.balances[asset.asset] = FoldBalance(
                asset=asset.asset,
                wallet_balance=asset.wallet_balance,
                cross_wallet_balance=asset.cross_wallet_balance,
            )
        marks: dict[str, Decimal] = {}
        for row in snapshot.positions:
            if row.mark_price:
                marks[row.symbol] = row.mark_price
            if not row.position_amount:
                continue  # a row listed for its open orders only
            if row.margin_type is not None:
                state.margin_types[row.symbol] = row.margin_type
            before_row = before.positions.get((row.symbol, row.position_side))
            state.positions[(row.symbol, row.position_side)] = FoldPosition(
                symbol=row.symbol,
                position_side=row.position_side,
                position_amount=row.position_amount,
                entry_price=row.entry_price,
                breakeven_price=row.breakeven_price,
                # REST has no accumulated realized PnL (`cr`): keep what events said.
                accumulated_realized=(
                    before_row.accumulated_realized if before_row is not None else Decimal(0)
                ),
                margin_type=state.margin_types.get(row.symbol, "cross"),
                isolated_wallet=row.isolated_wallet,
            )
        for o in snapshot.orders:
            prev = before.open_orders.get(o.order_id)
            state.open_orders[o.order_id] = FoldOrder(
                order_id=o.order_id,
                symbol=o.symbol,
                client_order_id=o.client_order_id,
                side=o.side,
                position_side=o.position_side,
                order_type=o.order_type,
                time_in_force=o.time_in_force,
                original_quantity=o.original_quantity,
                price=o.price,
                average_price=o.average_price,
                filled_quantity=o.executed_quantity,
                status=o.status,
                reduce_only=o.reduce_only,
                # Fields older venues leave out: what the events said, else Binance's default.
                price_match=o.price_match or (prev.price_match if prev else "NONE"),
                self_trade_prevention_mode=o.self_trade_prevention_mode
                or (prev.self_trade_prevention_mode if prev else "NONE"),
                good_till_date=o.good_till_date,
                update_time=o.update_time,
            )
        book = cls(like._closed_limit if like is not None else 1_000, AccountFold(state))
        book.marks = marks
        book.config_known = (symbols_known, account_known)
        if snapshot.algo_orders is not None:
            book.algo = {
                a.algo_id: AlgoOrderView(
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
                for a in snapshot.algo_orders
            }
        elif like is not None and like.algo is not None:
            book.algo = dict(like.algo)
        if like is not None:
            book._closed = OrderedDict(like._closed)
            book.fills = deque(like.fills)
            book._fill_ids = set(like._fill_ids)
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

    def apply(self, event: Event) -> bool:
        """Move the state by one event; True if an order changed (for `wait_for_order`)."""
        self.fold.apply(event)
        if isinstance(event, OrderTradeUpdate):
            o = event.order
            if o.execution_type in ("TRADE", "CALCULATED"):
                self._fill(event)
            if o.order_status in FINAL_ORDER_STATUSES:
                closed = self._closed
                closed[o.client_order_id] = FoldOrder.from_update(o)
                closed.move_to_end(o.client_order_id)
                if len(closed) > self._closed_limit:
                    closed.popitem(last=False)
            return True
        if isinstance(event, AlgoUpdate):
            self._algo_order(event)
        return False

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
        if self.algo is None:
            self.algo = {}
        if a.status in _ALGO_FINAL:
            self.algo.pop(a.algo_id, None)
            return
        self.algo[a.algo_id] = AlgoOrderView(
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
