"""listenKeys in a JetStream key-value bucket, one entry per account, changed only by
compare-and-set on the entry's revision.

Layout (bucket `userstream_listenkeys`, history 1):

    a.<accountId>  ->  {"k": "<listenKey>", "x": <expires_ms>}      Nats-TTL: validity + margin

The account's entry is the single source of truth, so "one active key per account" is one
revision check: two nodes that POST for the same account at the same instant both read
revision R and write with `Nats-Expected-Last-Subject-Sequence: R`; JetStream accepts one,
the other gets a conflict, re-reads, finds the winner's live key and extends it instead, so
both return the same key. Keepalive is a CAS write of the extended record, DELETE a CAS
delete. No Python lock is involved, so the same holds across processes.

The by-key index is each node's cache (`get(key)`), built from the entries; a second bucket
entry per key would need a two-key transaction that JetStream does not have. Deadlines are
`expires_ms` in the record, on the node's `Clock` (virtual in tests); the per-message TTL
(real seconds: the time left plus `ttl_margin_s`) only collects entries that no node ended,
for example when every node was down at the deadline. The server then places a delete
marker (`limit_marker_ttl`), which every watcher sees as an end.

Every node keeps the whole bucket in its cache through a watch and reports each change to
`on_change` handlers in revision order; its own writes are applied (and reported) before the
call returns, and the watch's copy of them is then ignored by revision. After a reconnect
and every `reconcile_interval_s`, a full re-read repairs whatever the watch missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time

import msgspec

from userstream.bus.base import KeyChangeHandler
from userstream.bus.keycache import ListenKeyCache
from userstream.bus.nats import kv
from userstream.bus.nats.connection import NatsConnection
from userstream.protocol import errors
from userstream.protocol import listenkeys as rules
from userstream.protocol.listenkeys import ListenKey

log = logging.getLogger(__name__)

BUCKET = "userstream_listenkeys"
TTL_MARGIN_S = 300
MARKER_TTL_S = 3600.0
RECONCILE_INTERVAL_S = 30.0
CAS_ATTEMPTS = 16


class _Stored(msgspec.Struct, frozen=True):
    k: str
    x: int


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Stored).decode


def _entry_key(account_id: int) -> str:
    return f"a.{account_id}"


class NatsKeyStore:
    """`KeyStore` on JetStream KV, shared by every node that opens the same bucket."""

    def __init__(
        self,
        connection: NatsConnection,
        bucket: str = BUCKET,
        ttl_margin_s: int = TTL_MARGIN_S,
        reconcile_interval_s: float = RECONCILE_INTERVAL_S,
    ) -> None:
        self._connection = connection
        self._bucket_name = bucket
        self._bucket: kv.Bucket | None = None
        self._ttl_margin_s = ttl_margin_s
        self._interval = reconcile_interval_s
        self._cache = ListenKeyCache()
        self._revision: dict[int, int] = {}  # last applied revision per account, deletes too
        self._handlers: list[KeyChangeHandler] = []
        self._watch: kv.Watch | None = None
        self._reconciler: asyncio.Task[None] | None = None
        self.reconciled = 0
        self.repaired = 0

    # lifecycle

    async def open(self) -> None:
        self._bucket = await kv.open_bucket(
            self._connection.js, self._bucket_name, self._connection.replicas, MARKER_TTL_S
        )
        self._watch = kv.Watch(self._bucket.kv, self._apply_entry)
        await self._watch.open()
        self._connection.on_reconnect(self._reconnected)
        self._reconciler = asyncio.ensure_future(self._reconcile_loop())

    async def aclose(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
        if self._watch is not None:
            await self._watch.aclose()

    @property
    def bucket(self) -> kv.Bucket:
        assert self._bucket is not None, "open() first"
        return self._bucket

    # KeyStore

    def on_change(self, handler: KeyChangeHandler) -> None:
        self._handlers.append(handler)

    def get(self, listen_key: str) -> ListenKey | None:
        return self._cache.get(listen_key)

    def active(self, account_id: int, now_ms: int) -> ListenKey | None:
        return self._cache.active(account_id, now_ms)

    def all(self) -> list[ListenKey]:
        return self._cache.all()

    async def fetch(self, listen_key: str) -> ListenKey | None:
        cached = self._cache.get(listen_key)
        if cached is None:
            return None  # keys are never reused; an unknown one is not in the shared store
        record, _ = await self._read(cached.account_id)
        return record if record is not None and record.key == listen_key else None

    async def start(self, account_id: int, now_ms: int) -> ListenKey:
        record, revision = self._cached(account_id)
        for _ in range(CAS_ATTEMPTS):
            current = record if record is not None and record.alive(now_ms) else None
            issued = rules.issue(account_id, current, now_ms)
            try:
                await self._put(issued, revision, now_ms)
                return issued
            except kv.Conflict:
                record, revision = await self._read(account_id)
        raise errors.unknown_error()  # contention this high means a runaway writer

    async def keepalive(self, account_id: int, now_ms: int) -> ListenKey:
        record, revision = self._cached(account_id)
        for _ in range(CAS_ATTEMPTS):
            if record is None or not record.alive(now_ms):
                fresh, revision = await self._read(account_id)  # the cache may lag
                record = rules.require_live(fresh, now_ms)
            extended = record.extended(now_ms)
            try:
                await self._put(extended, revision, now_ms)
                return extended
            except kv.Conflict:
                record, revision = await self._read(account_id)
        raise errors.unknown_error()  # contention this high means a runaway writer

    async def close(self, account_id: int, now_ms: int) -> ListenKey:
        record, revision = self._cached(account_id)
        for _ in range(CAS_ATTEMPTS):
            if record is None or not record.alive(now_ms):
                fresh, revision = await self._read(account_id)  # the cache may lag
                record = rules.require_live(fresh, now_ms)
            try:
                await self._delete(account_id, revision)
                return record
            except kv.Conflict:
                record, revision = await self._read(account_id)
        raise errors.unknown_error()  # contention this high means a runaway writer

    async def end(self, listen_key: str) -> ListenKey | None:
        ending = self._cache.get(listen_key)
        if ending is None:
            return None
        record, revision = self._cached(ending.account_id)
        for _ in range(CAS_ATTEMPTS):
            if record != ending:
                return None  # ended, extended or replaced meanwhile
            try:
                await self._delete(ending.account_id, revision)
                return ending
            except kv.Conflict:
                record, revision = await self._read(ending.account_id)
        return None

    # reads and writes

    def _cached(self, account_id: int) -> tuple[ListenKey | None, int]:
        return self._cache.of_account(account_id), self._revision.get(account_id, 0)

    async def _read(self, account_id: int) -> tuple[ListenKey | None, int]:
        """The shared entry itself; applied to the cache (and reported) if newer."""
        entry = await kv.read(self.bucket, _entry_key(account_id))
        record = self._record(account_id, entry.value)
        self._apply(account_id, entry.revision, record)
        return record, entry.revision

    async def _put(self, record: ListenKey, last: int, now_ms: int) -> None:
        ttl_s = max(1, math.ceil((record.expires_ms - now_ms) / 1000)) + self._ttl_margin_s
        value = _encode(_Stored(record.key, record.expires_ms))
        key = _entry_key(record.account_id)
        revision = await kv.cas_put(self.bucket, key, value, last, ttl_s)
        self._apply(record.account_id, revision, record)

    async def _delete(self, account_id: int, last: int) -> None:
        revision = await kv.cas_delete(self.bucket, _entry_key(account_id), last)
        self._apply(account_id, revision, None)

    @staticmethod
    def _record(account_id: int, value: bytes | None) -> ListenKey | None:
        if not value:
            return None
        try:
            stored = _decode(value)
        except msgspec.DecodeError:
            log.warning("unreadable listenKey entry for account %s ignored", account_id)
            return None
        return ListenKey(account_id, stored.k, stored.x)

    def _apply_entry(self, entry: kv.Entry) -> None:
        prefix, _, tail = entry.key.partition(".")
        if prefix != "a" or not tail.isdigit():
            return
        account_id = int(tail)
        self._apply(account_id, entry.revision, self._record(account_id, entry.value))

    def _apply(self, account_id: int, revision: int, record: ListenKey | None) -> None:
        """Make the cache hold `record` at `revision` unless it holds a newer one; report."""
        if revision and revision <= self._revision.get(account_id, 0):
            return
        if revision:
            self._revision[account_id] = revision
        old = self._cache.set(account_id, record)
        if old is not None and (record is None or old.key != record.key):
            self._notify(old.key, None)
        if record is not None and record != old:
            self._notify(record.key, record)

    def _notify(self, listen_key: str, record: ListenKey | None) -> None:
        for handler in self._handlers:
            try:
                handler(listen_key, record)
            except Exception:
                log.exception("listenKey change handler failed")

    # reconciliation

    async def _reconnected(self) -> None:
        if self._watch is not None:
            await self._watch.restart()
        await self.reconcile()

    async def reconcile(self) -> None:
        """Re-read the whole bucket and repair the cache (reporting each repair)."""
        entries = await kv.snapshot(self.bucket.kv)
        seen: set[int] = set()
        for entry in entries:
            prefix, _, tail = entry.key.partition(".")
            if prefix != "a" or not tail.isdigit():
                continue
            account_id = int(tail)
            seen.add(account_id)
            if entry.revision > self._revision.get(account_id, 0):
                self.repaired += 1
                self._apply(account_id, entry.revision, self._record(account_id, entry.value))
        for account_id in [a for a in self._cache.accounts() if a not in seen]:
            # gone without a trace (expired and its marker collected while we were away)
            self.repaired += 1
            self._revision.pop(account_id, None)
            self._apply(account_id, 0, None)
        self.reconciled += 1

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            started = time.monotonic()
            try:
                await self.reconcile()
            except Exception as error:  # cut off: the reconnect handler re-reads
                log.info("listenKey reconciliation failed: %s", error)
            log.debug("listenKey reconciliation took %.3f s", time.monotonic() - started)
