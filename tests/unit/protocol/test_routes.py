"""Stream URL forms (spec §4.1-§4.3, §4.5): every accepted form and every 404 decision."""

from __future__ import annotations

import pytest

from userstream.exceptions import UserStreamError
from userstream.protocol.routes import (
    MAX_STREAM_NAME_LENGTH,
    MAX_TARGET_LENGTH,
    MAX_URL_STREAMS,
    InvalidStreamName,
    Route,
    RouteKind,
    RouteNotFound,
    StreamName,
    parse_route,
    parse_stream_name,
)

LK = "XaEAKTsQSRLZAGH9tuIu37plSRsdjmlAVBoNYPUITlTAko1WI22PgmBMpI1rS8Yh"
LK2 = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"


def names(route: Route) -> list[str]:
    return [s.name for s in route.streams]


# --- parse_stream_name ------------------------------------------------------------------------


def test_bare_listen_key() -> None:
    assert parse_stream_name(LK) == StreamName(LK, LK, None)


def test_key_with_event() -> None:
    assert parse_stream_name(f"{LK}@ORDER_TRADE_UPDATE") == StreamName(
        f"{LK}@ORDER_TRADE_UPDATE", LK, "ORDER_TRADE_UPDATE"
    )


@pytest.mark.parametrize(
    ("name", "key", "event"),
    [
        ("btcusdt@aggTrade", "btcusdt", "aggTrade"),
        ("btcusdt@depth@100ms", "btcusdt", "depth@100ms"),
        ("!miniTicker@arr", "!miniTicker", "arr"),
        ("!bookTicker", "!bookTicker", None),
        ("btcusdt_perp@continuousKline_1m", "btcusdt_perp", "continuousKline_1m"),
        ("BTC-210630-9000-P@ticker", "BTC-210630-9000-P", "ticker"),
        ("币安人生usdt@aggTrade", "币安人生usdt", "aggTrade"),
    ],
)
def test_market_names(name: str, key: str, event: str | None) -> None:
    assert parse_stream_name(name) == StreamName(name, key, event)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "@ORDER_TRADE_UPDATE",
        "key@",
        "a@@b",
        "a b",
        "a/b",
        "a\x00b",
        "a\nb",
        "not asdfads",
        'a"b',
        "a%2Fb",
        "..",
        "x" * (MAX_STREAM_NAME_LENGTH + 1),
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidStreamName):
        parse_stream_name(name)


def test_longest_name_accepted() -> None:
    assert parse_stream_name("x" * MAX_STREAM_NAME_LENGTH).event is None


def test_exceptions_belong_to_the_tree() -> None:
    assert issubclass(RouteNotFound, UserStreamError)
    assert issubclass(InvalidStreamName, UserStreamError)
    assert issubclass(InvalidStreamName, ValueError)


# --- legacy forms -----------------------------------------------------------------------------


def test_legacy_ws_with_key() -> None:
    route = parse_route(f"/ws/{LK}", "")
    assert route == Route(RouteKind.LEGACY, False, (StreamName(LK, LK, None),), True)


def test_legacy_ws_without_key() -> None:
    assert parse_route("/ws", "") == Route(RouteKind.LEGACY, False, (), True)


def test_legacy_stream() -> None:
    route = parse_route("/stream", f"streams={LK}/{LK2}")
    assert route.kind is RouteKind.LEGACY
    assert route.combined is True
    assert names(route) == sorted([LK, LK2])
    assert route.delivers_user_data is True


def test_legacy_stream_without_streams() -> None:
    assert parse_route("/stream", "") == Route(RouteKind.LEGACY, True, (), True)


def test_ws_with_stream_name_in_query_is_plain_ws() -> None:
    # CL 2023-06-22: `/ws?<streamName>` is not supported.
    assert parse_route("/ws", "btcusdt@aggTrade") == Route(RouteKind.LEGACY, False, (), True)


def test_ws_with_two_path_names_is_404() -> None:
    with pytest.raises(RouteNotFound):
        parse_route(f"/ws/{LK}/{LK2}", "")


@pytest.mark.parametrize("path", ["/stream/nonsense", f"/stream/{LK}", "/private/stream/x"])
def test_name_after_stream_is_404(path: str) -> None:
    # 3P-OBS (spec §4.5): `/stream/nonsense` -> HTTP 404 at the handshake.
    with pytest.raises(RouteNotFound):
        parse_route(path, "")


# --- routed forms -----------------------------------------------------------------------------


def test_private_ws_path_key() -> None:
    route = parse_route(f"/private/ws/{LK}", "")
    assert route == Route(RouteKind.PRIVATE, False, (StreamName(LK, LK, None),), True)


def test_private_ws_query_key_without_events() -> None:
    # ccxt 4.5.90 connects this way (spec §4.2).
    assert names(parse_route("/private/ws", f"listenKey={LK}")) == [LK]


