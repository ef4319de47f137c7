"""Create, extend and close listenKeys over REST or the WebSocket API (spec §2, §3.4).

Two interchangeable `ListenKeyClient`s:

* `RestListenKeys`: `POST`/`PUT`/`DELETE /fapi/v1/listenKey` with only the `X-MBX-APIKEY`
  header (security type USER_STREAM: no timestamp, no signature; spec §2.2).
* `WsApiListenKeys`: `userDataStream.start`/`.ping`/`.stop` with `apiKey` in `params`
  (spec §3.4) over one long-lived WebSocket API connection, reopened on demand.

Two libraries, each for what only it does here: websockets for the stream and WebSocket API
connections (a ping interval and a pong timeout set apart, the pong waiter that proves a new
connection, the peer's exact close code in every `StreamGap`; aiohttp's `heartbeat` ties the
timeout to half the interval and offers no pong waiter), aiohttp for the three REST calls
(websockets speaks no plain HTTP). One library would mean giving up one of those or writing
an HTTP client by hand.

Binance's `{"code","msg"}` answers become `BinanceAPIError` subclasses (`ListenKeyNotFound`
for -1125); network failures become `TransportError`. The API key never appears in a repr,
log record or exception message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Any, Protocol

import aiohttp
import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from userstream.exceptions import (
    BinanceAPIError,
    InvalidAPIKey,
    ListenKeyNotFound,
    RateLimited,
    TransportError,
)

__all__ = ["ListenKeyClient", "RestListenKeys", "WsApiListenKeys", "api_error", "redact"]

log = logging.getLogger("userstream.client")

_REQUEST_TIMEOUT_S = 10.0


def redact(secret: str) -> str:
    """A loggable stand-in for an API key or listenKey: its first four characters."""
    return f"{secret[:4]}…" if secret else "<empty>"


def api_error(code: int, msg: str, status: int, retry_after_ms: int = 0) -> BinanceAPIError:
    """The exception for a Binance error answer (spec §6.5)."""
    if code == -1125:
        return ListenKeyNotFound(code, msg, status)
    if code in (-2014, -2015):
        return InvalidAPIKey(code, msg, status)
    if code == -1003 or status in (418, 429):
        return RateLimited(code, msg, status, retry_after_ms)
    return BinanceAPIError(code, msg, status)


class _ListenKeyBody(msgspec.Struct):
    listenKey: str  # noqa: N815 - Binance's key


class _ErrorBody(msgspec.Struct):
    code: int
    msg: str = ""


class ListenKeyClient(Protocol):
    """What `UserDataStream` needs to manage a listenKey."""

    async def create(self) -> str:
        """Issue a key (or get the account's active key, extended by 60 minutes)."""
        ...

    async def keepalive(self, listen_key: str) -> str:
        """Extend the account's active key by 60 minutes; return that key.

        Raises:
            ListenKeyNotFound: the key no longer exists; `create()` a new one.
        """
        ...

    async def close(self, listen_key: str) -> None:
        """Invalidate the key (connections on it receive `listenKeyExpired`)."""
        ...

    async def aclose(self) -> None:
        """Release the HTTP session or WebSocket API connection."""
        ...


class RestListenKeys:
    """The REST transport (spec §2.1): one aiohttp session, created on first use."""

    def __init__(self, api_key: str, rest_url: str, timeout_s: float = _REQUEST_TIMEOUT_S) -> None:
        self._api_key = api_key
        self._url = rest_url.rstrip("/") + "/fapi/v1/listenKey"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"RestListenKeys(api_key={redact(self._api_key)!r}, url={self._url!r})"

    async def create(self) -> str:
        return (await self._call("POST")).listenKey

    async def keepalive(self, listen_key: str) -> str:
        # Futures PUT takes no listenKey (spec §2.1); it extends the account's active key.
        return (await self._call("PUT")).listenKey

    async def close(self, listen_key: str) -> None:
        await self._call("DELETE", expect_key=False)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, expect_key: bool = True) -> _ListenKeyBody:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.request(
                method, self._url, headers={"X-MBX-APIKEY": self._api_key}
            ) as response:
                body = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After", "0")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"{method} /fapi/v1/listenKey failed: {exc!r}") from None
        if status != 200:
            try:
                error = msgspec.json.decode(body, type=_ErrorBody)
            except msgspec.MsgspecError:
                raise TransportError(f"{method} /fapi/v1/listenKey: HTTP {status}") from None
            retry_ms = int(retry_after) * 1000 if retry_after.isdigit() else 0
            raise api_error(error.code, error.msg, status, retry_ms)
        if not expect_key:
            return _ListenKeyBody("")
        try:
            return msgspec.json.decode(body, type=_ListenKeyBody)
        except msgspec.MsgspecError as exc:
            raise TransportError(f"{method} /fapi/v1/listenKey: unreadable answer") from exc


