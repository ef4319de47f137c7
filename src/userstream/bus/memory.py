"""The embedded default's backends: an in-process event bus and a SQLite-backed key store."""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Sequence

from userstream.bus.base import EventHandler, KeyChangeHandler
from userstream.bus.keycache import ListenKeyCache
from userstream.protocol import listenkeys as rules
from userstream.protocol.codec import Deliverable
from userstream.protocol.listenkeys import ListenKey

DEDUPE_IDS = 100_000


class MemoryEventBus:
    """Hands each published batch to every subscriber synchronously, so acceptance order is
    delivery order. One process serves every account, so `follow`/`unfollow` change nothing."""

    def __init__(self) -> None:
        self._handlers: list[EventHandler] = []
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def open(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    async def follow(self, account_id: int) -> None:
        pass

    async def unfollow(self, account_id: int) -> None:
        pass

    async def publish(
        self, account_id: int, events: Sequence[Deliverable], msg_id: str | None = None
    ) -> None:
        if msg_id is not None:
            if msg_id in self._seen:
                return
            self._seen[msg_id] = None
            if len(self._seen) > DEDUPE_IDS:
                self._seen.popitem(last=False)
        for handler in self._handlers:
            handler(account_id, events)


class SqliteKeyStore:
    """listenKeys in memory, written through to SQLite so they survive a restart.

    One process owns the database, so every change is made here and `on_change` handlers run
    synchronously inside the call that made it.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._cache = ListenKeyCache()
        self._handlers: list[KeyChangeHandler] = []
        rows = db.execute("SELECT account_id, listen_key, expires_ms FROM listen_keys")
        for account_id, key, expires_ms in rows:
            self._remember(ListenKey(account_id, key, expires_ms))

    async def open(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def on_change(self, handler: KeyChangeHandler) -> None:
        self._handlers.append(handler)

    def _notify(self, key: str, record: ListenKey | None) -> None:
        for handler in self._handlers:
            handler(key, record)

    def _remember(self, record: ListenKey) -> ListenKey | None:
        """Cache `record`; return the account's previous key when this one replaces it."""
        old = self._cache.set(record.account_id, record)
        return old if old is not None and old.key != record.key else None

    def _save(self, record: ListenKey) -> ListenKey:
        self._db.execute(
            "INSERT INTO listen_keys (account_id, listen_key, expires_ms) VALUES (?, ?, ?) "
            "ON CONFLICT(account_id) DO UPDATE SET listen_key=excluded.listen_key, "
            "expires_ms=excluded.expires_ms",
            (record.account_id, record.key, record.expires_ms),
        )
        replaced = self._remember(record)
        if replaced is not None:
            self._notify(replaced.key, None)
        self._notify(record.key, record)
        return record

    def _forget(self, record: ListenKey) -> None:
        self._db.execute("DELETE FROM listen_keys WHERE account_id = ?", (record.account_id,))
        self._cache.set(record.account_id, None)
        self._notify(record.key, None)

    async def start(self, account_id: int, now_ms: int) -> ListenKey:
        return self._save(rules.issue(account_id, self.active(account_id, now_ms), now_ms))

    async def keepalive(self, account_id: int, now_ms: int) -> ListenKey:
        current = rules.require_live(self.active(account_id, now_ms), now_ms)
        return self._save(current.extended(now_ms))

    async def close(self, account_id: int, now_ms: int) -> ListenKey:
        current = rules.require_live(self.active(account_id, now_ms), now_ms)
        self._forget(current)
        return current

    async def end(self, listen_key: str) -> ListenKey | None:
        record = self._cache.get(listen_key)
        if record is not None:
            self._forget(record)
        return record

    async def fetch(self, listen_key: str) -> ListenKey | None:
        return self._cache.get(listen_key)

    def get(self, listen_key: str) -> ListenKey | None:
        return self._cache.get(listen_key)

    def active(self, account_id: int, now_ms: int) -> ListenKey | None:
        return self._cache.active(account_id, now_ms)

    def all(self) -> list[ListenKey]:
        return self._cache.all()
