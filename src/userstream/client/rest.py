"""Signed REST reads for the account mirror: HMAC-SHA256, request weight, the snapshot.

Spec: `shared/spec/binance-usdm-trading.md` §1.3-§1.4 (signing, `timestamp`/`recvWindow`),
§2.4-§2.6 (the endpoints), §7 (REQUEST_WEIGHT 2400 per UTC minute, `X-MBX-USED-WEIGHT-1M`).

`SignedRest` sends USER_DATA `GET`s the way the official SDK does (every parameter in the
query string, `timestamp` then `signature` last) and never blocks the event loop (aiohttp;
msgspec decodes a whole snapshot in well under a millisecond). Before each request it
compares the weight the venue reported for the current minute with the request's weight,
and waits for the next minute rather than earning a 429 (and then a ban).

`take_snapshot` fetches every part of the mirror's state concurrently, so all parts share one
fence (see `protocol/resync.py`). The optional parts (algo orders, symbol and account
configuration) are asked once; a venue that does not serve one is not asked again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

import aiohttp
import msgspec

from userstream.client.listenkeys import api_error, redact
from userstream.clock import Clock, SystemClock
from userstream.exceptions import BinanceAPIError, RateLimited, TransportError
from userstream.protocol.limits import MINUTE_MS, USED_WEIGHT_HEADER
from userstream.protocol.signing import hmac_signature
from userstream.protocol.snapshot import (
    SNAPSHOT_WEIGHTS,
    AccountConfig,
    AccountInfo,
    OpenAlgoOrder,
    OpenOrder,
    PositionRisk,
    SymbolConfig,
    decode_account,
    decode_account_config,
    decode_open_algo_orders,
    decode_open_orders,
    decode_position_risk,
    decode_symbol_config,
)

__all__ = ["SignedRest", "Snapshot"]

log = logging.getLogger("userstream.mirror")

_T = TypeVar("_T")
_REQUEST_TIMEOUT_S = 10.0
_OPTIONAL = ("/fapi/v1/openAlgoOrders", "/fapi/v1/symbolConfig", "/fapi/v1/accountConfig")


class _ErrorBody(msgspec.Struct):
    code: int
    msg: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One REST snapshot of an account (the parts a venue did not serve are None).

    Attributes:
        taken_ms: the client's clock when the requests were sent.
        account: `/fapi/v3/account` (balances).
        positions: `/fapi/v3/positionRisk` rows (non-zero positions, or with open orders).
        orders: `/fapi/v1/openOrders` rows.
        algo_orders: `/fapi/v1/openAlgoOrders` rows.
        symbol_config: `/fapi/v1/symbolConfig` rows (leverage, margin type).
        account_config: `/fapi/v1/accountConfig` (multi-assets, position mode).
        weight: the request weight the snapshot cost.
    """

    taken_ms: int
    account: AccountInfo
    positions: tuple[PositionRisk, ...]
    orders: tuple[OpenOrder, ...]
    algo_orders: tuple[OpenAlgoOrder, ...] | None
    symbol_config: tuple[SymbolConfig, ...] | None
    account_config: AccountConfig | None
    weight: int


