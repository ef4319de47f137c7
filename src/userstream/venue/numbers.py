"""Decimal helpers shared by the venue's ledger and its events.

Wallet amounts are kept in Binance's 8-decimal precision (`"0.00000000"` in every `wb`, `cw`,
`n`, `rp`), and every other amount is written without trailing zeros and never in exponent
notation, so a value in the engine's state and the same value in an event compare equal
and print the way Binance prints them.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

__all__ = ["ZERO", "decimal_places", "fits_places", "money", "trim"]

ZERO: Final = Decimal(0)
_MONEY: Final = Decimal("0.00000001")
_ONE: Final = Decimal(1)
_MONEY_ZERO: Final = ZERO.quantize(_MONEY)  # what the rounding makes of every zero


def money(value: Decimal) -> Decimal:
    """An amount in Binance's 8-decimal wallet precision (never `-0.00000000`)."""
    if not value:  # several of an order's amounts are zeros: no rounding for them
        return _MONEY_ZERO
    amount = value.quantize(_MONEY)
    return amount if amount else amount.copy_abs()


def trim(value: Decimal) -> Decimal:
    """`value` without trailing zeros, never in exponent notation (`100`, not `1E+2`)."""
    if not value:
        return ZERO
    normal = value.normalize()
    # A normalized finite value is an integer exactly when its exponent is >= 0, and only a
    # positive exponent needs the quantize; comparing with its integral value is cheaper
    # than `as_tuple()`, which builds the digit tuple.
    if normal.is_finite() and normal == normal.to_integral_value():
        return normal.quantize(_ONE)
    return normal


def decimal_places(value: Decimal) -> int:
    """How many decimals `value` needs once trailing zeros are dropped (`"0.100"` -> 1)."""
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


_QUANTUMS: Final = [Decimal(1).scaleb(-places) for places in range(20)]


def fits_places(value: Decimal, places: int) -> bool:
    """`decimal_places(value) <= places` (the -1111 precision check), in one quantize for
    the common case: a value that rounding to `places` decimals leaves equal fits. Otherwise
    (or when the quantize cannot be done: not finite, more digits than the context holds)
    the full definition answers, so values longer than the context's precision, which
    `normalize` rounds, get the same answer as before."""
    try:
        quantum = _QUANTUMS[places]
    except IndexError:
        quantum = Decimal(1).scaleb(-places)
    try:
        if value.quantize(quantum) == value:
            return True
    except InvalidOperation:
        pass
    return decimal_places(value) <= places
