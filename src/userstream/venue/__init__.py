"""The venue: a sans-I/O account engine trading against a market source.

`Engine.handle(account_id, command, now_ms)` applies a command (`venue.commands`) and
returns an `Outcome`: the answer (a view, or a `VenueError` with Binance's code and message)
and the user-data events it causes. `Engine.on_market(updates, now_ms)` fills resting orders
from the market's trades; `Engine.tick(now_ms)` expires GTD orders and countdowns.
"""

from userstream.venue.commands import (
    CancelAllOrders,
    CancelOrder,
    ChangeLeverage,
    ChangeMarginType,
    Command,
    CountdownCancelAll,
    Deposit,
    ModifyOrder,
    NewOrder,
    ResponseType,
    SetCommission,
    Withdraw,
)
from userstream.venue.engine import DEFAULT_LEVERAGE, Engine
from userstream.venue.state import EngineState
from userstream.venue.views import (
    Ack,
    BalanceView,
    CommissionView,
    CountdownView,
    LeverageView,
    OrderView,
    Outcome,
    PositionView,
    Result,
    SymbolConfigView,
    TradeView,
    VenueError,
)

__all__ = [
    "DEFAULT_LEVERAGE",
    "Ack",
    "BalanceView",
    "CancelAllOrders",
    "CancelOrder",
    "ChangeLeverage",
    "ChangeMarginType",
    "Command",
    "CommissionView",
    "CountdownCancelAll",
    "CountdownView",
    "Deposit",
    "Engine",
    "EngineState",
    "LeverageView",
    "ModifyOrder",
    "NewOrder",
    "OrderView",
    "Outcome",
    "PositionView",
    "ResponseType",
    "Result",
    "SetCommission",
    "SymbolConfigView",
    "TradeView",
    "VenueError",
    "Withdraw",
]
