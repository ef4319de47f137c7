"""Where the client talks to: REST, WebSocket API and stream base URLs (spec §1).

No other host is ever contacted: every URL the client opens is built from these three.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["Endpoints"]

# Routed private form (spec §4.1, §4.2): the legacy `/ws/<key>` forms stopped carrying user
# data on 2026-04-23 (change log), and a socket on an unrouted path is silently public-only.
PRIVATE_WS_PATH = "/private/ws?listenKey={listen_key}"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Base URLs for one venue.

    Attributes:
        rest_url: REST root, e.g. `https://fapi.binance.com` (`/fapi/v1/listenKey` is appended).
        ws_api_url: full WebSocket API URL, e.g. `wss://ws-fapi.binance.com/ws-fapi/v1`.
        stream_url: stream root, e.g. `wss://fstream.binance.com`.
        user_data_path: path and query appended to `stream_url`, with `{listen_key}` in it.
    """

    rest_url: str
    ws_api_url: str
    stream_url: str
    user_data_path: str = PRIVATE_WS_PATH

    @classmethod
    def production(cls) -> Endpoints:
        """Binance USDⓈ-M Futures production (spec §1)."""
        return cls(
            "https://fapi.binance.com",
            "wss://ws-fapi.binance.com/ws-fapi/v1",
            "wss://fstream.binance.com",
        )

    @classmethod
    def testnet(cls) -> Endpoints:
        """Binance USDⓈ-M Futures testnet / demo trading (spec §1, SDK constants)."""
        return cls(
            "https://demo-fapi.binance.com",
            "wss://testnet.binancefuture.com/ws-fapi/v1",
            "wss://fstream.binancefuture.com",
        )

    @classmethod
    def local(cls, host: str = "127.0.0.1", port: int = 8080) -> Endpoints:
        """A `userstream serve` server: plain HTTP and WebSocket on one port."""
        return cls(f"http://{host}:{port}", f"ws://{host}:{port}/ws-fapi/v1", f"ws://{host}:{port}")

    def user_data_url(self, listen_key: str) -> str:
        """The stream URL for `listen_key`: `<stream_url>/private/ws?listenKey=<K>` by default."""
        path = self.user_data_path.format(listen_key=quote(listen_key, safe=""))
        return self.stream_url.rstrip("/") + path