def test_private_ws_query_events_sorted_like_list_subscriptions() -> None:
    route = parse_route(
        "/private/ws",
        f"listenKey={LK}&events=ORDER_TRADE_UPDATE/listenKeyExpired/MARGIN_CALL/ACCOUNT_UPDATE",
    )
    assert names(route) == [
        f"{LK}@ACCOUNT_UPDATE",
        f"{LK}@MARGIN_CALL",
        f"{LK}@ORDER_TRADE_UPDATE",
        f"{LK}@listenKeyExpired",
    ]
    assert route.streams[0] == StreamName(f"{LK}@ACCOUNT_UPDATE", LK, "ACCOUNT_UPDATE")
    assert route.combined is False


def test_events_percent_encoded_separator() -> None:
    route = parse_route("/private/ws", f"listenKey={LK}&events=ORDER_TRADE_UPDATE%2FACCOUNT_UPDATE")
    assert names(route) == [f"{LK}@ACCOUNT_UPDATE", f"{LK}@ORDER_TRADE_UPDATE"]


def test_percent_encoded_query_names() -> None:
    route = parse_route("/private/stream", f"streams={LK}%40ORDER_TRADE_UPDATE")
    assert names(route) == [f"{LK}@ORDER_TRADE_UPDATE"]


def test_private_ws_without_key() -> None:
    assert parse_route("/private/ws", "") == Route(RouteKind.PRIVATE, False, (), True)


def test_private_stream_repeated_pairs() -> None:
    route = parse_route(
        "/private/stream",
        f"listenKey={LK2}&events=ORDER_TRADE_UPDATE&listenKey={LK}&events=ACCOUNT_UPDATE",
    )
    assert route.combined is True
    assert names(route) == sorted([f"{LK2}@ORDER_TRADE_UPDATE", f"{LK}@ACCOUNT_UPDATE"])


def test_private_stream_key_without_events_means_all() -> None:
    route = parse_route("/private/stream", f"listenKey={LK}&events=ACCOUNT_UPDATE&listenKey={LK2}")
    assert names(route) == sorted([f"{LK}@ACCOUNT_UPDATE", LK2])


def test_repeated_events_for_one_key_are_merged() -> None:
    route = parse_route("/private/ws", f"listenKey={LK}&events=B&events=A")
    assert names(route) == [f"{LK}@A", f"{LK}@B"]


def test_events_apply_to_path_key() -> None:
    route = parse_route(f"/private/ws/{LK}", "events=ACCOUNT_UPDATE")
    assert names(route) == [f"{LK}@ACCOUNT_UPDATE"]


def test_events_without_key_are_ignored() -> None:
    assert parse_route("/private/ws", "events=ACCOUNT_UPDATE").streams == ()


def test_events_after_streams_item_are_ignored() -> None:
    assert names(parse_route("/private/stream", f"streams={LK}&events=X")) == [LK]


def test_events_after_empty_listen_key_are_ignored() -> None:
    route = parse_route("/private/stream", f"listenKey={LK}&listenKey=&events=X")
    assert names(route) == [LK]


def test_empty_events_means_no_filter() -> None:
    assert names(parse_route("/private/ws", f"listenKey={LK}&events=")) == [LK]


def test_misspelt_event_is_accepted() -> None:
    # Event names are not validated; a misspelt one silently never arrives (3P-OBS).
    assert names(parse_route("/private/ws", f"listenKey={LK}&events=ORDER_TRADE_UPDAT")) == [
        f"{LK}@ORDER_TRADE_UPDAT"
    ]


def test_private_stream_streams_bare_key() -> None:
    assert names(parse_route("/private/stream", f"streams={LK}")) == [LK]


def test_private_stream_streams_with_events() -> None:
    route = parse_route("/private/stream", f"streams={LK}@ORDER_TRADE_UPDATE/{LK}@ACCOUNT_UPDATE")
    assert names(route) == [f"{LK}@ACCOUNT_UPDATE", f"{LK}@ORDER_TRADE_UPDATE"]


@pytest.mark.parametrize("query", ["", "streams=", "streams=/", "listenKey="])
def test_private_stream_empty(query: str) -> None:
    # The official SDKs connect to `/private/stream?streams=` and SUBSCRIBE afterwards.
    assert parse_route("/private/stream", query) == Route(RouteKind.PRIVATE, True, (), True)


def test_empty_items_in_streams_are_skipped() -> None:
    assert names(parse_route("/stream", f"streams={LK}//{LK2}/")) == sorted([LK, LK2])


def test_unknown_query_keys_are_ignored() -> None:
    assert names(parse_route("/private/ws", f"timeUnit=MICROSECOND&listenKey={LK}")) == [LK]


