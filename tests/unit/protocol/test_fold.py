"""The fold on real payloads (user-data spec §5.2, §5.4, §5.6 captures): what each event
changes in the account state, and what it leaves alone."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from userstream.protocol.events import Event
from userstream.protocol.fold import AccountFold, AccountSnapshot, FoldBalance, FoldPosition

D = Decimal
DECODE = msgspec.json.Decoder(Event).decode

# 2026-02-23 SOLUSDT captures (user-data spec §5.2, §5.4, §5.5).
NEW = (
    b'{"e":"ORDER_TRADE_UPDATE","T":1771856732584,"E":1771856732584,"o":{"s":"SOLUSDT",'
    b'"c":"SOLUSDT_BOTH_1771856732181_1","S":"BUY","o":"MARKET","f":"GTC","q":"0.1","p":"0",'
    b'"ap":"0","sp":"0","x":"NEW","X":"NEW","i":199033476993,"l":"0","z":"0","L":"0","n":"0",'
    b'"N":"USDT","T":1771856732584,"t":0,"b":"0","a":"0","m":false,"R":false,'
    b'"wt":"CONTRACT_PRICE","ot":"MARKET","ps":"BOTH","cp":false,"rp":"0","pP":false,"si":0,'
    b'"ss":0,"V":"EXPIRE_MAKER","pm":"NONE","gtd":0,"er":"0"}}'
)
FILLED = NEW.replace(b'"x":"NEW","X":"NEW"', b'"x":"TRADE","X":"FILLED"').replace(
    b'"z":"0"', b'"z":"0.1"'
)
LITE = (
    b'{"e":"TRADE_LITE","E":1771856732584,"T":1771856732584,"s":"SOLUSDT","q":"0.10",'
    b'"p":"0.0000","m":false,"c":"SOLUSDT_BOTH_1771856732181_1","S":"BUY","L":"80.1900",'
    b'"l":"0.10","t":3181138052,"i":199033476993}'
)
ACCOUNT = (
    b'{"e":"ACCOUNT_UPDATE","T":1771856732584,"E":1771856732584,"a":{"B":[{"a":"USDT",'
    b'"wb":"1.73744723","cw":"1.73744723","bc":"0"}],"P":[{"s":"SOLUSDT","pa":"0.1",'
    b'"ep":"80.19","cr":"26.83159999","up":"0","mt":"cross","iw":"0","ps":"BOTH","ma":"USDT",'
    b'"bep":"80.230095"}],"m":"ORDER"}}'
)
LEVERAGE = (
    b'{"e":"ACCOUNT_CONFIG_UPDATE","E":1611646737479,"T":1611646737476,"ac":{"s":"SOLUSDT","l":25}}'
)
MULTI = b'{"e":"ACCOUNT_CONFIG_UPDATE","E":1611646737479,"T":1611646737476,"ai":{"j":true}}'


def test_order_opens_then_leaves_on_a_final_status() -> None:
    fold = AccountFold()
    fold.apply(DECODE(NEW))
    (order,) = fold.state.open_orders.values()
    assert (order.order_id, order.status, order.update_time) == (199033476993, "NEW", 1771856732584)
    fold.apply(DECODE(LITE))
    assert 199033476993 in fold.state.open_orders
    fold.apply(DECODE(FILLED))
    assert fold.state.open_orders == {}


def test_account_update_sets_balances_positions_and_margin_type() -> None:
    fold = AccountFold(AccountSnapshot(margin_types={"SOLUSDT": "isolated"}))
    fold.apply(DECODE(ACCOUNT))
    assert fold.state.balances == {
        "USDT": FoldBalance(
            asset="USDT", wallet_balance=D("1.73744723"), cross_wallet_balance=D("1.73744723")
        )
    }
    assert fold.state.positions[("SOLUSDT", "BOTH")] == FoldPosition(
        symbol="SOLUSDT",
        position_side="BOTH",
        position_amount=D("0.1"),
        entry_price=D("80.19"),
        breakeven_price=D("80.230095"),
        accumulated_realized=D("26.83159999"),
        margin_type="cross",
        isolated_wallet=D("0"),
    )
    assert fold.state.margin_types == {"SOLUSDT": "cross"}
    closed = ACCOUNT.replace(b'"pa":"0.1"', b'"pa":"0"')
    fold.apply(DECODE(closed))
    assert fold.state.positions == {}


def test_config_updates_and_the_start_snapshot_is_not_changed() -> None:
    start = AccountSnapshot(leverages={"SOLUSDT": 20})
    fold = AccountFold(start)
    fold.apply(DECODE(LEVERAGE))
    fold.apply(DECODE(MULTI))
    assert fold.state.leverages == {"SOLUSDT": 25}
    assert fold.state.multi_assets_margin is True
    assert start.leverages == {"SOLUSDT": 20}
