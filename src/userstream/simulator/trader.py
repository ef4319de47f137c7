"""A seeded demo trader: real orders for the venue, so the events are their consequences.

`DemoTrader.decide(view)` looks at the market's best prices and at the account's open orders
and positions, and returns the next venue command: limit orders resting a few ticks from the
touch, small market orders (leaning against the position once it grows), cancels of the
oldest open orders, the odd amend, and leverage changes. It is sans-I/O: it never awaits or
reads a clock, and the same seed and the same views give the same commands. The adapters
that carry its commands to the engine (in process) or to a server (signed REST) and read the
views back live beside it; every event the demo account receives is then something its own
orders caused, and the account's REST snapshots agree with them.

Quantities are the symbol's minimum notional times a small factor, rounded up to the lot
step, so every order passes the filters (trading spec §4.1) and the account's margin lasts.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from userstream.market.types import MarketSource
from userstream.protocol.events import OrderType, Side, TimeInForce
from userstream.protocol.exchange_info import Symbol
from userstream.venue import Engine
from userstream.venue.commands import (
    CancelOrder,
    ChangeLeverage,
    Command,
    ModifyOrder,
    NewOrder,
)
from userstream.venue.rules import SymbolRules

__all__ = [
    "Action",
    "DemoTrader",
    "OpenOrder",
    "Quote",
    "TraderConfig",
    "TraderView",
    "engine_view",
]


class Action(enum.StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    CANCEL = "cancel"
    AMEND = "amend"
    LEVERAGE = "leverage"


@dataclass(frozen=True, slots=True)
class Quote:
    """A symbol's best bid and ask."""

    symbol: str
    bid: Decimal
    ask: Decimal


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """What the trader needs to know about one of its open orders."""

    symbol: str
    order_id: int
    side: Side
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class TraderView:
    """The account and the market as the trader sees them before a decision.

    `open_orders` oldest first; `positions` the signed position size per symbol (one-way
    mode), symbols without a position may be absent."""

    quotes: Sequence[Quote]
    open_orders: Sequence[OpenOrder]
    positions: dict[str, Decimal]


@dataclass(frozen=True, slots=True)
class TraderConfig:
    """The strategy's knobs.

    Attributes:
        weights: relative odds of each action (an impossible one, like a cancel with no
            open order, is skipped and drawn again).
        max_open_per_symbol: more open orders than this on a symbol: cancel instead.
        max_ticks_away: limit orders rest 0..this many ticks behind the touch.
        size_factors: an order's notional is the symbol's minimum times one of these.
        max_position_notional: past this notional, market orders only reduce the position.
        leverages: the leverages a change picks from.
    """

    weights: tuple[tuple[Action, int], ...] = (
        (Action.LIMIT, 45),
        (Action.MARKET, 15),
        (Action.CANCEL, 25),
        (Action.AMEND, 7),
        (Action.LEVERAGE, 8),
    )
    max_open_per_symbol: int = 6
    max_ticks_away: int = 20
    size_factors: tuple[int, ...] = (1, 1, 2, 3)
    max_position_notional: Decimal = Decimal(2_000)
    leverages: tuple[int, ...] = (5, 10, 20, 25)


