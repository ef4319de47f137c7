"""The HTTP intake path: accounts and events through the admin API (issue #2).

`POST /admin/v1/accounts` creates an account; `POST /admin/v1/accounts/{id}/events` takes a
JSON array of events, which the server validates strictly (`parse_admin_events`) and
publishes on its bus, exactly as `bus.publish` does in process.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec

from userstream.exceptions import BinanceAPIError, TransportError
from userstream.protocol.codec import encode_event
from userstream.protocol.events import Event

__all__ = ["AdminPublisher"]


class AdminPublisher:
    """Admin API calls over one `aiohttp.ClientSession` (the caller owns and closes it).

    Raises (from every method):
        BinanceAPIError: the server answered with an error (`{"code","msg"}`).
        TransportError: the server could not be reached or its answer read.
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/") + "/admin/v1"
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def create_account(self, name: str) -> dict[str, Any]:
        """Create an account; returns `{"accountId", "apiKey", "secretKey"}`."""
        body = msgspec.json.encode({"name": name})
        return await self._post("/accounts", body)

    async def deposit(self, account_id: int, asset: str, amount: Decimal) -> None:
        """Credit the account (`POST /admin/v1/accounts/{id}/deposit`: ACCOUNT_UPDATE
        m=DEPOSIT on its stream)."""
        body = msgspec.json.encode({"asset": asset, "amount": format(amount, "f")})
        await self._post(f"/accounts/{account_id}/deposit", body)

    async def publish(self, account_id: int, events: Sequence[Event]) -> None:
        """Publish `events` for `account_id` as one batch (all or nothing)."""
        body = b"[" + b",".join(encode_event(event) for event in events) + b"]"
        await self._post(f"/accounts/{account_id}/events", body)

    async def _post(self, path: str, body: bytes) -> dict[str, Any]:
        try:
            async with self._session.post(
                self._base + path, data=body, headers=self._headers
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise TransportError(f"admin API at {self._base}: {error}") from error
        try:
            answer = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            answer = None
        if status != 200 or not isinstance(answer, dict):
            if isinstance(answer, dict) and isinstance(answer.get("code"), int):
                message = str(answer.get("msg", ""))
                if "field" in answer:
                    message += f" (field {answer['field']})"
                raise BinanceAPIError(answer["code"], message, status)
            raise BinanceAPIError(-1000, f"HTTP {status}: {raw[:200]!r}", status)
        return answer
