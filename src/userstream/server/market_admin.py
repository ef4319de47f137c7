"""Operator moves on the market through the admin API (issue 11 item 4), so a test can put
the market exactly where it needs it:

    POST /admin/v1/market/pause     {"symbol": "BTCUSDT"}            (symbol optional: all)
    POST /admin/v1/market/resume    {"symbol": "BTCUSDT"}
    POST /admin/v1/market/price     {"symbol": "BTCUSDT", "price": "50000"}
    POST /admin/v1/market/drift     {"symbol": "BTCUSDT", "price": "52000", "seconds": 60}
    POST /admin/v1/market/crash     {"symbol": "BTCUSDT", "percent": "10", "seconds": 30}
    POST /admin/v1/market/spread    {"symbol": "BTCUSDT", "ticks": 5}
    POST /admin/v1/market/thin      {"symbol": "BTCUSDT", "factor": 0.1}
    POST /admin/v1/market/funding   {"symbol": "BTCUSDT", "rate": "0.0005"}   (null: formula)
    POST /admin/v1/market/fundingNow  {"symbol": "BTCUSDT"}          (symbol optional: all)

Each answers `{"applied": "<move>", "symbol": <symbol or null>, "time": <server ms>}`; the move
takes effect from the source's next step (`market/controls.py`). Prices and rates are decimal
strings (numbers are accepted too). A source without controls (a replay, an upstream) answers
409.

`fundingNow` (issue 13 item 6) settles funding at once, on any source, at each symbol's
current mark and funding-rate estimate (the one `funding` pins): the same settlement a
scheduled funding instant makes, so positions pay or receive notional × rate (ACCOUNT_UPDATE
`m=FUNDING_FEE`, a `FUNDING_FEE` income row) and `GET /fapi/v1/fundingRate` lists it. It
answers the move's fields plus `settlements`: `[{"symbol", "fundingTime", "fundingRate",
"markPrice"}]`; its `time` and `fundingTime` are the market's last tick (at most 100 ms
before the request), the time of the marks used.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol, TypeVar, runtime_checkable

import msgspec

from userstream.exceptions import BinanceAPIError
from userstream.market.controls import (
    Crash,
    DriftTo,
    MarketControl,
    Pause,
    Resume,
    SetFundingRate,
    SetPrice,
    ThinBook,
    WidenSpread,
)
from userstream.protocol import errors
from userstream.protocol.market import PRICE_PLACES_MARK, fmt, invalid_symbol
from userstream.server.http import Request, Response
from userstream.server.market import MarketService
from userstream.server.responses import json_response

__all__ = ["MarketAdmin"]

T = TypeVar("T")

NOT_FOUND = BinanceAPIError(errors.NOT_FOUND, "Not found.", 404)


@runtime_checkable
class _Controllable(Protocol):
    def control(self, command: MarketControl, now_ms: int) -> None: ...


class _Symbol(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str | None = None


class _Price(msgspec.Struct, forbid_unknown_fields=True):
    price: Decimal
    symbol: str | None = None


class _Drift(msgspec.Struct, forbid_unknown_fields=True):
    price: Decimal
    seconds: float
    symbol: str | None = None


class _Crash(msgspec.Struct, forbid_unknown_fields=True):
    percent: Decimal
    seconds: float
    symbol: str | None = None


class _Spread(msgspec.Struct, forbid_unknown_fields=True):
    ticks: int
    symbol: str | None = None


class _Thin(msgspec.Struct, forbid_unknown_fields=True):
    factor: float
    symbol: str | None = None


class _Funding(msgspec.Struct, forbid_unknown_fields=True):
    rate: Decimal | None
    symbol: str | None = None


def _bad(msg: str) -> BinanceAPIError:
    return BinanceAPIError(errors.INVALID_PARAMETER, msg, 400)


def _decode(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise _bad(f"Invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise _bad(f"Invalid JSON: {exc}") from None


def _command(move: str, body: bytes) -> MarketControl:
    """The control a move names, its values checked (positive prices, sane durations)."""
    match move:
        case "pause":
            return Pause(_decode(body, _Symbol).symbol)
        case "resume":
            return Resume(_decode(body, _Symbol).symbol)
        case "price":
            price = _decode(body, _Price)
            if price.price <= 0:
                raise _bad("price must be positive")
            return SetPrice(price.symbol, price.price)
        case "drift":
            drift = _decode(body, _Drift)
            if drift.price <= 0 or not 0 < drift.seconds <= 86_400 * 30:
                raise _bad("price must be positive and seconds between 0 and 30 days")
            return DriftTo(drift.symbol, drift.price, drift.seconds)
        case "crash":
            crash = _decode(body, _Crash)
            if not -1000 < crash.percent < 100 or not 0 < crash.seconds <= 86_400 * 30:
                raise _bad("percent must be below 100 and seconds between 0 and 30 days")
            return Crash(crash.symbol, crash.percent, crash.seconds)
        case "spread":
            spread = _decode(body, _Spread)
            if not 1 <= spread.ticks <= 10_000:
                raise _bad("ticks must be between 1 and 10000")
            return WidenSpread(spread.symbol, spread.ticks)
        case "thin":
            thin = _decode(body, _Thin)
            if not 0 < thin.factor <= 100:
                raise _bad("factor must be above 0 and at most 100")
            return ThinBook(thin.symbol, thin.factor)
        case "funding":
            funding = _decode(body, _Funding)
            return SetFundingRate(funding.symbol, funding.rate)
    raise NOT_FOUND


class MarketAdmin:
    def __init__(self, market: MarketService) -> None:
        self._market = market

    async def handle(self, move: str, request: Request) -> Response:
        """Apply `POST /admin/v1/market/<move>`."""
        if request.method != "POST":
            raise NOT_FOUND
        if move == "fundingNow":
            return self._funding_now(request.body)
        command = _command(move, request.body)
        source = self._market.source
        if not isinstance(source, _Controllable):
            raise BinanceAPIError(errors.INVALID_PARAMETER, "This market takes no controls.", 409)
        if command.symbol is not None and command.symbol not in self._market.feeds:
            raise invalid_symbol()
        now = self._market.sync()
        try:
            source.control(command, now)
        except ValueError as refused:
            raise _bad(str(refused)) from None
        return json_response(200, {"applied": move, "symbol": command.symbol, "time": now})

    def _funding_now(self, body: bytes) -> Response:
        symbol = _decode(body, _Symbol).symbol
        if symbol is not None and symbol not in self._market.feeds:
            raise invalid_symbol()
        settlements = self._market.settle_funding(symbol)
        return json_response(
            200,
            {
                "applied": "fundingNow",
                "symbol": symbol,
                "time": self._market.state.now_ms,
                "settlements": [
                    {
                        "symbol": s.symbol,
                        "fundingTime": s.funding_time_ms,
                        "fundingRate": fmt(s.funding_rate, PRICE_PLACES_MARK),
                        "markPrice": fmt(s.mark_price, PRICE_PLACES_MARK),
                    }
                    for s in settlements
                ],
            },
        )
