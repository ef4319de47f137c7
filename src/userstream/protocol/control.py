"""Live subscription control messages on one stream connection (spec §4.4, §4.5).

`handle_control(message, state)` takes one text frame a client sent on a stream connection
and returns the reply to send, whether to disconnect afterwards, and which subscriptions
changed. The caller owns the socket, the frame-size limit and the clock; feed each incoming
frame through `IncomingRateLimit.allow(now_ms)` first and disconnect when it says False.

Replies follow Binance's "Live Subscribing/Unsubscribing to streams" page (USDⓈ-M, EN and
zh-CN, https://developers.binance.com/docs/derivatives/usds-margined-futures/
websocket-market-streams/Live-Subscribing-Unsubscribing-to-streams):

    {"result":null,"id":1}                       SUBSCRIBE / UNSUBSCRIBE / SET_PROPERTY
    {"result":["<name>",...],"id":3}             LIST_SUBSCRIPTIONS
    {"result":true,"id":2}                       GET_PROPERTY ["combined"]
    {"error":{"code":N,"msg":"..."},"id":<id|null>}
    {"error":{"code":3,"msg":"Invalid JSON: ..."}}  and the connection closes (CL 2023-06-22)

The error texts are serde / serde_json messages (the "unknown variant `X`, expected one of
..." and "at line 1 column 28" shapes in Binance's table), so this module reproduces them
with serde_json's rules, and the line/column suffix is computed the way serde_json computes
it (bytes consumed on the current line):

- Invalid JSON (code 3): serde_json's syntax error for the frame, e.g. `EOF while parsing a
  value at line 1 column 0`, `expected value at line 1 column 1`, `recursion limit exceeded
  at line 1 column 128` (serde_json nests at most 127 levels). No `id`: Binance sends none
  (3P capture in spec §4.4).
- `method` missing / not a string / unknown / given twice (code 2): the error of serde's
  internally tagged enum, positioned where serde_json reports it, and `"id":null` because
  the request never got as far as its id (3P: "missing field `method`" arrives with
  `"id":null`).
- `id` (code 2, `"id":null`): an unsigned 64-bit integer or, for the official SDKs, a
  string (they send 32-hex or UUID ids, spec §4.4 / §8 q9) up to `MAX_STRING_ID_LENGTH`
  characters; either is echoed back with its JSON type. Missing, null, negative, float,
  bool, object, array, too large or too long -> "request ID must be an unsigned integer".
  (Binance's Options streams reject string ids with exactly this text:
  binance/binance-connector-python#471, 2025-11-30.)
- Parameter errors echo the id. SUBSCRIBE / UNSUBSCRIBE `params` must be an array of valid
  stream names (see `routes.parse_stream_name`); anything else is
  `{"code":2,"msg":"Invalid request: invalid stream"}`, the text Binance sends for a
  malformed name on fstream (ccxt/ccxt#19833, binanceusdm, 2023-11-04). A well-formed but
  unknown name is acknowledged and never delivers (3P-OBS 2026-07-30, spec §4.1).
- A SUBSCRIBE that would take the connection over `MAX_STREAMS` is refused as a whole with
  `{"code":4,"msg":"Too many subscriptions"}`, the reply Binance's stream servers send
  (captured on spot, oliver-zehentleitner/unicorn-binance-websocket-api#17, 2020-04-27).
- Every request is all-or-nothing: an error reply means `state` is unchanged.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import msgspec

from userstream.protocol.routes import InvalidStreamName, StreamName, parse_stream_name

__all__ = [
    "MAX_INCOMING_PER_SECOND",
    "MAX_STREAMS",
    "MAX_STRING_ID_LENGTH",
    "ControlOutcome",
    "ControlState",
    "IncomingRateLimit",
    "handle_control",
]

MAX_STREAMS = 1024
"""Streams per connection (raised from 200 on 2025-07-02, spec §4.5)."""

MAX_INCOMING_PER_SECOND = 10
"""Incoming messages per second per connection; more -> disconnect (spec §4.5)."""

MAX_STRING_ID_LENGTH = 128
"""Longest string `id` echoed back (the SDKs send 32 or 36 characters)."""

_U64_MAX = 2**64 - 1
_SERDE_RECURSION_LIMIT = 128
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_EXPECTED_METHODS = "expected one of " + ", ".join(f"`{m}`" for m in _METHODS)

_UNKNOWN_PROPERTY = (0, "Unknown property")
_EXPECTED_BOOLEAN = (1, "Invalid value type: expected Boolean")
_PROPERTY_NAME = (2, "Invalid request: property name must be a string")
_BAD_ID = (2, "Invalid request: request ID must be an unsigned integer")
_TOO_MANY_PARAMS = (2, "Invalid request: too many parameters")
_INVALID_STREAM = (2, "Invalid request: invalid stream")
_TOO_MANY_SUBSCRIPTIONS = (4, "Too many subscriptions")

RequestId = int | str


@dataclass(slots=True)
class ControlState:
    """One connection's subscription state; `handle_control` mutates it.

    Build it from the route: `ControlState(route.combined, {s.name: s for s in
    route.streams})`. `streams` keeps insertion order, which is `LIST_SUBSCRIPTIONS` order.
    """

    combined: bool
    streams: dict[str, StreamName]


@dataclass(frozen=True, slots=True)
class ControlOutcome:
    """What to do after one control message.

    Send `reply` (when not None), then disconnect if `close`. Index the `subscribed` items
    and drop the `unsubscribed` ones; both are empty unless the request succeeded.
    """

    reply: bytes | None
    close: bool = False
    subscribed: tuple[StreamName, ...] = ()
    unsubscribed: tuple[StreamName, ...] = ()


class _ErrorBody(msgspec.Struct):
    code: int
    msg: str


class _ErrorReply(msgspec.Struct):
    error: _ErrorBody
    id: RequestId | None


class _FatalReply(msgspec.Struct):
    error: _ErrorBody


class _ResultReply(msgspec.Struct):
    result: bool | list[str] | None
    id: RequestId


# Requests are decoded to plain values, not a Struct: the error texts must be serde's and
# the id may be an integer or a string, so the checks below are written out by hand.
_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


def _result(result: bool | list[str] | None, request_id: RequestId) -> bytes:
    return _ENCODER.encode(_ResultReply(result=result, id=request_id))


def _error(error: tuple[int, str], request_id: RequestId | None) -> ControlOutcome:
    code, msg = error
    return ControlOutcome(_ENCODER.encode(_ErrorReply(_ErrorBody(code, msg), request_id)))


def handle_control(message: bytes | str, state: ControlState) -> ControlOutcome:
    """Answer one control message and apply it to `state`.

    Args:
        message: the frame's payload as received (text or bytes).
        state: the connection's state; changed only when the request succeeds.

    Returns:
        The reply to send; `close=True` for malformed JSON (disconnect after the reply).
    """
    data = message.encode("utf-8", "surrogatepass") if isinstance(message, str) else message
    try:
        doc: Any = _DECODER.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, ValueError):
        return _invalid_json(data)
    if _may_exceed_serde_depth(data):
        fault = _serde_syntax_error(data)
        if fault is not None:
            return _fatal(data, fault)
    if not isinstance(doc, dict):
        return _error((2, f"Invalid request: invalid type: {_describe(doc)}, expected a map"), None)

    method_error = _check_method(data)
    if method_error is not None:
        return _error((2, "Invalid request: " + method_error), None)
    method: str = doc["method"]

    request_id = doc.get("id")
    if not _is_valid_id(request_id):
        return _error(_BAD_ID, None)
    assert isinstance(request_id, int | str)

    params = doc.get("params")
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        names = _stream_names(params)
        if names is None:
            return _error(_INVALID_STREAM, request_id)
        if method == "SUBSCRIBE":
            return _subscribe(names, state, request_id)
        return _unsubscribe(names, state, request_id)
    if method == "LIST_SUBSCRIPTIONS":
        if params not in (None, []):
            return _error(_TOO_MANY_PARAMS, request_id)
        return ControlOutcome(_result(list(state.streams), request_id))
    return _property(method, params, state, request_id)


def _subscribe(
    names: list[StreamName], state: ControlState, request_id: RequestId
) -> ControlOutcome:
    new: dict[str, StreamName] = {}
    for item in names:
        if item.name not in state.streams:
            new.setdefault(item.name, item)
    if len(state.streams) + len(new) > MAX_STREAMS:
        return _error(_TOO_MANY_SUBSCRIPTIONS, request_id)
    state.streams.update(new)
    return ControlOutcome(_result(None, request_id), subscribed=tuple(new.values()))


def _unsubscribe(
    names: list[StreamName], state: ControlState, request_id: RequestId
) -> ControlOutcome:
    removed: list[StreamName] = []
    for item in names:
        gone = state.streams.pop(item.name, None)
        if gone is not None:
            removed.append(gone)
    return ControlOutcome(_result(None, request_id), unsubscribed=tuple(removed))


def _property(
    method: str, params: object, state: ControlState, request_id: RequestId
) -> ControlOutcome:
    if not isinstance(params, list) or not params or not isinstance(params[0], str):
        return _error(_PROPERTY_NAME, request_id)
    if len(params) > (2 if method == "SET_PROPERTY" else 1):
        return _error(_TOO_MANY_PARAMS, request_id)
    if params[0] != "combined":
        return _error(_UNKNOWN_PROPERTY, request_id)
    if method == "GET_PROPERTY":
        return ControlOutcome(_result(state.combined, request_id))
    value = params[1] if len(params) == 2 else None
    if not isinstance(value, bool):
        return _error(_EXPECTED_BOOLEAN, request_id)
    state.combined = value
    return ControlOutcome(_result(None, request_id))


def _stream_names(params: object) -> list[StreamName] | None:
    if not isinstance(params, list):
        return None
    names: list[StreamName] = []
    for item in params:
        if not isinstance(item, str):
            return None
        try:
            names.append(parse_stream_name(item))
        except InvalidStreamName:
            return None
    return names


def _is_valid_id(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value <= _U64_MAX
    return isinstance(value, str) and len(value) <= MAX_STRING_ID_LENGTH


def _describe(value: object) -> str:
    """serde_json's `Unexpected` wording for a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, list):
        return "sequence"
    return "map"


