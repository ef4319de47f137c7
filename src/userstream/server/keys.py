"""listenKey operations shared by REST and the WebSocket API, with expiry on the clock.

Timers and announcements follow the key store's change notifications, so a key issued,
extended or closed on another node (a shared store) is handled here exactly like a local one:

- a key issued or extended anywhere schedules a timer at its deadline; when it fires and the
  key was not extended meanwhile, each local connection subscribed to the key receives
  `{"e":"listenKeyExpired","E":<deadline>,"listenKey":K}` (spec §5.1, §2.3) and the key ends;
- a key ended anywhere (DELETE, `userDataStream.stop`, another node's deadline, the backend's
  own TTL) is announced at once with `E` = now, unless this node announced it already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from userstream.accounts import Account, AccountStore, looks_like_api_key
from userstream.bus.base import KeyStore
from userstream.protocol import errors
from userstream.protocol.codec import make_listen_key_expired
from userstream.protocol.listenkeys import ListenKey
from userstream.server.gateway import StreamGateway
from userstream.server.logs import prefix
from userstream.server.scheduler import Scheduler

log = logging.getLogger(__name__)


class EndArbiter(Protocol):
    """Decides, for a key store shared by several nodes, which ends this node announces.

    Given to `ListenKeyService`, it changes three things: a deadline is checked against the
    shared record before it is announced (a keepalive on another node may not have reached
    this node's cache yet); an end reported by the store carries `end_time(key)` as `E`; and
    an end is announced to local connections only when `may_announce(key)` agrees.
    """

    def may_announce(self, listen_key: str) -> bool: ...

    def end_time(self, listen_key: str) -> int: ...


class ListenKeyService:
    def __init__(
        self,
        accounts: AccountStore,
        store: KeyStore,
        gateway: StreamGateway,
        scheduler: Scheduler,
        arbiter: EndArbiter | None = None,
    ) -> None:
        self.accounts = accounts
        self.store = store
        self._gateway = gateway
        self._scheduler = scheduler
        self._clock = scheduler.clock
        self._arbiter = arbiter
        self._pending: set[asyncio.Task[object]] = set()
        self._announced: set[str] = set()  # ended here, the store's end not yet seen
        self.expired = 0
        # Keys that are not an account's own (the venue's registered Ed25519 keys).
        self.other_keys: Callable[[str], Awaitable[Account | None]] | None = None
        store.on_change(self._changed)

    async def authenticate(self, api_key: str | None) -> Account:
        """The account of an `X-MBX-APIKEY` / `apiKey`: -2014 if malformed, -2015 if unknown."""
        if not api_key or not looks_like_api_key(api_key):
            raise errors.api_key_format_invalid()
        account = await self.accounts.by_api_key(api_key)
        if account is None and self.other_keys is not None:
            account = await self.other_keys(api_key)
        if account is None:
            raise errors.api_key_rejected()
        return account

    def restore(self) -> None:
        """Schedule the deadlines of keys that survived a restart."""
        for record in self.store.all():
            self.watch(record)

    async def start(self, account: Account) -> ListenKey:
        record = await self.store.start(account.id, self._clock.now_ms())
        log.info("listenKey %s started for account %d", prefix(record.key), account.id)
        return record

    async def keepalive(self, account: Account) -> ListenKey:
        record = await self.store.keepalive(account.id, self._clock.now_ms())
        log.info("listenKey %s kept alive for account %d", prefix(record.key), account.id)
        return record

    async def close(self, account: Account) -> ListenKey:
        """DELETE: the store reports the end (to every node), which announces it."""
        record = await self.store.close(account.id, self._clock.now_ms())
        log.info("listenKey %s closed for account %d", prefix(record.key), account.id)
        return record

    async def expire_now(self, listen_key: str) -> ListenKey | None:
        """Fault injection: end a key as if its 60 minutes had run out."""
        record = self.store.get(listen_key)
        if record is None:
            return None
        self._end_here(listen_key, self._clock.now_ms())
        await self.store.end(listen_key)
        return record

    def _changed(self, listen_key: str, record: ListenKey | None) -> None:
        if record is not None:
            self._announced.discard(listen_key)  # extended after all (a race with a deadline)
            self.watch(record)
        elif listen_key in self._announced:
            self._announced.discard(listen_key)
        elif self._arbiter is not None:
            self.announce_end(listen_key, self._arbiter.end_time(listen_key))
        else:
            self.announce_end(listen_key, self._clock.now_ms())

    def watch(self, record: ListenKey) -> None:
        """Schedule the key's deadline (again, after an extension this node may have missed)."""
        self._scheduler.call_at(record.expires_ms, lambda due: self._deadline(record.key, due))

    def _deadline(self, listen_key: str, due_ms: int) -> None:
        record = self.store.get(listen_key)
        if record is None or record.expires_ms > due_ms or listen_key in self._announced:
            return  # ended already, or extended since this timer was set
        if self._arbiter is not None:
            self._spawn(self._check(listen_key, due_ms))
            return
        self._end_here(listen_key, due_ms)
        self._spawn(self.store.end(listen_key))

    def _spawn(self, work: Awaitable[object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _check(self, listen_key: str, due_ms: int) -> None:
        """A shared store's deadline: the authoritative record decides, not this cache."""
        try:
            record = await self.store.fetch(listen_key)
        except Exception as error:  # cut off from the backend: reconciliation decides later
            log.info("deadline of %s unverified (%s); left to reconciliation", listen_key, error)
            return
        if record is not None and record.expires_ms > due_ms:
            return  # extended on another node; its change schedules the new deadline
        self._end_here(listen_key, due_ms)
        if record is not None:
            with contextlib.suppress(Exception):
                await self.store.end(listen_key)

    def _end_here(self, listen_key: str, event_time_ms: int) -> None:
        """Announce an end this node decided; the store's report of it is then not repeated."""
        self._announced.add(listen_key)
        log.info("listenKey %s expired", prefix(listen_key))
        self.announce_end(listen_key, event_time_ms)

    def announce_end(self, listen_key: str, event_time_ms: int) -> None:
        """Send `listenKeyExpired` to the key's local connections (if the arbiter agrees)."""
        if self._arbiter is not None and not self._arbiter.may_announce(listen_key):
            return
        self.expired += 1
        self._gateway.deliver(listen_key, [make_listen_key_expired(listen_key, event_time_ms)])

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
