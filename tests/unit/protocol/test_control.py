"""Live subscription control messages (spec §4.4) and the incoming-message limit (§4.5)."""

from __future__ import annotations

import json

import msgspec
import pytest

from userstream.protocol.control import (
    MAX_INCOMING_PER_SECOND,
    MAX_STREAMS,
    MAX_STRING_ID_LENGTH,
    ControlOutcome,
    ControlState,
    IncomingRateLimit,
    handle_control,
)
from userstream.protocol.routes import StreamName, parse_route, parse_stream_name

LK = "XaEAKTsQSRLZAGH9tuIu37plSRsdjmlAVBoNYPUITlTAko1WI22PgmBMpI1rS8Yh"
METHODS = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
BAD_ID = (
    b'{"error":{"code":2,"msg":"Invalid request: request ID must be an unsigned integer"},'
    b'"id":null}'
)


def state(*names: str, combined: bool = False) -> ControlState:
    return ControlState(combined, {n: parse_stream_name(n) for n in names})


def send(st: ControlState, request: object) -> ControlOutcome:
    return handle_control(json.dumps(request), st)


def error(code: int, msg: str, request_id: object) -> bytes:
    return msgspec.json.encode({"error": {"code": code, "msg": msg}, "id": request_id})


# --- the documented replies -------------------------------------------------------------------


