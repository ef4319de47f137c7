"""Funding payments at a settlement instant (sans-I/O).

Rules (trading spec §4.6, market-data spec §4 "Settlement"; Binance FAQ "Introduction to
Binance Futures Funding Rates": "Funding Amount = Nominal Value of Positions × Funding Rate",
nominal value = mark price × size):

* Only positions open at the instant pay or receive; the market side reports the instant, the
  settled rate and the mark price as a `FundingSettlement`.
* The account's income is `−positionAmt × markPrice × fundingRate`: with a positive rate a
  long (positive amount) pays and a short receives; a negative rate reverses both. Hedge-mode
  SHORT rows carry a negative amount, so the same formula holds.
* The income is booked in the margin asset at its 8-decimal precision (income rows and `bc`
  are 8-decimal strings), rounded half-up.
* Cross positions change the wallet (`wb`, `cw`) only: ACCOUNT_UPDATE `m=FUNDING_FEE` with
  `B` and an empty `P`. Isolated positions also change their isolated wallet, so the event
  carries that position's `P` row too. Since 2026-08 the event names the symbol in `a.S`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from userstream.protocol.events import (
    AccountUpdate,
    AccountUpdateData,
    AccountUpdateReason,
    Balance,
    Position,
)

__all__ = ["INCOME_QUANTUM", "funding_account_update", "funding_income"]

INCOME_QUANTUM: Final = Decimal("0.00000001")


def funding_income(position_amount: Decimal, mark_price: Decimal, rate: Decimal) -> Decimal:
    """What the position's account receives (negative: pays) at one settlement."""
    return (-position_amount * mark_price * rate).quantize(INCOME_QUANTUM, rounding=ROUND_HALF_UP)


def funding_account_update(
    *,
    time_ms: int,
    symbol: str,
    asset: str,
    income: Decimal,
    wallet_balance: Decimal,
    cross_wallet_balance: Decimal,
    isolated_positions: Sequence[Position] = (),
) -> AccountUpdate:
    """The ACCOUNT_UPDATE of one funding payment, balances as they are after it.

    `isolated_positions` holds the isolated position's row (with its new `iw`) when the paying
    position is isolated, and nothing for a cross position (spec §4.6).
    """
    return AccountUpdate(
        transaction_time=time_ms,
        event_time=time_ms,
        update=AccountUpdateData(
            balances=(
                Balance(
                    asset=asset,
                    wallet_balance=wallet_balance,
                    cross_wallet_balance=cross_wallet_balance,
                    balance_change=income,
                ),
            ),
            positions=tuple(isolated_positions),
            reason=AccountUpdateReason.FUNDING_FEE,
            funding_symbol=symbol,
        ),
    )
