"""A server-side WebSocket connection: frames in, pre-encoded frames out.

The fan-out hot path calls `send_frame()` with bytes that were encoded once for every
connection. Frames queue in a per-connection outbox; a shared `Flusher` writes every dirty
outbox once per event-loop turn, so a burst of events costs one `transport.write` per
connection. A consumer whose unsent bytes pass `max_buffer` is closed with 1008 and a reason
instead of growing memory.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Protocol

from userstream.protocol import wsframes
from userstream.protocol.wsframes import CloseCode, FrameError, Opcode

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 2.0
DEFAULT_MAX_BUFFER = 4 * 1024 * 1024


class WebSocketHandler(Protocol):
    """What a stream or WebSocket API session does with its connection."""

    def on_open(self, conn: WebSocketConnection) -> None: ...

    def on_message(self, opcode: Opcode, payload: bytes) -> None: ...

    def on_ping(self, payload: bytes) -> None:
        """A ping arrived; the connection answers it after this unless this closed it."""
        ...

    def on_pong(self, payload: bytes) -> None: ...

    def on_close(self, code: int, reason: str) -> None: ...


class Flusher:
    """Writes every connection's outbox once per loop turn."""

    def __init__(self) -> None:
        self._dirty: list[WebSocketConnection] = []
        self._scheduled = False
        self._held = False
        # The loop, looked up once: on Python 3.11 `get_running_loop()` makes a getpid system
        # call, and `mark` runs once per request served at half load.
        self._loop: asyncio.AbstractEventLoop | None = None
        self.max_buffer = DEFAULT_MAX_BUFFER
        # Totals over every connection, read by /metrics at scrape time.
        self.bytes_sent = 0
        self.slow_consumers = 0

    def mark(self, conn: WebSocketConnection) -> None:
        self._dirty.append(conn)
        if not self._scheduled and not self._held:
            self._scheduled = True
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._flush)

    def hold(self) -> None:
        """Schedule no flush for connections marked from now on: the caller flushes them
        (`release`) before it returns to the loop."""
        self._held = True

    def release(self) -> None:
        """Write every dirty outbox and schedule flushes again."""
        self._held = False
        self.flush_now()

    def flush_now(self) -> None:
        """Write every dirty outbox now rather than at the end of the loop turn (the turn's
        scheduled flush still runs and writes whatever is queued after this)."""
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()

    def _flush(self) -> None:
        self._scheduled = False
        self.flush_now()


class CloseState(enum.Enum):
    """Where a connection is in its life (RFC 6455 §4.1, §7.1)."""

    OPEN = enum.auto()
    CLOSING = enum.auto()  # a close frame went out, or TCP is being dropped: nothing more sent
    CLOSED = enum.auto()  # the TCP connection is gone


