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
..." and "at line 1 column 28" shapes in Binance's table), reproduced by
`userstream.protocol.serde_errors`:

- Invalid JSON (code 3): serde_json's syntax error for the frame, e.g. `EOF while parsing a
  value at line 1 column 0`, `recursion limit exceeded at line 1 column 128` (serde_json nests
  at most 127 levels). No `id`: Binance sends none (3P capture in spec §4.4).
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
from userstream.protocol.serde_errors import (
    SyntaxFault,
    describe,
    exceeds_depth,
    method_error,
    syntax_error,
)

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
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")

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
    if exceeds_depth(data):
        return _invalid_json(data)
    if not isinstance(doc, dict):
        return _error((2, f"Invalid request: invalid type: {describe(doc)}, expected a map"), None)

    method_fault = method_error(data, doc, _METHODS)
    if method_fault is not None:
        return _error((2, "Invalid request: " + method_fault), None)
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


def _fatal(data: bytes, fault: SyntaxFault) -> ControlOutcome:
    msg = "Invalid JSON: " + fault.display(data)
    return ControlOutcome(_ENCODER.encode(_FatalReply(_ErrorBody(3, msg))), close=True)


def _invalid_json(data: bytes) -> ControlOutcome:
    fault = syntax_error(data)
    if fault is None:
        # msgspec refused what serde_json accepts (not known to happen): no position.
        fault = SyntaxFault("expected value", -1)
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
