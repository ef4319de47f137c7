"""bench.common's counting client: messages counted from frame headers, whatever the reads."""

from __future__ import annotations

import asyncio
import time

import picows
import pytest
from bench.common import (
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_TEXT,
    Counter,
    CountingConnection,
    FrameTally,
    Received,
    close_all,
)


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked server frame with the shortest length encoding (RFC 6455 section 5.2)."""
    first = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        return first + bytes([size]) + payload
    if size < 1 << 16:
        return first + bytes([126]) + size.to_bytes(2) + payload
    return first + bytes([127]) + size.to_bytes(8) + payload


STREAM = b"".join(
    [
        server_frame(OP_TEXT, b'{"e":"ORDER_TRADE_UPDATE"}'),
        server_frame(OP_TEXT, b"x" * 125),
        server_frame(OP_TEXT, b"y" * 126),
        server_frame(OP_PING, b"are you there"),
        server_frame(OP_TEXT, b"z" * 70_000),
        server_frame(OP_TEXT, b"first half ", fin=False),
        server_frame(OP_CONTINUATION, b"second half"),
        server_frame(OP_TEXT, b""),
        server_frame(OP_CLOSE, (1000).to_bytes(2) + b"bye"),
    ]
)
MESSAGES = 6
CONTROLS = [(OP_PING, b"are you there"), (OP_CLOSE, (1000).to_bytes(2) + b"bye")]


def test_one_read_counts_every_message_and_keeps_the_control_frames() -> None:
    tally = FrameTally()
    assert tally.feed(STREAM) == MESSAGES
    assert tally.controls == CONTROLS


@pytest.mark.parametrize("step", [1, 3, 7])
def test_reads_of_a_few_bytes_count_the_same(step: int) -> None:
    tally = FrameTally()
    counted = sum(tally.feed(STREAM[at : at + step]) for at in range(0, len(STREAM), step))
    assert counted == MESSAGES
    assert tally.controls == CONTROLS


def test_a_split_at_any_byte_counts_the_same() -> None:
    head = STREAM[:300]  # every frame kind and length encoding but the 70,000-byte one
    small = head + server_frame(OP_TEXT, b"tail")
    expected = FrameTally().feed(small)
    for cut in range(len(small) + 1):
        for second in range(cut, len(small) + 1):
            tally = FrameTally()
            counted = tally.feed(small[:cut]) + tally.feed(small[cut:second])
            counted += tally.feed(small[second:])
            assert counted == expected, (cut, second)
    for cut in range(len(STREAM) - 70_100, len(STREAM) + 1):
        tally = FrameTally()
        assert tally.feed(STREAM[:cut]) + tally.feed(STREAM[cut:]) == MESSAGES, cut


def test_a_masked_server_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="masked"):
        FrameTally().feed(bytes([0x81, 0x80 | 1]) + b"\x00\x00\x00\x00a")


class Sender(picows.WSListener):
    """Sends `frames` text messages on connect and records the client's close frame."""

    def __init__(self, frames: int, closed: asyncio.Future[picows.WSCloseCode]) -> None:
        self.frames = frames
        self.closed = closed

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        for n in range(self.frames):
            transport.send(picows.WSMsgType.TEXT, b"message %d" % n)

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == picows.WSMsgType.CLOSE and not self.closed.done():
            self.closed.set_result(frame.get_close_code())
            transport.send_close(frame.get_close_code())
            transport.disconnect()


async def test_a_counting_connection_counts_and_closes_with_the_handshake() -> None:
    closed: asyncio.Future[picows.WSCloseCode] = asyncio.get_running_loop().create_future()
    server = await picows.ws_create_server(lambda _request: Sender(500, closed), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    received = Received()
    try:
        connection = await CountingConnection.open(received, f"ws://127.0.0.1:{port}/a0")
        await received.wait_for(500)
        await close_all([connection])
        assert await closed == picows.WSCloseCode.OK
        assert connection.closed.done()
        assert received.count == 500
    finally:
        server.close()


async def test_a_picows_counter_counts_every_message_and_reads_the_sampled_stamps() -> None:
    closed: asyncio.Future[picows.WSCloseCode] = asyncio.get_running_loop().create_future()
    stamp = time.time_ns()
    payloads = [b'{"c":"t%d"}' % stamp] * 400

    class Stamped(Sender):
        def on_ws_connected(self, transport: picows.WSTransport) -> None:
            for payload in payloads:
                transport.send(picows.WSMsgType.TEXT, payload)

    server = await picows.ws_create_server(lambda _request: Stamped(0, closed), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    received = Received()
    received.latencies_ns = []
    try:
        transport, _ = await picows.ws_connect(
            lambda: Counter(received, measures=True, sample_every=4), f"ws://127.0.0.1:{port}/a0"
        )
        await received.wait_for(400)
        transport.disconnect()
        assert received.count == 400
        assert len(received.latencies_ns) == 100
        assert all(latency > 0 for latency in received.latencies_ns)
    finally:
        server.close()
