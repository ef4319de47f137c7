"""Leverage brackets (notional tiers) per symbol: maximum leverage, maintenance margin rate and
maintenance amount, in the shape `GET /fapi/v1/leverageBracket` returns.

Rules (trading spec §4.5, Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures
Contracts"):

* A position of notional `N` (|size| × mark price) falls in the tier with
  `notionalFloor ≤ N < notionalCap`.
* Maintenance margin = `N × maintMarginRatio − cum`. `cum` of tier n is
  `floor(n) × (MMR(n) − MMR(n−1)) + cum(n−1)`, so the maintenance margin is continuous in `N`
  (the FAQ's "Maintenance Amount formula"); `BracketTable` checks this when it is built.
* `initialLeverage` is the highest leverage allowed in the tier. At leverage `L` the largest
  position is the cap of the last tier whose `initialLeverage ≥ L` (`maxNotionalValue` in
  `/fapi/v2/positionRisk`); an order that would take the position beyond it is refused with
  -2027 "Exceeded the maximum allowable position at current leverage." (spec §4.1 row 18).

The packaged tiers are the ones the FAQ's worked example is computed with (BTCUSDT: the
notional 3,500,032.458 sits at 2.5 % with maintenance amount 16,300; ETHUSDT: 4,918,775.081
at 10 % with 135,365). The full tables are the FAQ's tables as Binance's web front end shipped
them in 2021 (`bracketNotionalFloor`, `bracketNotionalCap`, `bracketMaintenanceMarginRate`,
`cumFastMaintenanceAmount`), transcribed in the public gists highfestiva/b71e76f5 (BTCUSDT,
2021-03-26) and crackcomm/e29582030 (ETHUSDT and the 75× table the FAQ lists for ADAUSDT,
BNBUSDT, XRPUSDT and the other 75× perpetuals); the gists give each tier's MMR and amount,
and its `initialLeverage` is the one the FAQ's tables list next to it (an initial margin
rate about twice the MMR). SOLUSDT, DOGEUSDT and any symbol of a `--symbols` file without
tiers of its own use the 75× table. The sources leave the top tier of the ETHUSDT and 75×
tables open-ended; the venue closes it at 50,000,000 and adds no 1× tier there (stated, not
sourced).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Final

import msgspec

from userstream.exceptions import BinanceAPIError

__all__ = [
    "EXCEEDED_MAX_POSITION",
    "PACKAGED_BRACKETS",
    "Bracket",
    "BracketTable",
    "SymbolBrackets",
    "bracket_for",
    "brackets",
    "brackets_for",
    "encode_leverage_brackets",
    "exceeded_max_position",
    "max_notional",
]

EXCEEDED_MAX_POSITION: Final = -2027


def exceeded_max_position() -> BinanceAPIError:
    """-2027, the answer to an order or leverage change beyond the tier cap (spec §4.1 row 18)."""
    return BinanceAPIError(
        EXCEEDED_MAX_POSITION, "Exceeded the maximum allowable position at current leverage."
    )


class Bracket(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One tier, keyed as `GET /fapi/v1/leverageBracket` keys it (bare JSON numbers on the
    wire, spec §0: encode with `encode_leverage_brackets`)."""

    bracket: int
    initial_leverage: int = msgspec.field(name="initialLeverage")
    notional_cap: Decimal = msgspec.field(name="notionalCap")
    notional_floor: Decimal = msgspec.field(name="notionalFloor")
    maint_margin_ratio: Decimal = msgspec.field(name="maintMarginRatio")
    cum: Decimal

    def maintenance_margin(self, notional: Decimal) -> Decimal:
        """`notional × MMR − cum` (FAQ "Maintenance Margin")."""
        return notional * self.maint_margin_ratio - self.cum


