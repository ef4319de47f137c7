"""Position, wallet and margin arithmetic (trading spec §4.5).

One fill moves one position: adding to it moves the entry price to the quantity-weighted
average; reducing it realizes `closed x (price − entry) x sign(position)` (gross of fees,
the `rp` of the event); a fill larger than the position flips it, the excess opening at the
fill price. Isolated positions hold their own margin in `iw`: opening adds
`opened x price / leverage` to it, reducing releases the closed share of it. The wallet
moves by realized PnL minus commission (the caller adds both), so the cross wallet is the
wallet minus every isolated wallet.

Margin, per margin asset: position initial margin `|q| x mark / leverage`; open-order
initial margin counts, per symbol, the side that would add the most exposure (orders that
only close the position are free); maintenance margin from the leverage brackets;
available balance = cross wallet + cross unrealized PnL − cross position margin − open-order
margin, never below 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

import msgspec

from userstream.protocol.events import MarginType, Side
from userstream.venue import brackets
from userstream.venue.numbers import ZERO, money, trim
from userstream.venue.rules import SymbolRules
from userstream.venue.state import AccountState, Order, PositionState

__all__ = [
    "AssetFigures",
    "OpenOrderSums",
    "PositionFigures",
    "apply_fill",
    "asset_figures",
    "available_balance",
    "breakeven",
    "open_order_margin",
    "position_figures",
]

Marks = Callable[[str], Decimal]
"""The mark price of a symbol."""


def breakeven(amount: Decimal, entry: Decimal, taker_rate: Decimal) -> Decimal:
    """`bep`: the entry moved by the taker fee of opening and closing (spec §4.5: a fresh
    long at 80.19 with 0.05 % reports 80.230095)."""
    if amount > 0:
        return trim(money(entry * (1 + taker_rate)))
    if amount < 0:
        return trim(money(entry * (1 - taker_rate)))
    return ZERO


def apply_fill(
    position: PositionState,
    signed_qty: Decimal,
    price: Decimal,
    *,
    leverage: int,
    isolated: bool,
    taker_rate: Decimal,
) -> Decimal:
    """Move `position` by a fill of `signed_qty` (positive buys) at `price`; return the
    fill's realized PnL (gross of fees)."""
    old = position.amount
    realized = ZERO
    opened = abs(signed_qty)
    if old == 0 or (old > 0) == (signed_qty > 0):
        total = abs(old) + opened
        position.entry_price = trim(
            money((abs(old) * position.entry_price + opened * price) / total)
        )
    else:
        closed = min(abs(signed_qty), abs(old))
        direction = 1 if old > 0 else -1
        realized = money(closed * (price - position.entry_price) * direction)
        if isolated:
            position.isolated_wallet -= money(position.isolated_wallet * closed / abs(old))
        opened -= closed
        if opened:
            position.entry_price = price
    position.amount = old + signed_qty
    if position.amount == 0:
        position.entry_price = ZERO
        position.isolated_wallet = ZERO
    elif isolated and opened:
        position.isolated_wallet += money(opened * price / leverage)
    position.accumulated_realized += realized
    position.breakeven_price = breakeven(position.amount, position.entry_price, taker_rate)
    return realized


def open_order_margin(
    amount: Decimal,
    orders: Iterable[Order],
    leverage: int,
    extra: tuple[Side, Decimal, Decimal] | None = None,
) -> Decimal:
    """Initial margin of a symbol's open orders in one-way mode: orders first close the
    position (free), the rest opens exposure; the side that opens more is charged.
    `extra` is one more order (side, quantity, price) counted after them: the margin check
    of an order before it is placed."""
    return OpenOrderSums.of(orders).margin(amount, leverage, extra)


