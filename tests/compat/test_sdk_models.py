"""Binance's official SDK parses what we encode (spec §5.11: "Official SDKs model all ten events").

The SDK (`binance-sdk-derivatives-trading-usds-futures`) dispatches on `e` in
`UserDataStreamEventsResponse.from_json` and validates with pydantic `StrictStr` / `StrictInt` /
`StrictBool`, so an amount sent as a number or a time sent as a string fails here.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    AccountConfigUpdate as SdkAccountConfigUpdate,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    AccountUpdate as SdkAccountUpdate,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    AlgoUpdate as SdkAlgoUpdate,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    ConditionalOrderTriggerReject as SdkConditionalOrderTriggerReject,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    GridUpdate as SdkGridUpdate,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    ListenKeyExpired as SdkListenKeyExpired,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    MarginCall as SdkMarginCall,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    OrderTradeUpdate as SdkOrderTradeUpdate,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    StrategyUpdate as SdkStrategyUpdate,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    TradeLite as SdkTradeLite,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    UserDataStreamEventsResponse,
)

from userstream.protocol.codec import decode_event, encode_event, make_listen_key_expired
from userstream.protocol.events import (
    AccountConfigUpdate,
    AccountInfoConfig,
    AccountUpdate,
    AccountUpdateData,
    AccountUpdateReason,
    AlgoOrder,
    AlgoStatus,
    AlgoUpdate,
    Balance,
    Event,
    ExecutionType,
    MarginCall,
    MarginCallPosition,
    MarginType,
    OrderStatus,
    OrderTradeUpdate,
    OrderType,
    OrderUpdate,
    Position,
    PositionSide,
    Side,
)

pytestmark = pytest.mark.compat

FIXTURES = Path(__file__).parents[1] / "fixtures" / "events"
GOLDEN = sorted(p.name for p in FIXTURES.glob("*.json"))

SDK_CLASSES: dict[str, type] = {
    "listenKeyExpired": SdkListenKeyExpired,
    "ACCOUNT_UPDATE": SdkAccountUpdate,
    "MARGIN_CALL": SdkMarginCall,
    "ORDER_TRADE_UPDATE": SdkOrderTradeUpdate,
    "TRADE_LITE": SdkTradeLite,
    "ACCOUNT_CONFIG_UPDATE": SdkAccountConfigUpdate,
    "STRATEGY_UPDATE": SdkStrategyUpdate,
    "GRID_UPDATE": SdkGridUpdate,
    "CONDITIONAL_ORDER_TRIGGER_REJECT": SdkConditionalOrderTriggerReject,
    "ALGO_UPDATE": SdkAlgoUpdate,
}
# Keys the SDK keeps in `additional_properties` at the top level: it declares no `e` field,
# and lists `listen_key` (not its alias `listenKey`) as known, so it keeps a second copy.
SDK_EXTRA_TOP_LEVEL_KEYS = {"e", "listenKey"}


def sdk_parse(raw: bytes) -> Any:
    """Parse `raw` as the SDK's stream handler does and return the event model."""
    response = UserDataStreamEventsResponse.from_json(raw.decode())
    instance = response.actual_instance
    assert instance is not None
    wire = json.loads(raw)
    assert type(instance) is SDK_CLASSES[wire["e"]]
    assert set(instance.additional_properties) <= SDK_EXTRA_TOP_LEVEL_KEYS
    # Nothing lost or retyped on the way through the SDK.
    assert instance.to_dict() == wire
    return instance


@pytest.mark.parametrize("name", GOLDEN)
def test_sdk_parses_our_encoding_of_golden_events(name: str) -> None:
    event = decode_event((FIXTURES / name).read_bytes())
    sdk_parse(encode_event(event))


def test_sdk_order_trade_update_values() -> None:
    raw = encode_event(decode_event((FIXTURES / "order_trade_update_doc.json").read_bytes()))
    sdk = sdk_parse(raw)
    assert sdk.E == 1568879465651
    assert sdk.T == 1568879465650
    assert sdk.o.c == "TEST"
    assert sdk.o.q == "0.001"
    assert sdk.o.i == 8886774
    assert sdk.o.AP == "7476.89"
    assert sdk.o.cr == "5.0"
    assert sdk.o.er == "0"
    assert sdk.o.m is False


def test_sdk_account_update_values() -> None:
    raw = encode_event(decode_event((FIXTURES / "account_update_doc.json").read_bytes()))
    sdk = sdk_parse(raw)
    assert sdk.a.m == "ORDER"
    assert sdk.a.B[1].cw == "0.00000000"
    assert sdk.a.P[2].cr == "-45.04000000"
    assert sdk.a.P[0].iw == "0.00000000"


def test_sdk_listen_key_expired_from_string_e() -> None:
    raw = encode_event(decode_event((FIXTURES / "listen_key_expired_string_e.json").read_bytes()))
    sdk = sdk_parse(raw)
    assert sdk.E == 1736996475556
    assert sdk.listen_key == "WsCMN0a4KHUPTQuX6IUnqEZfB1inxmv1qR4kbf1LuEjur5VdbzqvyxqG9TSjVVxv"


def test_sdk_other_values() -> None:
    def parse(name: str) -> Any:
        return sdk_parse(encode_event(decode_event((FIXTURES / name).read_bytes())))

    assert parse("trade_lite_real_2026.json").q == "0.10"
    assert parse("account_config_update_leverage.json").ac.l == 25
    assert parse("account_config_update_multi_assets.json").ai.j is True
    assert parse("strategy_update.json").su.c == 8007
    assert parse("grid_update.json").gu.uq == "-0.001"
    assert parse("conditional_order_trigger_reject.json").var_or.i == 155618472834
    assert parse("algo_update.json").o.caid == "Q5xaq5EGKgXXa0fD7fs0Ip"
    assert parse("margin_call.json").p[0].mm == "1.614445"


