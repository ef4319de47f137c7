"""The signing keys `ApiKeys` hands out follow the account store at once: a key it reuses
for speed is never the key of an account the store no longer answers."""

from __future__ import annotations

import asyncio

from userstream.accounts import Account, new_credentials
from userstream.protocol.signing import hmac_signature
from userstream.server.apikeys import ApiKeys


class DictAccountStore:
    """An `AccountStore` whose accounts an operator may re-key or remove (another backend
    could; these tests need one that does)."""

    def __init__(self) -> None:
        self.by_key: dict[str, Account] = {}

    async def open(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def create(self, name: str, now_ms: int) -> Account:
        api_key, secret = new_credentials()
        account = Account(len(self.by_key) + 1, name, api_key, secret)
        self.by_key[api_key] = account
        return account

    async def by_api_key(self, api_key: str) -> Account | None:
        return self.by_key.get(api_key)

    async def by_id(self, account_id: int) -> Account | None:
        return next((a for a in self.by_key.values() if a.id == account_id), None)

    def all(self) -> list[Account]:
        return sorted(self.by_key.values(), key=lambda a: a.id)

    def __len__(self) -> int:
        return len(self.by_key)


def verifies(keys: ApiKeys, api_key: str, secret: str) -> bool:
    payload = b"symbol=BTCUSDT&timestamp=1"
    key = asyncio.run(keys.signing_key(api_key))
    return key is not None and key.verifies(hmac_signature(secret.encode(), payload), payload)


def test_a_changed_secret_is_used_at_once() -> None:
    store = DictAccountStore()
    keys = ApiKeys(store, None)
    account = asyncio.run(store.create("a", 0))
    assert verifies(keys, account.api_key, account.secret_key)
    assert verifies(keys, account.api_key, account.secret_key)  # the reused key
    _, new_secret = new_credentials()
    store.by_key[account.api_key] = Account(account.id, "a", account.api_key, new_secret)
    assert not verifies(keys, account.api_key, account.secret_key)
    assert verifies(keys, account.api_key, new_secret)


def test_a_removed_key_is_refused_at_once() -> None:
    store = DictAccountStore()
    keys = ApiKeys(store, None)
    account = asyncio.run(store.create("a", 0))
    assert verifies(keys, account.api_key, account.secret_key)
    del store.by_key[account.api_key]
    assert asyncio.run(keys.signing_key(account.api_key)) is None


def test_a_key_moved_to_another_account_signs_for_that_account() -> None:
    store = DictAccountStore()
    keys = ApiKeys(store, None)
    account = asyncio.run(store.create("a", 0))
    first = asyncio.run(keys.signing_key(account.api_key))
    assert first is not None
    assert first.account_id == account.id
    store.by_key[account.api_key] = Account(9, "b", account.api_key, account.secret_key)
    moved = asyncio.run(keys.signing_key(account.api_key))
    assert moved is not None
    assert moved.account_id == 9
