"""userstream: Binance USDⓈ-M Futures user data streams, server and client.

The client (`UserDataStream`), the event models (also in `userstream.events`) and
`Publisher` need only the base install. `Server`, `ServerConfig` (with `WeightLimits`) and
`create_account` run the server in this process and need `userstream[server]` (and
`userstream[nats]` for `ServerConfig(bus=...)`, as `Publisher.connect` does); they are
imported on first use, so a client-only program never loads the server's dependencies.
"""

from typing import TYPE_CHECKING, Any

from userstream.accounts import Account
from userstream.bus.publisher import Publisher
from userstream.client.backoff import Backoff
from userstream.client.buffer import Received
from userstream.client.endpoints import Endpoints
from userstream.client.health import ConnectionState, GapReason, StreamGap, StreamHealth
from userstream.client.mirror import AccountMirror
from userstream.client.mirror_views import Change, ChangeKind, MirrorHealth
from userstream.client.policy import Delivery, Keepalive, Reconnect
from userstream.client.stream import UserDataStream
from userstream.clock import Clock, ManualClock, SystemClock
from userstream.events import (
    AccountConfigUpdate,
    AccountUpdate,
    AlgoUpdate,
    ConditionalOrderTriggerReject,
    Event,
    GridUpdate,
    ListenKeyExpired,
    MarginCall,
    OrderTradeUpdate,
    StrategyUpdate,
    TradeLite,
)
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

if TYPE_CHECKING:
    from userstream.server.app import (
        LOG_FORMATS,
        Server,
        ServerConfig,
        WeightLimits,
        configure_logging,
        create_account,
        list_accounts,
    )

_SERVER_NAMES = (
    "LOG_FORMATS",
    "Server",
    "ServerConfig",
    "WeightLimits",
    "configure_logging",
    "create_account",
    "list_accounts",
)


def __getattr__(name: str) -> Any:
    if name in _SERVER_NAMES:
        from userstream.server import app

        return getattr(app, name)
    raise AttributeError(f"module 'userstream' has no attribute {name!r}")


__all__ = [
    "LOG_FORMATS",
    "Account",
    "AccountConfigUpdate",
    "AccountMirror",
    "AccountUpdate",
    "AlgoUpdate",
    "Backoff",
    "BinanceAPIError",
    "Change",
    "ChangeKind",
    "Clock",
    "ConditionalOrderTriggerReject",
    "ConfigurationError",
    "ConnectionState",
    "Delivery",
    "Endpoints",
    "Event",
    "EventValidationError",
    "GapReason",
    "GridUpdate",
    "InvalidAPIKey",
    "Keepalive",
    "ListenKeyExpired",
    "ListenKeyNotFound",
    "ManualClock",
    "MarginCall",
    "MirrorHealth",
    "OrderTradeUpdate",
    "Publisher",
    "RateLimited",
    "Received",
    "Reconnect",
    "ReconnectGaveUp",
    "Server",
    "ServerConfig",
    "StrategyUpdate",
    "StreamGap",
    "StreamHealth",
    "SystemClock",
    "TradeLite",
    "TransportError",
    "UserDataStream",
    "UserStreamError",
    "WeightLimits",
    "configure_logging",
    "create_account",
    "list_accounts",
]