class _WsResponse(msgspec.Struct):
    id: Any = None
    status: int = 0
    result: Any = None
    error: _ErrorBody | None = None


class WsApiListenKeys:
    """The WebSocket API transport (spec §3): one connection, opened on first use and
    reopened after it closes (Binance caps a WebSocket API connection at 24 hours)."""

    def __init__(
        self,
        api_key: str,
        ws_api_url: str,
        timeout_s: float = _REQUEST_TIMEOUT_S,
    ) -> None:
        self._api_key = api_key
        self._url = ws_api_url
        self._timeout_s = timeout_s
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[_WsResponse]] = {}
        self._ids = itertools.count(1)
        self._connect_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"WsApiListenKeys(api_key={redact(self._api_key)!r}, url={self._url!r})"

    async def create(self) -> str:
        return self._key(await self._request("userDataStream.start"))

    async def keepalive(self, listen_key: str) -> str:
        # Futures `userDataStream.ping` takes only `apiKey`, no `listenKey` (spec §3.4).
        return self._key(await self._request("userDataStream.ping"))

    async def close(self, listen_key: str) -> None:
        await self._request("userDataStream.stop")

    async def aclose(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        self._fail_pending(TransportError("WebSocket API client closed"))

    @staticmethod
    def _key(result: Any) -> str:
        if isinstance(result, dict) and isinstance(result.get("listenKey"), str):
            return str(result["listenKey"])
        raise TransportError("WebSocket API answer has no listenKey")

    async def _connection(self) -> ClientConnection:
        async with self._connect_lock:
            if self._ws is not None and self._reader is not None and not self._reader.done():
                return self._ws
            await self.aclose()
            try:
                ws = await connect(self._url, open_timeout=self._timeout_s, close_timeout=2)
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                raise TransportError(f"WebSocket API connect failed: {exc!r}") from None
            self._ws = ws
            self._reader = asyncio.create_task(self._read(ws), name="userstream-ws-api-reader")
            return ws

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                try:
                    response = msgspec.json.decode(message, type=_WsResponse)
                except msgspec.MsgspecError:
                    log.warning("WebSocket API: unreadable message skipped")
                    continue
                future = (
                    self._pending.pop(response.id, None) if isinstance(response.id, int) else None
                )
                if future is not None and not future.done():
                    future.set_result(response)
        except ConnectionClosed:
            pass
        finally:
            self._fail_pending(TransportError("WebSocket API connection closed"))

    def _fail_pending(self, error: Exception) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    async def _request(self, method: str) -> Any:
        ws = await self._connection()
        request_id = next(self._ids)
        future: asyncio.Future[_WsResponse] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        payload = {"id": request_id, "method": method, "params": {"apiKey": self._api_key}}
        try:
            await ws.send(msgspec.json.encode(payload).decode())
            async with asyncio.timeout(self._timeout_s):
                response = await future
        except ConnectionClosed:
            raise TransportError(f"{method}: WebSocket API connection closed") from None
        except TimeoutError:
            raise TransportError(f"{method}: no answer within {self._timeout_s} s") from None
        finally:
            self._pending.pop(request_id, None)
        if response.status != 200 or response.error is not None:
            error = response.error or _ErrorBody(0, f"status {response.status}")
            raise api_error(error.code, error.msg, response.status)
        return response.result
