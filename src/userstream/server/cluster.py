"""A gateway node in distributed mode: what one `serve --bus nats://...` adds (issue #4).

    KeyStore.on_change ─┐                   ┌─► ListenKeyService (deadline timers, announcements)
    reconcile loop ─────┼─► ClusterNode ────┤
    StreamGateway ──────┘  (watched keys)   └─► EventBus.follow / unfollow (per account)

- **Routing.** A listenKey is *watched* while a local connection subscribes to it. The node
  resolves it to its account through the shared key store's cache (or, on a miss, one
  authoritative read) and follows that account on the bus while at least one live watched
  key belongs to it. A worker brings the followed set to the wanted set and retries after
  bus errors, so follow and unfollow never race each other.
- **Expiry and close everywhere.** Every node computes deadlines locally from the shared
  record: a change notification (issue, keepalive, end) on any node reaches every node, which
  reschedules or announces. At a deadline the node reads the shared record before announcing,
  so a keepalive it was not told about still counts. Each connection gets exactly one
  `listenKeyExpired`: a key's end is announced once per node while it is watched.
- **Reconciliation.** Notifications are not trusted alone: every `reconcile_interval_s`, and
  after the NATS connection comes back, the node re-reads every watched key and announces the
  ends it missed, resolves keys it could not resolve before and rebuilds timers.

The node works on the `KeyStore` and `EventBus` protocols only; what is NATS-specific (and
the virtual time shared across nodes) lives in `bus/nats/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable
from dataclasses import dataclass

from userstream.bus.base import EventBus, KeyStore
from userstream.clock import Clock
from userstream.exceptions import UserStreamError
from userstream.protocol.listenkeys import ListenKey
from userstream.server.keys import ListenKeyService

log = logging.getLogger(__name__)

DEFAULT_RECONCILE_INTERVAL_S = 10.0
FOLLOW_RETRY_S = 0.25


class KeyState(enum.Enum):
    UNRESOLVED = "unresolved"  # watched, not (yet) known to be a live key
    LIVE = "live"  # watched, live, its account followed
    ENDED = "ended"  # watched, its end announced here


@dataclass(slots=True)
class Watched:
    state: KeyState
    record: ListenKey | None = None


class ClusterNode:
    """Routing, expiry and reconciliation for one gateway node; see the module docstring.

    It is the gateway's `KeyWatcher` and the listenKey service's `EndArbiter`: build it first,
    hand it to both, then `start(keys)` with the service.
    """

    def __init__(
        self,
        store: KeyStore,
        bus: EventBus,
        clock: Clock,
        reconcile_interval_s: float = DEFAULT_RECONCILE_INTERVAL_S,
    ) -> None:
        self._keys: ListenKeyService | None = None
        self._store = store
        self._bus = bus
        self._clock = clock
        self._interval = reconcile_interval_s
        self._watched: dict[str, Watched] = {}
        self._wanted: dict[int, int] = {}  # account -> live watched keys
        self.followed: set[int] = set()
        self._follow_dirty = asyncio.Event()
        self._reconcile_now = asyncio.Event()
        self._tasks: set[asyncio.Task[object]] = set()
        self.reconciled = 0
        self.missed_ends = 0
        store.on_change(self._changed)

    # lifecycle

    def start(self, keys: ListenKeyService) -> None:
        """Serve `keys` (built with this node as its arbiter): its timers follow what this
        node learns, and the ends it missed are announced through it."""
        self._keys = keys
        self._spawn(self._follow_worker(), "cluster-follow")
        self._spawn(self._reconcile_loop(), "cluster-reconcile")

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _spawn(self, work: Awaitable[object], name: str) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reconnected(self) -> None:
        """After the backend reconnects: change notifications may have been lost."""
        self.reconcile_soon()

    @property
    def _service(self) -> ListenKeyService:
        if self._keys is None:
            raise UserStreamError("the cluster node was not started")
        return self._keys

    def reconcile_soon(self) -> None:
        """Re-read every watched key now (after a reconnect, notifications may be lost)."""
        self._reconcile_now.set()

    def snapshot(self) -> dict[str, int]:
        states = [w.state for w in self._watched.values()]
        return {
            "watchedKeys": len(states),
            "unresolvedKeys": states.count(KeyState.UNRESOLVED),
            "following": len(self.followed),
            "reconciled": self.reconciled,
            "missedEnds": self.missed_ends,
        }

    # KeyWatcher (the gateway)

    def key_watched(self, listen_key: str) -> None:
        watched = self._watched[listen_key] = Watched(KeyState.UNRESOLVED)
        record = self._store.get(listen_key)
        if record is not None and record.alive(self._clock.now_ms()):
            self._go_live(listen_key, watched, record)
        else:
            self._spawn(self._resolve(listen_key), "cluster-resolve")

    def key_unwatched(self, listen_key: str) -> None:
        watched = self._watched.pop(listen_key, None)
        if watched is not None and watched.state is KeyState.LIVE:
            assert watched.record is not None
            self._release(watched.record.account_id)

    async def _resolve(self, listen_key: str) -> None:
        with contextlib.suppress(Exception):  # NATS down: reconciliation retries
            record = await self._store.fetch(listen_key)
            watched = self._watched.get(listen_key)
            now = self._clock.now_ms()
            unresolved = watched is not None and watched.state is KeyState.UNRESOLVED
            if unresolved and record is not None and record.alive(now):
                assert watched is not None
                self._go_live(listen_key, watched, record)

    def _go_live(self, listen_key: str, watched: Watched, record: ListenKey) -> None:
        watched.state = KeyState.LIVE
        watched.record = record
        self._wanted[record.account_id] = self._wanted.get(record.account_id, 0) + 1
        self._follow_dirty.set()
        self._service.watch(record)

    def _release(self, account_id: int) -> None:
        left = self._wanted.get(account_id, 0) - 1
        if left > 0:
            self._wanted[account_id] = left
        else:
            self._wanted.pop(account_id, None)
        self._follow_dirty.set()

    # announcements (ListenKeyService asks before each one)

    def may_announce(self, listen_key: str) -> bool:
        watched = self._watched.get(listen_key)
        if watched is None:
            return True  # nobody here to tell; the service only counts it
        if watched.state is KeyState.ENDED:
            return False
        if watched.state is KeyState.LIVE:
            assert watched.record is not None
            self._release(watched.record.account_id)
        watched.state = KeyState.ENDED
        return True

    # change notifications (any node, this one included)

    def _changed(self, listen_key: str, record: ListenKey | None) -> None:
        watched = self._watched.get(listen_key)
        if watched is None or watched.state is KeyState.ENDED:
            return
        if record is not None:
            if watched.state is KeyState.UNRESOLVED:
                if record.alive(self._clock.now_ms()):
                    self._go_live(listen_key, watched, record)
                return
            watched.record = record  # the service rescheduled the deadline
            return
        if watched.state is KeyState.LIVE:
            self._service.announce_end(listen_key, self._end_time(watched))

    def end_time(self, listen_key: str) -> int:
        watched = self._watched.get(listen_key)
        return self._end_time(watched) if watched is not None else self._clock.now_ms()

    def _end_time(self, watched: Watched) -> int:
        """An end past the last known deadline is that deadline's expiry, else a close now."""
        now = self._clock.now_ms()
        if watched.record is not None and watched.record.expires_ms <= now:
            return watched.record.expires_ms
        return now

    # reconciliation

    async def reconcile(self) -> None:
        """Re-read every watched key; announce the ends this node was not told about."""
        for listen_key, watched in list(self._watched.items()):
            if watched.state is not KeyState.ENDED:
                record = await self._store.fetch(listen_key)
                if self._watched.get(listen_key) is watched:
                    self._reconcile_one(listen_key, watched, record)
        self.reconciled += 1

    def _reconcile_one(self, listen_key: str, watched: Watched, record: ListenKey | None) -> None:
        now = self._clock.now_ms()
        alive = record is not None and record.alive(now)
        if watched.state is KeyState.UNRESOLVED:
            if record is not None and alive:
                self._go_live(listen_key, watched, record)
        elif watched.state is KeyState.LIVE:
            if record is None or not alive:
                self.missed_ends += 1
                end_ms = record.expires_ms if record is not None else self._end_time(watched)
                self._service.announce_end(listen_key, end_ms)
            elif watched.record is None or record.expires_ms != watched.record.expires_ms:
                watched.record = record
                self._service.watch(record)

    async def _reconcile_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reconcile_now.wait(), self._interval)
            self._reconcile_now.clear()
            try:
                await self.reconcile()
            except Exception as error:
                log.info("reconciliation postponed: %s", error)

    # following

    async def _follow_worker(self) -> None:
        while True:
            await self._follow_dirty.wait()
            self._follow_dirty.clear()
            try:
                for account_id in [a for a in self._wanted if a not in self.followed]:
                    await self._bus.follow(account_id)
                    self.followed.add(account_id)
                for account_id in [a for a in self.followed if a not in self._wanted]:
                    await self._bus.unfollow(account_id)
                    self.followed.discard(account_id)
            except Exception as error:
                log.warning("follow/unfollow failed, retrying: %s", error)
                self._follow_dirty.set()
                await asyncio.sleep(FOLLOW_RETRY_S)
