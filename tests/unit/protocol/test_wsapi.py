"""WebSocket API envelope: parsing, envelope errors and response encoding (spec §3.2)."""

from __future__ import annotations

import json

import pytest

from userstream.exceptions import BinanceAPIError
from userstream.protocol.wsapi import (
    METHOD_WEIGHTS,
    USER_DATA_STREAM_METHODS,
    RateLimitStatus,
    WsApiRequest,
    WsApiRequestError,
    parse_request,
    required_api_key,
    response_error,
    response_ok,
    unknown_method,
)

ID_MSG = (
    "Invalid 'id' in JSON request; expected an integer, a string matching "
    "'^[a-zA-Z0-9-_]{1,36}$', or null."
)
KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"


def _err(message: bytes | str) -> WsApiRequestError:
    with pytest.raises(WsApiRequestError) as info:
        parse_request(message)
    return info.value


def test_doc_example_parses() -> None:
    raw = json.dumps(
        {
            "id": "d3df8a61-98ea-4fe0-8f4e-0fcea5d418b0",
            "method": "userDataStream.start",
            "params": {"apiKey": KEY},
        }
    )
    req = parse_request(raw)
    assert req == WsApiRequest(
        "d3df8a61-98ea-4fe0-8f4e-0fcea5d418b0", "userDataStream.start", {"apiKey": KEY}, None
    )
    assert required_api_key(req) == KEY


@pytest.mark.parametrize("req_id", [0, 7, -3, 2**63 - 1, -(2**63), "abc", "a-b_C9", "x" * 36, None])
def test_id_types_are_echoed_with_the_same_json_type(req_id: object) -> None:
    raw = json.dumps({"id": req_id, "method": "userDataStream.ping"}).encode()
    req = parse_request(raw)
    assert req.id == req_id
    assert type(req.id) is type(req_id)
    out = json.loads(response_ok(req.id, {"listenKey": "k"}, None))
    assert out["id"] == req_id
    assert type(out["id"]) is type(req_id)


@pytest.mark.parametrize(
    "raw",
    [
        '{"id":true,"method":"userDataStream.ping"}',
        '{"id":1.5,"method":"userDataStream.ping"}',
        '{"id":[1],"method":"userDataStream.ping"}',
        '{"id":{"a":1},"method":"userDataStream.ping"}',
        '{"id":"","method":"userDataStream.ping"}',
        '{"id":"has space","method":"userDataStream.ping"}',
        '{"id":"' + "x" * 37 + '","method":"userDataStream.ping"}',
        '{"id":9223372036854775808,"method":"userDataStream.ping"}',
        '{"id":' + "9" * 400 + ',"method":"userDataStream.ping"}',
        '{"method":"userDataStream.ping"}',
    ],
)
def test_bad_id_is_answered_with_id_null(raw: str) -> None:
    err = _err(raw)
    assert (err.id, err.status, err.code, err.msg) == (None, 400, -1000, ID_MSG)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"{",
        b"not json",
        b"\xff\xfe\x00",
        b'{"id":1,"method":"\xff"}',
        "\ud800",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"id":1,"method":"userDataStream.ping","params":{"x":1e999}}',
        b"[]",
        b'[{"id":1,"method":"userDataStream.ping"}]',
        b'"userDataStream.ping"',
        b"null",
        b"123",
    ],
)
def test_invalid_json_or_non_object_is_answered_with_id_null(raw: bytes | str) -> None:
    err = _err(raw)
    assert (err.id, err.status, err.code) == (None, 400, -1000)
    assert err.msg == "Invalid JSON request."
    body = json.loads(response_error(err.id, err.status, err.code, err.msg, None))
    assert body == {"id": None, "status": 400, "error": {"code": -1000, "msg": err.msg}}


@pytest.mark.parametrize("method", [None, 1, "", ["userDataStream.ping"], {"a": 1}])
def test_bad_method_echoes_the_id(method: object) -> None:
    raw = json.dumps({"id": 42, "method": method} if method is not None else {"id": 42})
    err = _err(raw)
    assert (err.id, err.status, err.code) == (42, 400, -1000)
    assert err.msg == "Invalid 'method' in JSON request; expected a string."


def test_unknown_method() -> None:
    err = _err('{"id":"q1","method":"algoOrder.place","params":{}}')
    assert (err.id, err.status, err.code) == ("q1", 400, -1000)
    assert err.msg == "Unknown method 'algoOrder.place'."
    assert isinstance(err, BinanceAPIError)


def test_unknown_method_for_a_parsed_request() -> None:
    err = unknown_method(WsApiRequest(9, "session.logon", {}, None))
    assert (err.id, err.status, err.code, err.msg) == (
        9,
        400,
        -1000,
        "Unknown method 'session.logon'.",
    )