def test_subscribe() -> None:
    st = state()
    out = send(
        st, {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@depth"], "id": 1}
    )
    assert out == ControlOutcome(
        b'{"result":null,"id":1}',
        subscribed=(
            StreamName("btcusdt@aggTrade", "btcusdt", "aggTrade"),
            StreamName("btcusdt@depth", "btcusdt", "depth"),
        ),
    )
    assert list(st.streams) == ["btcusdt@aggTrade", "btcusdt@depth"]


def test_unsubscribe() -> None:
    st = state("btcusdt@aggTrade", "btcusdt@depth")
    out = send(st, {"method": "UNSUBSCRIBE", "params": ["btcusdt@depth"], "id": 312})
    assert out.reply == b'{"result":null,"id":312}'
    assert out.unsubscribed == (StreamName("btcusdt@depth", "btcusdt", "depth"),)
    assert out.subscribed == ()
    assert list(st.streams) == ["btcusdt@aggTrade"]


def test_list_subscriptions() -> None:
    out = send(state("btcusdt@aggTrade"), {"method": "LIST_SUBSCRIPTIONS", "id": 3})
    assert out == ControlOutcome(b'{"result":["btcusdt@aggTrade"],"id":3})'[:-1])


def test_list_subscriptions_empty() -> None:
    assert send(state(), {"method": "LIST_SUBSCRIPTIONS", "id": 3}).reply == b'{"result":[],"id":3}'


def test_list_subscriptions_keeps_route_order_then_subscription_order() -> None:
    route = parse_route("/private/ws", f"listenKey={LK}&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE")
    st = ControlState(route.combined, {s.name: s for s in route.streams})
    send(st, {"method": "SUBSCRIBE", "params": ["zzz", "aaa"], "id": 1})
    out = send(st, {"method": "LIST_SUBSCRIPTIONS", "id": 2})
    assert json.loads(out.reply or b"") == {
        "result": [f"{LK}@ACCOUNT_UPDATE", f"{LK}@ORDER_TRADE_UPDATE", "zzz", "aaa"],
        "id": 2,
    }


def test_list_subscriptions_on_legacy_ws_key() -> None:
    route = parse_route(f"/ws/{LK}", "")
    st = ControlState(route.combined, {s.name: s for s in route.streams})
    out = send(st, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
    assert out.reply == f'{{"result":["{LK}"],"id":1}}'.encode()


def test_list_subscriptions_with_empty_params() -> None:
    assert send(state("a"), {"method": "LIST_SUBSCRIPTIONS", "params": [], "id": 3}).reply == (
        b'{"result":["a"],"id":3}'
    )


def test_get_property() -> None:
    out = send(state(combined=True), {"method": "GET_PROPERTY", "params": ["combined"], "id": 2})
    assert out == ControlOutcome(b'{"result":true,"id":2}')
    out = send(state(), {"method": "GET_PROPERTY", "params": ["combined"], "id": 2})
    assert out.reply == b'{"result":false,"id":2}'


@pytest.mark.parametrize("value", [True, False])
def test_set_property(value: bool) -> None:
    st = state(combined=not value)
    out = send(st, {"method": "SET_PROPERTY", "params": ["combined", value], "id": 5})
    assert out == ControlOutcome(b'{"result":null,"id":5}')
    assert st.combined is value


def test_exact_bytes_of_a_compact_request() -> None:
    st = state()
    out = handle_control(b'{"method":"SUBSCRIBE","params":["a"],"id":1}', st)
    assert out.reply == b'{"result":null,"id":1}'


# --- ids --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_id",
    [
        0,
        1,
        2**63,
        2**64 - 1,
        "9f3c1b2a4d5e6f708192a3b4c5d6e7f8",
        "3b241101-e2bb-4255-8caf-4136c566a962",
        "",
        "x" * MAX_STRING_ID_LENGTH,
    ],
)
def test_ids_are_echoed_with_their_json_type(request_id: int | str) -> None:
    for request in (
        {"method": "SUBSCRIBE", "params": ["a"], "id": request_id},
        {"method": "LIST_SUBSCRIPTIONS", "id": request_id},
        {"method": "GET_PROPERTY", "params": ["combined"], "id": request_id},
    ):
        reply = json.loads(send(state(), request).reply or b"")
        assert reply["id"] == request_id
        assert type(reply["id"]) is type(request_id)


def test_string_id_is_echoed_in_errors() -> None:
    out = send(state(), {"method": "GET_PROPERTY", "params": ["nope"], "id": "abc"})
    assert out.reply == error(0, "Unknown property", "abc")


@pytest.mark.parametrize(
    "raw_id",
    [
        b"-1",
        b"1.0",
        b"1e2",
        b"1.5",
        b"true",
        b"false",
        b"null",
        b"{}",
        b"[]",
        b"[1]",
        b"18446744073709551616",
        b"-0.0",
        b"99999999999999999999999999999999999999",
    ],
)
def test_bad_ids(raw_id: bytes) -> None:
    out = handle_control(b'{"method":"LIST_SUBSCRIPTIONS","id":' + raw_id + b"}", state())
    assert out == ControlOutcome(BAD_ID)


def test_missing_id() -> None:
    assert send(state(), {"method": "LIST_SUBSCRIPTIONS"}) == ControlOutcome(BAD_ID)


def test_over_long_string_id() -> None:
    out = send(state(), {"method": "LIST_SUBSCRIPTIONS", "id": "x" * (MAX_STRING_ID_LENGTH + 1)})
    assert out.reply == BAD_ID


def test_bad_id_changes_nothing() -> None:
    st = state()
    out = send(st, {"method": "SUBSCRIBE", "params": ["a"], "id": -1})
    assert out.reply == BAD_ID
    assert out.subscribed == ()
    assert st.streams == {}


def test_huge_number_is_out_of_range_like_serde() -> None:
    # serde_json reads an integer too long for u64 as f64; 5000 digits overflow it.
    request = b'{"method":"LIST_SUBSCRIPTIONS","id":' + b"9" * 5000 + b"}"
    assert handle_control(request, state()) == fatal(
        f"Invalid JSON: number out of range at line 1 column {len(request) - 1}"
    )


# --- method errors (serde texts) --------------------------------------------------------------


def test_unknown_method() -> None:
    request = b'{"method":"SUBSCRIB","id":1}'
    column = len(b'{"method":"SUBSCRIB"')
    out = handle_control(request, state())
    assert out == ControlOutcome(
        error(
            2,
            "Invalid request: unknown variant `SUBSCRIB`, expected one of "
            f"{METHODS} at line 1 column {column}",
            None,
        )
    )


def test_unknown_method_column_matches_binance_example_shape() -> None:
    # Binance's table shows "... at line 1 column 28": the column is where the value ends.
    request = b'{"id": 1, "method": "FOOBAR", "params": []}'
    reply = json.loads(handle_control(request, state()).reply or b"")
    assert reply["error"]["msg"].endswith(" at line 1 column 28")


def test_method_is_case_sensitive() -> None:
    reply = json.loads(send(state(), {"method": "subscribe", "params": [], "id": 1}).reply or b"")
    assert reply["error"]["msg"].startswith("Invalid request: unknown variant `subscribe`")
    assert reply["id"] is None


def test_missing_method() -> None:
    request = b'{"params":["btcusdt@aggTrade","btcusdt@depth","btcusdt@markPrice"],"id":1}'
    out = handle_control(request, state())
    assert out.reply == error(
        2, f"Invalid request: missing field `method` at line 1 column {len(request)}", None
    )
    assert out.close is False


def test_missing_method_multiline_position() -> None:
    request = b'{\n  "id": 1\n}\n'
    out = handle_control(request, state())
    assert out.reply == error(2, "Invalid request: missing field `method` at line 3 column 1", None)


def test_empty_object() -> None:
    out = handle_control(b"{}", state())
    assert out.reply == error(2, "Invalid request: missing field `method` at line 1 column 2", None)


@pytest.mark.parametrize(
    ("raw", "unexpected", "column"),
    [
        (b"5", "integer `5`", 11),
        (b"-5", "integer `-5`", 12),
        (b"1.5", "floating point `1.5`", 13),
        (b"true", "boolean `true`", 14),
        (b"null", "null", 14),
        (b"[1]", "sequence", 10),
        (b'{"a":1}', "map", 10),
    ],
)
def test_method_not_a_string(raw: bytes, unexpected: str, column: int) -> None:
    out = handle_control(b'{"method":' + raw + b',"id":1}', state())
    assert out.reply == error(
        2,
        f"Invalid request: invalid type: {unexpected}, expected variant identifier"
        f" at line 1 column {column}",
        None,
    )


def test_duplicate_method() -> None:
    request = b'{"method":"SUBSCRIBE","method":"SUBSCRIBE","params":[],"id":1}'
    out = handle_control(request, state())
    column = len(b'{"method":"SUBSCRIBE","method"')
    assert out.reply == error(
        2, f"Invalid request: duplicate field `method` at line 1 column {column}", None
    )


def test_method_error_wins_over_id_error() -> None:
    out = handle_control(b'{"method":"X","id":-1}', state())
    assert b"unknown variant" in (out.reply or b"")


def test_escaped_method_is_decoded() -> None:
    out = handle_control(b'{"method":"LIST_SUBSCRIPTION\\u0053","id":1}', state())
    assert out.reply == b'{"result":[],"id":1}'


def test_unknown_fields_are_ignored() -> None:
    out = send(state(), {"method": "LIST_SUBSCRIPTIONS", "id": 1, "extra": {"x": [1, 2]}})
    assert out.reply == b'{"result":[],"id":1}'


@pytest.mark.parametrize(
    ("raw", "unexpected"),
    [
        (b"[]", "sequence"),
        (b'["SUBSCRIBE"]', "sequence"),
        (b"1", "integer `1`"),
        (b'"x"', 'string "x"'),
        (b"null", "null"),
        (b"true", "boolean `true`"),
        (b"2.5", "floating point `2.5`"),
    ],
)
def test_valid_json_that_is_not_an_object(raw: bytes, unexpected: str) -> None:
    out = handle_control(raw, state())
    assert out == ControlOutcome(
        error(2, f"Invalid request: invalid type: {unexpected}, expected a map", None)
    )


# --- params errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        None,
        "btcusdt@aggTrade",
        1,
        {},
        [1],
        [None],
        [""],
        ["ok", ""],
        ["a b"],
        [["a"]],
        ["a/b"],
        ["@X"],
        ["x" * 201],
        ["not asdfads"],
        ["a\u0000"],
    ],
)
@pytest.mark.parametrize("method", ["SUBSCRIBE", "UNSUBSCRIBE"])
def test_invalid_stream(method: str, params: object) -> None:
    st = state("ok")
    request: dict[str, object] = {"method": method, "id": 7}
    if params is not None:
        request["params"] = params
    out = send(st, request)
    assert out == ControlOutcome(error(2, "Invalid request: invalid stream", 7))
    assert list(st.streams) == ["ok"]


