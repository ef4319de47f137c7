"""WebSocket framing (RFC 6455), sans-I/O, server side.

The server writes unmasked frames it builds once and reuses for every connection (the fan-out
hot path needs the header prepended exactly once per event), and parses masked client frames.
Only what a stream server needs: text/binary messages with fragmentation, ping, pong, close.
Why this parser is kept rather than websockets' sans-I/O `ServerProtocol`:
docs/websocket-inbound.md.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

import msgspec

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Opcode(IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    ABNORMAL = 1006  # never sent on the wire: it means "dropped without a close frame"
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


def sendable_close_code(code: int) -> bool:
    """Whether an endpoint may put `code` in a close frame (RFC 6455 §7.4.1-7.4.2): 1000-1003,
    1007-1014 (1004 is reserved; 1005 and 1006 mean "no code" and "no close frame" and never go
    on the wire) and 3000-4999 (registered and private codes)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class FrameError(Exception):
    """The peer broke the framing rules; close the connection with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Message(msgspec.Struct, frozen=True, gc=False):
    """A complete data message, or a control frame, received from the client. (A struct:
    built for every request, it is several times cheaper to build than a frozen dataclass.)"""

    opcode: Opcode
    payload: bytes


def accept_key(sec_websocket_key: str) -> str:
    """The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1(sec_websocket_key.encode("ascii") + _GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def valid_client_key(sec_websocket_key: str) -> bool:
    try:
        return len(base64.b64decode(sec_websocket_key.encode("ascii"), validate=True)) == 16
    except (ValueError, UnicodeEncodeError):
        return False


VERSION = "13"


@dataclass(frozen=True, slots=True)
class HandshakeRejection:
    """Answer an upgrade request with this HTTP status, message and extra headers."""

    status: int
    msg: str
    headers: tuple[tuple[str, str], ...] = ()


def check_handshake(method: str, headers: Mapping[str, str]) -> HandshakeRejection | None:
    """None when an opening handshake (header names lower-cased) may be accepted (RFC 6455
    §4.2.1). A version other than 13 is answered 426 with `Sec-WebSocket-Version: 13`, so the
    client can retry with one we speak (§4.2.2 point 4, §4.4); anything else malformed is 400."""
    if (
        method != "GET"
        or headers.get("upgrade", "").lower() != "websocket"
        or "sec-websocket-version" not in headers
        or not valid_client_key(headers.get("sec-websocket-key", ""))
    ):
        return HandshakeRejection(400, "Invalid WebSocket upgrade request.")
    if headers["sec-websocket-version"] != VERSION:
        return HandshakeRejection(
            426, "Unsupported WebSocket version.", (("Sec-WebSocket-Version", VERSION),)
        )
    return None


def frame_header(opcode: int, length: int) -> bytes:
    """The header of one final, unmasked frame (servers never mask, RFC 6455 §5.1-5.2)."""
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame."""
    return frame_header(opcode, len(payload)) + payload


class _TextHeaders(dict[int, bytes]):
    """Text-frame headers by payload length, made on first use. Only lengths under 64 KiB are
    kept (at most 65,536 entries; events are 200-2,000 bytes, so in practice a few hundred)."""

    def __missing__(self, length: int) -> bytes:
        header = frame_header(Opcode.TEXT, length)
        if length < 65536:
            self[length] = header
        return header


_TEXT_HEADERS = _TextHeaders()


def text_frame(payload: bytes) -> bytes:
    return _TEXT_HEADERS[len(payload)] + payload


def text_frame_chunks(payloads: list[bytes]) -> list[bytes]:
    """A text frame per payload as header and payload chunks, `[h1, p1, h2, p2, ...]`.

    The fan-out hot path frames each event once here. Keeping the payload a chunk of its own
    spares a copy per event: the connection joins its chunks into one write anyway.
    """
    headers = _TEXT_HEADERS
    chunks: list[bytes] = payloads * 2  # sized once, then both halves placed by slice
    chunks[::2] = [headers[len(payload)] for payload in payloads]
    chunks[1::2] = payloads
    return chunks


MAX_CLOSE_REASON = 123  # a control frame's 125-byte payload less the 2-byte code (§5.5)


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame; the reason is cut to fit the 123-byte control-frame budget, never inside
    a UTF-8 character (the peer must fail a close frame whose reason is not UTF-8, §5.5.1)."""
    data = reason.encode("utf-8")
    if len(data) > MAX_CLOSE_REASON:
        # Only the last, cut character can be incomplete: "ignore" drops exactly its bytes.
        data = data[:MAX_CLOSE_REASON].decode("utf-8", "ignore").encode("utf-8")
    return encode_frame(Opcode.CLOSE, struct.pack("!H", code) + data)


def _unmask(frame: bytearray, start: int, end: int) -> bytes:
    """The payload of `frame[start + 4 : end]`, unmasked with the key `frame[start : start + 4]`.

    XOR with the 4-byte key repeated, done as one big-integer operation: fast enough for the
    small messages clients send, with no C extension needed. Read from the buffer directly:
    no copy of the key or the payload first."""
    n = end - start - 4
    if not n:
        return b""
    key = (frame[start : start + 4] * (n // 4 + 1))[:n]
    payload = int.from_bytes(frame[start + 4 : end], "big")
    return (payload ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class FrameParser:
    """Feeds on raw bytes from a client; yields complete messages and control frames.

    `max_message` bounds a reassembled data message; anything larger is a 1009 close.
    """

    def __init__(self, max_message: int = 64 * 1024) -> None:
        self._buffer = bytearray()
        self._max_message = max_message
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self._fragment_size = 0

    def feed(self, data: bytes) -> list[Message]:
        """Parse as many frames as `data` completes; raise `FrameError` on a protocol breach."""
        self._buffer += data
        messages: list[Message] = []
        while True:
            frame = self._next_frame()
            if frame is None:
                return messages
            message = self._assemble(*frame)
            if message is not None:
                messages.append(message)

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        if first & 0x70:
            raise FrameError(CloseCode.PROTOCOL_ERROR, "reserved bits set (no extension agreed)")
        if not second & 0x80:
            raise FrameError(CloseCode.PROTOCOL_ERROR, "client frames must be masked")
        length = second & 0x7F
        offset = 2
        if length == 126:
            if len(buf) < 4:
                return None
            length = int.from_bytes(buf[2:4], "big")
            offset = 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length = int.from_bytes(buf[2:10], "big")
            if length >> 63:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "64-bit length with the top bit set")
            offset = 10
        if length > self._max_message:
            raise FrameError(CloseCode.MESSAGE_TOO_BIG, f"frame over {self._max_message} bytes")
        end = offset + 4 + length
        if len(buf) < end:
            return None
        payload = _unmask(buf, offset, end)
        del buf[:end]
        return bool(first & 0x80), first & 0x0F, payload

    def _assemble(self, fin: bool, opcode: int, payload: bytes) -> Message | None:
        if opcode >= 0x8:
            if opcode not in (Opcode.CLOSE, Opcode.PING, Opcode.PONG):
                raise FrameError(CloseCode.PROTOCOL_ERROR, f"unknown control opcode {opcode}")
            if not fin or len(payload) > 125:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "invalid control frame")
            return Message(Opcode(opcode), payload)
        if opcode == Opcode.CONTINUATION:
            if self._fragment_opcode is None:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "continuation without a start")
        elif opcode in (Opcode.TEXT, Opcode.BINARY):
            if self._fragment_opcode is not None:
                raise FrameError(CloseCode.PROTOCOL_ERROR, "new message inside a fragmented one")
            if fin:
                return _message(_DATA_OPCODES[opcode], payload)
            self._fragment_opcode = _DATA_OPCODES[opcode]
        else:
            raise FrameError(CloseCode.PROTOCOL_ERROR, f"unknown data opcode {opcode}")
        self._fragment_size += len(payload)
        if self._fragment_size > self._max_message:
            raise FrameError(CloseCode.MESSAGE_TOO_BIG, f"message over {self._max_message} bytes")
        self._fragments.append(payload)
        if not fin:
            return None
        assert self._fragment_opcode is not None
        message = _message(self._fragment_opcode, b"".join(self._fragments))
        self._fragments.clear()
        self._fragment_opcode = None
        self._fragment_size = 0
        return message


# The members by value, looked up: `Opcode(opcode)` costs half a µs per message.
_DATA_OPCODES: Final = {Opcode.TEXT.value: Opcode.TEXT, Opcode.BINARY.value: Opcode.BINARY}


def _message(opcode: Opcode, payload: bytes) -> Message:
    """A complete data message; a text message must be UTF-8 (RFC 6455 §8.1: fail with 1007)."""
    if opcode == Opcode.TEXT:
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message") from None
    return Message(opcode, payload)


def close_reply_code(payload: bytes) -> int:
    """The code to answer a peer's close frame with (RFC 6455 §5.5.1, §7.4).

    A valid code is echoed and an empty payload gets 1000. A one-byte payload or a code no
    endpoint may send (below 1000, 1004-1006, 1015-2999, 5000 and up) is a protocol error
    (1002), and a reason that is not UTF-8 is 1007: echoing those would break the protocol
    in turn (the `websockets` client fails the connection on a 999 or 5000 close code).
    """
    if not payload:
        return CloseCode.NORMAL
    if len(payload) == 1:
        return CloseCode.PROTOCOL_ERROR
    code = int.from_bytes(payload[:2], "big")
    if not sendable_close_code(code):
        return CloseCode.PROTOCOL_ERROR
    try:
        payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        return CloseCode.INVALID_DATA
    return code


def parse_close(payload: bytes) -> tuple[int, str]:
    """The code and reason of a received close frame (1005 when it carries none)."""
    if len(payload) < 2:
        return 1005, ""
    code = int.from_bytes(payload[:2], "big")
    return code, payload[2:].decode("utf-8", "replace")
