"""The in-memory view of listenKeys every KeyStore keeps: one record per account (spec §2.3,
one active key per account) and the same records by key name, for the stream routes."""

from __future__ import annotations

from userstream.protocol.listenkeys import ListenKey


class ListenKeyCache:
    __slots__ = ("_by_account", "_by_key")

    def __init__(self) -> None:
        self._by_account: dict[int, ListenKey] = {}
        self._by_key: dict[str, ListenKey] = {}

    def set(self, account_id: int, record: ListenKey | None) -> ListenKey | None:
        """Make `record` the account's key (None: it has none); return what it held before.

        A different key name replaces the old one, which leaves the by-name index."""
        old = self._by_account.get(account_id)
        if record is None:
            self._by_account.pop(account_id, None)
        else:
            self._by_account[account_id] = record
            self._by_key[record.key] = record
        if old is not None and (record is None or old.key != record.key):
            self._by_key.pop(old.key, None)
        return old

    def get(self, listen_key: str) -> ListenKey | None:
        return self._by_key.get(listen_key)

    def of_account(self, account_id: int) -> ListenKey | None:
        return self._by_account.get(account_id)

    def active(self, account_id: int, now_ms: int) -> ListenKey | None:
        record = self._by_account.get(account_id)
        return record if record is not None and record.alive(now_ms) else None

    def accounts(self) -> list[int]:
        return list(self._by_account)

    def all(self) -> list[ListenKey]:
        return list(self._by_account.values())
