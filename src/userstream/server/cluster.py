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
- **Virtual time across nodes** (`--clock virtual`): the clock's value lives in the JetStream
  key-value bucket `userstream_clock` and each step is also published on `userstream.clock`.
  An admin advance on any node publishes its steps; every node (the advancing one too) moves
  its `ManualClock` to each step, fires its due timers and gives clients the same pong grace
  as the embedded server. A node joining later adopts the shared time; the clock only moves
  forward, so the nodes converge on the largest time any of them has seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from userstream.bus.base import AccountStore, EventBus, KeyStore
from userstream.clock import Clock, ManualClock
from userstream.protocol.listenkeys import ListenKey
from userstream.server.gateway import StreamGateway
from userstream.server.keys import ListenKeyService
from userstream.server.scheduler import Scheduler

log = logging.getLogger(__name__)

DEFAULT_RECONCILE_INTERVAL_S = 10.0
FOLLOW_RETRY_S = 0.25
CLOCK_BUCKET = "userstream_clock"
CLOCK_KEY = "now"
CLOCK_SUBJECT = "userstream.clock"


class SharedListenKeyService(ListenKeyService):
    """`ListenKeyService` for a key store shared by several nodes.

    A deadline is checked against the shared record before it is announced (a keepalive on
    another node may not have reached this node's cache yet); an end reported by the store
    carries the key's deadline as `E` when it had passed (an expiry decided elsewhere), else
    now (a close); and an end is announced to local connections only when `ClusterNode`
    agrees it was not announced here already.
    """

    def __init__(
        self,
        accounts: AccountStore,
        store: KeyStore,
        gateway: StreamGateway,
        scheduler: Scheduler,
    ) -> None:
        super().__init__(accounts, store, gateway, scheduler)
        self.may_announce: Callable[[str], bool] = lambda _key: True
        self.end_time: Callable[[str], int] = lambda _key: self._clock.now_ms()

    def watch(self, record: ListenKey) -> None:
        self._watch(record)

    def announce_end(self, listen_key: str, event_time_ms: int) -> None:
        self._announce_end(listen_key, event_time_ms)

    def _changed(self, listen_key: str, record: ListenKey | None) -> None:
        if record is None and listen_key not in self._announced:
            self._announce_end(listen_key, self.end_time(listen_key))
            return
        super()._changed(listen_key, record)

    def _deadline(self, listen_key: str, due_ms: int) -> None:
        record = self.store.get(listen_key)
        if record is None or record.expires_ms > due_ms or listen_key in self._announced:
            return
        task: asyncio.Task[object] = asyncio.ensure_future(self._check(listen_key, due_ms))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _check(self, listen_key: str, due_ms: int) -> None:
        try:
            record = await self.store.fetch(listen_key)
        except Exception as error:  # cut off from NATS: reconciliation decides after reconnect
            log.info("deadline of %s unverified (%s); left to reconciliation", listen_key, error)
            return
        if record is not None and record.expires_ms > due_ms:
            return  # extended on another node; its change schedules the new deadline
        self._end_here(listen_key, due_ms)
        if record is not None:
            with contextlib.suppress(Exception):
                await self.store.end(listen_key)

    def _announce_end(self, listen_key: str, event_time_ms: int) -> None:
        if self.may_announce(listen_key):
            super()._announce_end(listen_key, event_time_ms)


class KeyState(enum.Enum):
    UNRESOLVED = "unresolved"  # watched, not (yet) known to be a live key
    LIVE = "live"  # watched, live, its account followed
    ENDED = "ended"  # watched, its end announced here


@dataclass(slots=True)
class Watched:
    state: KeyState
    record: ListenKey | None = None


class ClusterNode:
    """Routing, expiry and reconciliation for one gateway node; see the module docstring."""

    def __init__(
        self,
        keys: SharedListenKeyService,
        store: KeyStore,
        bus: EventBus,
        gateway: StreamGateway,
        clock: Clock,
        reconcile_interval_s: float = DEFAULT_RECONCILE_INTERVAL_S,
    ) -> None:
        self._keys = keys
        self._store = store
        self._bus = bus
        self._gateway = gateway
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
        keys.may_announce = self._may_announce
        keys.end_time = self._end_time_of
        gateway.watcher = self
        store.on_change(self._changed)

    # lifecycle

    def start(self) -> None:
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
        self._keys.watch(record)

    def _release(self, account_id: int) -> None:
        left = self._wanted.get(account_id, 0) - 1
        if left > 0:
            self._wanted[account_id] = left
        else:
            self._wanted.pop(account_id, None)
        self._follow_dirty.set()

    # announcements (ListenKeyService asks before each one)

    def _may_announce(self, listen_key: str) -> bool:
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
            self._keys.announce_end(listen_key, self._end_time(watched))

    def _end_time_of(self, listen_key: str) -> int:
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
                self._keys.announce_end(listen_key, end_ms)
            elif watched.record is None or record.expires_ms != watched.record.expires_ms:
                watched.record = record
                self._keys.watch(record)

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


