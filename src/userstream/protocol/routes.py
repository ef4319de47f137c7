"""Stream URL forms -> what a stream connection starts with (spec §4.1-§4.3, §4.5).

`parse_route(path, query)` is called with the request target of a WebSocket upgrade, split
at the first `?`. It returns a `Route` or raises `RouteNotFound`, which the server turns into
HTTP 404 at the handshake (3P-OBS 2026-10-07: `/stream/nonsense` -> 404).

Accepted forms (every route prefix takes the same query grammar):

    /ws[/<name>]                  LEGACY   raw       (retired by Binance 2026-04-23)
    /stream                       LEGACY   combined
    /private/ws[/<listenKey>]     PRIVATE  raw       (routing since 2026-03-06)
    /private/stream               PRIVATE  combined
    /market/ws[/<name>], /market/stream, /public/ws[/<name>], /public/stream

    query: streams=<n1>/<n2>/...                         each item a stream name
           listenKey=<k1>[&events=A/B]&listenKey=<k2>...  each `events` belongs to the
                                                          listenKey before it (or to the
                                                          path's name when none came before)

Decisions for input Binance does not document (each pinned by a test):

- One trailing `/` is tolerated (`/ws/` is `/ws`); other empty segments, `.` / `..`
  segments, more than one name after `/ws`, and any name after `/stream` -> 404.
- Path segments and query values are percent-decoded (strict UTF-8); `+` in the query is
  a space, so it makes a name invalid. A NUL or other control character, an invalid
  stream name or event name, or a target longer than `MAX_TARGET_LENGTH` -> 404.
- Empty items (`streams=`, `streams=a//b`, `listenKey=`, `events=`) are skipped: the
  official SDKs connect to `/private/stream?streams=` and subscribe afterwards (spec §4.2).
  An empty `events` value therefore means "no filter", like an absent one.
- Query keys other than `streams`, `listenKey` and `events` are ignored. This is also how
  `/ws?<streamName>` ("not supported" since CL 2023-06-22) becomes a plain `/ws` without
  streams.
- `events` attaches to the nearest `listenKey=` (or path name) before it; after a
  `streams=` item, or with nothing before it, it is ignored (validated, not applied).
- Duplicate names collapse into one; more than `MAX_URL_STREAMS` distinct names -> 404.
- The initial streams are sorted by name (code-point order), which reproduces the observed
  `LIST_SUBSCRIPTIONS` answers: `["<lk>@ACCOUNT_UPDATE", ..., "<lk>@listenKeyExpired"]` on
  `/private/ws?listenKey=...&events=...` and `["<lk>"]` on `/ws/<lk>` (3P-OBS 2026-09-12).
- `/ws-fapi/v1` (the WebSocket API) is not a stream route: 404 here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, unquote

from userstream.exceptions import UserStreamError

__all__ = [
    "MAX_STREAM_NAME_LENGTH",
    "MAX_TARGET_LENGTH",
    "MAX_URL_STREAMS",
    "InvalidStreamName",
    "Route",
    "RouteKind",
    "RouteNotFound",
    "StreamName",
    "parse_route",
    "parse_stream_name",
]

MAX_TARGET_LENGTH = 8192
"""Longest accepted path + query, in characters (a longer target is answered with 404)."""

MAX_URL_STREAMS = 1024
"""Streams per connection (raised from 200 on 2025-07-02, spec §4.5)."""

MAX_STREAM_NAME_LENGTH = 200
"""Longest accepted stream name. A listenKey is 64 characters; the longest event name is 32."""

_NAME_PUNCTUATION = frozenset("_-@!")


class RouteKind(StrEnum):
    """The entry point a connection came through (spec §4.1)."""

    PRIVATE = "private"
    MARKET = "market"
    PUBLIC = "public"
    LEGACY = "legacy"


class RouteNotFound(UserStreamError):
    """The upgrade request names no stream route; answer the handshake with HTTP 404."""


class InvalidStreamName(UserStreamError, ValueError):
    """A stream name is empty, too long or holds a character no Binance stream name has."""


@dataclass(frozen=True, slots=True)
class StreamName:
    """One subscription item, e.g. `"<listenKey>"`, `"<listenKey>@ORDER_TRADE_UPDATE"`.

    `name` is what `LIST_SUBSCRIPTIONS` shows and what a combined envelope's `"stream"`
    carries. `listen_key` is the part before the first `@`; for a market stream such as
    `btcusdt@aggTrade` it is `btcusdt`, which simply never matches an issued key. `event` is
    `None` for "every event of that key", else the single event name this item allows.
    """

    name: str
    listen_key: str
    event: str | None


@dataclass(frozen=True, slots=True)
class Route:
    """What a stream connection starts with.

    `streams` are the initial subscriptions, in the order `LIST_SUBSCRIPTIONS` reports them.
    `delivers_user_data` is False on `/market` and `/public`: they accept the connection and
    control messages but never push user data (spec §4.1).
    """

    kind: RouteKind
    combined: bool
    streams: tuple[StreamName, ...]
    delivers_user_data: bool


def _is_name_char(ch: str) -> bool:
    # Unicode letters and digits are allowed: symbols may be Chinese since CL 2025-10-09.
    return ch.isalnum() or ch in _NAME_PUNCTUATION


def _check_token(token: str, what: str) -> None:
    if not token:
        raise InvalidStreamName(f"empty {what}")
    if len(token) > MAX_STREAM_NAME_LENGTH:
        raise InvalidStreamName(f"{what} longer than {MAX_STREAM_NAME_LENGTH} characters")
    if not all(_is_name_char(ch) for ch in token):
        raise InvalidStreamName(f"{what} has a character outside letters, digits and _-@!")


def parse_stream_name(name: str) -> StreamName:
    """Split a stream name at its first `@` into listenKey and event.

    Raises:
        InvalidStreamName: `name` is empty, longer than `MAX_STREAM_NAME_LENGTH`, has a
            character other than Unicode letters, digits and `_-@!`, or an empty part
            around an `@` (`"@X"`, `"key@"`, `"a@@b"`).
    """
    _check_token(name, "stream name")
    key, sep, event = name.partition("@")
    if sep and (not key or not event or "" in event.split("@")):
        raise InvalidStreamName("empty part around '@' in stream name")
    return StreamName(name=name, listen_key=key, event=event if sep else None)


def _event_name(event: str) -> str:
    _check_token(event, "event name")
    if "@" in event:
        raise InvalidStreamName("'@' in event name")
    return event


class _Collector:
    """Streams named by a URL, grouped by the key an `events` filter attaches to."""

    def __init__(self) -> None:
        self._groups: list[tuple[str, list[str]]] = []
        self._filterable = False

    def add_name(self, name: str, *, filterable: bool) -> None:
        parse_stream_name(name)
        self._groups.append((name, []))
        self._filterable = filterable

    def skip(self) -> None:
        self._filterable = False

    def add_events(self, value: str) -> None:
        events = [_event_name(e) for e in value.split("/") if e]
        if self._filterable:
            self._groups[-1][1].extend(events)

    def streams(self) -> tuple[StreamName, ...]:
        names: set[str] = set()
        for name, events in self._groups:
            if events:
                names.update(f"{name}@{event}" for event in events)
            else:
                names.add(name)
            if len(names) > MAX_URL_STREAMS:
                raise RouteNotFound(f"more than {MAX_URL_STREAMS} streams in the URL")
        return tuple(parse_stream_name(n) for n in sorted(names))


_PREFIXES = {
    "private": RouteKind.PRIVATE,
    "market": RouteKind.MARKET,
    "public": RouteKind.PUBLIC,
}


def _has_control_char(text: str) -> bool:
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def _segments(path: str) -> list[str]:
    if not path.startswith("/"):
        raise RouteNotFound("path must start with '/'")
    raw = path[1:].split("/")
    if len(raw) > 1 and raw[-1] == "":
        raw.pop()
    segments: list[str] = []
    for segment in raw:
        if segment in ("", ".", ".."):
            raise RouteNotFound("empty, '.' or '..' path segment")
        try:
            decoded = unquote(segment, errors="strict")
        except UnicodeDecodeError as exc:
            raise RouteNotFound("path is not UTF-8 after percent-decoding") from exc
        if _has_control_char(decoded):
            raise RouteNotFound("control character in path")
        segments.append(decoded)
    return segments


def parse_route(path: str, query: str) -> Route:
    """Parse the target of a WebSocket upgrade into the route the connection starts with.

    Args:
        path: the request path, e.g. `/private/ws/<listenKey>`.
        query: the raw query string after `?` (percent-encoded or not), `""` when absent.

    Returns:
        The route; the caller builds the connection's `ControlState` from it.

    Raises:
        RouteNotFound: not a stream route, or a malformed one; answer the handshake with 404.
    """
    if len(path) + len(query) > MAX_TARGET_LENGTH:
        raise RouteNotFound(f"request target longer than {MAX_TARGET_LENGTH} characters")
    if _has_control_char(path) or _has_control_char(query):
        raise RouteNotFound("control character in request target")
    segments = _segments(path)

    kind = RouteKind.LEGACY
    if segments and segments[0] in _PREFIXES:
        kind = _PREFIXES[segments[0]]
        segments = segments[1:]
    if not segments or segments[0] not in ("ws", "stream"):
        raise RouteNotFound(f"no stream route at {path!r}")
    combined = segments[0] == "stream"
    tail = segments[1:]
    if len(tail) > (0 if combined else 1):
        raise RouteNotFound(f"no stream route at {path!r}")

    collector = _Collector()
    try:
        for name in tail:
            collector.add_name(name, filterable=True)
        try:
            pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError as exc:
            raise RouteNotFound("query is not UTF-8 after percent-decoding") from exc
        for key, value in pairs:
            if _has_control_char(value):
                raise RouteNotFound("control character in query")
            if key == "streams":
                for item in value.split("/"):
                    if item:
                        collector.add_name(item, filterable=False)
            elif key == "listenKey":
                if value:
                    collector.add_name(value, filterable=True)
                else:
                    collector.skip()
            elif key == "events":
                collector.add_events(value)
        streams = collector.streams()
    except InvalidStreamName as exc:
        raise RouteNotFound(str(exc)) from exc

    return Route(
        kind=kind,
        combined=combined,
        streams=streams,
        delivers_user_data=kind in (RouteKind.PRIVATE, RouteKind.LEGACY),
    )
