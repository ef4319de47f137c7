"""Signed-request rules (trading spec §1), from the spec's examples."""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from userstream.exceptions import BinanceAPIError
from userstream.protocol.signing import (
    KeyKind,
    Security,
    SigningKey,
    check_timestamp,
    hmac_signature,
    parse_params,
    split_signature,
    verify_rest,
    verify_ws_params,
    ws_payload,
)
from userstream.server.apikeys import Ed25519Key

# Binance's HMAC example (UDS spec §6.4; "SIGNED Endpoint Examples for POST /fapi/v1/order").
DOC_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
DOC_PAYLOAD = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
    "&recvWindow=5000&timestamp=1591702613943"
)
DOC_SIGNATURE = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
DOC_NOW = 1591702613943 + 100


def code_of(excinfo: pytest.ExceptionInfo[BinanceAPIError]) -> int:
    return excinfo.value.code


def test_doc_hmac_example_reproduces_its_signature() -> None:
    assert hmac_signature(DOC_SECRET.encode(), DOC_PAYLOAD.encode()) == DOC_SIGNATURE


@pytest.mark.parametrize(
    ("query", "body"),
    [
        (f"{DOC_PAYLOAD}&signature={DOC_SIGNATURE}", b""),  # SDK / nautilus: all in the query
        ("", f"{DOC_PAYLOAD}&signature={DOC_SIGNATURE}".encode()),  # ccxt / pb: form body
        ("", f"{DOC_PAYLOAD}&signature={DOC_SIGNATURE.upper()}".encode()),  # hex, any case
    ],
)
def test_doc_example_verifies_in_query_or_body(query: str, body: bytes) -> None:
    key = SigningKey.for_hmac(7, DOC_SECRET)
    signed = verify_rest(key, True, query, body, DOC_NOW)
    assert signed.account_id == 7
    assert signed.timestamp == 1591702613943
    assert signed.params["symbol"] == "BTCUSDT"
    assert "signature" not in signed.params


def test_mixed_query_and_body_are_concatenated_without_separator() -> None:
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=9000&recvWindow=5000&timestamp=1591702613943"
    total, _ = split_signature(query, body.encode())
    assert total == (query + body).encode()  # "...timeInForce=GTCquantity=1..." (§1.3)
    signature = hmac_signature(DOC_SECRET.encode(), total)
    key = SigningKey.for_hmac(1, DOC_SECRET)
    signed = verify_rest(key, True, query, f"{body}&signature={signature}".encode(), DOC_NOW)
    assert signed.params["timeInForce"] == "GTC"
    assert signed.params["quantity"] == "1"
    bad = hmac_signature(DOC_SECRET.encode(), f"{query}&{body}".encode())  # another payload
    with pytest.raises(BinanceAPIError) as joined:
        verify_rest(key, True, query, f"{body}&signature={bad}".encode(), DOC_NOW)
    assert code_of(joined) == -1022


def test_signature_is_checked_over_bytes_as_sent_not_reencoded() -> None:
    # python-binance sends params sorted; ccxt percent-encodes; both sign their own bytes.
    params = {"newClientOrderId": "x-Cb7ytekJ a/b", "symbol": "BTCUSDT", "timestamp": "1000"}
    payload = urlencode(sorted(params.items()))
    signature = hmac_signature(b"s", payload.encode())
    key = SigningKey.for_hmac(1, "s")
    signed = verify_rest(key, True, "", f"{payload}&signature={signature}".encode(), 1500)
    assert signed.params["newClientOrderId"] == "x-Cb7ytekJ a/b"
    reordered = "symbol=BTCUSDT&" + payload.replace("&symbol=BTCUSDT", "")
    with pytest.raises(BinanceAPIError) as excinfo:
        verify_rest(key, True, "", f"{reordered}&signature={signature}".encode(), 1500)
    assert code_of(excinfo) == -1022


def test_query_value_wins_over_body_value() -> None:
    assert parse_params("quantity=2", b"quantity=1&price=3") == {"quantity": "2", "price": "3"}


def test_same_parameter_twice_is_1101() -> None:
    with pytest.raises(BinanceAPIError) as excinfo:
        parse_params("symbol=A&symbol=B", b"")
    assert code_of(excinfo) == -1101


@pytest.mark.parametrize(
    ("api_key_ok", "key", "code"),
    [(False, None, -2014), (True, None, -2015)],
)
def test_api_key_errors(api_key_ok: bool, key: SigningKey | None, code: int) -> None:
    with pytest.raises(BinanceAPIError) as excinfo:
        verify_rest(key, api_key_ok, f"{DOC_PAYLOAD}&signature={DOC_SIGNATURE}", b"", DOC_NOW)
    assert code_of(excinfo) == code
    assert excinfo.value.status == 401


def test_missing_and_bad_signature() -> None:
    key = SigningKey.for_hmac(1, DOC_SECRET)
    with pytest.raises(BinanceAPIError) as missing:
        verify_rest(key, True, DOC_PAYLOAD, b"", DOC_NOW)
    assert code_of(missing) == -1102
    assert "'signature'" in missing.value.msg
    with pytest.raises(BinanceAPIError) as bad:
        verify_rest(key, True, DOC_PAYLOAD + "&signature=00", b"", DOC_NOW)
    assert (code_of(bad), bad.value.msg) == (-1022, "Signature for this request is not valid.")