# --- positions of top-level members, for serde's "at line L column C" suffix ----------------

_WHITESPACE = b" \t\n\r"
_HEX_DIGITS = b"0123456789abcdefABCDEF"


def _position(data: bytes, index: int) -> str:
    """serde_json `Position` of `index` bytes consumed, as its error Display suffix."""
    start_of_line = data.rfind(b"\n", 0, index) + 1
    line = 1 + data.count(b"\n", 0, start_of_line)
    return f" at line {line} column {index - start_of_line}"


def _skip_ws(data: bytes, i: int) -> int:
    while i < len(data) and data[i] in _WHITESPACE:
        i += 1
    return i


def _string_end(data: bytes, i: int) -> int:
    i += 1
    while data[i] != 0x22:
        i += 2 if data[i] == 0x5C else 1
    return i + 1


def _value_end(data: bytes, i: int) -> int:
    first = data[i]
    if first == 0x22:
        return _string_end(data, i)
    if first in b"[{":
        depth = 0
        while True:
            ch = data[i]
            if ch == 0x22:
                i = _string_end(data, i)
                continue
            if ch in b"[{":
                depth += 1
            elif ch in b"]}":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
    while i < len(data) and data[i] not in b" \t\n\r,]}":
        i += 1
    return i


def _check_method(data: bytes) -> str | None:
    """serde's error for the `method` tag of a well-formed JSON object, or None if valid.

    Mirrors serde's `TaggedContentVisitor::visit_map`: the first `method` value is read as a
    variant identifier (errors positioned right after it, or before a `[` / `{`), a second
    `method` key is "duplicate field", and none at all is "missing field" after the `}`.
    """
    i = _skip_ws(data, 0) + 1
    seen = False
    while True:
        i = _skip_ws(data, i)
        if data[i] == 0x7D:
            end = i + 1
            break
        if data[i] == 0x2C:
            i = _skip_ws(data, i + 1)
        key_start, key_end = i, _string_end(data, i)
        key = _DECODER.decode(data[key_start:key_end])
        i = _skip_ws(data, key_end) + 1
        i = _skip_ws(data, i)
        value_end = _value_end(data, i)
        if key == "method":
            if seen:
                return "duplicate field `method`" + _position(data, key_end)
            seen = True
            value = _DECODER.decode(data[i:value_end])
            if not isinstance(value, str):
                at = i if data[i] in b"[{" else value_end
                return f"invalid type: {_describe(value)}, expected variant identifier" + _position(
                    data, at
                )
            if value not in _METHODS:
                return f"unknown variant `{value}`, {_EXPECTED_METHODS}" + _position(
                    data, value_end
                )
        i = value_end
    if not seen:
        return "missing field `method`" + _position(data, end)
    return None


