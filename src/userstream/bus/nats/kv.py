"""Compare-and-set writes and a cache-feeding watch on JetStream key-value buckets.

The client library's `KeyValue.update` has no per-message TTL and its `get` does not treat
the server's TTL markers (2.11+) as deletions, so writes here publish to the bucket's subjects
with the headers themselves: `Nats-Expected-Last-Subject-Sequence` for compare-and-set,
`Nats-TTL` for a per-key lifetime, `KV-Operation: DEL` for a delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

WRONG_LAST_SEQUENCE = (10071, 10164)
DELETE_OPERATIONS = ("DEL", "PURGE")
MARKER_REASON = "Nats-Marker-Reason"
WATCH_READY_S = 30.0
# How long a KV operation rides out a stream-leader election (a cluster member lost) or a
# reconnect before the error reaches the caller (a REST/WS API request then fails).
TRANSIENT_WINDOW_S = 6.0
TRANSIENT_ERRORS = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.NoStreamResponseError,  # the JetStream client's form of "no responders"
)
T = TypeVar("T")
_KEY = re.compile(r"[-/_=.a-zA-Z0-9]+")


class Conflict(Exception):
    """The key changed since the revision a compare-and-set expected; re-read and retry."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One bucket key's latest state: `value` None when deleted, `revision` 0 when never set."""

    key: str
    value: bytes | None
    revision: int


EXPECTED_LAST = "Nats-Expected-Last-Subject-Sequence"


@dataclass(frozen=True, slots=True)
class Bucket:
    js: JetStreamContext
    kv: KeyValue
    name: str

    @property
    def stream(self) -> str:
        return f"KV_{self.name}"

    def subject(self, key: str) -> str:
        return f"$KV.{self.name}.{key}"


async def open_bucket(
    js: JetStreamContext, name: str, replicas: int, marker_ttl_s: float | None = None
) -> Bucket:
    """The bucket, created when missing (history 1, file storage, per-message TTL allowed)."""
    return Bucket(js, await _key_value(js, name, replicas, marker_ttl_s), name)


async def _key_value(
    js: JetStreamContext, name: str, replicas: int, marker_ttl_s: float | None
) -> KeyValue:
    try:
        return await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        pass
    config = api.KeyValueConfig(
        bucket=name,
        history=1,
        replicas=replicas,
        storage=api.StorageType.FILE,
        limit_marker_ttl=marker_ttl_s,
    )
    try:
        return await js.create_key_value(config)
    except nats.js.errors.BadRequestError:  # created by another node meanwhile
        return await js.key_value(name)


async def _retrying(operation: Callable[[], Awaitable[T]]) -> T:
    """Run `operation`, retrying transient failures with backoff for `TRANSIENT_WINDOW_S`.

    Safe for compare-and-set writes: if a write landed but its acknowledgement was lost, the
    retry fails the revision check (`Conflict`) and the caller re-reads, as after any race.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TRANSIENT_WINDOW_S
    delay = 0.05
    while True:
        try:
            return await operation()
        except TRANSIENT_ERRORS as error:
            if loop.time() + delay > deadline:
                raise
            log.info("KV operation failed (%s); retrying", type(error).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


async def cas_put(
    bucket: Bucket, key: str, value: bytes, last: int, ttl_s: int | None = None
) -> int:
    """Write `value` iff the key's latest revision is `last` (0: absent); the new revision."""
    headers = {EXPECTED_LAST: str(last)}
    try:
        ack = await _retrying(
            lambda: bucket.js.publish(bucket.subject(key), value, headers=headers, msg_ttl=ttl_s)
        )
    except nats.js.errors.APIError as error:
        if error.err_code in WRONG_LAST_SEQUENCE:
            raise Conflict(key) from None
        raise
    return ack.seq


async def cas_delete(bucket: Bucket, key: str, last: int) -> int:
    """Delete iff the key's latest revision is `last`; the delete marker's revision."""
    headers = {"KV-Operation": "DEL", EXPECTED_LAST: str(last)}
    try:
        ack = await _retrying(lambda: bucket.js.publish(bucket.subject(key), b"", headers=headers))
    except nats.js.errors.APIError as error:
        if error.err_code in WRONG_LAST_SEQUENCE:
            raise Conflict(key) from None
        raise
    return ack.seq


async def read(bucket: Bucket, key: str) -> Entry:
    """The authoritative latest state of `key` (one round trip to the stream leader)."""
    try:
        msg = await _retrying(lambda: bucket.js.get_last_msg(bucket.stream, bucket.subject(key)))
    except nats.js.errors.NotFoundError:
        return Entry(key, None, 0)
    headers = msg.headers or {}
    deleted = headers.get("KV-Operation") in DELETE_OPERATIONS or MARKER_REASON in headers
    return Entry(key, None if deleted else (msg.data or b""), msg.seq or 0)


def valid_key(key: str) -> bool:
    """Whether `key` can name a bucket entry (the client validates before publishing)."""
    return bool(key) and key[0] != "." and key[-1] != "." and _KEY.fullmatch(key) is not None


def to_entry(update: KeyValue.Entry) -> Entry:
    deleted = update.operation in DELETE_OPERATIONS
    return Entry(update.key, None if deleted else (update.value or b""), update.revision or 0)


class Watch:
    """Feeds every update of a bucket to `apply`, in revision order, from the latest value of
    each key on; `open()` returns once the initial values are applied.

    The underlying ordered consumer recovers from gaps and reconnects by itself; the caller
    re-reads everything (`snapshot`) after a reconnect to catch what a recreated consumer
    cannot see (keys whose messages expired while it was away).
    """

    def __init__(self, kv: KeyValue, apply: Callable[[Entry], None]) -> None:
        self._kv = kv
        self._apply = apply
        self._task: asyncio.Task[None] | None = None
        self._watcher: KeyValue.KeyWatcher | None = None

    async def open(self) -> None:
        watcher = await self._kv.watchall(inactive_threshold=60.0)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watcher = watcher
        self._task = asyncio.ensure_future(self._run(watcher, ready))
        await asyncio.wait_for(ready, WATCH_READY_S)

    async def restart(self) -> None:
        """A fresh watch (after a reconnect: the server may have lost the old consumer); the
        latest value of every key is applied again, older revisions are ignored by `apply`.
        Retries until the server answers."""
        await self.aclose()
        for attempt in itertools.count():
            try:
                await self.open()
                return
            except Exception as error:
                log.info("watch not restarted yet: %s", error)
                await self.aclose()
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))

    async def _run(self, watcher: KeyValue.KeyWatcher, ready: asyncio.Future[None]) -> None:
        async for update in watcher:
            if update is None:
                if not ready.done():
                    ready.set_result(None)
                continue
            try:
                self._apply(to_entry(update))
            except Exception:
                log.exception("applying %s failed", update.key)

    async def aclose(self) -> None:
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._watcher = self._task = None


async def snapshot(kv: KeyValue) -> list[Entry]:
    """The latest state of every key, deletions included, read with a fresh consumer."""
    watcher = await kv.watchall()
    entries: list[Entry] = []
    try:
        while True:
            update = await watcher.updates(timeout=10.0)  # type: ignore[no-untyped-call]
            if update is None:
                break
            entries.append(to_entry(update))
            if update.delta == 0:
                break
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()  # type: ignore[no-untyped-call]
    return entries
