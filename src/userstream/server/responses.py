"""JSON responses in Binance's shapes, shared by REST, admin and the WebSocket handshake."""

from __future__ import annotations

import msgspec

from userstream.exceptions import BinanceAPIError, RateLimited
from userstream.server.http import Response

_encode = msgspec.json.Encoder().encode


def json_response(
    status: int, body: object, headers: list[tuple[str, str]] | None = None
) -> Response:
    return Response(status, _encode(body), headers or [])


def error_response(
    error: BinanceAPIError, headers: list[tuple[str, str]] | None = None
) -> Response:
    """`{"code": <negative int>, "msg": "..."}` with the error's HTTP status (spec §6.1)."""
    extra = list(headers or [])
    if isinstance(error, RateLimited):
        # Retry-After is documented for spot 429/418 answers; harmless for fapi clients.
        extra.append(("Retry-After", str(max(1, -(-error.retry_after_ms // 1000)))))
    return Response(error.status, _encode(error.to_dict()), extra)
