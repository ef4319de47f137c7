"""userstream: Binance USDⓈ-M Futures user data streams, server and client."""

from userstream.clock import Clock, ManualClock, SystemClock
from userstream.exceptions import (
    BinanceAPIError,
    ConfigurationError,
    EventValidationError,
    InvalidAPIKey,
    ListenKeyNotFound,
    RateLimited,
    UserStreamError,
)

__all__ = [
    "BinanceAPIError",
    "Clock",
    "ConfigurationError",
    "EventValidationError",
    "InvalidAPIKey",
    "ListenKeyNotFound",
    "ManualClock",
    "RateLimited",
    "SystemClock",
    "UserStreamError",
]
