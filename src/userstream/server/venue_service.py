"""The venue on the server: API keys, signed REST and the admin operations around them.

Built once by `Server` from the opened backends. In the embedded default it opens its own
connection to the data folder's SQLite database (WAL mode lets the account store's connection
and this one share the file) for the Ed25519 keys; in distributed mode there is no shared
SQL store, so Ed25519 keys registered on a node live on that node only.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from userstream.accounts import AccountStore
from userstream.clock import Clock
from userstream.protocol.limits import OrderCountLimiter, RequestWeightLimiter
from userstream.server.apikeys import ApiKeys
from userstream.server.http import Request, Response
from userstream.server.trading import TradingApi
from userstream.server.venue_admin import VenueAdmin
from userstream.server.wsapi import VenueMethod, WsVenue
from userstream.storage import open_database


class VenueService:
    def __init__(
        self,
        accounts: AccountStore,
        limiter: RequestWeightLimiter,
        clock: Clock,
        data_dir: Path | None,
    ) -> None:
        self._db: sqlite3.Connection | None = (
            open_database(data_dir) if data_dir is not None else None
        )
        self.api_keys = ApiKeys(accounts, self._db)
        self.trading = TradingApi(self.api_keys, limiter, OrderCountLimiter(), clock)
        self._admin = VenueAdmin(accounts, self.api_keys, clock)
        self.ws_methods: dict[str, VenueMethod] = {}
        self.ws = WsVenue(self.api_keys, self.ws_methods)

    async def admin(self, parts: list[str], request: Request) -> Response | None:
        """The venue's admin routes (`server/venue_admin.py`); None for other paths."""
        return await self._admin.handle(parts, request)

    async def aclose(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
