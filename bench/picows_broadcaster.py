"""Baseline: the fastest plain-Python broadcaster on this machine (raw picows).

Accepts WebSocket connections on any path; a text message `burst <n>` on any connection makes
it send the pre-encoded payload read from `--payload` to every connection, n times, one
`transport.send` per frame (picows builds the frame header in C). Prints `ready <port>`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import picows
import uvloop


class Broadcaster:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.clients: set[picows.WSTransport] = set()


class Listener(picows.WSListener):
    def __init__(self, hub: Broadcaster) -> None:
        self.hub = hub

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.hub.clients.add(transport)

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.hub.clients.discard(transport)

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type != picows.WSMsgType.TEXT:
            return
        words = frame.get_payload_as_ascii_text().split()
        if len(words) == 2 and words[0] == "burst":
            payload = self.hub.payload
            clients = list(self.hub.clients)
            for _ in range(int(words[1])):
                for client in clients:
                    client.send(picows.WSMsgType.TEXT, payload)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payload", type=Path, required=True)
    args = parser.parse_args()
    hub = Broadcaster(args.payload.read_bytes())
    server = await picows.ws_create_server(lambda _request: Listener(hub), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main())