def test_subscribe_empty_params_is_acknowledged() -> None:
    assert (
        send(state(), {"method": "SUBSCRIBE", "params": [], "id": 1}).reply
        == b'{"result":null,"id":1}'
    )


def test_subscribe_existing_name_is_not_duplicated() -> None:
    st = state("a")
    out = send(st, {"method": "SUBSCRIBE", "params": ["a", "b", "b"], "id": 1})
    assert out.reply == b'{"result":null,"id":1}'
    assert out.subscribed == (StreamName("b", "b", None),)
    assert list(st.streams) == ["a", "b"]


def test_subscribe_listen_key_items() -> None:
    st = state()
    out = send(st, {"method": "SUBSCRIBE", "params": [LK, f"{LK}@ORDER_TRADE_UPDATE"], "id": 1})
    assert out.subscribed == (
        StreamName(LK, LK, None),
        StreamName(f"{LK}@ORDER_TRADE_UPDATE", LK, "ORDER_TRADE_UPDATE"),
    )


def test_unsubscribe_unknown_name_is_acknowledged() -> None:
    st = state("a")
    out = send(st, {"method": "UNSUBSCRIBE", "params": ["nope"], "id": 1})
    assert out == ControlOutcome(b'{"result":null,"id":1}')
    assert list(st.streams) == ["a"]


