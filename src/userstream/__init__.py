"""userstream: Binance USDⓈ-M Futures user data streams, server and client."""

from userstream.bus.publisher import Publisher
from userstream.client.backoff import Backoff
from userstream.client.buffer import Received
from userstream.client.endpoints import Endpoints
from userstream.client.health import ConnectionState, GapReason, StreamGap, StreamHealth
from userstream.client.policy import Delivery, Keepalive, Reconnect
from userstream.client.stream import UserDataStream
from userstream.clock import Clock, ManualClock, SystemClock
from userstream.exceptions import (
    BinanceAPIError,
    ConfigurationError,
    EventValidationError,
    InvalidAPIKey,
    ListenKeyNotFound,
    RateLimited,
    ReconnectGaveUp,
    TransportError,
    UserStreamError,
)

__all__ = [
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
