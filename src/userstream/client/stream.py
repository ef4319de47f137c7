"""`UserDataStream`: one object that owns a listenKey and its stream connection (issue 3).

    async with UserDataStream(api_key) as stream:
        async for item in stream:
            if isinstance(item, StreamGap):
                ...  # events after item.since_ms may be missing: resynchronise
            else:
                ...  # a userstream.protocol.events model

Lifecycle (spec §2.3, §4.5): the key is created on enter, extended every 30 minutes, and
closed (DELETE) on `aclose()`. Recovery:

* a dropped connection (or one that stops answering pings: websockets' keepalive closes it
  with 1011) is reopened at once, then with jittered backoff (`Reconnect.backoff`), unlimited
  by default and restarted as soon as a connection delivers a frame or answers a ping. The
  socket comes first: every request or event-loop turn before it reaches the server is time
  in which events go to no socket. So an immediate redial starts as soon as the server's
  close frame or the transport's `connection_lost` arrives, before the reader (which may be
  waiting for the consumer) noticed, and the key is checked with a keepalive only once the
  socket is open: a key that died while no socket listened is then replaced (a socket on a
  dead key is accepted and stays silent, §2.3). That check keeps the keepalive's retries
  and Retry-After. A redial waits out a Retry-After its handshake was answered with, and an
  IP ban (418) announced on any request;
* `listenKeyExpired` for our key, -1125 from a keepalive, or keepalives failing until the
  key's 60 minutes ran out: a new key is issued and the stream reconnects at once;
* before Binance's 24-hour cap (`Reconnect.rotate_after_ms`) a second connection is opened
  on the same key; the old one is closed once the new one delivered a frame the old one
  also had, and the old one's copies are dropped (`dedupe.Overlap`): nothing is lost, no
  gap marker. If that proof does not come within `Reconnect.rotation_timeout_ms` while the
  old one delivered frames, the old one is closed anyway and a `StreamGap` says so.

Whenever events could have been missed, a `StreamGap` is yielded before the next event.
Every task belongs to the stream and is cancelled and awaited by `aclose()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from userstream.client.buffer import EventBuffer, Item, Received, Record
from userstream.client.dedupe import Overlap
from userstream.client.endpoints import Endpoints
from userstream.client.health import (
    ConnectionState,
    GapReason,
    HealthTracker,
    StreamGap,
    StreamHealth,
)
from userstream.client.keepalive import KeepaliveAction, KeepaliveSchedule
from userstream.client.listenkeys import (
    ListenKeyClient,
    RestListenKeys,
    WsApiListenKeys,
    redact,
)
from userstream.client.policy import CLOSE_TIMEOUT_S, Delivery, Keepalive, Reconnect
from userstream.client.reorder import Reorderer
from userstream.clock import Clock, SystemClock
from userstream.exceptions import (
    BinanceAPIError,
    ConfigurationError,
    InvalidAPIKey,
    ListenKeyNotFound,
    RateLimited,
    ReconnectGaveUp,
    TransportError,
    UserStreamError,
)
from userstream.protocol.codec import UnknownEventError, decode_event
from userstream.protocol.events import ListenKeyExpired

__all__ = ["StateCallback", "UserDataStream"]

log = logging.getLogger("userstream.client")

StateCallback: TypeAlias = Callable[[ConnectionState, ConnectionState, str], None]
"""`on_state_change(old, new, reason)`; called on the event loop, must not block."""

_ROTATION_RETRY_MS = 60_000
_CLOSE_KEY_TIMEOUT_S = 5.0
# What opening a stream connection can raise that is worth retrying.
_CONNECT_ERRORS = (OSError, TimeoutError, InvalidHandshake, ConnectionClosed)


def _connect_refused(exc: BaseException) -> bool:
    """Whether a failed dial was refused by the kernel (ECONNREFUSED: nothing listens on the
    port, as while the server process restarts), seen through any wrapping exception. Such
    a redial costs the server nothing, so `Backoff.refused_ms` keeps it fast."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or (
            isinstance(seen, OSError) and seen.errno == errno.ECONNREFUSED
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass(eq=False, slots=True)
class _Connection:
    ws: ClientConnection
    key: str
    opened_ms: int
    last_frame_ms: int
    rotate_at_ms: int
    reader: asyncio.Task[None] | None = None
    retired: bool = False
    proven: bool = False
    """It delivered a frame or answered a ping: the server behind it is really up."""
    replaced: bool = False
    """A finished rotation's old connection: the new one carries everything it still has."""