def test_unsubscribe_twice_reports_once() -> None:
    st = state("a")
    out = send(st, {"method": "UNSUBSCRIBE", "params": ["a", "a"], "id": 1})
    assert out.unsubscribed == (StreamName("a", "a", None),)


def test_subscribe_up_to_the_limit() -> None:
    st = state(*(f"s{i}" for i in range(MAX_STREAMS - 2)))
    out = send(st, {"method": "SUBSCRIBE", "params": ["x", "y", "s0"], "id": 1})
    assert out.reply == b'{"result":null,"id":1}'
    assert len(st.streams) == MAX_STREAMS


def test_subscribe_over_the_limit_applies_nothing() -> None:
    st = state(*(f"s{i}" for i in range(MAX_STREAMS - 1)))
    out = send(st, {"method": "SUBSCRIBE", "params": ["x", "y"], "id": 9})
    assert out == ControlOutcome(error(4, "Too many subscriptions", 9))
    assert len(st.streams) == MAX_STREAMS - 1
    assert "x" not in st.streams


def test_resubscribing_existing_names_at_the_limit_is_fine() -> None:
    st = state(*(f"s{i}" for i in range(MAX_STREAMS)))
    assert (
        send(st, {"method": "SUBSCRIBE", "params": ["s1"], "id": 1}).reply
        == b'{"result":null,"id":1}'
    )


def test_list_subscriptions_with_params() -> None:
    out = send(state(), {"method": "LIST_SUBSCRIPTIONS", "params": ["x"], "id": 3})
    assert out.reply == error(2, "Invalid request: too many parameters", 3)


@pytest.mark.parametrize("method", ["GET_PROPERTY", "SET_PROPERTY"])
@pytest.mark.parametrize("params", [None, [], [1], [None], [True], "combined", {"combined": True}])
def test_property_name_must_be_a_string(method: str, params: object) -> None:
    st = state()
    request: dict[str, object] = {"method": method, "id": 4}
    if params is not None:
        request["params"] = params
    out = send(st, request)
    assert out.reply == error(2, "Invalid request: property name must be a string", 4)
    assert st.combined is False


@pytest.mark.parametrize(
    ("method", "params"),
    [("GET_PROPERTY", ["combined", True]), ("SET_PROPERTY", ["combined", True, 1])],
)
def test_property_too_many_parameters(method: str, params: list[object]) -> None:
    st = state()
    out = send(st, {"method": method, "params": params, "id": 4})
    assert out.reply == error(2, "Invalid request: too many parameters", 4)
    assert st.combined is False


@pytest.mark.parametrize("method", ["GET_PROPERTY", "SET_PROPERTY"])
def test_unknown_property(method: str) -> None:
    out = send(
        state(),
        {
            "method": method,
            "params": ["Combined", True][: 2 if method == "SET_PROPERTY" else 1],
            "id": 6,
        },
    )
    assert out.reply == error(0, "Unknown property", 6)


