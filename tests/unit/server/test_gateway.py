"""The stream gateway: who gets which event, in which envelope, encoded once."""

from __future__ import annotations

import json

from userstream.protocol import wsframes
from userstream.protocol.codec import EncodedEvent, make_listen_key_expired
from userstream.protocol.routes import parse_stream_name
from userstream.server.gateway import StreamGateway

KEY = "k" * 64
OTHER = "o" * 64
ORDER = EncodedEvent("ORDER_TRADE_UPDATE", b'{"e":"ORDER_TRADE_UPDATE","E":1}')
ACCOUNT = EncodedEvent("ACCOUNT_UPDATE", b'{"e":"ACCOUNT_UPDATE","E":2}')


class Recorder:
    """A subscriber that keeps the frames it was handed (as the payloads they carry)."""

    def __init__(self, combined: bool = False) -> None:
        self.combined = combined
        self.chunks: list[bytes] = []
        self.calls = 0

    def send_frames(self, frames: list[bytes]) -> None:
        self.calls += 1
        self.chunks += frames

    def payloads(self) -> list[bytes]:
        data, out = b"".join(self.chunks), []
        while data:
            assert data[0] == 0x81
            length, start = data[1], 2
            if length == 126:
                length, start = int.from_bytes(data[2:4], "big"), 4
            out.append(data[start : start + length])
            data = data[start + length :]
        return out


class Watcher:
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def key_watched(self, listen_key: str) -> None:
        self.log.append(("watched", listen_key))

    def key_unwatched(self, listen_key: str) -> None:
        self.log.append(("unwatched", listen_key))


def test_bare_subscribers_get_every_event_as_is_in_one_call() -> None:
    gateway = StreamGateway()
    a, b = Recorder(), Recorder()
    gateway.subscribe(a, parse_stream_name(KEY))
    gateway.subscribe(b, parse_stream_name(KEY))
    assert gateway.deliver(KEY, [ORDER, ACCOUNT]) == 4
    assert a.payloads() == b.payloads() == [ORDER.raw, ACCOUNT.raw]
    assert (a.calls, b.calls) == (1, 1)
    assert a.chunks == b.chunks
    assert gateway.delivered == 4


def test_event_filter_and_combined_envelope() -> None:
    gateway = StreamGateway()
    orders = Recorder(combined=True)
    gateway.subscribe(orders, parse_stream_name(f"{KEY}@ORDER_TRADE_UPDATE"))
    assert gateway.deliver(KEY, [ORDER, ACCOUNT]) == 1
    [payload] = orders.payloads()
    assert json.loads(payload) == {
        "stream": f"{KEY}@ORDER_TRADE_UPDATE",
        "data": json.loads(ORDER.raw),
    }


def test_combined_bare_subscription_names_the_key() -> None:
    gateway = StreamGateway()
    both = Recorder(combined=True)
    gateway.subscribe(both, parse_stream_name(KEY))
    gateway.deliver(KEY, [ACCOUNT])
    assert json.loads(both.payloads()[0])["stream"] == KEY


def test_frames_are_built_once_for_every_subscriber() -> None:
    gateway = StreamGateway()
    subscribers = [Recorder() for _ in range(3)]
    for subscriber in subscribers:
        gateway.subscribe(subscriber, parse_stream_name(f"{KEY}@ACCOUNT_UPDATE"))
    gateway.deliver(KEY, [ORDER, ACCOUNT])
    frames = [subscriber.chunks[0] for subscriber in subscribers]
    assert frames[0] == wsframes.text_frame(ACCOUNT.raw)
    assert all(frame is frames[0] for frame in frames)


def test_models_are_encoded_for_delivery() -> None:
    gateway = StreamGateway()
    a = Recorder()
    gateway.subscribe(a, parse_stream_name(KEY))
    gateway.deliver(KEY, [make_listen_key_expired(KEY, 5)])
    assert json.loads(a.payloads()[0]) == {"e": "listenKeyExpired", "E": 5, "listenKey": KEY}


def test_other_keys_and_unknown_keys_get_nothing() -> None:
    gateway = StreamGateway()
    a = Recorder()
    gateway.subscribe(a, parse_stream_name(OTHER))
    assert gateway.deliver(KEY, [ORDER]) == 0
    assert a.calls == 0


def test_unsubscribe_keeps_other_items_and_forgets_the_key_after_the_last() -> None:
    watcher = Watcher()
    gateway = StreamGateway(watcher)
    a = Recorder()
    bare, orders = parse_stream_name(KEY), parse_stream_name(f"{KEY}@ORDER_TRADE_UPDATE")
    gateway.subscribe(a, bare)
    gateway.subscribe(a, orders)
    gateway.unsubscribe(a, bare)
    assert gateway.deliver(KEY, [ORDER, ACCOUNT]) == 1
    gateway.unsubscribe(a, parse_stream_name(OTHER))  # not subscribed: nothing happens
    gateway.unsubscribe(a, orders)
    assert gateway.subscribers(KEY) == []
    assert watcher.log == [("watched", KEY), ("unwatched", KEY)]


def test_detach_removes_a_subscriber_from_every_key() -> None:
    watcher = Watcher()
    gateway = StreamGateway(watcher)
    a, b = Recorder(), Recorder()
    streams = [parse_stream_name(KEY), parse_stream_name(f"{OTHER}@ACCOUNT_UPDATE")]
    for stream in streams:
        gateway.subscribe(a, stream)
    gateway.subscribe(b, streams[0])
    gateway.detach(a, streams)
    assert gateway.subscribers(KEY) == [b]
    assert gateway.subscribers(OTHER) == []
    assert watcher.log == [("watched", KEY), ("watched", OTHER), ("unwatched", OTHER)]
    gateway.detach(b, streams)
    assert watcher.log[-1] == ("unwatched", KEY)


def test_the_audience_counts_the_connections_deliver_hands_an_event() -> None:
    gateway = StreamGateway()
    bare, orders, accounts, both = Recorder(), Recorder(), Recorder(combined=True), Recorder()
    gateway.subscribe(bare, parse_stream_name(KEY))
    gateway.subscribe(orders, parse_stream_name(f"{KEY}@ORDER_TRADE_UPDATE"))
    gateway.subscribe(accounts, parse_stream_name(f"{KEY}@ACCOUNT_UPDATE"))
    gateway.subscribe(both, parse_stream_name(KEY))
    gateway.subscribe(both, parse_stream_name(f"{KEY}@ORDER_TRADE_UPDATE"))
    assert gateway.audience(KEY, [ORDER]) == 3
    assert gateway.audience(KEY, [ACCOUNT]) == 3
    assert gateway.audience(KEY, [ORDER, ACCOUNT, ORDER]) == 4
    assert gateway.audience(KEY, []) == 0
    assert gateway.audience(OTHER, [ORDER]) == 0
    for events in ([ORDER], [ACCOUNT], [ORDER, ACCOUNT]):
        before = [r.calls for r in (bare, orders, accounts, both)]
        gateway.deliver(KEY, events)
        after = [r.calls for r in (bare, orders, accounts, both)]
        assert sum(a > b for a, b in zip(after, before, strict=True)) == gateway.audience(
            KEY, events
        )