def test_version_prefix_is_accepted() -> None:
    assert parse_request('{"id":1,"method":"v1/userDataStream.stop"}').method == (
        "userDataStream.stop"
    )
    assert _err('{"id":1,"method":"v1/nope"}').msg == "Unknown method 'v1/nope'."


@pytest.mark.parametrize("params", [[], [1, 2], "x", 5, True])
def test_params_must_be_an_object(params: object) -> None:
    err = _err(json.dumps({"id": 3, "method": "userDataStream.ping", "params": params}))
    assert (err.id, err.status, err.code) == (3, 400, -1000)
    assert err.msg == "Invalid 'params' in JSON request; expected an object."


def test_params_absent_or_null_is_empty() -> None:
    assert parse_request('{"id":1,"method":"userDataStream.ping"}').params == {}
    assert parse_request('{"id":1,"method":"userDataStream.ping","params":null}').params == {}


@pytest.mark.parametrize(("flag", "expected"), [(True, True), (False, False)])
def test_return_rate_limits_override(flag: bool, expected: bool) -> None:
    req = parse_request(
        json.dumps({"id": 1, "method": "userDataStream.ping", "params": {"returnRateLimits": flag}})
    )
    assert req.return_rate_limits is expected
    assert "returnRateLimits" not in req.params


@pytest.mark.parametrize("flag", ["true", 1, 0, None, [], {}])
def test_return_rate_limits_must_be_bool(flag: object) -> None:
    raw = json.dumps(
        {"id": 1, "method": "userDataStream.ping", "params": {"returnRateLimits": flag}}
    )
    err = _err(raw)
    assert (err.id, err.status, err.code) == (1, 400, -1130)
    assert err.msg == "Data sent for parameter 'returnRateLimits' is not valid."


def test_huge_numbers_inside_params_are_kept() -> None:
    req = parse_request('{"id":1,"method":"userDataStream.ping","params":{"n":' + "9" * 300 + "}}")
    assert req.params["n"] == int("9" * 300)


def test_deep_but_legal_nesting_in_params() -> None:
    req = parse_request(
        b'{"id":1,"method":"userDataStream.ping","params":{"a":' + b"[" * 50 + b"]" * 50 + b"}}"
    )
    assert "a" in req.params


@pytest.mark.parametrize("params", [{}, {"apiKey": None}, {"apiKey": ""}, {"apiKey": 123}])
def test_required_api_key_missing(params: dict[str, object]) -> None:
    req = WsApiRequest("r", "userDataStream.start", params, None)
    with pytest.raises(WsApiRequestError) as info:
        required_api_key(req)
    err = info.value
    assert (err.id, err.status, err.code) == ("r", 400, -1102)
    assert err.msg == "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed."


@pytest.mark.parametrize("key", ["has space", "tab\tkey", "ключ", "x" * 257, "a\x00b"])
def test_required_api_key_malformed(key: str) -> None:
    req = WsApiRequest(5, "userDataStream.start", {"apiKey": key}, None)
    with pytest.raises(WsApiRequestError) as info:
        required_api_key(req)
    err = info.value
    assert (err.id, err.status, err.code, err.msg) == (5, 401, -2014, "API-key format invalid.")


def test_response_ok_field_order_and_rate_limits() -> None:
    limits = [RateLimitStatus("REQUEST_WEIGHT", "MINUTE", 1, 2400, 2)]
    out = response_ok("d3df8a61-98ea-4fe0-8f4e-0fcea5d418b0", {"listenKey": "xs0m"}, limits)
    assert out == (
        b'{"id":"d3df8a61-98ea-4fe0-8f4e-0fcea5d418b0","status":200,'
        b'"result":{"listenKey":"xs0m"},'
        b'"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE",'
        b'"intervalNum":1,"limit":2400,"count":2}]}'
    )


def test_response_ok_without_rate_limits_omits_the_key() -> None:
    assert response_ok(None, {}, None) == b'{"id":null,"status":200,"result":{}}'
    assert response_ok(1, [], []) == b'{"id":1,"status":200,"result":[],"rateLimits":[]}'


def test_response_error_field_order() -> None:
    limits = [RateLimitStatus("REQUEST_WEIGHT", "MINUTE", 1, 2400, 2)]
    out = response_error(
        "5761b939",
        400,
        -1102,
        "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
        limits,
    )
    assert out.startswith(b'{"id":"5761b939","status":400,"error":{"code":-1102,"msg":')
    assert list(json.loads(out)) == ["id", "status", "error", "rateLimits"]
    assert response_error(None, 401, -2015, "x", None) == (
        b'{"id":null,"status":401,"error":{"code":-2015,"msg":"x"}}'
    )


def test_method_table() -> None:
    assert {
        "userDataStream.start",
        "userDataStream.ping",
        "userDataStream.stop",
    } == USER_DATA_STREAM_METHODS
    assert all(METHOD_WEIGHTS[m] == 1 for m in USER_DATA_STREAM_METHODS)