@pytest.mark.parametrize("value", ["true", 1, 0, None, [], {}, 1.0])
def test_set_property_value_must_be_boolean(value: object) -> None:
    st = state()
    out = send(st, {"method": "SET_PROPERTY", "params": ["combined", value], "id": 8})
    assert out.reply == error(1, "Invalid value type: expected Boolean", 8)
    assert st.combined is False


def test_set_property_without_value() -> None:
    out = send(state(), {"method": "SET_PROPERTY", "params": ["combined"], "id": 8})
    assert out.reply == error(1, "Invalid value type: expected Boolean", 8)


# --- invalid JSON: code 3 and disconnect ------------------------------------------------------


def fatal(msg: str) -> ControlOutcome:
    return ControlOutcome(msgspec.json.encode({"error": {"code": 3, "msg": msg}}), close=True)


@pytest.mark.parametrize(
    ("raw", "msg"),
    [
        (b"", "EOF while parsing a value at line 1 column 0"),
        (b"   ", "EOF while parsing a value at line 1 column 3"),
        (b"\n\n", "EOF while parsing a value at line 3 column 0"),
        (b"x", "expected value at line 1 column 1"),
        (b"ping", "expected value at line 1 column 1"),
        (b'{"method":"SUBSCRIBE"', "EOF while parsing an object at line 1 column 21"),
        (b'{"method":', "EOF while parsing a value at line 1 column 10"),
        (b'{"method"', "EOF while parsing an object at line 1 column 9"),
        (b'{"method" "x"}', "expected `:` at line 1 column 11"),
        (b'{"a":1 "b":2}', "expected `,` or `}` at line 1 column 8"),
        (b'{"a":1,}', "trailing comma at line 1 column 8"),
        (b"{a:1}", "key must be a string at line 1 column 2"),
        (b'{"a":[1,]}', "trailing comma at line 1 column 9"),
        (b'{"a":[1 2]}', "expected `,` or `]` at line 1 column 9"),
        (b'{"a":[1', "EOF while parsing a list at line 1 column 7"),
        (b'{"a":"x', "EOF while parsing a string at line 1 column 7"),
        (b'{"a":tru}', "expected ident at line 1 column 9"),
        (b'{"a":nul', "EOF while parsing a value at line 1 column 8"),
        (b'{"a":01}', "invalid number at line 1 column 7"),
        (b'{"a":-}', "invalid number at line 1 column 7"),
        (b'{"a":1.}', "invalid number at line 1 column 8"),
        (b'{"a":1e}', "invalid number at line 1 column 8"),
        (b'{"a":1e400}', "number out of range at line 1 column 10"),
        (b'{"a":"\\x"}', "invalid escape at line 1 column 8"),
        (b'{"a":"\\u12G4"}', "invalid escape at line 1 column 12"),
        (b'{"a":"\\ud800"}', "unexpected end of hex escape at line 1 column 13"),
        (b'{"a":"\\u12"}', "invalid escape at line 1 column 12"),
        (b'{"a":"\\u12', "EOF while parsing a string at line 1 column 10"),
        (b'{"a":"\\u0x12"}', "invalid escape at line 1 column 12"),
        (b'{"a":"\\ud800\\n"}', "unexpected end of hex escape at line 1 column 14"),
        (b'{"a":"\\ud800\\u0041"}', "lone leading surrogate in hex escape at line 1 column 18"),
        (b'{"a":"\\ud83d\\ude00\\q"}', "invalid escape at line 1 column 20"),
        (b'{"a":"\\udc00"}', "lone leading surrogate in hex escape at line 1 column 12"),
        (
            b'{"a":"x\x01"}',
            "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 8",
        ),
        (b'{"a":"\xff"}', "invalid unicode code point at line 1 column 8"),
        (b"\xff", "expected value at line 1 column 1"),
        (b'{"method":"LIST_SUBSCRIPTIONS","id":1}x', "trailing characters at line 1 column 39"),
        (b'{"method":"LIST_SUBSCRIPTIONS","id":1}{}', "trailing characters at line 1 column 39"),
        (b'{\n"a":\n}', "expected value at line 3 column 1"),
    ],
)
def test_invalid_json(raw: bytes, msg: str) -> None:
    st = state("keep")
    assert handle_control(raw, st) == fatal(f"Invalid JSON: {msg}")
    assert list(st.streams) == ["keep"]


