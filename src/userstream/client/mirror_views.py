"""What an `AccountMirror` shows besides the fold's records: changes, differences, health.

Balances, positions and open orders are the fold's frozen records (`protocol/fold.py`:
`FoldBalance`, `FoldPosition`, `FoldOrder`, `Decimal` amounts). Everything here is plain
data too; `differences()` is the field-by-field comparison the self-check and the tests use.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import msgspec

from userstream.protocol.events import Event
from userstream.protocol.fold import FoldBalance, FoldOrder, FoldPosition

__all__ = [
    "AlgoOrderView",
    "Change",
    "ChangeKind",
    "Difference",
    "MirrorHealth",
    "MirrorState",
    "differences",
]

ZERO: Final = Decimal(0)


class AlgoOrderView(msgspec.Struct, frozen=True, kw_only=True):
    """One open algo (conditional) order: ALGO_UPDATE `o` / `openAlgoOrders` rows. The fold
    leaves algo orders out (they hold no balance or position), so the mirror keeps them."""

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
    """A whole account: what the mirror holds, or what a REST snapshot says. The views are
    the fold's own records (`protocol/fold.py`); a part a source does not know is None."""

    balances: Mapping[str, FoldBalance]
    positions: Mapping[tuple[str, str], FoldPosition]
    open_orders: Mapping[int, FoldOrder]
    algo_orders: Mapping[int, AlgoOrderView] | None
    leverage: Mapping[str, int] | None
    margin_types: Mapping[str, str] | None
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


# Fields that are not the account's state: when the row was last touched, and the
# accumulated realized PnL `cr`, which only events carry (REST has no such field).
_NOT_COMPARED: Final = frozenset({"update_time", "accumulated_realized"})


def _compare(
    entity: str, mine: msgspec.Struct, theirs: msgspec.Struct, found: list[Difference]
) -> None:
    for name in mine.__struct_fields__:
        if name in _NOT_COMPARED:
            continue
        a, b = getattr(mine, name), getattr(theirs, name)
        if a != b and not _same_at_coarser_precision(a, b):
            found.append(Difference(entity, name, a, b))


def _same_at_coarser_precision(a: object, b: object) -> bool:
    """Two decimals that agree to the last place the coarser one shows. Events and REST
    format some prices at different precisions (an entry price `100000.07125506` in
    ACCOUNT_UPDATE, `100000.07126` in positionRisk; TRADE_LITE and ORDER_TRADE_UPDATE differ
    likewise, spec UDS §5.5): that is one value, not a difference."""
    if not (isinstance(a, Decimal) and isinstance(b, Decimal)):
        return False
    exponents = (a.as_tuple().exponent, b.as_tuple().exponent)
    if not all(isinstance(e, int) for e in exponents):
        return False
    unit = Decimal(1).scaleb(max(e for e in exponents if isinstance(e, int)))
    return abs(a - b) < unit


def _compare_maps(
    kind: str,
    mine: Mapping[Any, Any],
    rest: Mapping[Any, Any],
    found: list[Difference],
    absent_is_zero: bool = False,
) -> None:
    for key in sorted(set(mine) | set(rest), key=str):
        entity = f"{kind} {'/'.join(map(str, key)) if isinstance(key, tuple) else key}"
        a, b = mine.get(key), rest.get(key)
        if a is None or b is None:
            present: Any = a if a is not None else b
            if absent_is_zero and not present.wallet_balance and not present.cross_wallet_balance:
                continue
            found.append(Difference(entity, "present", a is not None, b is not None))
            continue
        _compare(entity, a, b, found)


def differences(mirror: MirrorState, rest: MirrorState) -> list[Difference]:
    """Every field on which `mirror` and `rest` disagree, in a stable order.

    An asset one side lacks counts as a zero balance (REST lists every asset, events only
    those that moved); a part either side lacks (a venue that serves no `symbolConfig`) is
    not compared.
    """
    found: list[Difference] = []
    _compare_maps("balance", mirror.balances, rest.balances, found, absent_is_zero=True)
    _compare_maps("position", mirror.positions, rest.positions, found)
    _compare_maps("order", mirror.open_orders, rest.open_orders, found)
    if rest.algo_orders is not None and mirror.algo_orders is not None:
        _compare_maps("algo order", mirror.algo_orders, rest.algo_orders, found)
    for part in ("leverage", "margin_types"):
        ours, theirs = getattr(mirror, part), getattr(rest, part)
        if ours is None or theirs is None:
            continue
        for symbol in sorted(set(ours) & set(theirs)):
            if ours[symbol] != theirs[symbol]:
                found.append(Difference(f"symbol {symbol}", part, ours[symbol], theirs[symbol]))
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
        consistent: the last snapshot was merged, no gap happened since and the stream is
            connected (while it is down, events may be missing before the gap is known).
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
        checks_differing: self-checks that found a difference (each then replaced the state).
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
    checks_differing: int
    dropped_changes: int
