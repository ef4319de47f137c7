"""The public API is what `userstream.__all__` lists (DESIGN.md rule 4)."""

from __future__ import annotations

import userstream

EXPECTED = [
    "Backoff",
    "BinanceAPIError",
    "Clock",
    "ConfigurationError",
    "ConnectionState",
    "Delivery",
    "Endpoints",
    "EventValidationError",
    "GapReason",
    "InvalidAPIKey",
    "Keepalive",
    "ListenKeyNotFound",
    "ManualClock",
    "Publisher",
    "RateLimited",
    "Received",
    "Reconnect",
    "ReconnectGaveUp",
    "StreamGap",
    "StreamHealth",
    "SystemClock",
    "TransportError",
    "UserDataStream",
    "UserStreamError",
]


def test_all_is_pinned() -> None:
    assert userstream.__all__ == EXPECTED


def test_every_exported_name_exists_and_is_public() -> None:
    for name in userstream.__all__:
        member = getattr(userstream, name)
        assert not name.startswith("_")
        assert getattr(member, "__module__", "userstream").startswith("userstream")
