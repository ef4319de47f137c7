"""One account's wallet and positions, moved only by fills, funding and deposits.

One-way mode (`ps` = `BOTH`). A fill that adds to a position moves the entry price to the
quantity-weighted average; a fill that reduces it realizes `(price - entry) x closed qty`
(sign-adjusted for shorts); a fill larger than the position flips it, the excess opening at
the fill price. The wallet balance moves by realized profit minus commission, plus funding
and deposits, so `wb` in every ACCOUNT_UPDATE follows from the ORDER_TRADE_UPDATEs before
it. Isolated positions hold their initial margin (`qty x entry / leverage`) in `iw`; the
cross wallet balance `cw` is the wallet balance minus every isolated wallet (spec §5.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from userstream.protocol.events import Balance, MarginType, Position, PositionSide
from userstream.venue.numbers import ZERO, money, trim

__all__ = ["ZERO", "Ledger", "PositionState", "money", "trim"]


@dataclass(slots=True)
class PositionState:
    """One symbol's position; `amount` is signed (negative = short)."""

    symbol: str
    margin_asset: str
    margin_type: MarginType
    leverage: int
    amount: Decimal = ZERO
    entry_price: Decimal = ZERO
    accumulated_realized: Decimal = ZERO  # `cr`, pre-fee
    isolated_wallet: Decimal = ZERO  # `iw`, isolated positions only
    margin_called: bool = False

    @property
    def isolated(self) -> bool:
        return self.margin_type is MarginType.ISOLATED

    def unrealized(self, mark: Decimal) -> Decimal:
        return money(self.amount * (mark - self.entry_price))

    def initial_margin(self) -> Decimal:
        return abs(self.amount) * self.entry_price / self.leverage


@dataclass(slots=True)
class Ledger:
    """The wallet of one margin asset and the positions margined in it."""

    asset: str
    wallet: Decimal
    taker_rate: Decimal
    positions: dict[str, PositionState] = field(default_factory=dict)

    def cross_wallet(self) -> Decimal:
        return self.wallet - sum((p.isolated_wallet for p in self.positions.values()), ZERO)

    def fill(
        self, symbol: str, signed_qty: Decimal, price: Decimal, commission: Decimal
    ) -> Decimal:
        """Apply a fill of `signed_qty` (positive buys) at `price`; return its realized profit."""
        position = self.positions[symbol]
        old = position.amount
        realized = ZERO
        if old == 0 or (old > 0) == (signed_qty > 0):
            opened = abs(signed_qty)
            total = abs(old) + opened
            position.entry_price = trim(
                money((abs(old) * position.entry_price + opened * price) / total)
            )
        else:
            closed = min(abs(signed_qty), abs(old))
            direction = 1 if old > 0 else -1
            realized = money(closed * (price - position.entry_price) * direction)
            if position.isolated:
                release = money(position.isolated_wallet * closed / abs(old))
                position.isolated_wallet -= release
            opened = abs(signed_qty) - closed
            if opened:
                position.entry_price = price
        position.amount = old + signed_qty
        if position.amount == 0:
            position.entry_price = ZERO
            position.isolated_wallet = ZERO
            position.margin_called = False
        elif position.isolated and opened:
            position.isolated_wallet += money(opened * price / position.leverage)
        position.accumulated_realized += realized
        self.wallet += realized - commission
        return realized

    def funding(self, symbol: str, mark: Decimal, rate: Decimal) -> Decimal:
        """Settle funding at `rate`: longs pay shorts when it is positive. Returns the amount
        added to the wallet (negative when paid)."""
        position = self.positions[symbol]
        amount = money(-position.amount * mark * rate)
        self.wallet += amount
        if position.isolated:
            position.isolated_wallet += amount
        return amount

    def deposit(self, amount: Decimal) -> None:
        self.wallet += amount

    def balance(self, change: Decimal = ZERO) -> Balance:
        """The `B[]` entry; `change` is `bc`, the change other than PnL and commission."""
        return Balance(
            asset=self.asset,
            wallet_balance=money(self.wallet),
            cross_wallet_balance=money(self.cross_wallet()),
            balance_change=money(change),
        )

    def position(self, symbol: str, mark: Decimal) -> Position:
        """The `P[]` entry for `symbol` at `mark`."""
        p = self.positions[symbol]
        if p.amount > 0:
            breakeven = p.entry_price * (1 + self.taker_rate)
        elif p.amount < 0:
            breakeven = p.entry_price * (1 - self.taker_rate)
        else:
            breakeven = ZERO
        return Position(
            symbol=symbol,
            position_amount=trim(p.amount),
            entry_price=p.entry_price,
            accumulated_realized=money(p.accumulated_realized),
            unrealized_pnl=p.unrealized(mark),
            margin_type=p.margin_type,
            isolated_wallet=money(p.isolated_wallet),
            position_side=PositionSide.BOTH,
            margin_asset=p.margin_asset,
            breakeven_price=trim(money(breakeven)),
        )