class OpenOrderSums:
    """One symbol's open orders of one account, summed: what the order margin
    (`open_order_margin`) and the open notional (ORDER_TRADE_UPDATE `b`/`a`) need, kept up
    to date as orders open, fill and close instead of summed over every open order each time.

    Each order adds its remaining quantity and `remaining x price`, per side (`bids`,
    `asks`: every order; `buy_*`, `sell_*`: reduce-only orders left out). The caller takes
    an order's share out (`remove`) before changing its quantity, fills, price, side or
    reduce-only flag and puts it back (`add`) after, so the sums are always those of the
    orders as they are. The amounts are sums and differences of products of the symbols'
    ticks and steps, far inside the 28 digits of Decimal's context, so every operation is
    exact and the sums equal a fresh summation (tests/property/test_open_order_sums.py).
    """

    __slots__ = (
        "asks",
        "bids",
        "buy_notional",
        "buy_qty",
        "count",
        "reduce_only",
        "sell_notional",
        "sell_qty",
    )

    def __init__(self) -> None:
        self.count = 0
        self.reduce_only = 0  # how many of them are reduce-only
        self.bids = self.asks = ZERO
        self.buy_qty = self.buy_notional = self.sell_qty = self.sell_notional = ZERO

    @classmethod
    def of(cls, orders: Iterable[Order]) -> OpenOrderSums:
        sums = cls()
        for order in orders:
            sums.add(order)
        return sums

    def add(self, order: Order) -> None:
        self.count += 1
        if order.reduce_only:
            self.reduce_only += 1
        self._shift(order, order.quantity - order.executed_qty)

    def remove(self, order: Order) -> None:
        self.count -= 1
        if order.reduce_only:
            self.reduce_only -= 1
        self._shift(order, order.executed_qty - order.quantity)

    def fill(self, order: Order, qty: Decimal) -> None:
        """`order`, counted here, is about to fill `qty`: its remaining quantity and
        notional shrink by that much (`remove` then `add` around the fill, in one step)."""
        self._shift(order, -qty)

    def _shift(self, order: Order, qty: Decimal) -> None:
        """Change `order`'s side by `qty` (negative: less) of remaining quantity."""
        notional = qty * order.price
        if order.side is Side.BUY:
            self.bids += notional
            if not order.reduce_only:
                self.buy_qty += qty
                self.buy_notional += notional
        else:
            self.asks += notional
            if not order.reduce_only:
                self.sell_qty += qty
                self.sell_notional += notional

    def margin(
        self, amount: Decimal, leverage: int, extra: tuple[Side, Decimal, Decimal] | None = None
    ) -> Decimal:
        """`open_order_margin(amount, orders, leverage, extra)` of the summed orders."""
        buy_qty, buy_notional = self.buy_qty, self.buy_notional
        sell_qty, sell_notional = self.sell_qty, self.sell_notional
        if extra is not None:
            side, qty, price = extra
            if side is Side.BUY:
                buy_qty += qty
                buy_notional += qty * price
            else:
                sell_qty += qty
                sell_notional += qty * price
        bid = _opening(buy_qty, buy_notional, max(-amount, ZERO))
        ask = _opening(sell_qty, sell_notional, max(amount, ZERO))
        return max(bid, ask) / leverage

    def key(self) -> tuple[int, int, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]:
        """Every sum, for comparing two summations."""
        return (
            self.count,
            self.reduce_only,
            self.bids,
            self.asks,
            self.buy_qty,
            self.buy_notional,
            self.sell_qty,
            self.sell_notional,
        )


def _opening(qty: Decimal, notional: Decimal, closable: Decimal) -> Decimal:
    if qty <= closable:
        return ZERO
    return notional * (qty - closable) / qty


class PositionFigures(msgspec.Struct, frozen=True):
    """A position's mark-dependent figures (`positionRisk`, `account` positions)."""

    mark_price: Decimal
    notional: Decimal  # signed, negative for shorts (v3 `notional`)
    unrealized_pnl: Decimal
    initial_margin: Decimal
    maint_margin: Decimal


def position_figures(
    symbol: str, position: PositionState, mark: Decimal, leverage: int
) -> PositionFigures:
    notional = position.amount * mark
    tier = brackets.bracket_for(symbol, abs(notional))
    maint = abs(notional) * tier.maint_margin_ratio - tier.cum if position.amount else ZERO
    return PositionFigures(
        mark_price=mark,
        notional=money(notional),
        unrealized_pnl=money(position.amount * (mark - position.entry_price)),
        initial_margin=money(abs(notional) / leverage),
        maint_margin=money(max(maint, ZERO)),
    )


class AssetFigures(msgspec.Struct, frozen=True):
    """One margin asset's balance figures (`account`, `balance`)."""

    asset: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal
    unrealized_pnl: Decimal
    cross_unrealized_pnl: Decimal
    margin_balance: Decimal
    position_initial_margin: Decimal
    open_order_initial_margin: Decimal
    maint_margin: Decimal
    available_balance: Decimal
    max_withdraw_amount: Decimal
    update_time: int

    @property
    def initial_margin(self) -> Decimal:
        return self.position_initial_margin + self.open_order_initial_margin


