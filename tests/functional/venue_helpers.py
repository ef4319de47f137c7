"""Signed requests for the venue's functional tests, built the way clients build them
(trading spec §1.3, §1.5): `urlencode` of the params, `timestamp` added, HMAC hex last."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from tests.conftest import ADMIN_TOKEN, Harness
from userstream import Server, ServerConfig, SystemClock
from userstream.accounts import Account, SqliteAccountStore


def signed_query(secret: str, params: dict[str, Any], timestamp: int) -> str:
    payload = urlencode({**params, "timestamp": timestamp})
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}&signature={signature}"


async def signed(
    harness: Harness,
    account: Account,
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    in_body: bool = False,
    timestamp: int | None = None,
    api_key: str | None = None,
) -> tuple[int, Any, CIMultiDictProxy[str]]:
    """Send a signed request (query, or form body with `in_body`); returns status, JSON body
    and headers."""
    stamp = harness.clock.now_ms() if timestamp is None else timestamp
    query = signed_query(account.secret_key, params or {}, stamp)
    headers = {"X-MBX-APIKEY": account.api_key if api_key is None else api_key}
    url = f"{harness.url}{path}"
    if in_body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = harness.http.request(method, url, data=query, headers=headers)
    else:
        # encoded=True: the bytes signed are the bytes sent (yarl would requote `%2C` etc.).
        request = harness.http.request(method, URL(f"{url}?{query}", encoded=True), headers=headers)
    async with request as response:
        return response.status, await response.json(content_type=None), response.headers


@dataclass
class LiveVenue:
    """A venue on the real clock, for clients that sign with their own wall-clock time."""

    server: Server
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.server.http_url

    @property
    def ws(self) -> str:
        return self.server.ws_url

    def account(self, name: str = "trader") -> Account:
        accounts = self.server.accounts
        assert isinstance(accounts, SqliteAccountStore)
        return accounts.create_now(name, self.server.clock.now_ms())

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with self.http.request(
            method, f"{self.url}/admin/v1/{path}", json=body, headers=headers
        ) as response:
            return response.status, await response.json(content_type=None)

    async def wait_subscribed(self, account: Account, timeout_s: float = 5.0) -> str:
        """The account's listenKey once a stream connection is subscribed to it."""
        for _ in range(int(timeout_s / 0.01)):
            record = self.server.key_store.active(account.id, self.server.clock.now_ms())
            if record is not None and self.server.gateway.subscribers(record.key):
                return record.key
            await asyncio.sleep(0.01)
        raise AssertionError("the client never connected a user data stream")


@asynccontextmanager
async def live_venue(data_dir: Path, **overrides: Any) -> AsyncIterator[LiveVenue]:
    """An in-process venue on 127.0.0.1:0 with the system clock, every account funded."""
    overrides.setdefault("initial_balance", Decimal(10000))
    config = ServerConfig(
        port=0, data_dir=data_dir, clock=SystemClock(), admin_token=ADMIN_TOKEN, **overrides
    )
    async with Server(config) as app, aiohttp.ClientSession() as http:
        yield LiveVenue(app, http)
