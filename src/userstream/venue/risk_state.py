"""The part of the venue's state the derivatives-risk side keeps: algo orders, income rows that
no fill records (funding, transfers, insurance clearing) and which scopes are in a margin
call. It is a field of `EngineState`, so it is exported and restored with the rest."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from userstream.venue.algo import AlgoState

__all__ = ["IncomeRecord", "RiskState"]


class IncomeRecord(msgspec.Struct, kw_only=True):
    """One `GET /fapi/v1/income` row (trading spec §2.6): `income` is signed as Binance
    signs it (what the account received)."""

    symbol: str
    income_type: str
    income: Decimal
    asset: str
    info: str
    time: int
    tran_id: int
    trade_id: str = ""


class RiskState(msgspec.Struct, kw_only=True):
    algo: AlgoState = msgspec.field(default_factory=AlgoState)
    incomes: dict[int, list[IncomeRecord]] = msgspec.field(default_factory=dict)
    # Stored rows get ids from here; rows derived from fills use the trade id's space.
    next_tran_id: int = 1
    # Margin scopes already warned ("account:asset" for cross, "account:symbol:side" for an
    # isolated position): one MARGIN_CALL per crossing of the threshold.
    margin_called: list[str] = msgspec.field(default_factory=list)