class ClockSync:
    """Virtual time shared by every node of a cluster; see the module docstring.

    `apply(now_ms)` moves this node's clock to one step and fires what is due (the server's
    own step routine); `advance()` is what the admin API calls on the node asked to advance.
    """

    def __init__(self, clock: ManualClock, apply: Callable[[int], Awaitable[None]]) -> None:
        self._clock = clock
        self._apply = apply
        self._nc: Any = None
        self._kv: Any = None
        self._targets: asyncio.Queue[int] = asyncio.Queue()
        self._applied = asyncio.Condition()
        self._worker: asyncio.Task[None] | None = None
        self._sub: Any = None

    async def start(self, nc: Any) -> None:
        """Join the shared clock on connection `nc` (nats-py): subscribe, then adopt or
        publish the shared time."""
        self._nc = nc
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="clock-sync")
        self._sub = await nc.subscribe(CLOCK_SUBJECT, cb=self._on_message)
        await self.sync()

    async def aclose(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _bucket(self) -> Any:
        if self._kv is None:
            js = self._nc.jetstream()
            try:
                self._kv = await js.key_value(CLOCK_BUCKET)
            except Exception:
                self._kv = await _create_bucket(js, CLOCK_BUCKET)
        return self._kv

    async def sync(self) -> None:
        """Adopt the shared time if it is ahead of ours, else publish ours (never backwards)."""
        shared = await self._read()
        local = self._clock.now_ms()
        if shared is not None and shared > local:
            self._targets.put_nowait(shared)
            await self._wait_applied(shared)
        elif shared is None or shared < local:
            await self._store(local)
            await self._nc.publish(CLOCK_SUBJECT, str(local).encode())

    async def _read(self) -> int | None:
        kv = await self._bucket()
        try:
            entry = await kv.get(CLOCK_KEY)
        except Exception:
            return None
        return int(entry.value) if entry.value else None

    async def _store(self, now_ms: int) -> None:
        """Raise the shared time to `now_ms` (compare-and-set, so it never goes backwards)."""
        kv = await self._bucket()
        for _ in range(100):
            try:
                entry = await kv.get(CLOCK_KEY)
            except Exception:
                entry = None
            try:
                if entry is None or not entry.value:
                    await kv.create(CLOCK_KEY, str(now_ms).encode())
                elif int(entry.value) < now_ms:
                    await kv.update(CLOCK_KEY, str(now_ms).encode(), last=entry.revision)
                return
            except Exception as error:  # lost a race with another node: read again
                log.debug("clock compare-and-set retried: %s", error)
        raise RuntimeError("the shared clock could not be updated")

    async def advance(self, ms: int, step_ms: int) -> None:
        """Advance every node: publish each step, return once this node has applied all."""
        target = self._clock.now_ms() + ms
        step_to = self._clock.now_ms()
        while step_to < target:
            step_to = min(step_to + step_ms, target)
            await self._store(step_to)
            await self._nc.publish(CLOCK_SUBJECT, str(step_to).encode())
            self._targets.put_nowait(step_to)
            await self._wait_applied(step_to)

    async def _wait_applied(self, now_ms: int) -> None:
        async with self._applied:
            await self._applied.wait_for(lambda: self._clock.now_ms() >= now_ms)

    async def _on_message(self, msg: Any) -> None:
        with contextlib.suppress(ValueError):
            self._targets.put_nowait(int(msg.data))

    async def _run(self) -> None:
        while True:
            target = await self._targets.get()
            if target > self._clock.now_ms():
                try:
                    await self._apply(target)
                except Exception:
                    log.exception("applying a clock step failed")
            async with self._applied:
                self._applied.notify_all()


async def _create_bucket(js: Any, name: str) -> Any:
    """A one-value bucket, replicated on up to three servers when the cluster has them."""
    from nats.js.api import KeyValueConfig

    for replicas in (3, 1):
        try:
            return await js.create_key_value(
                KeyValueConfig(bucket=name, history=1, replicas=replicas)
            )
        except Exception as error:
            last = error
    raise last
