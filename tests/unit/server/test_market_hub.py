"""`MarketHub`: a tick's messages reach each connection in publishing order, framed once, in
one call per connection; regrouping follows SUBSCRIBE / UNSUBSCRIBE / close."""

from __future__ import annotations

import json

from userstream.protocol.market import MarketStream, parse_market_stream
from userstream.server.market_hub import MarketHub


class Sink:
    def __init__(self, combined: bool = False) -> None:
        self.combined = combined
        self.calls: list[list[bytes]] = []

    def send_frames(self, frames: list[bytes]) -> None:
        self.calls.append(frames)

    def messages(self) -> list[object]:
        return [json.loads(payload) for call in self.calls for payload in _payloads(call)]


def _payloads(chunks: list[bytes]) -> list[bytes]:
    """The payloads of the whole text frames in `chunks` (short frames: a 2-byte header)."""
    data = b"".join(chunks)
    payloads = []
    while data:
        assert data[0] == 0x81
        assert data[1] < 126
        payloads.append(data[2 : 2 + data[1]])
        data = data[2 + data[1] :]
    return payloads


def _sub(hub: MarketHub, sink: Sink, *names: str) -> None:
    for name in names:
        topic = parse_market_stream(name)
        assert topic is not None
        hub.subscribe(sink, name, topic)


def _topic(name: str) -> MarketStream:
    topic = parse_market_stream(name)
    assert topic is not None
    return topic


def test_one_call_per_connection_in_order_and_shared_bytes() -> None:
    hub = MarketHub()
    a, b, c = Sink(), Sink(), Sink(combined=True)
    for sink in (a, b, c):
        _sub(hub, sink, "btcusdt@aggTrade", "ethusdt@aggTrade")
    hub.publish(_topic("btcusdt@aggTrade"), b'{"n":1}')
    hub.publish(_topic("ethusdt@aggTrade"), b'{"n":2}')
    hub.publish(_topic("btcusdt@aggTrade"), b'{"n":3}')
    hub.publish(_topic("xrpusdt@aggTrade"), b'{"n":4}')  # nobody: dropped
    assert hub.flush() == 9
    assert len(a.calls) == len(b.calls) == len(c.calls) == 1
    # one bytes object for the whole group: no connection copies or joins its own
    assert a.calls[0] == [a.calls[0][0]]
    assert a.calls[0][0] is b.calls[0][0]
    assert a.messages() == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert c.messages() == [
        {"stream": "btcusdt@aggTrade", "data": {"n": 1}},
        {"stream": "ethusdt@aggTrade", "data": {"n": 2}},
        {"stream": "btcusdt@aggTrade", "data": {"n": 3}},
    ]
    assert hub.flush() == 0


def test_regrouping_after_unsubscribe_and_detach() -> None:
    hub = MarketHub()
    a, b = Sink(), Sink()
    _sub(hub, a, "btcusdt@aggTrade", "btcusdt@bookTicker")
    _sub(hub, b, "btcusdt@aggTrade", "btcusdt@bookTicker")
    hub.unsubscribe(a, "btcusdt@bookTicker", _topic("btcusdt@bookTicker"))
    hub.publish(_topic("btcusdt@bookTicker"), b'{"n":1}')
    hub.publish(_topic("btcusdt@aggTrade"), b'{"n":2}')
    hub.flush()
    assert a.messages() == [{"n": 2}]
    assert b.messages() == [{"n": 1}, {"n": 2}]
    hub.detach(b, [_topic("btcusdt@aggTrade"), _topic("btcusdt@bookTicker")])
    assert not hub.active(_topic("btcusdt@bookTicker"))
    hub.publish(_topic("btcusdt@aggTrade"), b'{"n":3}')
    hub.flush()
    assert a.messages() == [{"n": 2}, {"n": 3}]
    assert b.messages() == [{"n": 1}, {"n": 2}]
