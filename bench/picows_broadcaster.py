"""Baseline: the fastest plain-Python broadcaster on this machine (raw picows).

    python bench/picows_broadcaster.py --payloads FILE [--mode send|coalesce]

Accepts WebSocket connections on any path; the path names the connection's channel (account),
as `/ws/<listenKey>` does on userstream. `--payloads` holds pre-encoded event payloads, one a
line. A text message `burst <n>` on any connection makes it send n payloads (cycling through
the file) to every connection of every channel, so each connection receives n frames:

- `send`: one `WSTransport.send` per frame (picows builds the frame header in C and writes at
  once): the straightforward broadcaster;
- `coalesce`: every payload is framed once, and each connection gets its n frames in one
  `transport.write`: the same trick userstream's outbox plays, with nothing else around it.

"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

import picows
import uvloop


def text_frame(payload: bytes) -> bytes:
    """An unmasked server-to-client text frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class Broadcaster:
    def __init__(self, payloads: list[bytes], coalesce: bool) -> None:
        self.payloads = payloads
        self.frames = [text_frame(payload) for payload in payloads]
        self.coalesce = coalesce
        self.channels: dict[str, set[picows.WSTransport]] = {}

    def burst(self, n: int) -> None:
        clients = [client for channel in self.channels.values() for client in channel]
        count = len(self.payloads)
        if self.coalesce:
            frames = self.frames
            blob = b"".join(frames[i % count] for i in range(n))
            for client in clients:
                client.underlying_transport.write(blob)
            return
        payloads = self.payloads
        for i in range(n):
            payload = payloads[i % count]
            for client in clients:
                client.send(picows.WSMsgType.TEXT, payload)


class Listener(picows.WSListener):
    def __init__(self, hub: Broadcaster, channel: str) -> None:
        self.hub = hub
        self.channel = channel

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.hub.channels.setdefault(self.channel, set()).add(transport)

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.hub.channels.get(self.channel, set()).discard(transport)

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type != picows.WSMsgType.TEXT:
            return
        words = frame.get_payload_as_ascii_text().split()
        if len(words) == 2 and words[0] == "burst":
            self.hub.burst(int(words[1]))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payloads", type=Path, required=True)
    parser.add_argument("--mode", choices=("send", "coalesce"), default="send")
    args = parser.parse_args()
    payloads = [line for line in args.payloads.read_bytes().splitlines() if line]
    hub = Broadcaster(payloads, args.mode == "coalesce")

    def listener(request: picows.WSUpgradeRequest) -> Listener:
        return Listener(hub, request.path.decode() if isinstance(request.path, bytes) else "")

    server = await picows.ws_create_server(listener, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main())
