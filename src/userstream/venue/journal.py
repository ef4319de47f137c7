"""The engine's state split for incremental saves: what changed since the last save.

A full export holds every order and trade ever made, so encoding it on every save costs more
as the history grows. Final orders and trades never change again, so a save writes each of
them once, as a row keyed by its id, and encodes the rest of the state (accounts' balances,
settings and positions, open orders, id counters, the risk state) as one "live" export with
open orders only and no trades. `restore` puts the rows back into the live export and gives
the same `EngineState` the full export would have.

A save's work is bounded by the accounts, the open orders and what changed since the last
save: the orders placed or finished and the trades made in between (`StateJournal.changes`).
It does not grow with the order or trade history. (The risk state, with algo orders and
income rows, stays in the live export: it grows with those, not with orders and trades.)

What the tracking relies on, as the engine keeps its state: an order enters its account's
`orders` when it gets its id, ids rising (so the orders placed since a save are the tail of
the dict); trades are only appended; a final order or a trade is never modified again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, NamedTuple

import msgspec

from userstream.venue.state import EngineState, Order, TradeRecord

__all__ = ["Row", "SaveBatch", "StateJournal", "restore"]

_ENCODER: Final = msgspec.json.Encoder()
_STATE: Final = msgspec.json.Decoder(EngineState)
_ORDER: Final = msgspec.json.Decoder(Order)
_TRADE: Final = msgspec.json.Decoder(TradeRecord)


class Row(NamedTuple):
    """A final order or a trade: its id, its account and its JSON."""

    id: int
    account_id: int
    body: bytes


class SaveBatch(NamedTuple):
    """What one save writes: the live export and the rows not written before."""

    live: bytes
    orders: list[Row]
    trades: list[Row]


class StateJournal:
    """Tracks which final orders and trades of `state` (the engine's live object) are stored.

    Args:
        state: The engine's state.
        stored: Whether the final orders and trades in `state` are already stored as rows
            (a state restored by `restore`); False writes them all in the first batch.
    """

    def __init__(self, state: EngineState, *, stored: bool) -> None:
        self._state = state
        # Orders from this id on were placed after the last save.
        self._next_order_id = 1
        self._trades_stored: dict[int, int] = {}
        # Orders that were open at the last save, per account.
        self._open: dict[int, dict[int, Order]] = {}
        if stored:
            self._next_order_id = state.next_order_id
            for account_id, account in state.accounts.items():
                self._trades_stored[account_id] = len(account.trades)
                self._open[account_id] = {
                    o.order_id: o for o in account.orders.values() if o.is_open
                }

    def changes(self) -> SaveBatch:
        """Encode the live export and the rows made since the last call; from then on they
        count as stored (call `forget` if writing them fails)."""
        state = self._state
        encode = _ENCODER.encode
        orders: list[Row] = []
        trades: list[Row] = []
        accounts = {}
        for account_id, account in state.accounts.items():
            candidates = self._open.get(account_id, {})
            placed = []
            for order in reversed(account.orders.values()):
                if order.order_id < self._next_order_id:
                    break
                placed.append(order)
            if placed:
                candidates = {**candidates, **{o.order_id: o for o in reversed(placed)}}
            still_open: dict[int, Order] = {}
            for order_id, order in candidates.items():
                if order.is_open:
                    still_open[order_id] = order
                else:
                    orders.append(Row(order_id, account_id, encode(order)))
            self._open[account_id] = still_open
            stored = self._trades_stored.get(account_id, 0)
            if stored < len(account.trades):
                trades += [Row(t.trade_id, account_id, encode(t)) for t in account.trades[stored:]]
                self._trades_stored[account_id] = len(account.trades)
            accounts[account_id] = msgspec.structs.replace(
                account, orders=dict(sorted(still_open.items())), trades=[]
            )
        self._next_order_id = state.next_order_id
        live = encode(msgspec.structs.replace(state, accounts=accounts))
        return SaveBatch(live, orders, trades)

    def forget(self) -> None:
        """Count nothing as stored: the next batch holds every final order and trade again
        (after a failed write)."""
        self._next_order_id = 1
        self._trades_stored.clear()
        self._open.clear()


def restore(live: bytes, orders: Iterable[Row], trades: Iterable[Row]) -> EngineState:
    """The state a live export and the stored rows stand for. `orders` and `trades` in
    ascending id order; a live export that still holds final orders or trades (a full
    export) is kept as it is, with the rows added."""
    state = _STATE.decode(live)
    finals: dict[int, dict[int, Order]] = {}
    for row in orders:
        finals.setdefault(row.account_id, {})[row.id] = _ORDER.decode(row.body)
    made: dict[int, list[TradeRecord]] = {}
    for row in trades:
        made.setdefault(row.account_id, []).append(_TRADE.decode(row.body))
    for account_id, account in state.accounts.items():
        final = finals.get(account_id)
        if final:
            account.orders = dict(sorted({**final, **account.orders}.items()))
        made_here = made.get(account_id)
        if made_here:
            account.trades = sorted(made_here + account.trades, key=_trade_id)
    return state


def _trade_id(trade: TradeRecord) -> int:
    return trade.trade_id
