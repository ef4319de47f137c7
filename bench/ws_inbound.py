"""Inbound WebSocket parsing: userstream's `FrameParser` against websockets' sans-I/O
`ServerProtocol` (issue #10 item 4; the findings are in docs/websocket-inbound.md).

    .venv/bin/python -m bench.ws_inbound [--frames 10000] [--repeat 5]

Both parse the same bytes: `--frames` masked client frames of one kind, fed in one buffer and
in 1,460-byte segments (one TCP segment each), best of `--repeat` runs, in µs per frame.
Kinds: a 38-byte `LIST_SUBSCRIPTIONS` text message, an empty ping (which `ServerProtocol`
also answers, so its pong is collected), and a 4,000-byte text message. `ServerProtocol`
starts in the OPEN state (the handshake is not part of the figure) with websockets' C
speed-ups for unmasking.
"""

from __future__ import annotations

import argparse
import os
import struct
import timeit
from collections.abc import Callable

from websockets.protocol import State
from websockets.server import ServerProtocol

from userstream.protocol.wsframes import FrameParser

MAX_MESSAGE = 64 * 1024
SEGMENT = 1460


def client_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    else:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


KINDS = {
    "LIST_SUBSCRIPTIONS text (38 B)": (0x1, b'{"method":"LIST_SUBSCRIPTIONS","id":1}'),
    "empty ping": (0x9, b""),
    "4,000-byte text": (0x1, b'{"x":"' + b"a" * 3992 + b'"}'),
}


def userstream(chunks: list[bytes]) -> Callable[[], int]:
    def run() -> int:
        parser = FrameParser(MAX_MESSAGE)
        return sum(len(parser.feed(chunk)) for chunk in chunks)

    return run


def websockets_protocol(chunks: list[bytes]) -> Callable[[], int]:
    def run() -> int:
        protocol = ServerProtocol(state=State.OPEN, max_size=MAX_MESSAGE)
        received = 0
        for chunk in chunks:
            protocol.receive_data(chunk)
            received += len(protocol.events_received())
            protocol.data_to_send()
        return received

    return run


def per_frame_us(run: Callable[[], int], frames: int, repeat: int) -> float:
    assert run() == frames
    return min(timeit.repeat(run, number=1, repeat=repeat)) / frames * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'frames':34} {'feed':>10} {'FrameParser':>12} {'ServerProtocol':>15} {'ratio':>6}")
    for kind, (opcode, payload) in KINDS.items():
        data = b"".join(client_frame(opcode, payload) for _ in range(args.frames))
        for feed, chunks in (
            ("one buffer", [data]),
            ("segments", [data[i : i + SEGMENT] for i in range(0, len(data), SEGMENT)]),
        ):
            ours = per_frame_us(userstream(chunks), args.frames, args.repeat)
            theirs = per_frame_us(websockets_protocol(chunks), args.frames, args.repeat)
            print(f"{kind:34} {feed:>10} {ours:10.2f}µs {theirs:13.2f}µs {theirs / ours:6.2f}")


if __name__ == "__main__":
    main()
