"""`AccountMirror`: balances, positions and open orders, always current (issue 14).

    async with AccountMirror(api_key, secret_key, endpoints=Endpoints.local()) as mirror:
        print(mirror.balances["USDT"].wallet_balance)
        order = await mirror.wait_for_order("my-id", status="FILLED", timeout=5)
        async for change in mirror.changes():
            ...  # ChangeKind.FILL / FUNDING / LIQUIDATION / RESYNC ..., with the event

Built on a `UserDataStream` (which yields events and `StreamGap` markers) and signed REST
reads (`client/rest.py`). On start and after every gap it takes a REST snapshot, keeps the
events that raced the snapshot, and applies only those the snapshot does not contain
(`protocol/resync.py` states the rules and why they hold); in between, the state comes from
events alone. While a snapshot is wanted or in flight, events still move the views (best
effort) and `health.consistent` is False; the merge then replaces the state at once and a
`ChangeKind.RESYNC` change lists what the gap had hidden.

Snapshots are coalesced (a burst of gaps costs one or two), at most one per
`min_resync_interval_ms`, and the REST client waits for the next weight minute rather than
earning a 429. With `self_check=True` every resync is followed by a second snapshot that is
compared field by field with the mirror (`health.last_check_differences` and a log line);
`check_interval_ms` repeats that check on a timer. A check that finds a difference replaces
the state with the snapshot.

Every task belongs to the mirror and is cancelled and awaited by `aclose()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from userstream.client.book import Book
from userstream.client.endpoints import Endpoints
from userstream.client.health import ConnectionState, StreamGap
from userstream.client.mirror_views import (
    AlgoOrderView,
    Change,
    ChangeKind,
    Difference,
    MirrorHealth,
    MirrorState,
    differences,
)
from userstream.client.rest import SignedRest, Snapshot
from userstream.client.stream import UserDataStream
from userstream.clock import Clock, SystemClock
from userstream.exceptions import (
    BinanceAPIError,
    ConfigurationError,
    InvalidAPIKey,
    RateLimited,
    TransportError,
    UserStreamError,
)
from userstream.protocol.events import (
    AccountConfigUpdate,
    AccountUpdate,
    AlgoUpdate,
    Event,
    MarginCall,
    OrderTradeUpdate,
)
from userstream.protocol.fold import FoldBalance, FoldOrder, FoldPosition
from userstream.protocol.resync import FINAL_ORDER_STATUSES, SnapshotPlanner

__all__ = ["AccountMirror"]

log = logging.getLogger("userstream.mirror")

_CHECK = "self-check"
_STREAM_POLL_S = 0.05
_CHECK_GRACE_S = 0.2
_KEPT_REASONS = 20


@dataclass(eq=False, slots=True)
class _Reader:
    """One `changes()` iterator: a bounded queue that drops its oldest change when full."""

    items: deque[Change]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0


def _kind(event: Event) -> tuple[ChangeKind, str] | None:
    if isinstance(event, OrderTradeUpdate):
        order = event.order
        cid = order.client_order_id
        if order.execution_type == "CALCULATED" or cid.startswith(("autoclose-", "adl_autoclose")):
            return ChangeKind.LIQUIDATION, order.execution_type
        if order.execution_type == "TRADE":
            return ChangeKind.FILL, order.order_status
        return ChangeKind.ORDER, order.execution_type
    if isinstance(event, AccountUpdate):
        reason = event.update.reason
        if reason == "FUNDING_FEE":
            return ChangeKind.FUNDING, reason
        if reason == "INSURANCE_CLEAR":
            return ChangeKind.LIQUIDATION, reason
        if reason == "ORDER":
            return ChangeKind.POSITION, reason
        return ChangeKind.BALANCE, reason
    if isinstance(event, AccountConfigUpdate):
        return ChangeKind.CONFIG, "leverage" if event.leverage_config else "multi_assets"
    if isinstance(event, MarginCall):
        return ChangeKind.MARGIN_CALL, "MARGIN_CALL"
    if isinstance(event, AlgoUpdate):
        return ChangeKind.ALGO, event.order.status
    return None


class AccountMirror:
    """An account's balances, positions and open orders, kept from events and REST snapshots.

    Args:
        api_key: the account's API key (stream and REST); never logged.
        secret_key: its HMAC secret, for the signed REST snapshots; never logged.
        endpoints: where the venue is; `Endpoints.production()` by default.
        stream: a `UserDataStream` to build on (not yet started; the mirror starts and
            closes it). By default one is made from `api_key`, `endpoints` and `clock`.
        rest: the signed REST client (by default one is made from the same settings).
        clock: drives the resync interval, self-check timer and health times.
        min_resync_interval_ms: at most one snapshot per this interval (gaps in a burst are
            coalesced into the next one).
        self_check: after every resync, compare the mirror with a second, fresh snapshot.
        check_interval_ms: also compare on this timer (None: only after resyncs).
        closed_orders: how many closed orders are remembered for `wait_for_order`.
        max_changes: how many changes a `changes()` reader may fall behind before its
            oldest are dropped (counted in `health.dropped_changes`).

    Raises:
        ConfigurationError: impossible settings.
    """

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        *,
        endpoints: Endpoints | None = None,
        stream: UserDataStream | None = None,
        rest: SignedRest | None = None,
        clock: Clock | None = None,
        min_resync_interval_ms: int = 1_000,
        self_check: bool = False,
        check_interval_ms: int | None = None,
        closed_orders: int = 1_000,
        max_changes: int = 10_000,
    ) -> None:
        if not secret_key and rest is None:
            raise ConfigurationError("secret_key is empty: the REST snapshots must be signed")
        if min_resync_interval_ms < 0 or (check_interval_ms is not None and check_interval_ms <= 0):
            raise ConfigurationError("min_resync_interval_ms >= 0 and check_interval_ms > 0")
        endpoints = endpoints or Endpoints.production()
        self._clock: Clock = clock or SystemClock()
        self._stream = stream or UserDataStream(api_key, endpoints=endpoints, clock=self._clock)
        self._rest = rest or SignedRest(api_key, secret_key, endpoints.rest_url, clock=self._clock)
        self._planner = SnapshotPlanner(min_interval_ms=min_resync_interval_ms)
        self._self_check = self_check
        self._check_interval_ms = check_interval_ms
        self._max_changes = max_changes
        self._book = Book(closed_orders)
        self._pending: list[Event] | None = None
        """Events received since the snapshot in flight was requested (its fence)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._readers: set[_Reader] = set()
        self._wake = asyncio.Event()
        self._orders_changed = asyncio.Event()
        self._health_changed = asyncio.Event()
        """Set (and replaced) whenever a snapshot is wanted, merged or checked."""
        self._first = asyncio.Event()
        self._failure: UserStreamError | None = None
        self._started = False
        self._closed = False
        # health
        self._consistent = False
        self._last_snapshot_ms: int | None = None
        self._wanted_since_ms: int | None = None
        self._events_applied = 0
        self._events_total = 0
        self._events_skipped = 0
        self._resyncs = 0
        self._resync_reasons: deque[str] = deque(maxlen=_KEPT_REASONS)
        self._last_resync_ms: int | None = None
        self._snapshot_weight = 0
        self._checks = 0
        self._last_check_ms: int | None = None
        self._last_check: tuple[Difference, ...] = ()
        self._checks_differing = 0
        self._dropped_changes = 0

    def __repr__(self) -> str:
        state = "consistent" if self._consistent else "resyncing"
        return f"<AccountMirror {state} {self._rest!r}>"

    # --- views ------------------------------------------------------------------------------

    @property
    def balances(self) -> Mapping[str, FoldBalance]:
        """Balances by asset: wallet and cross wallet balance (the fold's records)."""
        return self._book.balances

    @property
    def positions(self) -> Mapping[tuple[str, str], FoldPosition]:
        """Open positions by `(symbol, positionSide)`; flat positions are left out."""
        return self._book.positions

    @property
    def open_orders(self) -> Mapping[int, FoldOrder]:
        """Open orders by order id."""
        return self._book.open_orders

    @property
    def algo_orders(self) -> Mapping[int, AlgoOrderView]:
        """Open algo (conditional) orders by algo id."""
        return self._book.algo or {}

    @property
    def leverage(self) -> Mapping[str, int]:
        """Leverage by symbol, as far as a snapshot or an ACCOUNT_CONFIG_UPDATE said."""
        return self._book.fold.state.leverages

    @property
    def multi_assets(self) -> bool:
        """Multi-Assets mode (False until a snapshot or an ACCOUNT_CONFIG_UPDATE says)."""
        return self._book.fold.state.multi_assets_margin

    @property
    def mark_prices(self) -> Mapping[str, Decimal]:
        """The mark price per symbol as of the last snapshot (for `unrealized_pnl`)."""
        return self._book.marks

    def unrealized_pnl(self, position: FoldPosition, mark_price: Decimal | None = None) -> Decimal:
        """`amount × (mark − entry)` (spec trading §4.5) at `mark_price`, by default the
        last snapshot's mark (mark price moves send no user-data event)."""
        mark = mark_price if mark_price is not None else self._book.marks.get(position.symbol)
        if mark is None:
            return Decimal(0)
        return position.position_amount * (mark - position.entry_price)

    @property
    def recent_fills(self) -> tuple[OrderTradeUpdate, ...]:
        """The latest fills (ORDER_TRADE_UPDATE x=TRADE/CALCULATED), oldest first."""
        return tuple(self._book.fills)

    def state(self) -> MirrorState:
        """The whole account as one value (what the self-check compares)."""
        return self._book.state()

    def order(self, client_order_id: str) -> FoldOrder | None:
        """The order with this client id as last seen, open or recently closed."""
        return self._book.order_by_client_id(client_order_id)

    @property
    def health(self) -> MirrorHealth:
        """How fresh the mirror is: snapshots, events applied since, resyncs and why."""
        return MirrorHealth(
            consistent=self._consistent and self._stream_up(),
            resyncing=self._wanted_since_ms is not None,
            last_snapshot_ms=self._last_snapshot_ms,
            events_applied=self._events_applied,
            events_total=self._events_total,
            events_skipped=self._events_skipped,
            resyncs=self._resyncs,
            resync_reasons=tuple(self._resync_reasons),
            last_resync_ms=self._last_resync_ms,
            snapshot_weight=self._snapshot_weight,
            checks=self._checks,
            last_check_ms=self._last_check_ms,
            last_check_differences=self._last_check,
            checks_differing=self._checks_differing,
            dropped_changes=self._dropped_changes,
        )

    @property
    def stream(self) -> UserDataStream:
        """The stream the mirror reads (for its own `health`)."""
        return self._stream

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> AccountMirror:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the stream, take the first snapshot and return once it is merged.

        Raises:
            InvalidAPIKey: the API key or secret was rejected.
            BinanceAPIError, TransportError: the stream could not be opened.
        """
        if self._started:
            raise ConfigurationError("an AccountMirror can be started only once")
        self._started = True
        try:
            await self._stream.start()
            self._request("start")
            self._spawn(self._read_stream(), "userstream-mirror-reader")
            self._spawn(self._snapshot_loop(), "userstream-mirror-snapshots")
            if self._check_interval_ms is not None:
                self._spawn(self._check_timer(self._check_interval_ms), "userstream-mirror-check")
            await self._until(self._first)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop the tasks, close the stream and the REST session. Idempotent."""
        if self._closed:
            return
        self._closed = True
        while self._tasks:
            pending = list(self._tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self._tasks.difference_update(pending)
        await self._stream.aclose()
        await self._rest.aclose()
        for reader in self._readers:
            reader.ready.set()
        self._orders_changed.set()
        self._health_changed.set()
        self._first.set()

    def _spawn(self, coro: object, name: str) -> None:
        async def guarded() -> None:
            try:
                await coro  # type: ignore[misc]
            except asyncio.CancelledError:
                raise
            except UserStreamError as exc:
                self._fail(exc)
            except Exception as exc:
                log.exception("account mirror task failed")
                self._fail(UserStreamError(f"internal error: {exc!r}"))

        task = asyncio.get_running_loop().create_task(guarded(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fail(self, error: UserStreamError) -> None:
        if self._failure is None:
            self._failure = error
            log.error("account mirror stopped: %s", error)
        self._first.set()
        self._orders_changed.set()
        self._health_changed.set()
        for reader in self._readers:
            reader.ready.set()

    async def _until(self, event: asyncio.Event) -> None:
        await event.wait()
        if self._failure is not None:
            raise self._failure

    # --- waiting ----------------------------------------------------------------------------

    async def wait_for_order(
        self,
        client_order_id: str,
        status: str | Collection[str] = "FILLED",
        timeout: float | None = None,  # noqa: ASYNC109 - the call every bot writes by hand
    ) -> FoldOrder:
        """Wait until the order with `client_order_id` reaches `status` (or ends).

        Returns the order as seen then. An order that ends in another status (cancelled,
        expired) can no longer reach `status`: it is returned too, so check `.status`.

        Raises:
            TimeoutError: not reached within `timeout` seconds.
            UserStreamError: the mirror stopped (e.g. the API key was revoked).
        """
        wanted = {status} if isinstance(status, str) else set(status)
        async with asyncio.timeout(timeout):
            while True:
                changed = self._orders_changed
                order = self._book.order_by_client_id(client_order_id)
                if order is not None and (
                    order.status in wanted or order.status in FINAL_ORDER_STATUSES
                ):
                    return order
                if self._failure is not None:
                    raise self._failure
                if self._closed:
                    raise UserStreamError("the account mirror is closed")
                await changed.wait()

    async def wait_consistent(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - as wait_for_order
    ) -> MirrorHealth:
        """Wait until no snapshot is wanted or in flight and the last merge left nothing
        pending (the mirror equals the venue as of its last event).

        Raises:
            TimeoutError: not within `timeout` seconds.
        """
        async with asyncio.timeout(timeout):
            while not (self._consistent and self._stream_up()) or self._wanted_since_ms is not None:
                changed = self._health_changed
                if self._failure is not None:
                    raise self._failure
                if self._closed:
                    raise UserStreamError("the account mirror is closed")
                # The stream's state is its own (it may belong to the caller): look again
                # soon even without a health change, as a reconnect says nothing here.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_STREAM_POLL_S):
                        await changed.wait()
        return self.health

    async def check(self) -> tuple[Difference, ...]:
        """Compare the mirror with a fresh REST snapshot now, field by field.

        Returns the differences (also in `health.last_check_differences`); a difference
        makes the snapshot replace the state, as a resync does.
        """
        done = self._checks
        self._request(_CHECK)
        while self._checks == done:
            changed = self._health_changed
            if self._failure is not None:
                raise self._failure
            if self._closed:
                raise UserStreamError("the account mirror is closed")
            await changed.wait()
        return self._last_check

    async def changes(self) -> AsyncIterator[Change]:
        """Every change from now on, in order: what changed and why.

        A reader more than `max_changes` behind loses its oldest changes (counted in
        `health.dropped_changes`). Ends when the mirror closes.
        """
        reader = _Reader(deque())
        self._readers.add(reader)
        try:
            while True:
                while reader.items:
                    yield reader.items.popleft()
                if self._failure is not None:
                    raise self._failure
                if self._closed:
                    return
                reader.ready.clear()
                await reader.ready.wait()
        finally:
            self._readers.discard(reader)

    def _emit(self, change: Change) -> None:
        for reader in self._readers:
            if len(reader.items) >= self._max_changes:
                reader.items.popleft()
                self._dropped_changes += 1
            reader.items.append(change)
            reader.ready.set()

    # --- events -----------------------------------------------------------------------------

    async def _read_stream(self) -> None:
        async for item in self._stream:
            if isinstance(item, StreamGap):
                log.info("stream gap (%s %s): resynchronising", item.reason.value, item.detail)
                self._request(item.reason.value)
            else:
                self.apply(item)

    def apply(self, event: Event) -> None:
        """Apply one event (what the stream reader does for each; public for replays and
        benchmarks). While a snapshot is in flight the event is also kept for its merge."""
        if self._pending is not None:
            self._pending.append(event)
        order_changed = self._book.apply(event)
        self._events_total += 1
        self._events_applied += 1
        if order_changed:
            self._orders_changed.set()
            self._orders_changed = asyncio.Event()
        if self._readers:
            kind = _kind(event)
            if kind is not None:
                self._emit(Change(kind[0], kind[1], event.event_time, event))

    # --- snapshots --------------------------------------------------------------------------

    def _stream_up(self) -> bool:
        """While the stream is down, events may be missing already: the gap marker only
        comes with the reconnection."""
        return self._stream.health.state in (ConnectionState.CONNECTED, ConnectionState.ROTATING)

    def _notify_health(self) -> None:
        self._health_changed.set()
        self._health_changed = asyncio.Event()

    def _request(self, reason: str) -> None:
        if reason != _CHECK:
            self._consistent = False
            if self._wanted_since_ms is None:
                self._wanted_since_ms = self._clock.now_ms()
        self._planner.request(reason)
        self._wake.set()
        self._notify_health()

    async def _snapshot_loop(self) -> None:
        while True:
            now = self._clock.now_ms()
            if not self._planner.due(now):
                self._wake.clear()
                if self._planner.state.value == "wanted":
                    await self._sleep_or_wake(self._planner.next_start_ms())
                else:
                    await self._wake.wait()
                continue
            if not self._stream_up():
                # A gap is yielded when the connection is lost, before the stream is back:
                # a snapshot taken now would miss what happens until it is (those events
                # never arrive). The fence must come after the reconnection.
                await asyncio.sleep(_STREAM_POLL_S)
                continue
            reasons = self._planner.started(now)
            self._pending = []
            try:
                snapshot = await self._rest.take_snapshot()
            except InvalidAPIKey:
                self._pending = None
                raise
            except (BinanceAPIError, TransportError) as exc:
                self._pending = None
                retry = exc.retry_after_ms if isinstance(exc, RateLimited) else 0
                self._planner.finished(False, reasons, self._clock.now_ms(), retry)
                log.warning("account snapshot failed (%s); retrying", exc)
                continue
            if all(reason == _CHECK for reason in reasons):
                # Events the venue sent before it answered may still be on their way: the
                # comparison waits for them (they go to both sides), or it would blame the
                # mirror for the stream's latency.
                await asyncio.sleep(_CHECK_GRACE_S)
            pending, self._pending = self._pending, None
            self._merge(snapshot, pending, reasons)
            self._planner.finished(True, reasons)

    async def _sleep_or_wake(self, deadline_ms: int) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep_until(deadline_ms))
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waiter):
                task.cancel()
            await asyncio.gather(sleeper, waiter, return_exceptions=True)

    async def _check_timer(self, interval_ms: int) -> None:
        while True:
            await self._clock.sleep_until(self._clock.now_ms() + interval_ms)
            self._request(_CHECK)

    def _merge(self, snapshot: Snapshot, pending: list[Event], reasons: list[str]) -> None:
        """Replace (or, for a self-check, compare) the state with `snapshot` plus the events
        after its fence that it does not contain. Synchronous: no event slips in between."""
        now = self._clock.now_ms()
        fresh, kept = Book.merged(snapshot, pending, like=self._book)
        self._events_skipped += len(pending) - kept
        self._snapshot_weight += snapshot.weight
        first = not self._first.is_set()
        found = () if first else tuple(differences(self._book.state(), fresh.state()))
        only_check = all(reason == _CHECK for reason in reasons)
        if only_check and any(reason != _CHECK for reason in self._planner.reasons):
            # A gap while checking: events are missing on one side, the comparison would say
            # nothing about the mirror. The resync comes next; check after it.
            self._planner.request(_CHECK)
            return
        if only_check:
            self._checks += 1
            self._last_check_ms = now
            self._last_check = found
            self._checks_differing += bool(found)
            self._report_check(found)
            self._notify_health()
            if not found:
                self._settle(now)
                return
            why = _CHECK
        else:
            why = ",".join(dict.fromkeys(r for r in reasons if r != _CHECK))
        self._book = fresh
        self._last_snapshot_ms = snapshot.taken_ms
        self._events_applied = kept
        self._resyncs += 1
        self._resync_reasons.append(why)
        self._orders_changed.set()
        self._orders_changed = asyncio.Event()
        self._emit(Change(ChangeKind.RESYNC, why, now, None, found))
        log.info(
            "account mirror resynchronised (%s): %d correction(s), %d of %d raced events kept",
            why,
            len(found),
            kept,
            len(pending),
        )
        if first:
            self._first.set()
        settled = self._settle(now)
        if settled and not only_check and (self._self_check or _CHECK in reasons):
            self._request(_CHECK)

    def _settle(self, now: int) -> bool:
        """Consistent unless a gap came while the snapshot was in flight."""
        self._notify_health()
        if any(reason != _CHECK for reason in self._planner.reasons):
            return False
        self._consistent = True
        if self._wanted_since_ms is not None:
            self._last_resync_ms = now - self._wanted_since_ms
            self._wanted_since_ms = None
        return True

    def _report_check(self, found: tuple[Difference, ...]) -> None:
        if not found:
            log.info("self-check: the mirror equals the REST snapshot")
            return
        log.warning(
            "self-check: %d difference(s) with the REST snapshot: %s",
            len(found),
            "; ".join(str(d) for d in found),
        )