@pytest.mark.parametrize(
    ("prefix", "kind"), [("market", RouteKind.MARKET), ("public", RouteKind.PUBLIC)]
)
def test_market_and_public_routes(prefix: str, kind: RouteKind) -> None:
    assert parse_route(f"/{prefix}/ws", "") == Route(kind, False, (), False)
    assert parse_route(f"/{prefix}/stream", "") == Route(kind, True, (), False)
    raw = parse_route(f"/{prefix}/ws/btcusdt@aggTrade", "")
    assert raw == Route(
        kind, False, (StreamName("btcusdt@aggTrade", "btcusdt", "aggTrade"),), False
    )
    combined = parse_route(f"/{prefix}/stream", "streams=btcusdt@markPrice/!bookTicker")
    assert names(combined) == ["!bookTicker", "btcusdt@markPrice"]
    assert combined.delivers_user_data is False


def test_listen_key_on_market_route_never_delivers() -> None:
    route = parse_route("/market/ws", f"listenKey={LK}")
    assert names(route) == [LK]
    assert route.delivers_user_data is False


def test_duplicates_collapse() -> None:
    route = parse_route(
        "/private/stream", f"streams={LK}/{LK}&listenKey={LK}&events=A&listenKey={LK}&events=A"
    )
    assert names(route) == [LK, f"{LK}@A"]


def test_path_name_percent_decoded() -> None:
    assert names(parse_route("/market/ws/btcusdt%40aggTrade", "")) == ["btcusdt@aggTrade"]


# --- trailing slashes, odd segments, hostile input --------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ws/", Route(RouteKind.LEGACY, False, (), True)),
        ("/stream/", Route(RouteKind.LEGACY, True, (), True)),
        ("/private/ws/", Route(RouteKind.PRIVATE, False, (), True)),
        (f"/private/ws/{LK}/", Route(RouteKind.PRIVATE, False, (StreamName(LK, LK, None),), True)),
    ],
)
def test_one_trailing_slash_is_tolerated(path: str, expected: Route) -> None:
    assert parse_route(path, "") == expected


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "ws",
        "//ws",
        "/ws//",
        f"/ws//{LK}",
        "/private//ws",
        "/private",
        "/private/",
        "/private/foo",
        "/market",
        "/foo",
        "/WS",
        "/Private/ws",
        "/ws-fapi/v1",
        "/ws/..",
        "/ws/.",
        f"/ws/../ws/{LK}",
        "/private/../ws",
        "/ws/%2E%2E",
        "/ws/a%2Fb",
        "/ws/a%00b",
        "/ws/a\x00b",
        "/ws/a\x7fb",
        "/ws/%ff",
        "/ws/a b",
        "/ws/a?b",
        "/private/private/ws",
        "/private/market/ws",
        "/ws/@ORDER_TRADE_UPDATE",
    ],
)
def test_not_found(path: str) -> None:
    with pytest.raises(RouteNotFound):
        parse_route(path, "")


@pytest.mark.parametrize(
    "query",
    [
        "streams=a%00b",
        "streams=a\x00b",
        "listenKey=a\nb",
        "streams=a+b",
        "streams=%ff",
        "listenKey=%E2%82",
        "listenKey=k&events=A%00",
        "listenKey=k&events=A@B",
        "listenKey=k&events=A B",
        "streams=not asdfads",
        f"streams={'x' * (MAX_STREAM_NAME_LENGTH + 1)}",
        f"listenKey=k&events={'E' * (MAX_STREAM_NAME_LENGTH + 1)}",
    ],
)
def test_bad_query_is_not_found(query: str) -> None:
    with pytest.raises(RouteNotFound):
        parse_route("/private/stream", query)


def test_bad_event_after_streams_item_is_still_rejected() -> None:
    with pytest.raises(RouteNotFound):
        parse_route("/private/stream", "streams=k&events=A%00")


def test_target_length_cap() -> None:
    fits = "streams=" + "x" * (MAX_TARGET_LENGTH - len("/stream") - len("streams="))
    with pytest.raises(RouteNotFound):  # the one name is too long, but the target fits
        parse_route("/stream", fits)
    with pytest.raises(RouteNotFound, match="longer than"):
        parse_route("/stream", fits + "x")
    with pytest.raises(RouteNotFound, match="longer than"):
        parse_route("/ws/" + "x" * MAX_TARGET_LENGTH, "")


def test_stream_count_cap() -> None:
    at_cap = "/".join(f"s{i}" for i in range(MAX_URL_STREAMS))
    assert len(parse_route("/stream", f"streams={at_cap}").streams) == MAX_URL_STREAMS
    with pytest.raises(RouteNotFound, match="more than"):
        parse_route("/stream", f"streams={at_cap}/extra")


def test_stream_count_cap_counts_distinct_names() -> None:
    same = "/".join(["s"] * (MAX_URL_STREAMS + 10))
    assert names(parse_route("/stream", f"streams={same}")) == ["s"]


def test_stream_count_cap_counts_event_expansion() -> None:
    events = "/".join(f"E{i}" for i in range(MAX_URL_STREAMS + 1))
    with pytest.raises(RouteNotFound):
        parse_route("/private/ws", f"listenKey=k&events={events}")


def test_route_is_frozen() -> None:
    route = parse_route("/ws", "")
    with pytest.raises(AttributeError):
        route.combined = True  # type: ignore[misc]