class SymbolBrackets(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One element of the `leverageBracket` answer."""

    symbol: str
    brackets: tuple[Bracket, ...]


_BRACKETS_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")


def encode_leverage_brackets(rows: Sequence[SymbolBrackets]) -> bytes:
    """The JSON body of `GET /fapi/v1/leverageBracket` (a list; with `symbol=`, Binance still
    answers a one-element list for USDⓈ-M)."""
    return _BRACKETS_ENCODER.encode(list(rows))


class BracketTable:
    """The tiers of one symbol, ordered by notional.

    Raises:
        ValueError: the tiers leave a gap, overlap, or break the continuity of `cum`.
    """

    __slots__ = ("_brackets", "_max_notional", "symbol")

    def __init__(self, symbol: str, brackets: Iterable[Bracket]) -> None:
        ordered = tuple(sorted(brackets, key=lambda b: b.notional_floor))
        if not ordered or ordered[0].notional_floor != 0:
            raise ValueError(f"{symbol}: the first bracket must start at notional 0")
        for lower, upper in itertools.pairwise(ordered):
            if upper.notional_floor != lower.notional_cap:
                raise ValueError(f"{symbol}: bracket {upper.bracket} does not start at the cap")
            expected = (
                upper.notional_floor * (upper.maint_margin_ratio - lower.maint_margin_ratio)
                + lower.cum
            )
            if expected != upper.cum:
                raise ValueError(f"{symbol}: bracket {upper.bracket} cum {upper.cum} != {expected}")
        self.symbol = symbol
        self._brackets = ordered
        # The tiers never change, so each leverage's cap is worked out once (row 18 of
        # every new order asks for it).
        self._max_notional: dict[int, Decimal] = {}

    @property
    def brackets(self) -> tuple[Bracket, ...]:
        return self._brackets

    def for_notional(self, notional: Decimal) -> Bracket:
        """The tier holding `notional` (absolute). Beyond the last cap: the last tier, whose
        rate still applies to what a liquidation must cover."""
        for bracket in self._brackets:
            if notional < bracket.notional_cap:
                return bracket
        return self._brackets[-1]

    def maintenance_margin(self, notional: Decimal) -> Decimal:
        """Maintenance margin of a position of `notional` (absolute, at the mark price)."""
        return self.for_notional(abs(notional)).maintenance_margin(abs(notional))

    @property
    def max_leverage(self) -> int:
        return self._brackets[0].initial_leverage

    def max_notional(self, leverage: int) -> Decimal:
        """The largest notional allowed at `leverage`: the cap of the last tier that still
        allows it (`maxNotionalValue`). 0 when `leverage` exceeds every tier's."""
        cap = self._max_notional.get(leverage)
        if cap is None:
            allowed = [b.notional_cap for b in self._brackets if b.initial_leverage >= leverage]
            cap = self._max_notional[leverage] = max(allowed, default=Decimal(0))
        return cap

    def check_notional(self, notional: Decimal, leverage: int) -> None:
        """Refuse a position of `notional` at `leverage` beyond its tier cap.

        Raises:
            BinanceAPIError: -2027.
        """
        if abs(notional) > self.max_notional(leverage):
            raise exceeded_max_position()

    def row(self) -> SymbolBrackets:
        return SymbolBrackets(symbol=self.symbol, brackets=self._brackets)


def _tiers(rows: Sequence[tuple[int, int, str, str]]) -> tuple[Bracket, ...]:
    """Tiers from (cap, initial leverage, MMR, cum); floors chain from 0."""
    out: list[Bracket] = []
    floor = Decimal(0)
    for number, (cap, leverage, mmr, cum) in enumerate(rows, start=1):
        out.append(
            Bracket(
                bracket=number,
                initial_leverage=leverage,
                notional_cap=Decimal(cap),
                notional_floor=floor,
                maint_margin_ratio=Decimal(mmr),
                cum=Decimal(cum),
            )
        )
        floor = Decimal(cap)
    return tuple(out)


_BTC: Final = _tiers(
    [
        (50_000, 125, "0.004", "0"),
        (250_000, 100, "0.005", "50"),
        (1_000_000, 50, "0.01", "1300"),
        (10_000_000, 20, "0.025", "16300"),
        (20_000_000, 10, "0.05", "266300"),
        (50_000_000, 5, "0.1", "1266300"),
        (100_000_000, 4, "0.125", "2516300"),
        (200_000_000, 3, "0.15", "5016300"),
        (300_000_000, 2, "0.25", "25016300"),
        (500_000_000, 1, "0.5", "100016300"),
    ]
)
_ETH: Final = _tiers(
    [
        (10_000, 100, "0.005", "0"),
        (100_000, 75, "0.0065", "15"),
        (500_000, 50, "0.01", "365"),
        (1_000_000, 25, "0.02", "5365"),
        (2_000_000, 10, "0.05", "35365"),
        (5_000_000, 5, "0.1", "135365"),
        (10_000_000, 4, "0.125", "260365"),
        (20_000_000, 3, "0.15", "510365"),
        (50_000_000, 2, "0.25", "2510365"),
    ]
)
_X75: Final = _tiers(
    [
        (10_000, 75, "0.0065", "0"),
        (50_000, 50, "0.01", "35"),
        (250_000, 25, "0.02", "535"),
        (1_000_000, 10, "0.05", "8035"),
        (2_000_000, 5, "0.1", "58035"),
        (5_000_000, 4, "0.125", "108035"),
        (10_000_000, 3, "0.15", "233035"),
        (50_000_000, 2, "0.25", "1233035"),
    ]
)

PACKAGED_BRACKETS: Final[Mapping[str, BracketTable]] = {
    symbol: BracketTable(symbol, tiers)
    for symbol, tiers in (
        ("BTCUSDT", _BTC),
        ("ETHUSDT", _ETH),
        ("SOLUSDT", _X75),
        ("BNBUSDT", _X75),
        ("XRPUSDT", _X75),
        ("DOGEUSDT", _X75),
    )
}
"""The tiers of the packaged symbols (`userstream/data/symbols.json`)."""


def brackets_for(symbol: str) -> BracketTable:
    """The symbol's tiers: the packaged ones, else the 75× table under the symbol's name."""
    table = PACKAGED_BRACKETS.get(symbol)
    return table if table is not None else BracketTable(symbol, _X75)


def brackets(symbol: str) -> tuple[Bracket, ...]:
    """The symbol's tiers, lowest notional first."""
    return brackets_for(symbol).brackets


def bracket_for(symbol: str, notional: Decimal) -> Bracket:
    """The tier a position of `notional` (absolute, at the mark price) falls into."""
    return brackets_for(symbol).for_notional(notional)


def max_notional(symbol: str, leverage: int) -> Decimal:
    """`maxNotionalValue` at `leverage`; 0 if no tier allows it."""
    return brackets_for(symbol).max_notional(leverage)