def test_invalid_json_as_str() -> None:
    assert handle_control("", state()) == fatal(
        "Invalid JSON: EOF while parsing a value at line 1 column 0"
    )


def test_lone_surrogate_in_str_message() -> None:
    out = handle_control('{"method":"\ud800"}', state())
    assert out.close is True
    assert out.reply == msgspec.json.encode(
        {
            "error": {
                "code": 3,
                "msg": "Invalid JSON: invalid unicode code point at line 1 column 15",
            }
        }
    )


def test_serde_recursion_limit() -> None:
    ok = b'{"method":"LIST_SUBSCRIPTIONS","id":1,"x":' + b"[" * 126 + b"]" * 126 + b"}"
    assert handle_control(ok, state()).reply == b'{"result":[],"id":1}'
    deep = b'{"method":"LIST_SUBSCRIPTIONS","id":1,"x":' + b"[" * 127 + b"]" * 127 + b"}"
    prefix = len(b'{"method":"LIST_SUBSCRIPTIONS","id":1,"x":')
    assert handle_control(deep, state()) == fatal(
        f"Invalid JSON: recursion limit exceeded at line 1 column {prefix + 127}"
    )


def test_very_deep_nesting() -> None:
    out = handle_control(b"[" * 100_000, state())
    assert out == fatal("Invalid JSON: recursion limit exceeded at line 1 column 128")


def test_many_brackets_inside_strings_are_fine() -> None:
    request = b'{"method":"LIST_SUBSCRIPTIONS","id":1,"x":"' + b"[" * 500 + b'"}'
    assert handle_control(request, state()).reply == b'{"result":[],"id":1}'


def test_unicode_text_message() -> None:
    out = handle_control(
        '{"method":"SUBSCRIBE","params":["币安人生usdt@aggTrade"],"id":1}', state()
    )
    assert out.reply == b'{"result":null,"id":1}'


# --- IncomingRateLimit ------------------------------------------------------------------------


def test_ten_per_second_allowed_eleventh_not() -> None:
    limit = IncomingRateLimit()
    assert all(limit.allow(1_000 + i) for i in range(MAX_INCOMING_PER_SECOND))
    assert limit.allow(1_999) is False


def test_ten_at_the_same_instant() -> None:
    limit = IncomingRateLimit()
    assert [limit.allow(0) for _ in range(11)] == [True] * 10 + [False]


def test_new_window_resets() -> None:
    limit = IncomingRateLimit()
    assert all(limit.allow(0) for _ in range(10))
    assert limit.allow(999) is False
    assert all(limit.allow(1_000) for _ in range(10))
    assert limit.allow(1_500) is False
    assert all(limit.allow(2_000) for _ in range(10))


def test_window_slides() -> None:
    limit = IncomingRateLimit(limit=10, window_ms=1000)
    for t in range(0, 1000, 100):  # 10 messages at 0, 100, ..., 900
        assert limit.allow(t)
    assert limit.allow(999) is False
    assert limit.allow(1_000) is True  # the one at 0 has left the window
    assert limit.allow(1_050) is False
    assert limit.allow(1_100) is True


def test_steady_rate_at_the_limit_is_allowed() -> None:
    limit = IncomingRateLimit()
    assert all(limit.allow(t) for t in range(0, 60_000, 100))


def test_clock_stepping_back_does_not_reset() -> None:
    limit = IncomingRateLimit()
    assert all(limit.allow(5_000) for _ in range(10))
    assert limit.allow(4_000) is False


def test_custom_limit() -> None:
    limit = IncomingRateLimit(limit=2, window_ms=10)
    assert [limit.allow(0), limit.allow(1), limit.allow(9), limit.allow(10)] == [
        True,
        True,
        False,
        True,
    ]


@pytest.mark.parametrize(("n", "window"), [(0, 1000), (10, 0), (-1, 1000)])
def test_rate_limit_rejects_nonsense(n: int, window: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        IncomingRateLimit(n, window)