def asset_figures(
    account: AccountState,
    asset: str,
    rules: dict[str, SymbolRules],
    open_orders: Callable[[str], Iterable[Order]],
    marks: Marks,
    extra_open: tuple[str, Order] | None = None,
    collateral: Decimal = ZERO,
) -> AssetFigures:
    """The figures of `asset`; `extra_open` counts one more open order on a symbol (the
    margin check of an order before it is placed); `collateral` is the value other assets
    add to its cross margin (multi-assets mode, venue.collateral)."""
    balance = account.balances.get(asset)
    wallet = balance.wallet_balance if balance else ZERO
    isolated_wallets = unrealized = cross_unrealized = ZERO
    position_im = cross_position_im = order_im = maint = ZERO
    for symbol, settings in account.symbols.items():
        if rules[symbol].margin_asset != asset:
            continue
        orders = list(open_orders(symbol))
        if extra_open is not None and extra_open[0] == symbol:
            orders.append(extra_open[1])
        amount = ZERO
        for position in settings.positions.values():
            amount += position.amount
            if not position.amount:
                continue
            figures = position_figures(symbol, position, marks(symbol), settings.leverage)
            unrealized += figures.unrealized_pnl
            position_im += figures.initial_margin
            maint += figures.maint_margin
            if settings.margin_type is MarginType.ISOLATED:
                isolated_wallets += position.isolated_wallet
            else:
                cross_unrealized += figures.unrealized_pnl
                cross_position_im += figures.initial_margin
        if orders:
            order_im += open_order_margin(amount, orders, settings.leverage)
    cross_wallet = wallet - isolated_wallets
    order_im = money(order_im)
    available = max(
        cross_wallet + collateral + cross_unrealized - cross_position_im - order_im, ZERO
    )
    return AssetFigures(
        asset=asset,
        wallet_balance=wallet,
        cross_wallet_balance=cross_wallet,
        unrealized_pnl=unrealized,
        cross_unrealized_pnl=cross_unrealized,
        margin_balance=wallet + collateral + unrealized,
        position_initial_margin=position_im,
        open_order_initial_margin=order_im,
        maint_margin=maint,
        available_balance=money(available),
        max_withdraw_amount=money(max(min(available, cross_wallet), ZERO)),
        update_time=balance.update_time if balance else 0,
    )


def available_balance(
    account: AccountState,
    asset: str,
    rules: dict[str, SymbolRules],
    open_orders: Mapping[str, OpenOrderSums],
    marks: Marks,
    collateral: Decimal = ZERO,
) -> Decimal:
    """`asset_figures(...).available_balance` alone (the margin check of every order that
    opens exposure needs only it): the same sums in the same order, without the
    maintenance margin's bracket lookups and the other figures. `open_orders` are the
    account's open orders summed per symbol (a symbol may be missing)."""
    balance = account.balances.get(asset)
    wallet = balance.wallet_balance if balance else ZERO
    isolated_wallets = cross_unrealized = cross_position_im = order_im = ZERO
    for symbol, settings in account.symbols.items():
        # Most symbols have neither a position nor an open order: they add nothing, and
        # finding that first skips the rest of the loop for them.
        sums = open_orders.get(symbol)
        counted = sums is not None and sums.count > 0
        if not counted:
            for position in settings.positions.values():
                if position.amount:
                    break
            else:
                continue
        if rules[symbol].margin_asset != asset:
            continue
        amount = ZERO
        for position in settings.positions.values():
            amount += position.amount
            if not position.amount:
                continue
            if settings.margin_type is MarginType.ISOLATED:
                isolated_wallets += position.isolated_wallet
            else:
                mark = marks(symbol)
                cross_unrealized += money(position.amount * (mark - position.entry_price))
                cross_position_im += money(abs(position.amount * mark) / settings.leverage)
        if sums is not None and counted:
            order_im += sums.margin(amount, settings.leverage)
    available = max(
        wallet
        - isolated_wallets
        + collateral
        + cross_unrealized
        - cross_position_im
        - money(order_im),
        ZERO,
    )
    return money(available)
