"""The event models (spec §5): field mapping, optionals, decimals, the `e` union."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from userstream.protocol import events
from userstream.protocol.events import (
    EVENT_TYPES,
    AccountConfigUpdate,
    AccountInfoConfig,
    AccountUpdate,
    AccountUpdateData,
    AlgoOrder,
    AlgoUpdate,
    Balance,
    Event,
    ExecutionType,
    LeverageConfig,
    ListenKeyExpired,
    MarginCall,
    MarginCallPosition,
    OrderStatus,
    OrderTradeUpdate,
    OrderType,
    OrderUpdate,
    Position,
    PositionSide,
    Side,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "events"
DECODER = msgspec.json.Decoder(Event)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().strip()


def as_dict(raw: bytes) -> dict[str, Any]:
    obj = json.loads(raw)
    assert isinstance(obj, dict)
    return obj


def order_update(**changes: Any) -> OrderUpdate:
    fields: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "client_order_id": "c1",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "time_in_force": "GTC",
        "original_quantity": Decimal("0.00100"),
        "original_price": Decimal("65000.10"),
        "average_price": Decimal("0"),
        "stop_price": Decimal("0"),
        "execution_type": ExecutionType.NEW,
        "order_status": OrderStatus.NEW,
        "order_id": 42,
        "last_filled_quantity": Decimal("0"),
        "filled_accumulated_quantity": Decimal("0"),
        "last_filled_price": Decimal("0"),
        "trade_time": 1700000000000,
        "trade_id": 0,
        "bids_notional": Decimal("65.0001"),
        "ask_notional": Decimal("0"),
        "is_maker": False,
        "reduce_only": False,
        "working_type": "CONTRACT_PRICE",
        "original_order_type": OrderType.LIMIT,
        "position_side": PositionSide.BOTH,
        "close_position": False,
        "realized_profit": Decimal("0"),
        "price_protection": False,
        "strategy_id": 0,
        "ignored_ss": 0,
        "self_trade_prevention_mode": "EXPIRE_MAKER",
        "price_match": "NONE",
        "good_till_date": 0,
        "expiry_reason": "0",
    }
    fields.update(changes)
    return OrderUpdate(**fields)


def test_event_types_lists_the_ten_events_by_their_tag() -> None:
    assert len(EVENT_TYPES) == 10
    for name, cls in EVENT_TYPES.items():
        assert cls.__struct_config__.tag == name
        assert cls.__struct_config__.tag_field == "e"


def test_readable_names_map_to_binance_keys() -> None:
    event = DECODER.decode(fixture("order_trade_update_real_2026.json"))
    assert isinstance(event, OrderTradeUpdate)
    assert event.event_time == 1771856732584
    assert event.transaction_time == 1771856732584
    assert event.order.client_order_id == "SOLUSDT_BOTH_1771856732181_1"
    assert event.order.original_quantity == Decimal("0.1")
    assert event.order.order_id == 199033476993
    assert event.order.commission_asset == "USDT"
    assert event.order.is_maker is False


def test_union_dispatches_on_e() -> None:
    assert isinstance(DECODER.decode(fixture("margin_call.json")), MarginCall)
    assert isinstance(DECODER.decode(fixture("algo_update.json")), AlgoUpdate)
    assert isinstance(DECODER.decode(fixture("listen_key_expired.json")), ListenKeyExpired)


def test_decimal_keeps_trailing_zeros() -> None:
    encoded = msgspec.json.encode(order_update())
    assert b'"q":"0.00100"' in encoded
    assert b'"p":"65000.10"' in encoded
    decoded = msgspec.json.decode(encoded, type=OrderUpdate)
    assert str(decoded.original_quantity) == "0.00100"


def test_required_zero_fields_are_not_omitted() -> None:
    obj = as_dict(msgspec.json.encode(order_update()))
    assert obj["si"] == 0
    assert obj["ss"] == 0
    assert obj["gtd"] == 0
    assert obj["t"] == 0
    assert obj["m"] is False


def test_optional_fields_are_omitted_when_none() -> None:
    obj = as_dict(msgspec.json.encode(order_update()))
    for key in ("M", "n", "N", "AP", "cr"):
        assert key not in obj


def test_optional_fields_are_present_when_set() -> None:
    update = order_update(
        modify_id="7",
        commission=Decimal("-0.00074625"),
        commission_asset="USDT",
        activation_price=Decimal("7476.89"),
        callback_rate=Decimal("5.0"),
    )
    obj = as_dict(msgspec.json.encode(update))
    assert obj["M"] == "7"
    assert obj["n"] == "-0.00074625"
    assert obj["N"] == "USDT"
    assert obj["AP"] == "7476.89"
    assert obj["cr"] == "5.0"
    keys = list(obj)
    assert keys.index("i") < keys.index("M") < keys.index("l")
    assert keys.index("cp") < keys.index("AP") < keys.index("cr") < keys.index("rp")


def test_enum_constants_are_plain_strings_on_the_wire() -> None:
    obj = as_dict(msgspec.json.encode(order_update()))
    assert obj["S"] == "BUY"
    assert obj["o"] == "LIMIT"
    assert obj["ps"] == "BOTH"
    assert Side.SELL == "SELL"


def test_unknown_enum_values_decode_as_strings() -> None:
    raw = fixture("order_trade_update_real_2026.json").replace(b'"X":"NEW"', b'"X":"SOMETHING_NEW"')
    event = DECODER.decode(raw)
    assert isinstance(event, OrderTradeUpdate)
    assert event.order.order_status == "SOMETHING_NEW"


def test_account_update_optionals() -> None:
    position = Position(
        symbol="BTCUSDT",
        position_amount=Decimal("0.001"),
        entry_price=Decimal("65000"),
        accumulated_realized=Decimal("0"),
        unrealized_pnl=Decimal("0"),
        margin_type="cross",
        isolated_wallet=Decimal("0"),
        position_side="BOTH",
        breakeven_price=Decimal("65026"),
    )
    data = AccountUpdateData(balances=(), positions=(position,), reason="ORDER")
    obj = as_dict(msgspec.json.encode(data))
    assert list(obj) == ["B", "P", "m"]
    assert "ma" not in obj["P"][0]
    assert list(obj["P"][0])[-1] == "bep"

    funding = AccountUpdateData(
        balances=(
            Balance(
                asset="USDT",
                wallet_balance=Decimal("10"),
                cross_wallet_balance=Decimal("10"),
                balance_change=Decimal("-0.01"),
            ),
        ),
        positions=(),
        reason="FUNDING_FEE",
        funding_symbol="BTCUSDT",
    )
    assert as_dict(msgspec.json.encode(funding))["S"] == "BTCUSDT"


def test_margin_call_cw_only_for_cross() -> None:
    position = MarginCallPosition(
        symbol="ETHUSDT",
        position_side="LONG",
        position_amount=Decimal("1.327"),
        margin_type="ISOLATED",
        isolated_wallet=Decimal("5"),
        mark_price=Decimal("187.17127"),
        unrealized_pnl=Decimal("-1.166074"),
        maintenance_margin=Decimal("1.614445"),
    )
    isolated = MarginCall(event_time=1, positions=(position,))
    assert "cw" not in as_dict(msgspec.json.encode(isolated))
    cross = MarginCall(event_time=1, cross_wallet_balance=Decimal("3.16812045"), positions=())
    assert as_dict(msgspec.json.encode(cross))["cw"] == "3.16812045"


def test_algo_update_is_activated_is_optional() -> None:
    event = DECODER.decode(fixture("algo_update.json"))
    assert isinstance(event, AlgoUpdate)
    assert event.order.is_activated is None
    assert event.order.order_id == ""
    trailing = msgspec.structs.replace(event.order, is_activated=False)
    assert as_dict(msgspec.json.encode(trailing))["ia"] is False
    assert "ia" not in as_dict(msgspec.json.encode(event.order))


def test_listen_key_expired_accepts_string_e_and_encodes_int() -> None:
    event = DECODER.decode(fixture("listen_key_expired_string_e.json"))
    assert isinstance(event, ListenKeyExpired)
    assert event.event_time == 1736996475556
    assert type(event.event_time) is int
    assert as_dict(msgspec.json.encode(event))["E"] == 1736996475556


def test_listen_key_expired_rejects_non_digit_string_e() -> None:
    with pytest.raises(msgspec.ValidationError, match="string of digits"):
        DECODER.decode(b'{"e":"listenKeyExpired","E":"12a","listenKey":"k"}')


def test_account_config_update_forms() -> None:
    leverage = DECODER.decode(fixture("account_config_update_leverage.json"))
    assert isinstance(leverage, AccountConfigUpdate)
    assert leverage.leverage_config == LeverageConfig(symbol="BTCUSDT", leverage=25)
    assert leverage.account_info_config is None
    multi = DECODER.decode(fixture("account_config_update_multi_assets.json"))
    assert isinstance(multi, AccountConfigUpdate)
    assert multi.account_info_config == AccountInfoConfig(multi_assets_mode=True)
    assert multi.leverage_config is None


def test_account_config_update_rejects_both_forms() -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        AccountConfigUpdate(
            event_time=1,
            transaction_time=1,
            leverage_config=LeverageConfig(symbol="BTCUSDT", leverage=5),
            account_info_config=AccountInfoConfig(multi_assets_mode=False),
        )


def test_structs_are_frozen() -> None:
    event = DECODER.decode(fixture("account_update_real_2026.json"))
    assert isinstance(event, AccountUpdate)
    with pytest.raises(AttributeError):
        event.event_time = 0  # type: ignore[misc]
    assert isinstance(event.update.balances, tuple)


def test_algo_order_ids() -> None:
    order = msgspec.json.decode(
        json.dumps(as_dict(fixture("algo_update.json"))["o"]).encode(), type=AlgoOrder
    )
    assert order.algo_id == 2148719
    assert order.client_algo_id == "Q5xaq5EGKgXXa0fD7fs0Ip"


def test_public_names_are_exported() -> None:
    for name in events.__all__:
        assert hasattr(events, name)