# --- serde_json syntax errors (code 3) ------------------------------------------------------


class _JSONSyntaxError(Exception):
    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.message = message
        self.index = index


class _SerdeSyntax:
    """A JSON syntax check that fails where and how serde_json's `from_slice` fails."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0
        self.remaining_depth = _SERDE_RECURSION_LIMIT

    def error(self, message: str) -> _JSONSyntaxError:
        return _JSONSyntaxError(message, self.i)

    def peek_error(self, message: str) -> _JSONSyntaxError:
        return _JSONSyntaxError(message, min(len(self.data), self.i + 1))

    def peek(self) -> int | None:
        self.i = _skip_ws(self.data, self.i)
        return self.data[self.i] if self.i < len(self.data) else None

    def next_char(self) -> int | None:
        if self.i >= len(self.data):
            return None
        self.i += 1
        return self.data[self.i - 1]

    def document(self) -> None:
        self.value()
        if self.peek() is not None:
            raise self.peek_error("trailing characters")

    def value(self) -> None:
        c = self.peek()
        if c is None:
            raise self.peek_error("EOF while parsing a value")
        if c in b"ntf":
            self.i += 1
            self.ident({0x6E: b"ull", 0x74: b"rue", 0x66: b"alse"}[c])
        elif c == 0x2D:
            self.i += 1
            self.number()
        elif 0x30 <= c <= 0x39:
            self.number()
        elif c == 0x22:
            self.i += 1
            self.string()
        elif c in b"[{":
            self.remaining_depth -= 1
            if self.remaining_depth == 0:
                raise self.peek_error("recursion limit exceeded")
            self.i += 1
            self.members(c == 0x7B)
            self.remaining_depth += 1
        else:
            raise self.peek_error("expected value")

    def ident(self, rest: bytes) -> None:
        for expected in rest:
            got = self.next_char()
            if got is None:
                raise self.error("EOF while parsing a value")
            if got != expected:
                raise self.error("expected ident")

    def digits(self) -> int:
        start = self.i
        while self.i < len(self.data) and 0x30 <= self.data[self.i] <= 0x39:
            self.i += 1
        return self.i - start

    def number(self) -> None:
        start = self.i
        first = self.next_char()
        if first is None:
            raise self.error("EOF while parsing a value")
        if first == 0x30:
            if self.i < len(self.data) and 0x30 <= self.data[self.i] <= 0x39:
                raise self.peek_error("invalid number")
        elif 0x31 <= first <= 0x39:
            self.digits()
        else:
            raise self.error("invalid number")
        if self.i < len(self.data) and self.data[self.i] == 0x2E:
            self.i += 1
            if not self.digits():
                if self.i < len(self.data):
                    raise self.peek_error("invalid number")
                raise self.peek_error("EOF while parsing a value")
        if self.i < len(self.data) and self.data[self.i] in b"eE":
            self.i += 1
            if self.i < len(self.data) and self.data[self.i] in b"+-":
                self.i += 1
            got = self.next_char()
            if got is None:
                raise self.error("EOF while parsing a value")
            if not 0x30 <= got <= 0x39:
                raise self.error("invalid number")
            self.digits()
        if float(self.data[start : self.i]) == float("inf"):
            raise self.error("number out of range")

    def hex4(self) -> int:
        # serde_json >= 1.0.108 takes the four digits at once, then checks them.
        digits = self.data[self.i : self.i + 4]
        if len(digits) < 4:
            self.i = len(self.data)
            raise self.error("EOF while parsing a string")
        self.i += 4
        if not all(d in _HEX_DIGITS for d in digits):
            raise self.error("invalid escape")
        return int(digits, 16)

    def string(self) -> None:
        start = self.i
        while True:
            got = self.next_char()
            if got is None:
                raise self.error("EOF while parsing a string")
            if got == 0x22:
                try:
                    self.data[start : self.i - 1].decode("utf-8")
                except UnicodeDecodeError:
                    raise self.error("invalid unicode code point") from None
                return
            if got == 0x5C:
                self.escape()
            elif got < 0x20:
                raise self.error("control character (\\u0000-\\u001F) found while parsing a string")

    def escape(self) -> None:
        got = self.next_char()
        if got is None:
            raise self.error("EOF while parsing a string")
        if got in b'"\\/bfnrt':
            return
        if got != 0x75:
            raise self.error("invalid escape")
        code = self.hex4()
        if 0xDC00 <= code <= 0xDFFF:
            # serde_json's own wording for a lone trailing surrogate.
            raise self.error("lone leading surrogate in hex escape")
        if 0xD800 <= code <= 0xDBFF:
            for expected in b"\\u":
                got = self.next_char()
                if got is None:
                    raise self.error("EOF while parsing a string")
                if got != expected:
                    raise self.error("unexpected end of hex escape")
            if not 0xDC00 <= self.hex4() <= 0xDFFF:
                raise self.error("lone leading surrogate in hex escape")

    def members(self, is_object: bool) -> None:
        close = 0x7D if is_object else 0x5D
        eof = "EOF while parsing an object" if is_object else "EOF while parsing a list"
        first = True
        while True:
            c = self.peek()
            if c == close:
                self.i += 1
                return
            if c == 0x2C and not first:
                self.i += 1
                c = self.peek()
            elif c is None:
                raise self.peek_error(eof)
            elif first:
                first = False
            else:
                raise self.peek_error("expected `,` or `}`" if is_object else "expected `,` or `]`")
            if c == close:
                raise self.peek_error("trailing comma")
            if c is None:
                raise self.peek_error("EOF while parsing a value")
            if not is_object:
                self.value()
                continue
            if c != 0x22:
                raise self.peek_error("key must be a string")
            self.i += 1
            self.string()
            c = self.peek()
            if c is None:
                raise self.peek_error(eof)
            if c != 0x3A:
                raise self.peek_error("expected `:`")
            self.i += 1
            self.value()


def _serde_syntax_error(data: bytes) -> _JSONSyntaxError | None:
    try:
        _SerdeSyntax(data).document()
    except _JSONSyntaxError as fault:
        return fault
    return None


def _may_exceed_serde_depth(data: bytes) -> bool:
    return data.count(b"[") + data.count(b"{") >= _SERDE_RECURSION_LIMIT - 1


def _fatal(data: bytes, fault: _JSONSyntaxError) -> ControlOutcome:
    suffix = _position(data, fault.index) if fault.index >= 0 else ""
    msg = f"Invalid JSON: {fault.message}{suffix}"
    return ControlOutcome(_ENCODER.encode(_FatalReply(_ErrorBody(3, msg))), close=True)


def _invalid_json(data: bytes) -> ControlOutcome:
    fault = _serde_syntax_error(data)
    if fault is None:
        # msgspec refused what serde_json accepts (not known to happen): no position.
        fault = _JSONSyntaxError("expected value", -1)
    return _fatal(data, fault)


class IncomingRateLimit:
    """At most `limit` incoming messages in any `window_ms` span (spec §4.5: 10 per second).

    Call `allow(now_ms)` for every frame the client sends (control or not); on False,
    disconnect (Binance may ban IPs that are disconnected repeatedly). The window slides: a
    message is allowed when fewer than `limit` allowed messages fall in the last `window_ms`
    milliseconds. Denied messages are not counted. A clock that steps back is treated as
    standing still.
    """

    __slots__ = ("_limit", "_times", "_window_ms")

    def __init__(self, limit: int = MAX_INCOMING_PER_SECOND, window_ms: int = 1000) -> None:
        if limit < 1 or window_ms < 1:
            raise ValueError("limit and window_ms must be positive")
        self._limit = limit
        self._window_ms = window_ms
        self._times: deque[int] = deque(maxlen=limit)

    def allow(self, now_ms: int) -> bool:
        """Record one incoming message at `now_ms`; False means disconnect now."""
        times = self._times
        if times and now_ms < times[-1]:
            now_ms = times[-1]
        if len(times) == self._limit and now_ms - times[0] < self._window_ms:
            return False
        times.append(now_ms)
        return True
