"""The narrow interfaces behind which the embedded and distributed backends sit.

The embedded default implements them with memory and SQLite (`bus/memory.py`); a distributed
backend implements the same methods, so the server and one contract suite work with either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from userstream.protocol.events import Event
from userstream.protocol.listenkeys import ListenKey

EventHandler = Callable[[int, Sequence[Event]], None]
KeyChangeHandler = Callable[[str, ListenKey | None], None]
"""`(listen_key, record)`: issued or extended anywhere (the new record), or ended (None)."""


class KeyStore(Protocol):
    """listenKeys by account, one active key per account (spec §2.3)."""

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
        """Invalidate a key by name (expiry or fault injection); None if it was not live."""
        ...

    def get(self, listen_key: str) -> ListenKey | None:
        """The key's current record (live or past its deadline but not yet ended)."""
        ...

    def active(self, account_id: int, now_ms: int) -> ListenKey | None: ...

    def all(self) -> list[ListenKey]: ...


class EventBus(Protocol):
    """Carries accepted account events to the gateway, in acceptance order per account."""

    def subscribe(self, handler: EventHandler) -> None: ...

    def publish(self, account_id: int, events: Sequence[Event]) -> Awaitable[None]: ...


class SharedKeyStore(KeyStore, Protocol):
    """A KeyStore shared by several gateway nodes (distributed mode, issue #4).

    `get`/`active`/`all` read a local cache that `on_change` keeps current; a node that may
    have missed a change asks `fetch`, which reads the shared store itself.
    """

    def on_change(self, handler: KeyChangeHandler) -> None:
        """Call `handler` for every change made by any node, this one included."""
        ...

    async def fetch(self, listen_key: str) -> ListenKey | None:
        """The authoritative record (None when ended), refreshing the cache with it."""
        ...


class FollowingEventBus(EventBus, Protocol):
    """An EventBus that carries only the accounts a node follows (distributed mode).

    `follow` returns once events accepted from then on will reach `subscribe`'s handlers;
    events of one account reach the handlers in acceptance order, each once.
    """

    async def follow(self, account_id: int) -> None: ...

    async def unfollow(self, account_id: int) -> None: ...
