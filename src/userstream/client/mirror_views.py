"""What an `AccountMirror` shows: read-only typed views, changes, differences and health.

Everything here is plain data (frozen dataclasses, `Decimal` amounts, millisecond times);
`differences()` is the field-by-field comparison the self-check and the tests use.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Final

from userstream.protocol.events import Event

__all__ = [
    "AlgoOrderView",
    "BalanceView",
    "Change",
    "ChangeKind",
    "Difference",
    "MirrorHealth",
    "MirrorState",
    "OrderView",
    "PositionView",
    "differences",
]

ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class BalanceView:
    """One asset's balance: ACCOUNT_UPDATE `B[]` / `/fapi/v3/account` `assets[]`."""

    asset: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal
    update_time: int = 0


@dataclass(frozen=True, slots=True)
class PositionView:
    """One open position (`positionSide` BOTH in one-way mode, LONG/SHORT in hedge mode).

    `unrealized_pnl` is the venue's figure at `mark_price` when it last reported either (an
    ACCOUNT_UPDATE or a snapshot); `unrealized_at(mark)` gives it at a newer mark price.
    """

    symbol: str
    position_side: str
    amount: Decimal
    entry_price: Decimal
    breakeven_price: Decimal
    unrealized_pnl: Decimal
    margin_type: str | None
    """"cross" or "isolated" (the ACCOUNT_UPDATE spelling); None if no source said."""
    isolated_wallet: Decimal
    mark_price: Decimal | None = None
    update_time: int = 0

    def unrealized_at(self, mark_price: Decimal) -> Decimal:
        """`q × (mark − entry)` (spec trading §4.5)."""
        return self.amount * (mark_price - self.entry_price)


@dataclass(frozen=True, slots=True)
class OrderView:
    """One order as last seen (open orders, and recently closed ones for `wait_for_order`)."""

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    position_side: str
    order_type: str
    time_in_force: str
    status: str
    price: Decimal
    original_quantity: Decimal
    executed_quantity: Decimal
    average_price: Decimal
    stop_price: Decimal
    reduce_only: bool
    update_time: int


@dataclass(frozen=True, slots=True)
class AlgoOrderView:
    """One open algo (conditional) order: ALGO_UPDATE `o` / `openAlgoOrders` rows."""

    symbol: str
    algo_id: int
    client_algo_id: str
    side: str
    position_side: str
    order_type: str
    status: str
    quantity: Decimal
    trigger_price: Decimal
    price: Decimal
    update_time: int


@dataclass(frozen=True, slots=True)
class MirrorState:
    """A whole account as views: what the mirror holds, or what a REST snapshot says."""

    balances: Mapping[str, BalanceView]
    positions: Mapping[tuple[str, str], PositionView]
    open_orders: Mapping[int, OrderView]
    algo_orders: Mapping[int, AlgoOrderView] | None
    leverage: Mapping[str, int] | None
    multi_assets: bool | None


@dataclass(frozen=True, slots=True)
class Difference:
    """One field on which two states disagree, e.g. `position BTCUSDT/BOTH amount 1 != 2`."""

    entity: str
    field: str
    mirror: Any
    rest: Any

    def __str__(self) -> str:
        return f"{self.entity} {self.field}: mirror {self.mirror!s} != rest {self.rest!s}"


# Fields that move without an event (the mark price moves uPnL) or that one side never has
# (`update_time` of a zero row): they are shown, never compared.
_NOT_COMPARED: Final = frozenset({"update_time", "unrealized_pnl", "mark_price"})


def _compare(entity: str, mine: Any, theirs: Any, found: list[Difference]) -> None:
    for f in fields(mine):
        if f.name in _NOT_COMPARED:
            continue
        a, b = getattr(mine, f.name), getattr(theirs, f.name)
        if a is None or b is None:
            continue  # a source that does not carry the field (v3 rows have no margin type)
        if a != b:
            found.append(Difference(entity, f.name, a, b))


def _compare_maps(
    kind: str,
    mine: Mapping[Any, Any],
    rest: Mapping[Any, Any],
    absent: Any,
    found: list[Difference],
) -> None:
    for key in sorted(set(mine) | set(rest), key=str):
        entity = f"{kind} {'/'.join(map(str, key)) if isinstance(key, tuple) else key}"
        a, b = mine.get(key), rest.get(key)
        if a is None or b is None:
            if absent is None or (a or b) != absent(a or b):
                found.append(Difference(entity, "present", a is not None, b is not None))
            continue
        _compare(entity, a, b, found)