@dataclass(frozen=True, slots=True)
class _Dropped:
    conn: _Connection
    detail: str


@dataclass(frozen=True, slots=True)
class _KeyLost:
    generation: int
    reason: GapReason
    detail: str
    since_ms: int | None = None


@dataclass(frozen=True, slots=True)
class _Fatal:
    error: UserStreamError


_Signal: TypeAlias = _Dropped | _KeyLost | _Fatal
_T = TypeVar("_T")


class _StreamSocket(ClientConnection):
    """websockets' client connection, telling the stream the moment it is over: when the
    server's close frame arrives (the TCP close comes after the closing handshake) or the
    transport is gone. The reader hears of it one event-loop turn later, the supervisor one
    more."""

    on_lost: Callable[[], None] | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.protocol.close_rcvd is not None:
            self._over()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._over()

    def _over(self) -> None:
        on_lost, self.on_lost = self.on_lost, None  # once
        if on_lost is not None:
            on_lost()


@dataclass(frozen=True, slots=True)
class _Predial:
    """A redial started the moment the connection was over, for the supervisor to take."""

    conn: _Connection
    dialing: asyncio.Task[_StreamSocket]


@dataclass(slots=True)
class _Tasks:
    """The stream's background tasks: every one is cancelled and awaited on close."""

    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, _T], name: str) -> asyncio.Task[_T]:
        # The task runs `coro` itself, not a wrapper awaiting it: a task cancelled before
        # its first step (aclose() right after a gap) then closes `coro` cleanly instead of
        # leaving it "never awaited" (a RuntimeWarning, and its body never runs).
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def cancel_all(self) -> None:
        while self.tasks:
            pending = list(self.tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self.tasks.difference_update(pending)


class UserDataStream:
    """A user data stream that reconnects, rotates and replaces its key on its own.

    Args:
        api_key: the Binance API key (sent only as `X-MBX-APIKEY` or `apiKey`; never logged).
        endpoints: base URLs; `Endpoints.production()` by default.
        key_transport: `"rest"` (POST/PUT/DELETE /fapi/v1/listenKey) or `"ws_api"`
            (`userDataStream.start/ping/stop`).
        reconnect: reconnect and key-issuing backoff, rotation before the 24-hour cap.
        keepalive: listenKey keepalive period, WebSocket ping interval and timeout.
        delivery: reordering window and the consumer buffer.
        clock: drives keepalives, rotation, backoff waits, the reorder window and health.
        rng: randomness for backoff jitter (`random.Random(seed)` for repeatable runs).
        close_key_on_exit: DELETE the key on `aclose()`. Binance keeps one key per account,
            so pass False if other processes share the account's stream.
        on_state_change: called with `(old, new, reason)` on every state change.
        listen_keys: a custom `ListenKeyClient` (then `key_transport` is ignored).

    Raises:
        ConfigurationError: impossible settings.
    """

    def __init__(
        self,
        api_key: str,
        *,
        endpoints: Endpoints | None = None,
        key_transport: Literal["rest", "ws_api"] = "rest",
        reconnect: Reconnect | None = None,
        keepalive: Keepalive | None = None,
        delivery: Delivery | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        close_key_on_exit: bool = True,
        on_state_change: StateCallback | None = None,
        listen_keys: ListenKeyClient | None = None,
    ) -> None:
        if not api_key:
            raise ConfigurationError("api_key is empty")
        if key_transport not in ("rest", "ws_api"):
            raise ConfigurationError(
                f"key_transport must be 'rest' or 'ws_api', not {key_transport!r}"
            )
        self._endpoints = endpoints or Endpoints.production()
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._policy = reconnect or Reconnect()
        self._keepalive = keepalive or Keepalive()
        delivery = delivery or Delivery()
        self._close_key_on_exit = close_key_on_exit
        self._on_state_change = on_state_change
        self._key_transport = key_transport
        if listen_keys is not None:
            self._listen_keys: ListenKeyClient = listen_keys
        elif key_transport == "ws_api":
            self._listen_keys = WsApiListenKeys(api_key, self._endpoints.ws_api_url)
        else:
            self._listen_keys = RestListenKeys(api_key, self._endpoints.rest_url)
        self._plan = KeepaliveSchedule(
            interval_ms=self._keepalive.listen_key_interval_ms, rng=self._rng
        )
        self._reorder: Reorderer[Received] = Reorderer(
            delivery.reorder_window_ms, delivery.reorder_max_held
        )
        self._buffer = EventBuffer(delivery.max_buffered, delivery.overflow)
        self._health = HealthTracker()
        self._tasks = _Tasks()
        self._key: str | None = None
        self._generation = 0
        self._primary: _Connection | None = None
        self._connections: set[_Connection] = set()
        self._delays: Generator[int, bool | None, None] = self._policy.backoff.delays(self._rng)
        self._peeked_delay: int | None = None
        """The next reconnect delay, drawn early to decide whether to redial at once."""
        self._predial: _Predial | None = None
        # The rotation in progress: the connection being replaced and the frame matcher.
        self._rotating: _Connection | None = None
        self._overlap: Overlap | None = None
        self._last_receiving_ms = 0
        self._failure: UserStreamError | None = None
        self._started = False
        self._closed = False
        self._signals: asyncio.Queue[_Signal] = asyncio.Queue()
        self._readable = asyncio.Event()
        """Set when the buffer has something for the consumer (or the stream ended)."""
        self._room = asyncio.Event()
        """Set while the buffer can take more events; readers wait on it ("block")."""
        self._room.set()
        self._held = asyncio.Event()
        """Set when the reorderer holds events: the flush loop has a deadline to wait for."""
        self._key_changed = asyncio.Event()
        """Set (and replaced) each time a new key is issued."""
        self._check_key = asyncio.Event()
        """Set when the keepalive plan was moved earlier: the keepalive loop wakes up."""
        self._banned_until_ms = 0
        """The end of an IP ban (418) the server announced: no redial before it."""
        self._joined = asyncio.Event()
        """Set when a rotation's new connection delivered a frame the old one also had."""

    def __repr__(self) -> str:
        return (
            f"<UserDataStream {self._health.state.value} stream={self._endpoints.stream_url!r} "
            f"key_transport={self._key_transport!r}>"
        )

    # --- public API -------------------------------------------------------------------------

    @property
    def health(self) -> StreamHealth:
        """A snapshot of key age, keepalive result, last event, connection age, counters."""
        return self._health.snapshot(self._clock.now_ms(), self._buffer.events)

    @property
    def listen_key(self) -> str | None:
        """The current listenKey (a secret: do not log it)."""
        return self._key

    async def __aenter__(self) -> UserDataStream:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> UserDataStream:
        return self

    async def __anext__(self) -> Item:
        """The next event or gap marker, in order.

        Raises:
            StopAsyncIteration: after `aclose()`.
            InvalidAPIKey: the API key was rejected; the stream cannot continue.
            ReconnectGaveUp: a finite backoff ran out.
        """
        record = await self._next_record()
        return record.event if isinstance(record, Received) else record

    async def received(self) -> AsyncIterator[Record]:
        """Like `async for item in stream`, but each event comes as a `Received` record with
        the frame's exact bytes (`raw`) and the local receive time: for audit logs, for
        fields this version does not model, or to forward events unchanged."""
        while True:
            try:
                yield await self._next_record()
            except StopAsyncIteration:
                return

    async def _next_record(self) -> Record:
        readable = self._readable
        room = self._room
        while True:
            item = self._buffer.take()
            if item is not None:
                if self._buffer.has_room():
                    room.set()
                return item
            if self._failure is not None:
                raise self._failure
            if self._closed:
                raise StopAsyncIteration
            readable.clear()
            await readable.wait()

    async def start(self) -> None:
        """Create the key and open the first connection (what `async with` does).

        Raises:
            InvalidAPIKey: the API key was rejected.
            BinanceAPIError, TransportError: the key could not be created.
        """
        if self._started:
            raise ConfigurationError("a UserDataStream can be started only once")
        self._started = True
        self._set_state(ConnectionState.CONNECTING, "start")
        try:
            await self._issue_key(retry=False)
            opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._tasks.spawn(self._guard(lambda: self._supervise(opened)), "userstream-supervisor")
            self._tasks.spawn(self._guard(self._keepalive_loop), "userstream-keepalive")
            self._tasks.spawn(self._guard(self._flush_loop), "userstream-reorder")
            await opened
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop every task, close the connections and (by default) DELETE the key.

        Idempotent. Iteration ends with `StopAsyncIteration` once the buffer is drained.
        """
        if self._closed:
            return
        self._closed = True
        await self._discard_predial()
        await self._tasks.cancel_all()
        # Events still held for E-ordering were received: hand them over, don't drop them.
        self._offer(self._reorder.flush())
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await conn.ws.close()
        self._connections.clear()
        self._primary = None
        key, self._key = self._key, None
        if key is not None and self._close_key_on_exit:
            try:
                async with asyncio.timeout(_CLOSE_KEY_TIMEOUT_S):
                    await self._listen_keys.close(key)
                log.info("listenKey %s closed", redact(key))
            except (UserStreamError, TimeoutError) as exc:
                log.warning("could not close listenKey %s: %s", redact(key), exc)
        await self._listen_keys.aclose()
        self._set_state(ConnectionState.CLOSED, "closed")
        self._readable.set()

    # --- supervision ------------------------------------------------------------------------

    async def _guard(self, run: Callable[[], Awaitable[None]]) -> None:
        # Takes a factory, not a coroutine, for the reason given in `_Tasks.spawn`.
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except UserStreamError as exc:
            self._fail(exc)
        except Exception as exc:
            log.exception("userstream client task failed")
            self._fail(UserStreamError(f"internal error: {exc!r}"))

    def _fail(self, error: UserStreamError) -> None:
        if self._failure is None:
            self._failure = error
            log.error("user data stream stopped: %s", error)
        self._readable.set()

    async def _supervise(self, opened: asyncio.Future[None]) -> None:
        try:
            self._primary = await self._reconnect(check_key=False, reason="start")
        except BaseException as exc:
            if not opened.done():
                opened.set_exception(exc)
            raise
        opened.set_result(None)
        self._reset_backoff()  # the first drop reconnects at once
        while True:
            primary = self._primary
            deadline = primary.rotate_at_ms if primary is not None else None
            signal = await self._next_signal(deadline)
            if signal is None:
                await self._rotate()
            elif isinstance(signal, _Fatal):
                raise signal.error
            elif isinstance(signal, _Dropped):
                await self._on_dropped(signal)
            elif signal.generation == self._generation:
                await self._on_key_lost(signal)

    async def _next_signal(self, deadline_ms: int | None) -> _Signal | None:
        if not self._signals.empty() or deadline_ms is None:
            return await self._signals.get()
        getter = asyncio.ensure_future(self._signals.get())
        timer = asyncio.ensure_future(self._clock.sleep_until(deadline_ms))
        try:
            await asyncio.wait({getter, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (getter, timer):
                if not task.done():
                    task.cancel()
            await asyncio.gather(getter, timer, return_exceptions=True)
        if getter.done() and not getter.cancelled() and getter.exception() is None:
            return getter.result()
        return None

    async def _on_dropped(self, signal: _Dropped) -> None:
        conn = signal.conn
        self._connections.discard(conn)
        if conn is not self._primary or conn.retired:
            if self._predial is not None and self._predial.conn is conn:
                await self._discard_predial()
            return
        self._primary = None
        self._end_rotation()
        self._gap(conn.last_frame_ms, GapReason.DISCONNECTED, signal.detail)
        self._health.last_reason = f"disconnected: {signal.detail}"
        log.warning("stream connection lost (%s); reconnecting", signal.detail)
        self._primary = await self._reconnect(check_key=True, reason=signal.detail)
        self._health.reconnects += 1

    async def _on_key_lost(self, signal: _KeyLost) -> None:
        await self._discard_predial()  # a redial on the key being replaced
        old = self._primary
        since = signal.since_ms
        if since is None:
            since = old.last_frame_ms if old is not None else self._last_receiving_ms
        self._gap(since, signal.reason, signal.detail)
        self._health.last_reason = f"{signal.reason.value}: {signal.detail}"
        log.warning("listenKey lost (%s: %s); issuing a new one", signal.reason, signal.detail)
        self._primary = None
        self._end_rotation()
        if old is not None:
            self._retire(old)
        await self._issue_key(retry=True)
        self._primary = await self._reconnect(check_key=False, reason=signal.reason.value)
        self._health.reconnects += 1

    async def _rotate(self) -> None:
        old = self._primary
        assert old is not None
        assert self._key is not None
        self._set_state(ConnectionState.ROTATING, "24-hour cap ahead")
        try:
            new = await self._open(self._key)
        except _CONNECT_ERRORS as exc:
            log.warning("rotation: new connection failed (%r); retrying later", exc)
            old.rotate_at_ms = self._clock.now_ms() + _ROTATION_RETRY_MS
            self._set_state(ConnectionState.CONNECTED, "rotation postponed")
            return
        self._primary = new
        self._health.rotations += 1
        self._health.connected_ms = new.opened_ms
        old.retired = True
        overlap = Overlap()
        self._rotating, self._overlap = old, overlap
        self._joined.clear()
        self._tasks.spawn(self._finish_rotation(old, new, overlap), "userstream-rotation")
        log.info("rotating the stream connection (make-before-break)")
        self._set_state(ConnectionState.CONNECTED, "rotated")

    async def _finish_rotation(self, old: _Connection, new: _Connection, overlap: Overlap) -> None:
        """Close the old connection once the new one proved it carries the same events."""
        deadline = self._clock.now_ms() + self._policy.rotation_timeout_ms
        await self._sleep_or(deadline, self._joined)
        if self._overlap is not overlap:
            return  # ended by a drop or a lost key, which closed `old` and said so
        if not overlap.joined and overlap.old_frames:
            self._gap(
                new.opened_ms,
                GapReason.ROTATION,
                f"the new connection delivered none of the old one's {overlap.old_frames} "
                "frames; the old one was closed anyway",
            )
        self._rotating = None
        old.replaced = True
        if overlap.old_unmatched == 0:
            self._overlap = None
        self._retire(old)
        log.info("rotation done: old connection closed")

    def _end_rotation(self) -> None:
        old, self._rotating, self._overlap = self._rotating, None, None
        if old is not None:
            self._retire(old)

    def _retire(self, conn: _Connection) -> None:
        conn.retired = True

        async def retire() -> None:
            with contextlib.suppress(Exception):
                await conn.ws.close()
            self._connections.discard(conn)

        self._tasks.spawn(retire(), "userstream-retire")

    async def _reconnect(self, check_key: bool, reason: str) -> _Connection:
        """Open a connection on the current key, retrying with backoff; never gives up
        unless the backoff is finite. With `check_key`, a keepalive checks the key once the
        socket is open (a stream on a dead key would be silently empty, spec §2.3)."""
        first = True
        retry_after = 0  # from a refused handshake: an earlier retry would earn an IP ban
        refused = False
        while True:
            delay = self._next_delay(refused)
            if delay is None:
                await self._discard_predial()
                raise ReconnectGaveUp(f"no reconnect attempts left (last reason: {reason})")
            delay = max(delay, retry_after, self._banned_until_ms - self._clock.now_ms())
            if not first or delay:
                self._set_state(ConnectionState.RECONNECTING, reason)
            if delay:
                await self._clock.sleep_until(self._clock.now_ms() + delay)
            first = False
            self._set_state(ConnectionState.CONNECTING, reason)
            key = self._key
            assert key is not None
            predial, self._predial = self._predial, None
            try:
                if predial is not None and predial.conn.key == key:
                    ws = await predial.dialing
                else:
                    if predial is not None:
                        await self._discard(predial)
                    ws = await self._dial(key)
            except _CONNECT_ERRORS as exc:
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("reconnect attempt failed: %s", reason)
                retry_after = self._refused_for_ms(exc)
                refused = _connect_refused(exc)
                continue
            conn = self._adopt(ws, key)
            self._health.connected_ms = conn.opened_ms
            self._set_state(ConnectionState.CONNECTED, reason)
            if check_key:
                self._plan.check_soon(self._clock.now_ms())
                self._check_key.set()
            return conn

    def _reset_backoff(self) -> None:
        self._delays = self._policy.backoff.delays(self._rng)
        self._peeked_delay = None

    def _peek_delay(self, refused: bool = False) -> int | None:
        """The next reconnect delay without taking it; None once a finite backoff ran out.
        `refused`: the attempt before it was refused by the kernel (ECONNREFUSED)."""
        if self._peeked_delay is None:
            try:
                self._peeked_delay = self._delays.send(True) if refused else next(self._delays)
            except StopIteration:
                self._peeked_delay = -1
        return None if self._peeked_delay < 0 else self._peeked_delay

    def _next_delay(self, refused: bool = False) -> int | None:
        delay = self._peek_delay(refused)
        self._peeked_delay = None
        return delay

    def _lost(self, conn: _Connection) -> None:
        """The primary connection is over (its close frame or `connection_lost`):
        when the next attempt would go at once anyway, dial now. Every event-loop turn
        before the new socket reaches the server is a turn in which the server can publish
        an event to no socket; the supervisor, woken through the reader, would dial two
        turns later. The loss itself still travels that way (the reader may hold frames
        that came before it), and the supervisor takes the dial over."""
        if conn is not self._primary or conn.retired or self._closed or self._predial is not None:
            return
        if self._peek_delay() != 0 or self._banned_until_ms > self._clock.now_ms():
            return
        self._predial = _Predial(conn, self._tasks.spawn(self._dial(conn.key), "userstream-dial"))

    async def _discard_predial(self) -> None:
        predial, self._predial = self._predial, None
        if predial is not None:
            await self._discard(predial)

    @staticmethod
    async def _discard(predial: _Predial) -> None:
        predial.dialing.cancel()
        (outcome,) = await asyncio.gather(predial.dialing, return_exceptions=True)
        if isinstance(outcome, ClientConnection):
            with contextlib.suppress(Exception):
                await outcome.close()

    def _refused_for_ms(self, exc: Exception) -> int:
        """How long a handshake answered 429 or 418 asked us to stay away: its Retry-After
        (Binance documents it for spot: the wait that avoids a ban after a 429, the rest of
        the ban after a 418; spec §6.2), 0 for any other failure."""
        if not isinstance(exc, InvalidStatus) or exc.response.status_code not in (418, 429):
            return 0
        value = exc.response.headers.get("Retry-After", "")
        wait_ms = int(value) * 1000 if value.isdigit() else 0
        if exc.response.status_code == 418:
            self._banned_until_ms = max(self._banned_until_ms, self._clock.now_ms() + wait_ms)
        return wait_ms

    def _note_limit(self, exc: RateLimited) -> None:
        """A 418 bans the IP for everything, stream handshakes included (spec §6.2)."""
        if exc.status == 418:
            until = self._clock.now_ms() + exc.retry_after_ms
            self._banned_until_ms = max(self._banned_until_ms, until)

    async def _issue_key(self, retry: bool) -> None:
        delays = self._policy.key_backoff.delays(self._rng) if retry else iter(())
        while True:
            try:
                key = await self._listen_keys.create()
                break
            except InvalidAPIKey:
                raise
            except (TransportError, BinanceAPIError) as exc:
                if not retry:
                    raise
                delay = next(delays, None)
                if delay is None:
                    raise ReconnectGaveUp(f"could not issue a listenKey: {exc}") from exc
                if isinstance(exc, RateLimited):  # as in `_reconnect`: honour Retry-After
                    self._note_limit(exc)
                    delay = max(delay, exc.retry_after_ms)
                log.warning("could not issue a listenKey (%s); retrying in %d ms", exc, delay)
                self._set_state(ConnectionState.RECONNECTING, f"listenKey: {exc}")
                await self._clock.sleep_until(self._clock.now_ms() + delay)
        now = self._clock.now_ms()
        self._key = key
        self._generation += 1
        self._health.key_issued(now)
        self._plan.key_created(now)
        self._key_changed.set()
        self._key_changed = asyncio.Event()
        log.info("listenKey %s issued", redact(key))

    async def _open(self, key: str) -> _Connection:
        return self._adopt(await self._dial(key), key)

    async def _dial(self, key: str) -> _StreamSocket:
        try:
            ws = await connect(
                self._endpoints.user_data_url(key),
                create_connection=_StreamSocket,
                ping_interval=self._keepalive.ping_interval_s,
                ping_timeout=self._keepalive.ping_timeout_s,
                open_timeout=self._policy.open_timeout_s,
                close_timeout=CLOSE_TIMEOUT_S,
                max_queue=16,
            )
        except InvalidURI as exc:
            raise ConfigurationError(f"bad stream URL: {exc}") from None
        assert isinstance(ws, _StreamSocket)  # what `create_connection` makes
        return ws

    def _adopt(self, ws: _StreamSocket, key: str) -> _Connection:
        now = self._clock.now_ms()
        conn = _Connection(ws, key, now, now, now + self._policy.rotate_after_ms)
        ws.on_lost = lambda: self._lost(conn)
        self._connections.add(conn)
        conn.reader = self._tasks.spawn(self._read(conn), "userstream-reader")
        self._tasks.spawn(self._ping_once(conn), "userstream-prove")
        log.info("stream connection open")
        return conn

    async def _ping_once(self, conn: _Connection) -> None:
        # A quiet account sends no frame for hours: one ping answered proves the server
        # behind the connection is up, so the next drop reconnects at once.
        with contextlib.suppress(ConnectionClosed):
            pong = await conn.ws.ping()
            await pong
            self._prove(conn)

    def _prove(self, conn: _Connection) -> None:
        if conn.proven:
            return
        conn.proven = True
        if conn is self._primary or conn is self._rotating:
            self._reset_backoff()

    # --- reading ----------------------------------------------------------------------------

    async def _read(self, conn: _Connection) -> None:
        room = self._room
        detail = "closed"
        try:
            while True:
                if not room.is_set():
                    await room.wait()  # "block": stop reading; the socket fills and TCP pushes back
                raw = await conn.ws.recv(decode=False)
                self._ingest(conn, raw)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            why = exc.rcvd.reason if exc.rcvd is not None else ""
            if exc.sent is not None and exc.rcvd is None:
                code, why = exc.sent.code, exc.sent.reason
            detail = f"{code} {why}".strip()
        except Exception as exc:  # a bug must not end the stream silently: replace the socket
            log.exception("stream reader failed")
            detail = f"reader failed: {exc!r}"
            with contextlib.suppress(Exception):
                await conn.ws.close()
        self._last_receiving_ms = max(self._last_receiving_ms, conn.last_frame_ms)
        self._signals.put_nowait(_Dropped(conn, detail))

    def _ingest(self, conn: _Connection, raw: bytes) -> None:
        if conn.replaced:
            return
        now = self._clock.now_ms()
        conn.last_frame_ms = now
        if not conn.proven:
            self._prove(conn)
        if self._overlap is not None and not self._admit(self._overlap, conn, raw):
            self._health.duplicates += 1
            return
        try:
            event = decode_event(raw)
        except UnknownEventError as exc:
            self._health.skipped += 1
            log.debug("skipped an event of unknown type %r", exc.event_type)
            return
        except UserStreamError as exc:
            self._health.skipped += 1
            log.warning("skipped an undecodable frame: %s", exc)
            return
        if isinstance(event, ListenKeyExpired):
            if event.listen_key == conn.key == self._key:
                self._signals.put_nowait(
                    _KeyLost(self._generation, GapReason.KEY_EXPIRED, "listenKeyExpired", now)
                )
            return
        self._health.events += 1
        self._health.last_event_ms = now
        self._offer(self._reorder.push(Received(event, raw, now), event.event_time, now))
        if len(self._reorder):
            self._held.set()

    def _admit(self, overlap: Overlap, conn: _Connection, raw: bytes) -> bool:
        """During a rotation: False for the second copy of a frame both connections had."""
        if conn is self._rotating:
            admitted = overlap.admit("old", raw)
        elif conn is self._primary:
            admitted = overlap.admit("new", raw)
            if self._rotating is None and overlap.old_unmatched == 0:
                self._overlap = None  # the old one is closed and fully matched
        else:
            return True
        if overlap.joined:
            self._joined.set()
        return admitted

    def _offer(self, events: list[Received]) -> None:
        if not events:
            return
        for event in events:
            gap = self._buffer.offer_event(event)
            if gap is not None:
                self._health.gaps += 1
                log.warning("consumer too slow: dropped events (overflow='drop_oldest')")
        if self._buffer.policy == "block" and not self._buffer.has_room():
            self._room.clear()
        self._readable.set()

    def _gap(self, since_ms: int, reason: GapReason, detail: str) -> None:
        self._offer(self._reorder.flush())
        if self._buffer.offer_gap(StreamGap(since_ms, reason, detail)):
            self._health.gaps += 1
        self._readable.set()

    async def _flush_loop(self) -> None:
        held = self._held
        while True:
            deadline = self._reorder.next_deadline()
            if deadline is None:
                held.clear()
                await held.wait()
                continue
            await self._clock.sleep_until(deadline)
            self._offer(self._reorder.pop_due(self._clock.now_ms()))

    # --- keepalive --------------------------------------------------------------------------

    async def _keepalive_loop(self) -> None:
        while True:
            self._check_key.clear()  # before reading the plan: a later check_soon wakes us
            generation, key = self._generation, self._key
            changed = self._key_changed
            now = self._clock.now_ms()
            action = self._plan.due(now)
            if action is KeepaliveAction.PING and key is not None:
                action = await self._keepalive_once(key, generation)
            if action is KeepaliveAction.KEY_LOST:
                self._signals.put_nowait(
                    _KeyLost(generation, GapReason.KEY_LOST, "keepalives failed for 60 minutes")
                )
                await changed.wait()
            elif generation == self._generation:
                await self._sleep_or(self._plan.next_due_ms, changed, self._check_key)

    async def _keepalive_once(self, key: str, generation: int) -> KeepaliveAction:
        try:
            extended = await self._listen_keys.keepalive(key)
        except InvalidAPIKey as exc:
            self._health.keepalive(self._clock.now_ms(), str(exc))
            self._signals.put_nowait(_Fatal(exc))
            # End this loop: returning WAIT left `next_due_ms` in the past, so it sent the
            # rejected keepalive again at once, in a tight loop, until aclose().
            raise
        except ListenKeyNotFound as exc:
            self._health.keepalive(self._clock.now_ms(), str(exc))
            if generation == self._generation:
                self._signals.put_nowait(_KeyLost(generation, GapReason.KEY_REJECTED, str(exc)))
                await self._key_changed.wait()
            return KeepaliveAction.WAIT
        except (TransportError, BinanceAPIError) as exc:
            now = self._clock.now_ms()
            self._health.keepalive(now, str(exc))
            if generation != self._generation:
                return KeepaliveAction.WAIT
            # A 429/418 says when to come back; retrying sooner turns a 429 into an IP ban.
            retry_after = 0
            if isinstance(exc, RateLimited):
                self._note_limit(exc)
                retry_after = exc.retry_after_ms
            action = self._plan.failed(now, retry_after)
            log.warning("keepalive failed (%s); next try at %d", exc, self._plan.next_due_ms)
            return action
        now = self._clock.now_ms()
        self._health.keepalive(now, None)
        if generation != self._generation:
            return KeepaliveAction.WAIT
        if extended != key:
            self._signals.put_nowait(
                _KeyLost(generation, GapReason.KEY_REJECTED, "keepalive extended another key")
            )
            await self._key_changed.wait()
            return KeepaliveAction.WAIT
        self._plan.succeeded(now)
        log.debug("listenKey %s extended", redact(key))
        return KeepaliveAction.WAIT

    async def _sleep_or(self, deadline_ms: int, *events: asyncio.Event) -> None:
        """Until `deadline_ms` or until one of `events` is set, whichever comes first."""
        tasks: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self._clock.sleep_until(deadline_ms))
        ]
        tasks += [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- state ------------------------------------------------------------------------------

    def _set_state(self, new: ConnectionState, reason: str) -> None:
        old = self._health.state
        if old == new:
            return
        self._health.state = new
        log.info("state %s -> %s (%s)", old.value, new.value, reason)
        if self._on_state_change is not None:
            try:
                self._on_state_change(old, new, reason)
            except Exception:
                log.exception("on_state_change callback failed")
