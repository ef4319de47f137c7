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
import logging

from userstream.accounts import Account, AccountStore, looks_like_api_key
from userstream.bus.base import KeyStore
from userstream.protocol import errors
from userstream.protocol.codec import make_listen_key_expired
from userstream.protocol.listenkeys import ListenKey
from userstream.server.gateway import StreamGateway
from userstream.server.logs import prefix
from userstream.server.scheduler import Scheduler

log = logging.getLogger(__name__)


class ListenKeyService:
    def __init__(
        self,
        accounts: AccountStore,
        store: KeyStore,
        gateway: StreamGateway,
        scheduler: Scheduler,
    ) -> None:
        self.accounts = accounts
        self.store = store
        self._gateway = gateway
        self._scheduler = scheduler
        self._clock = scheduler.clock
        self._pending: set[asyncio.Task[object]] = set()
        self._announced: set[str] = set()  # ended here, the store's end not yet seen
        self.expired = 0
        store.on_change(self._changed)

    async def authenticate(self, api_key: str | None) -> Account:
        """The account of an `X-MBX-APIKEY` / `apiKey`: -2014 if malformed, -2015 if unknown."""
        if not api_key or not looks_like_api_key(api_key):
            raise errors.api_key_format_invalid()
        account = await self.accounts.by_api_key(api_key)
        if account is None:
            raise errors.api_key_rejected()
        return account

    def restore(self) -> None:
        """Schedule the deadlines of keys that survived a restart."""
        for record in self.store.all():
            self._watch(record)

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
            self._watch(record)
        elif listen_key in self._announced:
            self._announced.discard(listen_key)
        else:
            self._announce_end(listen_key, self._clock.now_ms())

    def _watch(self, record: ListenKey) -> ListenKey:
        self._scheduler.call_at(record.expires_ms, lambda due: self._deadline(record.key, due))
        return record

    def _deadline(self, listen_key: str, due_ms: int) -> None:
        record = self.store.get(listen_key)
        if record is None or record.expires_ms > due_ms or listen_key in self._announced:
            return  # ended already, or extended since this timer was set
        self._end_here(listen_key, due_ms)
        task: asyncio.Task[object] = asyncio.ensure_future(self.store.end(listen_key))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _end_here(self, listen_key: str, event_time_ms: int) -> None:
        """Announce an end this node decided; the store's report of it is then not repeated."""
        self._announced.add(listen_key)
        log.info("listenKey %s expired", prefix(listen_key))
        self._announce_end(listen_key, event_time_ms)

    def _announce_end(self, listen_key: str, event_time_ms: int) -> None:
        self.expired += 1
        self._gateway.deliver(listen_key, [make_listen_key_expired(listen_key, event_time_ms)])

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