def _zero_balance(b: BalanceView) -> BalanceView:
    return BalanceView(b.asset, ZERO, ZERO, b.update_time)


def differences(mirror: MirrorState, rest: MirrorState) -> list[Difference]:
    """Every field on which `mirror` and `rest` disagree, in a stable order.

    An asset one side lacks counts as a zero balance; a part `rest` lacks (a venue that does
    not serve `openAlgoOrders` or `symbolConfig`) is not compared.
    """
    found: list[Difference] = []
    _compare_maps("balance", mirror.balances, rest.balances, _zero_balance, found)
    _compare_maps("position", mirror.positions, rest.positions, None, found)
    _compare_maps("order", mirror.open_orders, rest.open_orders, None, found)
    if rest.algo_orders is not None and mirror.algo_orders is not None:
        _compare_maps("algo order", mirror.algo_orders, rest.algo_orders, None, found)
    if rest.leverage is not None and mirror.leverage is not None:
        for symbol in sorted(set(mirror.leverage) & set(rest.leverage)):
            if mirror.leverage[symbol] != rest.leverage[symbol]:
                found.append(
                    Difference(
                        f"symbol {symbol}",
                        "leverage",
                        mirror.leverage[symbol],
                        rest.leverage[symbol],
                    )
                )
    if (
        rest.multi_assets is not None
        and mirror.multi_assets is not None
        and rest.multi_assets != mirror.multi_assets
    ):
        found.append(Difference("account", "multi_assets", mirror.multi_assets, rest.multi_assets))
    return found


class ChangeKind(enum.StrEnum):
    """Why the mirror changed."""

    ORDER = "order"
    """An order was placed, amended, cancelled or expired."""
    FILL = "fill"
    """An order (partly) filled (ORDER_TRADE_UPDATE x=TRADE)."""
    POSITION = "position"
    """Balances and positions after a fill (ACCOUNT_UPDATE m=ORDER)."""
    FUNDING = "funding"
    """A funding fee was settled (ACCOUNT_UPDATE m=FUNDING_FEE)."""
    LIQUIDATION = "liquidation"
    """A forced order (x=CALCULATED, `autoclose-`/`adl_autoclose`) or an insurance clear."""
    BALANCE = "balance"
    """Any other balance change: deposit, withdrawal, transfer, margin type change."""
    CONFIG = "config"
    """Leverage or multi-assets mode (ACCOUNT_CONFIG_UPDATE)."""
    MARGIN_CALL = "margin_call"
    """A margin call: the account is close to liquidation (informational)."""
    ALGO = "algo"
    """An algo (conditional) order changed (ALGO_UPDATE)."""
    RESYNC = "resync"
    """A REST snapshot replaced the state; `differences` says what the events had missed."""


@dataclass(frozen=True, slots=True)
class Change:
    """One change of the mirror: what (`kind`), why (`reason`) and the event behind it.

    Attributes:
        kind: the category.
        reason: the venue's own word: the execution type, the ACCOUNT_UPDATE reason, or the
            gap reasons that led to a resync.
        time_ms: the event's `E`, or the mirror's clock for a resync.
        event: the event applied (None for a resync).
        differences: for a resync, what the snapshot corrected (empty if nothing was lost).
    """

    kind: ChangeKind
    reason: str
    time_ms: int
    event: Event | None = None
    differences: tuple[Difference, ...] = ()


@dataclass(frozen=True, slots=True)
class MirrorHealth:
    """How fresh the mirror is.

    Attributes:
        consistent: the last snapshot was merged and no gap happened since.
        resyncing: a snapshot is wanted or in flight.
        last_snapshot_ms: when the last merged snapshot was requested (client clock).
        events_applied: events applied to the state since that snapshot.
        events_total: events applied since start.
        events_skipped: events a snapshot already contained (not applied twice).
        resyncs: snapshots merged (the first one included).
        resync_reasons: why each of the last resyncs happened, newest last.
        last_resync_ms: how long the last resync took, from its request to the merge.
        snapshot_weight: request weight spent on snapshots since start.
        checks: self-checks done.
        last_check_ms: when the last self-check finished.
        last_check_differences: what it found (empty: the mirror equalled REST).
        dropped_changes: changes dropped because a `changes()` reader fell behind.
    """

    consistent: bool
    resyncing: bool
    last_snapshot_ms: int | None
    events_applied: int
    events_total: int
    events_skipped: int
    resyncs: int
    resync_reasons: tuple[str, ...]
    last_resync_ms: int | None
    snapshot_weight: int
    checks: int
    last_check_ms: int | None
    last_check_differences: tuple[Difference, ...]
    dropped_changes: int