@pytest.mark.parametrize(
    ("params", "now", "code", "msg"),
    [
        ({"timestamp": "1000"}, 6000, None, None),  # exactly recvWindow old: accepted
        ({"timestamp": "1000"}, 6001, -1021, "outside of the recvWindow"),
        ({"timestamp": "1999"}, 1000, None, None),  # 999 ms ahead: accepted
        ({"timestamp": "2000"}, 1000, -1021, "1000ms ahead"),
        ({"timestamp": "1000", "recvWindow": "60000"}, 61000, None, None),
        ({"timestamp": "1000", "recvWindow": "60001"}, 1000, -1130, "recvWindow"),
        ({"timestamp": "1000", "recvWindow": "0"}, 1000, -1130, "recvWindow"),
        ({}, 1000, -1102, "'timestamp'"),
        ({"timestamp": ""}, 1000, -1102, "'timestamp'"),
        ({"timestamp": "1e3"}, 1000, -1100, "'timestamp'"),
        ({"timestamp": "1000", "recvWindow": "abc"}, 1000, -1100, "'recvWindow'"),
    ],
)
def test_timestamp_rules(params: dict[str, str], now: int, code: int | None, msg: str) -> None:
    if code is None:
        assert check_timestamp(params, now) == int(params["timestamp"])
        return
    with pytest.raises(BinanceAPIError) as excinfo:
        check_timestamp(params, now)
    assert code_of(excinfo) == code
    assert msg in excinfo.value.msg


def _ed25519() -> tuple[Ed25519PrivateKey, Ed25519Key]:
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return private, Ed25519Key(pem.decode())


def test_ed25519_over_the_same_payload_base64_percent_encoded() -> None:
    private, pem = _ed25519()
    key = SigningKey.for_ed25519(3, pem)
    assert key.kind is KeyKind.ED25519
    signature = base64.b64encode(private.sign(DOC_PAYLOAD.encode())).decode()
    query = f"{DOC_PAYLOAD}&signature={quote(signature, safe='')}"
    assert verify_rest(key, True, query, b"", DOC_NOW).account_id == 3
    other, _ = _ed25519()
    forged = base64.b64encode(other.sign(DOC_PAYLOAD.encode())).decode()
    with pytest.raises(BinanceAPIError) as excinfo:
        verify_rest(key, True, f"{DOC_PAYLOAD}&signature={quote(forged, safe='')}", b"", DOC_NOW)
    assert code_of(excinfo) == -1022


def test_ed25519_rejects_non_ed25519_pem() -> None:
    with pytest.raises(ValueError, match="PEM"):
        Ed25519Key("not a key")


def test_ws_api_params_are_signed_sorted_and_urlencoded() -> None:
    # binance_common.utils.websocket_api_signature: sorted, urlencode, then "signature".
    params: dict[str, object] = {
        "symbol": "BTCUSDT",
        "apiKey": "k" * 64,
        "timestamp": 1000,
        "quantity": "0.01",
        "reduceOnly": True,
    }
    python_style = urlencode(sorted((k, str(v)) for k, v in params.items()))
    assert ws_payload(params, python_bools=True) == python_style.encode()
    key = SigningKey.for_hmac(1, "secret")
    signed = dict(params, signature=hmac_signature(b"secret", python_style.encode()))
    verified = verify_ws_params(key, signed, 1500)
    assert verified == {
        "symbol": "BTCUSDT",
        "timestamp": "1000",
        "quantity": "0.01",
        "reduceOnly": "true",
    }
    with pytest.raises(BinanceAPIError) as excinfo:
        verify_ws_params(key, dict(signed, quantity="0.02"), 1500)
    assert code_of(excinfo) == -1022


def test_ws_api_ed25519_logon_payload() -> None:
    private, pem = _ed25519()
    params: dict[str, object] = {"apiKey": "a" * 64, "timestamp": 5000}
    signature = base64.b64encode(private.sign(ws_payload(params))).decode()
    key = SigningKey.for_ed25519(1, pem)
    assert verify_ws_params(key, dict(params, signature=signature), 5000) == {"timestamp": "5000"}


def test_security_types() -> None:
    assert not Security.NONE.needs_key
    assert Security.USER_STREAM.needs_key
    assert not Security.USER_STREAM.signed
    assert Security.TRADE.signed
    assert Security.USER_DATA.signed


_FIELD_NAMES = ["symbol", "side", "timestamp", "recvWindow", "signature", "", "x"]
_FIELD_VALUES = ["", "BTCUSDT", "1591702613943", "5000", "60000", "0", "abc", "="]


@st.composite
def _plain_queries(draw: st.DrawFn) -> str:
    """Query strings without escapes: names and values that verify or fail in every way
    (duplicates, empty fields, missing or bad signatures, stale timestamps)."""
    fields = draw(
        st.lists(
            st.one_of(
                st.tuples(st.sampled_from(_FIELD_NAMES), st.sampled_from(_FIELD_VALUES)).map(
                    "=".join
                ),
                st.sampled_from(["", "signature", "timestamp"]),
            ),
            max_size=6,
        )
    )
    query = "&".join(fields)
    if draw(st.booleans()):
        signature = hmac_signature(DOC_SECRET.encode(), query.encode())
        query = f"{query}&signature={signature}" if query else f"signature={signature}"
    return query


def _outcome(query: str, body: bytes) -> object:
    key = SigningKey.for_hmac(7, DOC_SECRET)
    try:
        return verify_rest(key, True, query, body, DOC_NOW)
    except BinanceAPIError as error:
        return (error.code, error.msg, error.status)


@settings(max_examples=400, deadline=None)
@given(_plain_queries())
def test_a_plain_query_verifies_as_the_same_text_in_a_form_body(query: str) -> None:
    # A body-less request with nothing escaped takes a one-pass reading of its query; the
    # same text sent as a form body takes the general one: both answer the same.
    assert _outcome(query, b"") == _outcome("", query.encode())
