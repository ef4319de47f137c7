"""Encoding, tolerant decoding, the combined envelope and the strict admin path (spec §4.3, §5)."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from userstream.exceptions import EventValidationError
from userstream.protocol.codec import (
    UnknownEventError,
    combined_envelope,
    decode_event,
    encode_event,
    event_name,
    has_transaction_time,
    make_listen_key_expired,
    parse_admin_events,
)
from userstream.protocol.events import (
    EVENT_TYPES,
    AccountConfigUpdate,
    AccountUpdate,
    AccountUpdateData,
    Balance,
    GridUpdate,
    ListenKeyExpired,
    MarginCall,
    MarginCallPosition,
    OrderTradeUpdate,
    TradeLite,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "events"
GOLDEN = sorted(p.name for p in FIXTURES.glob("*.json"))
# Payloads whose key order we reproduce exactly: the real captures, and the doc examples of
# events without one. The doc examples of ACCOUNT_UPDATE and ORDER_TRADE_UPDATE use an
# order real payloads do not; `E` given as a string is re-encoded as an integer.
NOT_BYTE_EXACT = {
    "account_update_doc.json",
    "order_trade_update_doc.json",
    "listen_key_expired_string_e.json",
}
NOW = 1_800_000_000_000


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().strip()


def loads(raw: bytes | str) -> Any:
    return json.loads(raw)


def admin_error(body: bytes | dict[str, Any] | list[Any]) -> EventValidationError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(EventValidationError) as info:
        parse_admin_events(raw, NOW)
    return info.value


def order_payload() -> dict[str, Any]:
    obj = loads(fixture("order_trade_update_real_2026.json"))
    assert isinstance(obj, dict)
    return obj


# --- golden payloads


def test_every_event_type_has_a_golden_payload() -> None:
    names = {loads(fixture(name))["e"] for name in GOLDEN}
    assert names == set(EVENT_TYPES)


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_round_trip(name: str) -> None:
    raw = fixture(name)
    event = decode_event(raw)
    encoded = encode_event(event)
    expected = loads(raw)
    if name == "listen_key_expired_string_e.json":
        expected["E"] = int(expected["E"])
    assert loads(encoded) == expected
    if name not in NOT_BYTE_EXACT:
        assert encoded == raw


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_round_trip_through_strings(name: str) -> None:
    event = decode_event(fixture(name).decode())
    assert decode_event(encode_event(event)) == event


def test_real_capture_key_order() -> None:
    obj = loads(encode_event(decode_event(fixture("account_update_real_2026.json"))))
    assert list(obj) == ["e", "T", "E", "a"]
    assert list(obj["a"]) == ["B", "P", "m"]
    order = loads(encode_event(decode_event(fixture("order_trade_update_doc.json"))))
    assert list(order)[:3] == ["e", "T", "E"]


def test_decimals_keep_plain_notation() -> None:
    # Decimal("0.00000000") prints as "0E-8"; Binance writes "0.00000000".
    encoded = encode_event(decode_event(fixture("account_update_doc.json")))
    assert b'"cw":"0.00000000"' in encoded
    assert b'"iw":"0.00000000"' in encoded
    assert b"E-" not in encoded
    tiny = AccountUpdate(
        transaction_time=1,
        event_time=2,
        update=AccountUpdateData(
            balances=(
                Balance(
                    asset="BNB",
                    wallet_balance=Decimal("0.00000001"),
                    cross_wallet_balance=Decimal("1E+3"),
                    balance_change=Decimal("0.00100"),
                ),
            ),
            positions=(),
            reason="DEPOSIT",
        ),
    )
    balance = loads(encode_event(tiny))["a"]["B"][0]
    assert balance == {"a": "BNB", "wb": "0.00000001", "cw": "1000", "bc": "0.00100"}


def test_text_containing_e_minus_still_encodes_exactly() -> None:
    raw = fixture("trade_lite_real_2026.json").replace(b"SOLUSDT_BOTH", b"E-E+")
    assert encode_event(decode_event(raw)) == raw


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


_AMOUNTS = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: abs(d.adjusted()) < 40
) | st.sampled_from([Decimal("0E-8"), Decimal("-0E-8"), Decimal("1E+2"), Decimal("NaN")])
# Text that looks like an amount in exponent notation, alone or beside JSON punctuation.
_TEXTS = st.sampled_from(["BTC", "1E-5", "0E-8", "-2.5E+3", 'a","x":"1E-5', "a:1E-5,", "\\"])


@given(amounts=st.lists(_AMOUNTS, min_size=4, max_size=4), text=_TEXTS)
def test_amounts_in_plain_notation_whatever_the_text(amounts: list[Decimal], text: str) -> None:
    # Every Decimal is written as format(d, "f") and every text exactly as given, whichever
    # path encode_event takes.
    event = AccountUpdate(
        transaction_time=1,
        event_time=2,
        update=AccountUpdateData(
            balances=(
                Balance(
                    asset=text,
                    wallet_balance=amounts[0],
                    cross_wallet_balance=amounts[1],
                    balance_change=amounts[2],
                ),
                Balance(
                    asset="USDT",
                    wallet_balance=amounts[3],
                    cross_wallet_balance=Decimal("0E-8"),
                    balance_change=Decimal("0"),
                ),
            ),
            positions=(),
            reason="DEPOSIT",
        ),
    )
    expected = msgspec.json.encode(_plain(msgspec.to_builtins(event, builtin_types=(Decimal,))))
    assert encode_event(event) == expected


@given(amounts=st.lists(_AMOUNTS, min_size=4, max_size=4), text=_TEXTS)
def test_other_events_amounts_in_plain_notation_whatever_the_text(
    amounts: list[Decimal], text: str
) -> None:
    # The same for an event other than ACCOUNT_UPDATE, which is encoded first with str() and
    # again plainly only when that wrote an exponent.
    event = MarginCall(
        event_time=2,
        cross_wallet_balance=amounts[0],
        positions=(
            MarginCallPosition(
                symbol=text,
                position_side="BOTH",
                position_amount=amounts[1],
                margin_type="CROSSED",
                isolated_wallet=amounts[2],
                mark_price=amounts[3],
                unrealized_pnl=Decimal("-0E-8"),
                maintenance_margin=Decimal("1.5"),
            ),
        ),
    )
    expected = msgspec.json.encode(_plain(msgspec.to_builtins(event, builtin_types=(Decimal,))))
    assert encode_event(event) == expected


def _encodes(event: AccountUpdate) -> list[str]:
    """The msgspec encoder calls `encode_event(event)` makes, by qualified name."""
    calls: list[str] = []

    def profile(frame: object, what: str, arg: object) -> None:
        if what == "c_call" and getattr(arg, "__qualname__", "") == "Encoder.encode":
            calls.append(getattr(arg, "__qualname__", ""))

    sys.setprofile(profile)
    try:
        encode_event(event)
    finally:
        sys.setprofile(None)
    return calls


def test_account_update_with_zero_wallet_amounts_is_encoded_once() -> None:
    # The venue's every ACCOUNT_UPDATE carries quantized zeros (`bc` "0E-8" under str()):
    # one encoder pass, not a str() pass thrown away for a plain one.
    event = decode_event(fixture("account_update_real_2026.json"))
    assert isinstance(event, AccountUpdate)
    zero = Decimal("0.00000000")
    balance = msgspec.structs.replace(event.update.balances[0], balance_change=zero)
    update = msgspec.structs.replace(event.update, balances=(balance,))
    venue_like = msgspec.structs.replace(event, update=update)
    assert b'"bc":"0.00000000"' in encode_event(venue_like)
    assert _encodes(venue_like) == ["Encoder.encode"]


# --- small helpers


def test_event_name_and_transaction_time() -> None:
    for name in GOLDEN:
        event = decode_event(fixture(name))
        assert event_name(event) == loads(fixture(name))["e"]
    assert has_transaction_time("ORDER_TRADE_UPDATE")
    assert has_transaction_time("TRADE_LITE")
    assert has_transaction_time("ALGO_UPDATE")
    assert not has_transaction_time("MARGIN_CALL")
    assert not has_transaction_time("listenKeyExpired")
    assert not has_transaction_time("NO_SUCH_EVENT")


def test_make_listen_key_expired() -> None:
    event = make_listen_key_expired("abc", 1736996475556)
    assert isinstance(event, ListenKeyExpired)
    assert encode_event(event) == b'{"e":"listenKeyExpired","E":1736996475556,"listenKey":"abc"}'


# --- combined envelope


def test_combined_envelope() -> None:
    raw = fixture("trade_lite_real_2026.json")
    envelope = combined_envelope(
        "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1", raw
    )
    assert loads(envelope) == {
        "stream": "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1",
        "data": loads(raw),
    }
    assert envelope.endswith(b',"data":' + raw + b"}")


def test_combined_envelope_escapes_the_stream_name() -> None:
    stream = 'we"ird\\name\n\u0001é'
    envelope = combined_envelope(stream, b'{"e":"X"}')
    assert loads(envelope) == {"stream": stream, "data": {"e": "X"}}


# --- tolerant decoding


def test_decode_ignores_unknown_fields() -> None:
    obj = order_payload()
    obj["new_top"] = 1
    obj["o"]["st"] = "OTOCO"
    obj["o"]["zz"] = {"nested": [1, 2]}
    event = decode_event(json.dumps(obj))
    assert isinstance(event, OrderTradeUpdate)
    assert event.order.client_order_id == "SOLUSDT_BOTH_1771856732181_1"


def test_decode_unknown_event_type() -> None:
    with pytest.raises(UnknownEventError) as info:
        decode_event(b'{"e":"BRAND_NEW_EVENT","E":1}')
    assert info.value.path == "e"
    assert info.value.event_type == "BRAND_NEW_EVENT"
    assert isinstance(info.value, EventValidationError)


def test_decode_errors_name_the_field() -> None:
    obj = order_payload()
    del obj["o"]["q"]
    with pytest.raises(EventValidationError) as info:
        decode_event(json.dumps(obj))
    assert info.value.path == "o.q"
    assert not isinstance(info.value, UnknownEventError)
    with pytest.raises(EventValidationError) as invalid:
        decode_event(b"{nope")
    assert invalid.value.path == ""
    assert invalid.value.reason.startswith("invalid JSON")


# --- strict admin path: accepted input


def test_admin_single_event() -> None:
    raw = fixture("order_trade_update_real_2026.json")
    (event,) = parse_admin_events(raw, NOW)
    assert encode_event(event) == raw


def test_admin_batch_of_every_golden_event() -> None:
    payloads = [
        loads(fixture(name))
        for name in GOLDEN
        if not name.startswith("listen_key_expired") and name != "account_update_doc.json"
    ]
    result = parse_admin_events(json.dumps(payloads).encode(), NOW)
    assert [loads(encode_event(e)) for e in result] == payloads


def test_admin_doc_payload_without_ma() -> None:
    (event,) = parse_admin_events(fixture("account_update_doc.json"), NOW)
    assert isinstance(event, AccountUpdate)
    assert event.update.positions[0].margin_asset is None


def test_admin_fills_e_and_t() -> None:
    obj = order_payload()
    del obj["E"]
    del obj["T"]
    (event,) = parse_admin_events(json.dumps(obj).encode(), NOW)
    assert isinstance(event, OrderTradeUpdate)
    assert event.event_time == NOW
    assert event.transaction_time == NOW
    assert list(loads(encode_event(event)))[:3] == ["e", "T", "E"]


def test_admin_keeps_given_e_and_t() -> None:
    (event,) = parse_admin_events(fixture("grid_update.json"), NOW)
    assert isinstance(event, GridUpdate)
    assert event.event_time == 1669262908218
    assert event.transaction_time == 1669262908216


def test_admin_fills_only_e_for_margin_call() -> None:
    obj = loads(fixture("margin_call.json"))
    del obj["E"]
    (event,) = parse_admin_events(json.dumps(obj).encode(), NOW)
    assert isinstance(event, MarginCall)
    assert event.event_time == NOW
    assert "T" not in loads(encode_event(event))


# --- strict admin path: rejected input


def test_admin_invalid_json() -> None:
    error = admin_error(b'{"e":')
    assert error.path == ""
    assert error.reason.startswith("invalid JSON: ")


def test_admin_absurd_nesting() -> None:
    error = admin_error(b"[" * 100_000 + b"]" * 100_000)
    assert error.path == ""
    assert error.reason.startswith("invalid JSON")


def test_admin_empty_batch() -> None:
    error = admin_error(b"[]")
    assert error.path == ""
    assert "empty" in error.reason


@pytest.mark.parametrize("body", [b"42", b'"ORDER_TRADE_UPDATE"', b"null", b"true"])
def test_admin_body_must_be_object_or_array(body: bytes) -> None:
    assert admin_error(body).path == ""


def test_admin_non_object_element() -> None:
    error = admin_error([order_payload(), 7])
    assert error.path == "[1]"
    assert "object" in error.reason


def test_admin_missing_e() -> None:
    obj = order_payload()
    del obj["e"]
    assert admin_error(obj).path == "e"


def test_admin_unknown_event_type() -> None:
    error = admin_error({"e": "NOT_AN_EVENT", "E": 1})
    assert error.path == "e"
    assert "unknown event type" in error.reason


def test_admin_rejects_listen_key_expired() -> None:
    error = admin_error(fixture("listen_key_expired.json"))
    assert error.path == "e"
    assert "listenKeyExpired" in error.reason
    assert "server" in error.reason


def test_admin_missing_required_field() -> None:
    obj = order_payload()
    del obj["o"]["q"]
    error = admin_error(obj)
    assert error.path == "o.q"
    assert error.reason == "missing required field"


def test_admin_missing_nested_object() -> None:
    obj = loads(fixture("strategy_update.json"))
    del obj["su"]
    assert admin_error(obj).path == "su"


def test_admin_amount_as_json_number() -> None:
    obj = order_payload()
    obj["o"]["q"] = 0.1
    error = admin_error(obj)
    assert error.path == "o.q"
    assert "decimal string" in error.reason


@pytest.mark.parametrize("value", ["1e-8", "abc", "NaN", " 1", "1.", ""])
def test_admin_amount_not_plain_decimal(value: str) -> None:
    obj = order_payload()
    obj["o"]["ap"] = value
    assert admin_error(obj).path == "o.ap"


def test_admin_time_as_string() -> None:
    obj = order_payload()
    obj["E"] = "1771856732584"
    error = admin_error(obj)
    assert error.path == "E"
    assert "int" in error.reason


def test_admin_id_as_bool_or_float() -> None:
    obj = order_payload()
    obj["o"]["i"] = True
    assert admin_error(obj).path == "o.i"
    obj["o"]["i"] = 1.5
    assert admin_error(obj).path == "o.i"


def test_admin_bool_as_string() -> None:
    obj = order_payload()
    obj["o"]["m"] = "false"
    error = admin_error(obj)
    assert error.path == "o.m"
    assert "bool" in error.reason


def test_admin_string_as_number() -> None:
    obj = order_payload()
    obj["o"]["c"] = 12
    assert admin_error(obj).path == "o.c"


def test_admin_null_rejected() -> None:
    obj = order_payload()
    obj["o"]["N"] = None
    error = admin_error(obj)
    assert error.path == "o.N"
    assert "null" in error.reason


def test_admin_unknown_field_top_level() -> None:
    obj = order_payload()
    obj["extra"] = 1
    error = admin_error(obj)
    assert error.path == "extra"
    assert error.reason == "unknown field"


def test_admin_unknown_field_nested() -> None:
    obj = order_payload()
    obj["o"]["st"] = "OTOCO"
    assert admin_error(obj).path == "o.st"


def test_admin_errors_inside_arrays() -> None:
    obj = loads(fixture("account_update_real_2026.json"))
    obj["a"]["B"][0]["wb"] = 1.73744723
    assert admin_error(obj).path == "a.B[0].wb"
    obj = loads(fixture("account_update_doc.json"))
    obj["a"]["P"][2]["xx"] = "1"
    assert admin_error(obj).path == "a.P[2].xx"
    obj = loads(fixture("account_update_doc.json"))
    del obj["a"]["P"][1]["bep"]
    assert admin_error(obj).path == "a.P[1].bep"


def test_admin_wrong_container_type() -> None:
    obj = loads(fixture("account_update_real_2026.json"))
    obj["a"]["B"] = {"a": "USDT"}
    assert admin_error(obj).path == "a.B"
    obj = order_payload()
    obj["o"] = "nope"
    assert admin_error(obj).path == "o"


def test_admin_batch_error_path_and_all_or_nothing() -> None:
    good = order_payload()
    bad = order_payload()
    bad["o"]["q"] = 1
    error = admin_error([good, good, bad, good])
    assert error.path == "[2].o.q"


def test_admin_batch_listen_key_expired_element() -> None:
    error = admin_error([order_payload(), loads(fixture("listen_key_expired.json"))])
    assert error.path == "[1].e"


def test_admin_account_config_update_needs_exactly_one_form() -> None:
    neither = {"e": "ACCOUNT_CONFIG_UPDATE", "E": 1, "T": 1}
    assert admin_error(neither).path == "ac"
    both = dict(neither, ac={"s": "BTCUSDT", "l": 5}, ai={"j": True})
    error = admin_error(both)
    assert error.path == "ai"
    assert "mutually exclusive" in error.reason
    (event,) = parse_admin_events(fixture("account_config_update_leverage.json"), NOW)
    assert isinstance(event, AccountConfigUpdate)


def test_admin_leverage_must_be_int() -> None:
    obj = loads(fixture("account_config_update_leverage.json"))
    obj["ac"]["l"] = "25"
    assert admin_error(obj).path == "ac.l"


def test_admin_result_is_encodable_like_binance() -> None:
    obj = loads(fixture("trade_lite_doc.json"))
    del obj["T"]
    (event,) = parse_admin_events(json.dumps(obj).encode(), NOW)
    assert isinstance(event, TradeLite)
    assert loads(encode_event(event)) == dict(loads(fixture("trade_lite_doc.json")), T=NOW)


def test_msgspec_accepts_numbers_for_decimal_which_is_why_admin_checks_itself() -> None:
    # Documents the msgspec behaviour the admin path works around.
    assert msgspec.convert(0.5, Decimal, strict=True) == Decimal("0.5")


def test_admin_e_must_be_a_string() -> None:
    error = admin_error({"e": 5, "E": 1})
    assert error.path == "e"
    assert "string" in error.reason


def test_admin_first_element_of_batch() -> None:
    bad = order_payload()
    del bad["o"]["er"]
    assert admin_error([bad, order_payload()]).path == "[0].o.er"


def test_decode_tolerates_unknown_fields_inside_arrays() -> None:
    obj = loads(fixture("account_update_real_2026.json"))
    obj["a"]["P"][0]["new"] = "x"
    obj["a"]["B"][0]["also_new"] = [1]
    event = decode_event(json.dumps(obj))
    assert isinstance(event, AccountUpdate)
    assert event.update.positions[0].margin_asset == "USDT"


def test_decode_listen_key_expired_with_bad_e() -> None:
    with pytest.raises(EventValidationError) as info:
        decode_event(b'{"e":"listenKeyExpired","E":"soon","listenKey":"k"}')
    assert "string of digits" in info.value.reason
