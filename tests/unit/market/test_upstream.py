"""Decoding an upstream's market frames and keeping its book (market-data spec §2.2, §2.3)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from userstream.exceptions import TransportError
from userstream.market.book import OrderBook
from userstream.market.types import BookUpdate, FundingSettlement, Level, MarkUpdate, Trade
from userstream.market.upstream import (
    AggTradeFrame,
    BookTickerFrame,
    MarkPriceFrame,
    TradeFrame,
    UpstreamMarket,
    decode_frame,
)
from userstream.protocol.exchange_info import Symbol
from userstream.symbols import load_symbol_table

# spec §2.2 [CAP-08]: a live `@trade` frame, 2026-08-02
CAPTURED_TRADE = (
    '{"e":"trade","E":1785701708157,"T":1785701708156,"s":"BTCUSDT","t":7947574407,'
    '"p":"63437.30","q":"0.003","X":"MARKET","m":false,"st":1}'
)
# spec §2.2 [CAP-02]: a 2026-02 aggTrade (price, q/nq, f..l, T 154 ms before E)
CAPTURED_AGG_TRADE = (
    '{"e":"aggTrade","E":1771200000154,"a":3100000001,"s":"BTCUSDT","p":"68005.00",'
    '"q":"2.695","nq":"2.695","f":7297376181,"l":7297376207,"T":1771200000000,"m":true,"st":1}'
)
# spec §2.2: bookTicker in the live key order e,u,s,b,B,a,A,T,E [CAP-02]
CAPTURED_BOOK_TICKER = (
    '{"e":"bookTicker","u":9900000000001,"s":"BTCUSDT","b":"68005.00","B":"3.002",'
    '"a":"68005.10","A":"0.517","T":1771200000100,"E":1771200000101}'
)
# spec §2.2: markPriceUpdate without `ap` (absent from the 2026-02 capture)
CAPTURED_MARK = (
    '{"e":"markPriceUpdate","E":1771200001000,"s":"BTCUSDT","p":"68004.12345678",'
    '"P":"68001.00000000","i":"68001.23456789","r":"0.00010000","T":1771228800000}'
)

NOW = 1_771_200_010_000


@pytest.fixture(scope="module")
def symbols() -> tuple[Symbol, ...]:
    table = load_symbol_table().symbols
    return tuple(s for s in table if s.symbol in ("BTCUSDT", "ETHUSDT"))


def _combined(stream: str, data: str) -> str:
    return f'{{"stream":"{stream}","data":{data}}}'


def test_captured_frames_decode_raw_and_combined() -> None:
    trade = TradeFrame(
        1785701708157,
        1785701708156,
        "BTCUSDT",
        7947574407,
        Decimal("63437.30"),
        Decimal("0.003"),
        False,
    )
    assert decode_frame(CAPTURED_TRADE) == [trade]
    assert decode_frame(_combined("btcusdt@trade", CAPTURED_TRADE)) == [trade]
    [agg] = decode_frame(_combined("btcusdt@aggTrade", CAPTURED_AGG_TRADE).encode())
    assert agg == AggTradeFrame(
        1771200000154,
        "BTCUSDT",
        3100000001,
        Decimal("68005.00"),
        Decimal("2.695"),
        7297376181,
        7297376207,
        1771200000000,
        True,
    )
    [top] = decode_frame(CAPTURED_BOOK_TICKER)
    assert isinstance(top, BookTickerFrame)
    assert (top.update_id, top.bid_price, top.ask_qty) == (
        9900000000001,
        Decimal("68005.00"),
        Decimal("0.517"),
    )
    [mark] = decode_frame(CAPTURED_MARK)
    assert isinstance(mark, MarkPriceFrame)
    assert (mark.mark_price, mark.index_price, mark.estimated_settle_price) == (
        Decimal("68004.12345678"),
        Decimal("68001.23456789"),
        Decimal("68001.00000000"),
    )
    marks = decode_frame(_combined("!markPrice@arr@1s", f"[{CAPTURED_MARK},{CAPTURED_MARK}]"))
    assert marks == [mark, mark]


@pytest.mark.parametrize(
    "frame",
    [
        '{"result":null,"id":1}',
        '{"e":"kline","E":1,"s":"BTCUSDT","k":{}}',
        _combined("btcusdt@ticker", '{"e":"24hrTicker","E":1,"s":"BTCUSDT"}'),
        "[]",
    ],
)
def test_control_replies_and_other_events_are_skipped(frame: str) -> None:
    assert decode_frame(frame) == []


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "unreadable message"),
        ('{"e":"aggTrade","E":1,"s":"BTCUSDT"}', "unreadable market payload"),
        (
            '{"e":"trade","E":1,"T":1,"s":"BTCUSDT","t":1,"p":"x","q":"1","m":false}',
            "market payload",
        ),
    ],
)
def test_a_broken_frame_is_a_transport_error(frame: str, reason: str) -> None:
    with pytest.raises(TransportError, match=reason):
        decode_frame(frame)


def _depth(
    u_first: int, u_last: int, pu: int, bids: Any = (), asks: Any = (), symbol: str = "BTCUSDT"
) -> str:
    body = {
        "e": "depthUpdate",
        "E": NOW - 5,
        "T": NOW - 6,
        "s": symbol,
        "U": u_first,
        "u": u_last,
        "pu": pu,
        "b": [list(level) for level in bids],
        "a": [list(level) for level in asks],
    }
    return _combined(f"{symbol.lower()}@depth@100ms", json.dumps(body))


def _snapshot(last: int, bids: Any, asks: Any) -> bytes:
    return json.dumps(
        {
            "lastUpdateId": last,
            "E": NOW,
            "T": NOW,
            "bids": [list(b) for b in bids],
            "asks": [list(a) for a in asks],
        }
    ).encode()


def _mirror(market: UpstreamMarket, mirror: OrderBook) -> list[BookUpdate]:
    updates = [u for u in market.advance(NOW) if isinstance(u, BookUpdate)]
    for update in updates:
        mirror.apply(update)
    return updates


def test_the_book_follows_the_documented_snapshot_and_diff_procedure(
    symbols: tuple[Symbol, ...],
) -> None:
    market = UpstreamMarket(symbols)
    consumer = OrderBook("BTCUSDT")
    assert market.needs_snapshot() == ["BTCUSDT", "ETHUSDT"]
    # buffered before the snapshot; the first is older than it and is dropped (step 3)
    market.receive(_depth(90, 99, 80, bids=[("100.0", "9")]))
    market.receive(_depth(100, 110, 99, bids=[("100.1", "1")], asks=[("100.3", "0")]))
    assert market.advance(NOW) == []
    market.receive_snapshot(
        "BTCUSDT",
        _snapshot(105, [("100.0", "2"), ("99.9", "3")], [("100.2", "1"), ("100.3", "4")]),
    )
    assert market.needs_snapshot() == ["ETHUSDT"]
    first, spanning = _mirror(market, consumer)
    assert (first.first_update_id, first.final_update_id) == (1, 105)
    assert (spanning.first_update_id, spanning.final_update_id) == (
        106,
        110,
    )  # step 4: U <= 105 <= u
    market.receive(_depth(115, 120, 110, asks=[("100.2", "0.5")]))
    market.receive(_depth(121, 125, 120, bids=[("99.9", "0")]))
    _mirror(market, consumer)
    assert consumer.snapshot(10).bids == (
        Level(Decimal("100.1"), Decimal("1")),
        Level(Decimal("100.0"), Decimal("2")),
    )
    assert consumer.snapshot(10).asks == (Level(Decimal("100.2"), Decimal("0.5")),)
    assert market.book("BTCUSDT").snapshot(10) == consumer.snapshot(10)
    assert consumer.last_update_id == 125

    # step 5: a gap (pu is not the previous u) asks for a new snapshot; the book stays served
    market.receive(_depth(140, 150, 130, bids=[("100.1", "5")]))
    assert _mirror(market, consumer) == []
    assert market.needs_snapshot() == ["BTCUSDT", "ETHUSDT"]
    market.receive(_depth(151, 160, 150, asks=[("100.4", "1")]))
    market.receive_snapshot(
        "BTCUSDT", _snapshot(155, [("100.1", "5")], [("100.2", "0.5"), ("100.4", "2")])
    )
    resync, after = _mirror(market, consumer)
    assert resync.bids == (
        Level(Decimal("100.0"), Decimal(0)),
        Level(Decimal("100.1"), Decimal("5")),
    )
    assert resync.asks == (Level(Decimal("100.4"), Decimal("2")),)
    assert (after.first_update_id, after.final_update_id) == (156, 160)
    assert consumer.snapshot(10) == market.book("BTCUSDT").snapshot(10)
    assert consumer.best_ask() == Level(Decimal("100.2"), Decimal("0.5"))
    assert market.needs_snapshot() == ["ETHUSDT"]


def test_a_snapshot_older_than_every_buffered_diff_is_not_used(symbols: tuple[Symbol, ...]) -> None:
    market = UpstreamMarket(symbols)
    market.receive(_depth(200, 210, 190))
    market.receive_snapshot("BTCUSDT", _snapshot(150, [("1.0", "1")], [("1.1", "1")]))
    assert "BTCUSDT" not in market.needs_snapshot()  # received, not yet folded
    assert market.advance(NOW) == []
    assert "BTCUSDT" in market.needs_snapshot()


def test_ids_keep_growing_when_a_new_upstream_starts_lower(symbols: tuple[Symbol, ...]) -> None:
    market = UpstreamMarket(symbols)
    market.receive_snapshot("BTCUSDT", _snapshot(1000, [("1.0", "1")], [("1.1", "1")]))
    market.receive(_depth(1001, 1005, 1000, bids=[("1.0", "2")]))
    consumer = OrderBook("BTCUSDT")
    _mirror(market, consumer)
    market.connection_lost()
    market.receive(_depth(11, 20, 10, bids=[("0.9", "1")]))
    market.receive_snapshot("BTCUSDT", _snapshot(15, [("1.0", "3")], [("1.1", "1")]))
    updates = _mirror(market, consumer)
    assert [u.final_update_id for u in updates] == [1006, 1011]
    assert consumer.best_bid() == Level(Decimal("1.0"), Decimal("3"))
    assert consumer.snapshot(5) == market.book("BTCUSDT").snapshot(5)


def test_an_aggregate_becomes_its_fills_and_repeats_are_dropped(
    symbols: tuple[Symbol, ...],
) -> None:
    market = UpstreamMarket(symbols)
    market.receive(CAPTURED_AGG_TRADE)
    market.receive(CAPTURED_AGG_TRADE)  # sent again after a reconnect
    market.receive(CAPTURED_TRADE)  # the other kind: not followed
    trades = [u for u in market.advance(NOW) if isinstance(u, Trade)]
    assert [t.trade_id for t in trades] == list(range(7297376181, 7297376208))
    assert sum(t.qty for t in trades) == Decimal("2.695")
    assert {(t.aggregate_id, t.price, t.buyer_is_maker, t.time_ms) for t in trades} == {
        (3100000001, Decimal("68005.00"), True, 1771200000000)
    }


def test_raw_trades_when_asked_and_off_book_prints_skipped(symbols: tuple[Symbol, ...]) -> None:
    market = UpstreamMarket(symbols, trades="trade")
    received = 1785701708200  # after the capture's trade time
    market.receive(CAPTURED_AGG_TRADE)
    market.receive(
        CAPTURED_TRADE.replace('"t":7947574407', '"t":7947574406').replace("MARKET", "ADL")
    )
    market.receive(CAPTURED_TRADE)
    assert market.advance(received) == [
        Trade("BTCUSDT", 7947574407, Decimal("63437.30"), Decimal("0.003"), False, 1785701708156)
    ]
    assert market.streams()["public"][2:] == ["btcusdt@trade", "ethusdt@trade"]
    assert market.streams()["market"] == ["btcusdt@markPrice@1s", "ethusdt@markPrice@1s"]


def test_mark_updates_and_a_settlement_when_the_funding_time_moves_on(
    symbols: tuple[Symbol, ...],
) -> None:
    market = UpstreamMarket(symbols)
    initial = market.mark("BTCUSDT")
    assert (initial.mark_price, initial.funding_rate) == (Decimal(0), Decimal("0.0001"))
    market.receive(CAPTURED_MARK)
    after = (
        CAPTURED_MARK.replace('"E":1771200001000', '"E":1771228801000')
        .replace('"T":1771228800000', '"T":1771257600000')
        .replace('"r":"0.00010000"', '"r":"0.00003000"')
    )
    market.receive(after)
    first, settlement, second = market.advance(1771228801200)
    assert isinstance(first, MarkUpdate)
    assert (first.mark_price, first.next_funding_time_ms, first.time_ms) == (
        Decimal("68004.12345678"),
        1771228800000,
        1771200001000,
    )
    assert settlement == FundingSettlement(
        "BTCUSDT", 1771228800000, Decimal("0.00010000"), Decimal("68004.12345678")
    )
    assert isinstance(second, MarkUpdate)
    assert market.mark("BTCUSDT") == second
    assert second.funding_rate == Decimal("0.00003000")


def test_book_ticker_l1_when_there_is_no_depth_stream(symbols: tuple[Symbol, ...]) -> None:
    market = UpstreamMarket(symbols, depth=False)
    assert market.needs_snapshot() == []
    assert market.streams()["public"] == ["btcusdt@bookTicker", "ethusdt@bookTicker"]
    market.receive(CAPTURED_BOOK_TICKER)
    moved = CAPTURED_BOOK_TICKER.replace('"u":9900000000001', '"u":9900000000007').replace(
        '"b":"68005.00"', '"b":"68004.90"'
    )
    market.receive(moved)
    market.receive(CAPTURED_BOOK_TICKER)  # older than the book: ignored
    consumer = OrderBook("BTCUSDT")
    updates = _mirror(market, consumer)
    assert [u.final_update_id for u in updates] == [9900000000001, 9900000000007]
    assert consumer.snapshot(5).bids == (Level(Decimal("68004.90"), Decimal("3.002")),)
    assert consumer.best_ask() == Level(Decimal("68005.10"), Decimal("0.517"))


def test_times_never_go_backwards_nor_past_now(symbols: tuple[Symbol, ...]) -> None:
    market = UpstreamMarket(symbols)
    market.receive(CAPTURED_MARK)  # stamped 1771200001000: the upstream's clock is ahead
    [mark] = market.advance(1771200000500)
    assert isinstance(mark, MarkUpdate)
    assert mark.time_ms == 1771200000500
    earlier = CAPTURED_MARK.replace('"E":1771200001000', '"E":1771200000200')
    market.receive(earlier)
    market.receive(CAPTURED_AGG_TRADE)  # matched at 1771200000000, sent after the mark
    updates = market.advance(1771200000600)
    assert {u.time_ms for u in updates if isinstance(u, MarkUpdate)} == {1771200000500}
    assert {u.time_ms for u in updates if isinstance(u, Trade)} == {1771200000000}