# --- events built by producers, not round-tripped from Binance's JSON


def built_order_trade_update() -> OrderTradeUpdate:
    return OrderTradeUpdate(
        transaction_time=1800000000001,
        event_time=1800000000002,
        order=OrderUpdate(
            symbol="币安人生USDT",
            client_order_id="amend-1",
            side=Side.SELL,
            order_type=OrderType.TRAILING_STOP_MARKET,
            time_in_force="GTC",
            original_quantity=Decimal("0.00100"),
            original_price=Decimal("0"),
            average_price=Decimal("0"),
            stop_price=Decimal("0"),
            execution_type=ExecutionType.AMENDMENT,
            order_status=OrderStatus.NEW,
            order_id=9007199254740993,
            modify_id="mod-7",
            last_filled_quantity=Decimal("0"),
            filled_accumulated_quantity=Decimal("0"),
            last_filled_price=Decimal("0"),
            commission=Decimal("0.00000000"),
            commission_asset="USDT",
            trade_time=1800000000001,
            trade_id=0,
            bids_notional=Decimal("0"),
            ask_notional=Decimal("9.91"),
            is_maker=False,
            reduce_only=True,
            working_type="MARK_PRICE",
            original_order_type=OrderType.TRAILING_STOP_MARKET,
            position_side=PositionSide.LONG,
            close_position=False,
            activation_price=Decimal("7476.89"),
            callback_rate=Decimal("5.0"),
            realized_profit=Decimal("0"),
            price_protection=True,
            strategy_id=0,
            ignored_ss=0,
            self_trade_prevention_mode="EXPIRE_TAKER",
            price_match="NONE",
            good_till_date=0,
            expiry_reason="0",
        ),
    )


def built_events() -> list[Event]:
    position = Position(
        symbol="BTCUSDT",
        position_amount=Decimal("-0.002"),
        entry_price=Decimal("65000.5"),
        accumulated_realized=Decimal("0.00000001"),
        unrealized_pnl=Decimal("-1.2"),
        margin_type=MarginType.CROSS,
        isolated_wallet=Decimal("0"),
        position_side=PositionSide.BOTH,
        margin_asset="USDT",
        breakeven_price=Decimal("65010.1"),
    )
    return [
        built_order_trade_update(),
        AccountUpdate(
            transaction_time=1,
            event_time=2,
            update=AccountUpdateData(
                balances=(
                    Balance(
                        asset="USDT",
                        wallet_balance=Decimal("100.00000000"),
                        cross_wallet_balance=Decimal("100.00000000"),
                        balance_change=Decimal("-0.00012345"),
                    ),
                ),
                positions=(position,),
                reason=AccountUpdateReason.FUNDING_FEE,
                funding_symbol="BTCUSDT",
            ),
        ),
        MarginCall(
            event_time=3,
            positions=(
                MarginCallPosition(
                    symbol="ETHUSDT",
                    position_side="SHORT",
                    position_amount=Decimal("-1"),
                    margin_type="ISOLATED",
                    isolated_wallet=Decimal("12.5"),
                    mark_price=Decimal("3000.01"),
                    unrealized_pnl=Decimal("-11"),
                    maintenance_margin=Decimal("12"),
                ),
            ),
        ),
        AccountConfigUpdate(
            event_time=4,
            transaction_time=4,
            account_info_config=AccountInfoConfig(multi_assets_mode=False),
        ),
        AlgoUpdate(
            transaction_time=5,
            event_time=6,
            order=AlgoOrder(
                client_algo_id="algo-1",
                algo_id=1,
                algo_type="CONDITIONAL",
                order_type=OrderType.TRAILING_STOP_MARKET,
                symbol="BTCUSDT",
                side=Side.BUY,
                position_side=PositionSide.BOTH,
                time_in_force="GTC",
                quantity=Decimal("0.010"),
                status=AlgoStatus.NEW,
                order_id="",
                trigger_price=Decimal("0"),
                price=Decimal("0"),
                self_trade_prevention_mode="EXPIRE_MAKER",
                working_type="CONTRACT_PRICE",
                price_match="NONE",
                close_position=False,
                price_protection=False,
                reduce_only=False,
                trigger_time=0,
                good_till_date=0,
                reject_reason="",
                is_activated=False,
            ),
        ),
        make_listen_key_expired("key-1", 7),
    ]


@pytest.mark.parametrize("event", built_events(), ids=lambda e: type(e).__name__)
def test_sdk_parses_events_we_build(event: Event) -> None:
    sdk_parse(encode_event(event))


def test_sdk_values_of_built_order_trade_update() -> None:
    sdk = sdk_parse(encode_event(built_order_trade_update()))
    assert sdk.o.s == "币安人生USDT"
    assert sdk.o.M == "mod-7"
    assert sdk.o.q == "0.00100"
    assert sdk.o.n == "0.00000000"
    assert sdk.o.i == 9007199254740993
    assert sdk.o.x == "AMENDMENT"
    assert sdk.o.pP is True


def test_sdk_values_of_built_account_update() -> None:
    sdk = sdk_parse(encode_event(built_events()[1]))
    assert sdk.a.S == "BTCUSDT"
    assert sdk.a.P[0].cr == "0.00000001"
    # `ma` is undocumented, so the SDK keeps it aside.
    assert sdk.a.P[0].additional_properties == {"ma": "USDT"}


def test_sdk_values_of_built_algo_update() -> None:
    sdk = sdk_parse(encode_event(built_events()[4]))
    assert sdk.o.ia is False
    assert sdk.o.q == "0.010"
    assert sdk.o.ap is None
