"""Signed requests for the venue's functional tests, built the way clients build them
(trading spec §1.3, §1.5): `urlencode` of the params, `timestamp` added, HMAC hex last."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import urlencode

from multidict import CIMultiDictProxy

from tests.conftest import Harness
from userstream.accounts import Account


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
        request = harness.http.request(method, f"{url}?{query}", headers=headers)
    async with request as response:
        return response.status, await response.json(content_type=None), response.headers
