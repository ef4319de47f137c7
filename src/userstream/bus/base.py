"""The narrow interfaces behind which the embedded and distributed backends sit.

The embedded default implements them with memory and SQLite (`bus/memory.py`,
`accounts.SqliteAccountStore`; the `AccountStore` protocol lives in `accounts.py` beside the
`Account` record and is re-exported here); the distributed one with NATS JetStream
(`bus/nats/`). `Backends.open` (`bus/backends.py`) chooses and opens one set; the server and
one contract suite (`tests/contract/`) work with either.

Lifecycle: `await x.open()` before use, `await x.aclose()` when done (no-ops for the embedded
backends, which are ready on construction).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from userstream.accounts import AccountStore
from userstream.clock import ManualClock
from userstream.protocol.codec import Deliverable
from userstream.protocol.listenkeys import ListenKey

EventHandler = Callable[[int, Sequence[Deliverable]], None]
"""`(account_id, events)`: a batch as published, models or `EncodedEvent`s; a backend that
carries batches as bytes (NATS) hands `EncodedEvent`s to its handlers."""
KeyChangeHandler = Callable[[str, ListenKey | None], None]
"""`(listen_key, record)`: issued or extended anywhere (the new record), or ended (None)."""


class KeyStore(Protocol):
    """listenKeys by account, one active key per account (spec §2.3), shared by every node
    that uses the same backend.

    `get`/`active`/`all` are synchronous reads of a local cache that the backend keeps
    current; `on_change` handlers see every change made by any node, this one included, in
    the order the backend applied them. Each ended key is reported (`None`) once per store.
    """

    async def open(self) -> None:
        """Connect and load the current keys into the cache; `on_change` fires from here on."""
        ...

    async def aclose(self) -> None: ...

    async def start(self, account_id: int, now_ms: int) -> ListenKey:
        """Issue a key, or extend and return the account's live one."""
        ...

    async def keepalive(self, account_id: int, now_ms: int) -> ListenKey:
        """Extend the live key; raise `ListenKeyNotFound` when there is none."""
        ...

    async def close(self, account_id: int, now_ms: int) -> ListenKey:
        """Invalidate the live key and return it; raise `ListenKeyNotFound` when there is none."""
        ...

    async def end(self, listen_key: str) -> ListenKey | None:
        """Invalidate a key by name (expiry or fault injection); None if it was not live or
        changed (was extended or replaced) since this store last saw it."""
        ...

    async def fetch(self, listen_key: str) -> ListenKey | None:
        """The authoritative record (None when ended), refreshing the cache with it; for a
        node that may have missed a change."""
        ...

    def on_change(self, handler: KeyChangeHandler) -> None:
        """Call `handler(key, record)` for every change made by any node, this one included:
        the new record when issued or extended, None when closed or ended."""
        ...

    def get(self, listen_key: str) -> ListenKey | None:
        """The key's current record (live or past its deadline but not yet ended)."""
        ...

    def active(self, account_id: int, now_ms: int) -> ListenKey | None: ...

    def all(self) -> list[ListenKey]: ...


class EventBus(Protocol):
    """Carries accepted account events to the gateways, in acceptance order per account.

    A gateway calls `follow(account_id)` for each account it serves; once `follow` returns,
    every batch accepted for that account from then on reaches `subscribe`'s handlers, in
    acceptance order, each once, until `unfollow`. A backend may deliver more than was
    followed (the memory bus delivers everything); handlers ignore accounts they do not serve.
    """

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    def subscribe(self, handler: EventHandler) -> None: ...

    async def follow(self, account_id: int) -> None: ...

    async def unfollow(self, account_id: int) -> None: ...

    def publish(
        self, account_id: int, events: Sequence[Deliverable], msg_id: str | None = None
    ) -> Awaitable[None]:
        """Accept a batch; it is stored (as durably as the backend stores) when the awaitable
        returns. A batch whose `msg_id` was accepted recently (the backend's duplicate
        window: the last 100,000 ids in memory, two minutes on JetStream) is acknowledged and
        dropped, so a producer retries a publish with the same id without a second delivery."""
        ...


ClockStep = Callable[[int], Awaitable[None]]
"""`apply(now_ms)`: move this node's virtual clock to one step and fire what is due."""


class SharedClock(Protocol):
    """Virtual time shared by every node on the same backend (`--clock virtual`)."""

    async def join(self, clock: ManualClock, apply: ClockStep) -> None:
        """Follow the shared time with `clock`, calling `apply` for each step."""
        ...

    async def advance(self, ms: int, step_ms: int) -> None:
        """Move every node forward; return once this node has applied every step."""
        ...

    async def aclose(self) -> None: ...


__all__ = [
    "AccountStore",
    "ClockStep",
    "Deliverable",
    "EventBus",
    "EventHandler",
    "KeyChangeHandler",
    "KeyStore",
    "SharedClock",
]
