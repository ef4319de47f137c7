"""Accounts and API keys in a JetStream key-value bucket.

Layout (bucket `userstream_accounts`, history 1, no TTL):

    seq             ->  the last account id handed out (CAS-incremented: ids are unique)
    id.<accountId>  ->  {"id", "name", "apiKey", "secretKey", "createdMs"}
    key.<apiKey>    ->  "<accountId>"   (written after id.<n>, so a key found has an account)

Every node caches the bucket through a watch; a lookup that misses the cache (an account
created on another node a moment ago) reads the bucket itself.
"""

from __future__ import annotations

import contextlib

import msgspec

from userstream.accounts import Account, new_credentials
from userstream.bus.nats import kv
from userstream.bus.nats.connection import NatsConnection
from userstream.exceptions import UserStreamError

BUCKET = "userstream_accounts"
SEQ_KEY = "seq"
CAS_ATTEMPTS = 64


class _Stored(msgspec.Struct, frozen=True, rename="camel"):
    id: int
    name: str
    api_key: str
    secret_key: str
    created_ms: int


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Stored).decode


class NatsAccountStore:
    """`AccountStore` on JetStream KV, shared by every node that opens the same bucket."""

    def __init__(self, connection: NatsConnection, bucket: str = BUCKET) -> None:
        self._connection = connection
        self._bucket_name = bucket
        self._bucket: kv.Bucket | None = None
        self._by_id: dict[int, Account] = {}
        self._by_api_key: dict[str, Account] = {}
        self._watch: kv.Watch | None = None

    async def open(self) -> None:
        self._bucket = await kv.open_bucket(
            self._connection.js, self._bucket_name, self._connection.replicas
        )
        self._watch = kv.Watch(self._bucket.kv, self._apply_entry)
        await self._watch.open()
        self._connection.on_reconnect(self._watch.restart)

    async def aclose(self) -> None:
        if self._watch is not None:
            await self._watch.aclose()

    @property
    def bucket(self) -> kv.Bucket:
        assert self._bucket is not None, "open() first"
        return self._bucket

    async def create(self, name: str, now_ms: int) -> Account:
        account_id = await self._next_id()
        api_key, secret_key = new_credentials()
        account = Account(account_id, name, api_key, secret_key)
        stored = _Stored(account_id, name, api_key, secret_key, now_ms)
        await kv.cas_put(self.bucket, f"id.{account_id}", _encode(stored), 0)
        await kv.cas_put(self.bucket, f"key.{api_key}", str(account_id).encode(), 0)
        self._remember(account)
        return account

    async def _next_id(self) -> int:
        for _ in range(CAS_ATTEMPTS):
            entry = await kv.read(self.bucket, SEQ_KEY)
            last = int(entry.value) if entry.value else 0
            with contextlib.suppress(kv.Conflict):
                await kv.cas_put(self.bucket, SEQ_KEY, str(last + 1).encode(), entry.revision)
                return last + 1
        raise UserStreamError("could not allocate an account id (too much contention)")

    async def by_api_key(self, api_key: str) -> Account | None:
        account = self._by_api_key.get(api_key)
        if account is not None or not kv.valid_key(api_key):
            return account
        entry = await kv.read(self.bucket, f"key.{api_key}")
        if entry.value is None or not entry.value.isdigit():
            return None
        return await self.by_id(int(entry.value))

    async def by_id(self, account_id: int) -> Account | None:
        account = self._by_id.get(account_id)
        if account is not None or account_id < 0:
            return account
        entry = await kv.read(self.bucket, f"id.{account_id}")
        if entry.value is None:
            return None
        account = self._account(entry.value)
        if account is not None:
            self._remember(account)
        return account

    def all(self) -> list[Account]:
        return [self._by_id[account_id] for account_id in sorted(self._by_id)]

    def __len__(self) -> int:
        return len(self._by_id)

    def _remember(self, account: Account) -> None:
        self._by_id[account.id] = account
        self._by_api_key[account.api_key] = account

    @staticmethod
    def _account(value: bytes) -> Account | None:
        try:
            stored = _decode(value)
        except msgspec.DecodeError:
            return None
        return Account(stored.id, stored.name, stored.api_key, stored.secret_key)

    def _apply_entry(self, entry: kv.Entry) -> None:
        if entry.key.startswith("id.") and entry.value:
            account = self._account(entry.value)
            if account is not None:
                self._remember(account)