class DemoTrader:
    """Seeded decisions for one account on `symbols` (exchangeInfo entries).

    Args:
        symbols: what it trades; their filters size and price its orders.
        seed: fixes every choice.
        config: the strategy's knobs.
    """

    def __init__(
        self, symbols: Sequence[Symbol], *, seed: int, config: TraderConfig | None = None
    ) -> None:
        if not symbols:
            raise ValueError("the trader needs at least one symbol")
        self._rules = {s.symbol: SymbolRules.of(s) for s in symbols}
        self._rng = random.Random(seed)
        self._config = config or TraderConfig()
        self._actions = [action for action, _ in self._config.weights]
        self._odds = [weight for _, weight in self._config.weights]
        self._orders = 0

    @property
    def symbols(self) -> list[str]:
        return list(self._rules)

    def decide(self, view: TraderView) -> Command | None:
        """The next command, or None when no quote is usable yet."""
        quotes = [q for q in view.quotes if q.symbol in self._rules and q.bid < q.ask]
        if not quotes:
            return None
        quote = self._rng.choice(quotes)
        mine = [o for o in view.open_orders if o.symbol == quote.symbol]
        while True:
            action = self._rng.choices(self._actions, self._odds)[0]
            if action is Action.LIMIT and len(mine) >= self._config.max_open_per_symbol:
                action = Action.CANCEL
            if action in (Action.CANCEL, Action.AMEND) and not mine:
                continue
            break
        match action:
            case Action.LIMIT:
                return self._limit(quote)
            case Action.MARKET:
                return self._market(quote, view.positions.get(quote.symbol, Decimal(0)))
            case Action.CANCEL:
                return CancelOrder(symbol=quote.symbol, order_id=mine[0].order_id)
            case Action.AMEND:
                return self._amend(quote, self._rng.choice(mine))
            case Action.LEVERAGE:
                leverage = self._rng.choice(self._config.leverages)
                return ChangeLeverage(symbol=quote.symbol, leverage=leverage)

    def _limit(self, quote: Quote) -> NewOrder:
        side = self._rng.choice((Side.BUY, Side.SELL))
        price = self._resting_price(quote, side)
        return NewOrder(
            symbol=quote.symbol,
            side=side,
            order_type=OrderType.LIMIT,
            time_in_force=TimeInForce.GTC,
            quantity=self._size(quote.symbol, price, market=False),
            price=price,
            new_client_order_id=self._client_id(),
        )

    def _market(self, quote: Quote, position: Decimal) -> NewOrder:
        rules = self._rules[quote.symbol]
        price = quote.ask
        if abs(position) * price > self._config.max_position_notional:
            side = Side.SELL if position > 0 else Side.BUY  # lean against the position
        else:
            side = self._rng.choice((Side.BUY, Side.SELL))
        quantity = self._size(quote.symbol, price, market=True)
        return NewOrder(
            symbol=rules.symbol,
            side=side,
            order_type=OrderType.MARKET,
            quantity=quantity,
            new_client_order_id=self._client_id(),
        )

    def _amend(self, quote: Quote, order: OpenOrder) -> ModifyOrder:
        price = self._resting_price(quote, order.side)
        # A new price may need a larger quantity to stay above the minimum notional.
        quantity = max(order.quantity, self._size(quote.symbol, price, market=False, factor=1))
        return ModifyOrder(
            symbol=order.symbol,
            side=order.side,
            order_id=order.order_id,
            quantity=quantity,
            price=price,
        )

    def _resting_price(self, quote: Quote, side: Side) -> Decimal:
        rules = self._rules[quote.symbol]
        ticks = self._rng.randint(0, self._config.max_ticks_away) * rules.tick_size
        price = quote.bid - ticks if side is Side.BUY else quote.ask + ticks
        return max(price, rules.min_price)

    def _size(self, symbol: str, price: Decimal, *, market: bool, factor: int = 0) -> Decimal:
        rules = self._rules[symbol]
        step = rules.market_step_size if market else rules.step_size
        least = rules.market_min_qty if market else rules.min_qty
        factor = factor or self._rng.choice(self._config.size_factors)
        # 10% above the minimum notional: the price a market order fills at may be lower.
        notional = rules.min_notional * Decimal("1.1") * factor
        steps = (notional / price / step).to_integral_value(rounding=ROUND_CEILING)
        return max(steps * step, least)

    def _client_id(self) -> str:
        self._orders += 1
        return f"demo-{self._orders}"


def engine_view(engine: Engine, market: MarketSource, account_id: int) -> TraderView:
    """The view of an account hosted by `engine` in this process, on `market`'s books."""
    quotes = []
    for symbol in market.symbols:
        book = market.book(symbol)
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            quotes.append(Quote(symbol, bid.price, ask.price))
    orders = [
        OpenOrder(o.symbol, o.order_id, Side(o.side), o.price, o.orig_qty - o.executed_qty)
        for o in sorted(engine.open_orders(account_id), key=lambda o: o.order_id)
    ]
    positions = {p.symbol: p.position_amt for p in engine.positions(account_id) if p.position_amt}
    return TraderView(quotes, orders, positions)