class WebSocketConnection:
    __slots__ = (
        "_close_timer",
        "_dirty",
        "_flusher",
        "_handler",
        "_outbox",
        "_parser",
        "_transport",
        "bytes_sent",
        "client_ip",
        "close_code",
        "close_reason",
        "state",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        handler: WebSocketHandler,
        flusher: Flusher,
        max_message: int,
        client_ip: str,
    ) -> None:
        self._transport = transport
        self._handler = handler
        self._flusher = flusher
        self._parser = wsframes.FrameParser(max_message)
        self._outbox: list[bytes] = []
        self._dirty = False
        self.state = CloseState.OPEN
        self._close_timer: asyncio.TimerHandle | None = None
        self.client_ip = client_ip
        self.bytes_sent = 0
        self.close_code: int = CloseCode.ABNORMAL
        self.close_reason = ""

    @property
    def open_(self) -> bool:
        return self.state is CloseState.OPEN

    def open(self) -> None:
        self._handler.on_open(self)

    # sending

    def send_frame(self, frame: bytes) -> None:
        """Queue one pre-encoded frame; written with the rest at the end of this loop turn."""
        if self.state is not CloseState.OPEN:
            return
        self._outbox.append(frame)
        if not self._dirty:
            self._dirty = True
            self._flusher.mark(self)

    def send_frames(self, frames: list[bytes]) -> None:
        """Queue whole frames given as byte chunks in order (the list is shared: not kept)."""
        if self.state is not CloseState.OPEN:
            return
        self._outbox += frames
        if not self._dirty:
            self._dirty = True
            self._flusher.mark(self)

    def send_text(self, payload: bytes) -> None:
        self.send_frame(wsframes.text_frame(payload))

    def ping(self, payload: bytes) -> None:
        self.send_frame(wsframes.encode_frame(Opcode.PING, payload))

    def flush(self) -> None:
        self._dirty = False
        if not self._outbox or self.state is CloseState.CLOSED:
            self._outbox.clear()
            return
        data = self._outbox[0] if len(self._outbox) == 1 else b"".join(self._outbox)
        self._outbox.clear()
        self._transport.write(data)
        self.bytes_sent += len(data)
        self._flusher.bytes_sent += len(data)
        buffered = self._transport.get_write_buffer_size()
        if buffered > self._flusher.max_buffer and self.state is CloseState.OPEN:
            self._flusher.slow_consumers += 1
            self.close(
                CloseCode.POLICY_VIOLATION,
                f"slow consumer: {buffered} bytes unsent (limit {self._flusher.max_buffer})",
            )

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake: flush, send a close frame, drop TCP after a grace."""
        if self.state is not CloseState.OPEN:
            return
        if code == CloseCode.ABNORMAL:
            self.abort(reason or "dropped")
            return
        self.flush()
        self.state = CloseState.CLOSING
        self.close_code, self.close_reason = code, reason
        self._transport.write(wsframes.close_frame(code, reason))
        loop = asyncio.get_running_loop()
        self._close_timer = loop.call_later(CLOSE_TIMEOUT_S, self._transport.abort)

    def abort(self, reason: str = "") -> None:
        """Drop the TCP connection without a close frame (the peer sees 1006)."""
        if self.state is CloseState.CLOSED:
            return
        self.state = CloseState.CLOSING
        self.close_code, self.close_reason = CloseCode.ABNORMAL, reason
        self._transport.abort()

    # receiving

    def data_received(self, data: bytes) -> None:
        if self.state is CloseState.CLOSED:
            return
        try:
            messages = self._parser.feed(data)
        except FrameError as exc:
            self.close(exc.code, exc.reason)
            # Nothing after a framing error can be parsed, so the peer's closing reply would
            # never be read: fail the connection (RFC 6455 §7.1.7) and drop TCP once the close
            # frame is written, instead of leaving the client waiting CLOSE_TIMEOUT_S.
            self._transport.close()
            return
        self._dispatch(messages)

    def _dispatch(self, messages: list[wsframes.Message]) -> None:
        for message in messages:
            state = self.state
            if state is CloseState.CLOSED:
                return
            opcode = message.opcode
            if opcode == Opcode.CLOSE:
                self._on_close_frame(message.payload)
            elif state is not CloseState.OPEN:
                continue  # after our close frame, only the peer's close frame matters (§7.1.2)
            elif opcode == Opcode.PING:
                self._handler.on_ping(message.payload)
                self.send_frame(wsframes.encode_frame(Opcode.PONG, message.payload))
            elif opcode == Opcode.PONG:
                self._handler.on_pong(message.payload)
            else:
                self._handler.on_message(opcode, message.payload)

    def _on_close_frame(self, payload: bytes) -> None:
        code, reason = wsframes.parse_close(payload)
        if self.state is not CloseState.OPEN:  # the peer answered our close: handshake done
            self._transport.close()
            return
        self.close_code, self.close_reason = code, reason
        self.flush()
        self.state = CloseState.CLOSING
        # Echo the peer's code only when it is one a close frame may carry: a 999 or 5000,
        # a one-byte payload or a non-UTF-8 reason is answered with 1002 / 1007 instead.
        reply = wsframes.close_reply_code(payload)
        self._transport.write(wsframes.close_frame(reply))
        self._transport.close()

    def pause_writing(self) -> None:
        """The transport's buffer is over its high-water mark; `flush` checks the hard limit."""

    def resume_writing(self) -> None:
        """Nothing to do: the outbox is flushed every loop turn regardless."""

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state is CloseState.CLOSED:
            return
        self.state = CloseState.CLOSED
        self._outbox.clear()
        if self._close_timer is not None:
            self._close_timer.cancel()
        try:
            self._handler.on_close(self.close_code, self.close_reason)
        except Exception:
            log.exception("close handler failed")
