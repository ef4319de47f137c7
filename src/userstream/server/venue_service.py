"""The venue on the server: the engine, its market, its events, its state on disk, API keys,
signed REST and the WebSocket API methods, and the admin operations around them.

Built once by `Server` from the opened backends:

- **Market.** With a served market (`serve --market`, the default on a real clock) the engine
  fills against that source and `MarketService.add_listener` hands it every advance. Without
  one, the engine prices against a synthetic source that is never advanced: a still book
  (MARKET orders fill at its prices, resting LIMIT orders wait), and GTD/countdown deadlines
  are checked once a second.
- **Events.** Every event the engine emits is published on the server's `EventBus`, the same
  intake the admin API uses.
- **State.** The engine's state is saved in the data folder's SQLite database
  (`server/venue_store.py`) at most every `SAVE_INTERVAL_S` after a change (longer when a
  save is slow, see `save`) and on shutdown, and restored on start. Saves are incremental
  (`venue/journal.py`): the final orders and trades since the last save, plus the open
  state. In distributed mode order entry is single-node: see docs/deployment.md.
- **Initial balance.** With `initial_balance`, an account is funded (ACCOUNT_UPDATE
  m=DEPOSIT) the first time the venue sees it, however it was created.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from userstream.accounts import AccountStore
from userstream.bus.base import EventBus
from userstream.clock import Clock
from userstream.exceptions import BinanceAPIError
from userstream.market.types import MarketSource, MarketUpdate
from userstream.protocol.codec import encode_events
from userstream.protocol.events import Event
from userstream.protocol.exchange_info import SymbolTable
from userstream.protocol.limits import OrderCountLimiter, OrderLimits, RequestWeightLimiter
from userstream.protocol.trading import SymbolRules
from userstream.server.algo import publish_force_orders
from userstream.server.apikeys import ApiKeys
from userstream.server.http import Request, Response
from userstream.server.market import MarketService, open_market_source
from userstream.server.scheduler import Scheduler
from userstream.server.trading import TradingApi
from userstream.server.venue_admin import VenueAdmin
from userstream.server.venue_store import SAVE_INTERVAL_S, VenueStore
from userstream.server.wsapi import VenueMethod, WsVenue
from userstream.storage import open_database
from userstream.venue import Command, Deposit, Engine, Outcome, Result, VenueError
from userstream.venue.journal import StateJournal

log = logging.getLogger(__name__)

TICK_INTERVAL_MS = 1000
SAVE_SHARE = 9  # wait 9x a save's duration before the next: saving takes <= 10% of the loop


class VenueService:
    def __init__(
        self,
        accounts: AccountStore,
        limiter: RequestWeightLimiter,
        clock: Clock,
        data_dir: Path | None,
        symbols: SymbolTable,
        bus: EventBus,
        scheduler: Scheduler,
        market: MarketService | None,
        initial_balance: Decimal | None = None,
        order_limits: OrderLimits | None = None,
    ) -> None:
        self._clock = clock
        self._bus = bus
        self._scheduler = scheduler
        self._market = market
        self.initial_balance = initial_balance
        self._db: sqlite3.Connection | None = (
            open_database(data_dir) if data_dir is not None else None
        )
        # The store has its own connection: its writes run on a worker thread.
        self._store = VenueStore(open_database(data_dir)) if data_dir is not None else None
        self._writing: asyncio.Future[None] | None = None
        source: MarketSource = (
            market.source
            if market is not None
            else open_market_source("synthetic", symbols, clock.now_ms())
        )
        traded = [s for s in symbols.symbols if s.symbol in set(source.symbols)]
        self.rules: Mapping[str, SymbolRules] = {
            s.symbol: SymbolRules(s.symbol, s.price_precision, s.quantity_precision) for s in traded
        }
        saved = self._store.load() if self._store is not None else None
        self.engine = Engine(traded, source, state=saved[0] if saved is not None else None)
        self._journal = StateJournal(
            self.engine.export_state(), stored=saved[1] if saved is not None else True
        )
        self._known: set[int] = set(self.engine.accounts())
        self._tasks: set[asyncio.Task[None]] = set()
        self._save_handle: asyncio.TimerHandle | None = None
        self._save_interval_s = SAVE_INTERVAL_S
        self._ticking = False
        self.api_keys = ApiKeys(accounts, self._db)
        self.trading = TradingApi(
            self.api_keys, limiter, OrderCountLimiter(order_limits or OrderLimits()), clock
        )
        if data_dir is None:
            self.trading.refusal = BinanceAPIError(
                -1000,
                "Order entry is single-node: trade on a server without --bus (docs/deployment.md).",
                503,
            )
        self.admin_routes = VenueAdmin(accounts, self.api_keys, clock)
        self.ws_methods: dict[str, VenueMethod] = {}
        self.ws = WsVenue(self.api_keys, self.ws_methods, self.trading.order_counts)
        # Imported here: the routes module builds on this service.
        from userstream.server.venue_routes import mount

        mount(self)

    def start(self) -> None:
        if self._market is not None:
            self._market.add_listener(self.on_market)
        else:
            self._ticking = True
            now = self._clock.now_ms()
            self._scheduler.call_at(now - now % TICK_INTERVAL_MS + TICK_INTERVAL_MS, self._tick)

    async def aclose(self) -> None:
        self._ticking = False
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        if self._writing is not None:
            with contextlib.suppress(Exception):  # reported by `_report_write`
                await self._writing
        if self._store is not None:
            self._store.save(self._journal.changes(), self._clock.now_ms())
            self._store.close()
            self._store = None
        if self._db is not None:
            self._db.close()
            self._db = None

    def clock_now(self) -> int:
        return self._clock.now_ms()

    # commands and events

    async def ensure(self, account_id: int, now_ms: int) -> None:
        """Fund an account the venue has not seen yet with the initial balance."""
        if account_id in self._known:
            return
        self._known.add(account_id)
        if self.initial_balance and account_id not in self.engine.accounts():
            deposit = Deposit(asset="USDT", amount=self.initial_balance)
            await self.execute(account_id, deposit, now_ms)

    async def execute(self, account_id: int, command: Command, now_ms: int) -> Result:
        """Apply `command`, publish its events, and return its result.

        Raises:
            BinanceAPIError: the engine refused it (its code and message, HTTP 400).
        """
        if account_id not in self._known:  # (`ensure`'s test, without a coroutine per order)
            await self.ensure(account_id, now_ms)
        outcome: Outcome = self.engine.handle(account_id, command, now_ms)
        if outcome.events:
            self._changed()
            # Encoded here, once: the bus and the gateway then pass the bytes on.
            await self._bus.publish(account_id, encode_events(outcome.events))
        result = outcome.result
        if isinstance(result, VenueError):
            raise result.to_api_error()
        if not outcome.events:
            self._changed()  # settings changes (leverage to the same value) emit nothing
        return result

    def on_market(self, updates: Sequence[MarketUpdate], now_ms: int) -> None:
        """The market listener: fill resting orders, expire what is due, publish."""
        self._publish_all(self.engine.on_market(updates, now_ms))
        if self._market is not None:
            publish_force_orders(self, self._market)

    def _tick(self, now_ms: int) -> None:
        if not self._ticking:
            return
        self._publish_all(self.engine.tick(now_ms))
        self._scheduler.call_at(now_ms + TICK_INTERVAL_MS, self._tick)

    def _publish_all(self, by_account: dict[int, list[Event]]) -> None:
        if not by_account:
            return
        self._changed()
        task = asyncio.get_running_loop().create_task(self._publish_batches(by_account))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_batches(self, by_account: dict[int, list[Event]]) -> None:
        for account_id, events in by_account.items():
            try:
                await self._bus.publish(account_id, encode_events(events))
            except Exception:
                log.exception("publishing the venue's events for account %d failed", account_id)

    # persistence

    def _changed(self) -> None:
        if self._store is None or self._save_handle is not None:
            return
        loop = asyncio.get_running_loop()
        self._save_handle = loop.call_later(self._save_interval_s, self._save_due)

    def _save_due(self) -> None:
        self._save_handle = None
        if self._writing is not None and not self._writing.done():
            self._changed()  # the previous write is still going: try again later
            return
        self.save()

    def save(self) -> None:
        """Encode what changed since the last save now and write it on a worker thread.

        The encoding follows the open state and the changes, not the history
        (`StateJournal.changes`); still, the next save waits at least `SAVE_SHARE` times as
        long as this one took, which keeps saving under a tenth of the loop's time even with
        many accounts or open orders. A failed write is logged and the next save writes every
        final order and trade again.
        """
        if self._store is None:
            return
        started = time.perf_counter()
        batch = self._journal.changes()
        took = time.perf_counter() - started
        self._save_interval_s = max(SAVE_INTERVAL_S, took * SAVE_SHARE)
        loop = asyncio.get_running_loop()
        self._writing = loop.run_in_executor(None, self._store.save, batch, self._clock.now_ms())
        self._writing.add_done_callback(self._report_write)

    def _report_write(self, write: asyncio.Future[None]) -> None:
        if not write.cancelled() and write.exception() is not None:
            log.error("saving the venue's state failed", exc_info=write.exception())
            self._journal.forget()
            self._changed()

    # admin

    async def admin(self, parts: list[str], request: Request) -> Response | None:
        """The venue's admin routes (`server/venue_admin.py`); None for other paths."""
        return await self.admin_routes.handle(parts, request)

    # for the routes built on this service (server/algo.py)

    @property
    def market(self) -> MarketService | None:
        """The served market the engine fills against; None when it prices a still book."""
        return self._market

    def mark_changed(self) -> None:
        """Schedule a state save after a change that emitted no event."""
        self._changed()

    async def publish(self, account_id: int, events: Sequence[Event]) -> None:
        """Publish events the engine produced outside `execute`, and schedule a save."""
        self._changed()
        await self._bus.publish(account_id, encode_events(events))