class SignedRest:
    """USER_DATA REST reads signed with an HMAC key.

    Args:
        api_key: sent as `X-MBX-APIKEY`; never logged.
        secret_key: signs the query string; never logged or sent.
        rest_url: the REST root, e.g. `https://fapi.binance.com`.
        clock: the `timestamp` source and the weight minute.
        recv_window_ms: `recvWindow` (spec §1.4: at most 60000).
        weight_limit: the IP's REQUEST_WEIGHT per minute (2400 on Binance).
        weight_reserve: weight left for the rest of the program: a request that would take
            the minute's total above `weight_limit - weight_reserve` waits for the next minute.
    """

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        rest_url: str,
        *,
        clock: Clock | None = None,
        recv_window_ms: int = 5_000,
        weight_limit: int = 2_400,
        weight_reserve: int = 400,
        timeout_s: float = _REQUEST_TIMEOUT_S,
    ) -> None:
        self._api_key = api_key
        self._secret = secret_key.encode()
        self._root = rest_url.rstrip("/")
        self._clock: Clock = clock or SystemClock()
        self._recv_window = recv_window_ms
        self._budget = weight_limit - weight_reserve
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._minute = -1
        self.used_weight = 0
        """The weight the venue reported for the current minute (its own count, all clients)."""
        self.unsupported: set[str] = set()
        """Optional endpoints the venue answered with 404: not asked again."""

    def __repr__(self) -> str:
        return f"SignedRest(api_key={redact(self._api_key)!r}, url={self._root!r})"

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, path: str, weight: int, params: dict[str, str] | None = None) -> bytes:
        """A signed GET; the answer's body.

        Raises:
            BinanceAPIError: the venue's `{"code","msg"}` answer (`RateLimited` for 429/418).
            TransportError: the venue could not be reached or answered something unreadable.
        """
        await self._wait_for_weight(weight)
        query = {**(params or {}), "recvWindow": str(self._recv_window)}
        query["timestamp"] = str(self._clock.now_ms())
        payload = urlencode(query)
        signature = hmac_signature(self._secret, payload.encode())
        url = f"{self._root}{path}?{payload}&signature={signature}"
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(url, headers={"X-MBX-APIKEY": self._api_key}) as resp:
                body = await resp.read()
                status = resp.status
                used = resp.headers.get(USED_WEIGHT_HEADER)
                retry_after = resp.headers.get("Retry-After", "0")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"GET {path} failed: {exc!r}") from None
        self._count(weight, used)
        if status != 200:
            try:
                error = msgspec.json.decode(body, type=_ErrorBody)
            except msgspec.MsgspecError:
                if status == 404:  # a venue without this endpoint, whatever its body says
                    raise BinanceAPIError(0, "Not found.", 404) from None
                raise TransportError(f"GET {path}: HTTP {status}") from None
            retry_ms = int(retry_after) * 1000 if retry_after.isdigit() else 0
            raise api_error(error.code, error.msg, status, retry_ms)
        return body

    def _count(self, weight: int, reported: str | None) -> None:
        minute = self._clock.now_ms() // MINUTE_MS
        if minute != self._minute:
            self._minute, self.used_weight = minute, 0
        if reported is not None and reported.lstrip("-").isdigit():
            self.used_weight = max(self.used_weight, int(reported))
        else:
            self.used_weight += weight

    async def _wait_for_weight(self, weight: int) -> None:
        now = self._clock.now_ms()
        if now // MINUTE_MS != self._minute:
            return
        if self.used_weight + weight > self._budget:
            next_minute = (now // MINUTE_MS + 1) * MINUTE_MS
            log.warning(
                "request weight %d of %d used this minute: waiting %d ms",
                self.used_weight,
                self._budget,
                next_minute - now,
            )
            await self._clock.sleep_until(next_minute)

    async def _decoded(
        self, path: str, decode: Callable[[bytes], _T], optional: bool = False
    ) -> _T | None:
        if path in self.unsupported:
            return None
        try:
            body = await self.get(path, SNAPSHOT_WEIGHTS[path])
        except BinanceAPIError as exc:
            if optional and exc.status == 404 and not isinstance(exc, RateLimited):
                log.info("%s is not served by this venue; the mirror goes without it", path)
                self.unsupported.add(path)
                return None
            raise
        try:
            return decode(body)
        except msgspec.ValidationError as exc:
            raise TransportError(f"GET {path}: unreadable answer: {exc}") from None

    async def take_snapshot(self) -> Snapshot:
        """Every part of the account's state, requested at once (one fence for all).

        Raises:
            BinanceAPIError, TransportError: a required part failed (the others are dropped).
        """
        # The whole snapshot fits in this minute's budget or waits for the next one, so its
        # parts are not spread over two minutes.
        await self._wait_for_weight(self._snapshot_weight())
        taken = self._clock.now_ms()
        results = await asyncio.gather(
            self._decoded("/fapi/v3/account", decode_account),
            self._decoded("/fapi/v3/positionRisk", decode_position_risk),
            self._decoded("/fapi/v1/openOrders", decode_open_orders),
            self._decoded(_OPTIONAL[0], decode_open_algo_orders, optional=True),
            self._decoded(_OPTIONAL[1], decode_symbol_config, optional=True),
            self._decoded(_OPTIONAL[2], decode_account_config, optional=True),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        account, positions, orders, algo, symbols, config = results
        assert isinstance(account, AccountInfo)
        assert isinstance(positions, tuple)
        assert isinstance(orders, tuple)
        return Snapshot(
            taken_ms=taken,
            account=account,
            positions=positions,
            orders=orders,
            algo_orders=algo if isinstance(algo, tuple) else None,
            symbol_config=symbols if isinstance(symbols, tuple) else None,
            account_config=config if isinstance(config, AccountConfig) else None,
            weight=self._snapshot_weight(),
        )

    def _snapshot_weight(self) -> int:
        return sum(w for path, w in SNAPSHOT_WEIGHTS.items() if path not in self.unsupported)
