"""One simulated account: a small paper-trading book that turns actions into events.

Each `act()` call takes one action, chosen at random among those that make sense in the
account's state (a fill needs an open order, funding needs a position), and returns the
events Binance would push for it, every one built through the protocol models:

* LIMIT order placed (NEW), partially or fully filled by the market, or cancelled;
* MARKET order, filled in one to three executions; reduce-only close of a position;
* each fill: TRADE_LITE, ORDER_TRADE_UPDATE (TRADE) and ACCOUNT_UPDATE (`m` = ORDER) with the
  wallet and the position that follow from it (`userstream.simulator.ledger`);
* funding (ACCOUNT_UPDATE `m` = FUNDING_FEE, `a.S` set; cross: only `B`, isolated: `B` plus
  the position, spec §5.2), leverage changes and the Multi-Assets switch
  (ACCOUNT_CONFIG_UPDATE `ac` / `ai`, §5.6), a DEPOSIT when the wallet runs low;
* conditional orders through ALGO_UPDATE (`userstream.simulator.algo`);
* a grid strategy (`userstream.simulator.grid`).

Before the action, every position that has lost `margin_call_loss` of its initial margin at
the current mark gets one MARGIN_CALL (§5.3) until it recovers.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Final

from userstream.protocol.events import (
    AccountConfigUpdate,
    AccountInfoConfig,
    AccountUpdate,
    AccountUpdateData,
    AccountUpdateReason,
    AlgoStatus,
    Event,
    ExecutionType,
    ExpiryReason,
    LeverageConfig,
    MarginCall,
    MarginCallMarginType,
    MarginCallPosition,
    MarginType,
    OrderStatus,
    OrderType,
    PositionSide,
    Side,
    StrategyStatus,
)
from userstream.simulator.algo import REDUCE_ONLY_REJECT, SimAlgo, algo_event, trigger_reject_event
from userstream.simulator.grid import SimGrid, grid_event, strategy_event
from userstream.simulator.ledger import ZERO, Ledger, PositionState, money, trim
from userstream.simulator.market import Instrument
from userstream.simulator.orders import Fill, SimOrder, order_event, trade_lite
from userstream.simulator.venue import Venue

__all__ = ["AccountActivity"]

# STRATEGY_UPDATE opCodes (§5.7).
OP_NEW_GRID_ORDER: Final = 8007
OP_USER_CANCELLED: Final = 8002


class AccountActivity:
    """The book of one account; `act(now_ms)` advances it by one action."""

    def __init__(self, account_id: int, venue: Venue) -> None:
        self.account_id = account_id
        self._venue = venue
        self._rng = venue.rng
        config = venue.config
        self._config = config
        self.ledger = Ledger(asset="USDT", wallet=ZERO, taker_rate=config.taker_rate)
        for symbol, instrument in venue.instruments.items():
            isolated = self._rng.random() < config.isolated_share
            self.ledger.positions[symbol] = PositionState(
                symbol=symbol,
                margin_asset=instrument.margin_asset,
                margin_type=MarginType.ISOLATED if isolated else MarginType.CROSS,
                leverage=self._rng.choice(config.leverages),
            )
        self.open_orders: list[SimOrder] = []
        self.algos: list[SimAlgo] = []
        self.grid: SimGrid | None = None
        self.multi_assets = False
        self._funded = False
        self._actions: tuple[tuple[Callable[[int], list[Event]], Callable[[], bool], float], ...]
        self._actions = (
            (self._place_limit, self._can_place, 18.0),
            (self._fill_open_order, self._has_open_orders, 22.0),
            (self._cancel_open_order, self._has_open_orders, 6.0),
            (self._market_order, _always, 10.0),
            (self._close_position, self._has_position, 3.0),
            (self._funding_fee, self._has_position, 4.0),
            (self._change_leverage, _always, 2.0),
            (self._switch_multi_assets, _always, 0.4),
            (self._place_algo, self._can_place_algo, 4.0),
            (self._progress_algo, self._has_algos, 10.0),
            (self._start_grid, self._no_grid, 1.0),
            (self._grid_fill, self._has_grid, 8.0),
            (self._stop_grid, self._has_grid, 0.5),
        )

    # --- the step

    def act(self, now_ms: int) -> list[Event]:
        """Take one action at `now_ms` (the events' `E` and `T`); return its events."""
        if not self._funded or self.ledger.cross_wallet() < self._low_water():
            self._funded = True
            return [self._deposit(now_ms)]
        events: list[Event] = self._margin_calls(now_ms)
        choices = [(action, weight) for action, ready, weight in self._actions if ready()]
        actions = [action for action, _ in choices]
        (action,) = self._rng.choices(actions, weights=[w for _, w in choices])
        events.extend(action(now_ms))
        return events

    def _low_water(self) -> Decimal:
        return self._config.initial_balance * self._config.top_up_below

    # --- readiness

    def _can_place(self) -> bool:
        return len(self.open_orders) < self._config.max_open_orders

    def _has_open_orders(self) -> bool:
        return bool(self.open_orders)

    def _has_position(self) -> bool:
        return any(p.amount for p in self.ledger.positions.values())

    def _can_place_algo(self) -> bool:
        return len(self.algos) < self._config.max_algos

    def _has_algos(self) -> bool:
        return bool(self.algos)

    def _no_grid(self) -> bool:
        return self.grid is None

    def _has_grid(self) -> bool:
        return self.grid is not None

    # --- helpers

    def _instrument(self, symbol: str) -> Instrument:
        return self._venue.instruments[symbol]

    def _mark(self, symbol: str) -> Decimal:
        return self._venue.marks[symbol]

    def _pick_symbol(self) -> str:
        return self._rng.choice(self._venue.symbols)

    def _notional(self, symbol: str) -> Decimal:
        """What one order is worth: a slice of the wallet, scaled by leverage up to 20x."""
        leverage = min(self.ledger.positions[symbol].leverage, 20)
        share = Decimal(self._rng.randint(10, 80)) / 1000
        return self._config.initial_balance * share * leverage

    def _pick_side(self, symbol: str) -> Side:
        """Random, except that a position worth more than 3x the starting balance is only
        ever reduced."""
        position = self.ledger.positions[symbol]
        exposure = abs(position.amount) * self._mark(symbol)
        if exposure > 3 * self._config.initial_balance:
            return Side.SELL if position.amount > 0 else Side.BUY
        return self._rng.choice((Side.BUY, Side.SELL))

    def _open_notional(self, symbol: str) -> tuple[Decimal, Decimal]:
        bids = asks = ZERO
        for order in self.open_orders:
            if order.symbol == symbol and order.order_type is OrderType.LIMIT:
                if order.side is Side.BUY:
                    bids += order.remaining * order.price
                else:
                    asks += order.remaining * order.price
        return bids, asks

    def _new_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal = ZERO,
        *,
        original_type: OrderType | None = None,
        client_id: str | None = None,
        stop_price: Decimal = ZERO,
        reduce_only: bool = False,
        strategy_id: int = 0,
    ) -> SimOrder:
        return SimOrder(
            order_id=self._venue.order_id(),
            client_id=client_id if client_id is not None else self._venue.client_id(),
            symbol=symbol,
            side=side,
            order_type=order_type,
            quantity=quantity,
            price=price,
            original_type=original_type or order_type,
            margin_asset=self._instrument(symbol).margin_asset,
            stop_price=stop_price,
            reduce_only=reduce_only,
            strategy_id=strategy_id,
        )

    def _place(self, order: SimOrder, now_ms: int) -> list[Event]:
        if order.order_type is OrderType.LIMIT:
            self.open_orders.append(order)
        return [order_event(order, ExecutionType.NEW, now_ms, self._open_notional(order.symbol))]

    def _execute(
        self, order: SimOrder, quantity: Decimal, price: Decimal, maker: bool, now_ms: int
    ) -> list[Event]:
        """One fill of `order`: TRADE_LITE, ORDER_TRADE_UPDATE and ACCOUNT_UPDATE."""
        rate = self._config.maker_rate if maker else self._config.taker_rate
        commission = money(quantity * price * rate)
        realized = self.ledger.fill(order.symbol, order.signed * quantity, price, commission)
        trade_id = self._venue.trade_id(order.symbol)
        fill = Fill(quantity, price, trade_id, commission, realized, maker)
        order.record(fill)
        if order.status is OrderStatus.FILLED and order in self.open_orders:
            self.open_orders.remove(order)
        notional = self._open_notional(order.symbol)
        return [
            trade_lite(order, fill, now_ms),
            order_event(order, ExecutionType.TRADE, now_ms, notional, fill),
            self._account_update(AccountUpdateReason.ORDER, now_ms, order.symbol),
        ]

    def _account_update(
        self,
        reason: AccountUpdateReason,
        now_ms: int,
        symbol: str | None = None,
        change: Decimal = ZERO,
        funding_symbol: str | None = None,
    ) -> AccountUpdate:
        positions = () if symbol is None else (self.ledger.position(symbol, self._mark(symbol)),)
        return AccountUpdate(
            transaction_time=now_ms,
            event_time=now_ms,
            update=AccountUpdateData(
                balances=(self.ledger.balance(change),),
                positions=positions,
                reason=reason,
                funding_symbol=funding_symbol,
            ),
        )

    # --- wallet

    def _deposit(self, now_ms: int) -> Event:
        amount = self._config.initial_balance
        self.ledger.deposit(amount)
        return self._account_update(AccountUpdateReason.DEPOSIT, now_ms, change=amount)

    def _margin_calls(self, now_ms: int) -> list[Event]:
        calls: dict[bool, list[MarginCallPosition]] = {False: [], True: []}
        for symbol, position in self.ledger.positions.items():
            if not position.amount:
                continue
            mark = self._mark(symbol)
            loss = -position.unrealized(mark)
            threshold = position.initial_margin() * self._config.margin_call_loss
            if loss < threshold / 2:
                position.margin_called = False
            if position.margin_called or loss < threshold:
                continue
            position.margin_called = True
            instrument = self._instrument(symbol)
            calls[position.isolated].append(
                MarginCallPosition(
                    symbol=symbol,
                    position_side=PositionSide.BOTH,
                    position_amount=trim(position.amount),
                    margin_type=(
                        MarginCallMarginType.ISOLATED
                        if position.isolated
                        else MarginCallMarginType.CROSSED
                    ),
                    isolated_wallet=money(position.isolated_wallet),
                    mark_price=mark,
                    unrealized_pnl=position.unrealized(mark),
                    maintenance_margin=money(
                        abs(position.amount) * mark * instrument.maint_margin_rate
                    ),
                )
            )
        events: list[Event] = []
        if calls[False]:  # `cw` only for a cross-position margin call (§5.3)
            cross_wallet = money(self.ledger.cross_wallet())
            events.append(
                MarginCall(
                    event_time=now_ms,
                    cross_wallet_balance=cross_wallet,
                    positions=tuple(calls[False]),
                )
            )
        if calls[True]:
            events.append(MarginCall(event_time=now_ms, positions=tuple(calls[True])))
        return events

    def _funding_fee(self, now_ms: int) -> list[Event]:
        symbol = self._rng.choice([s for s, p in self.ledger.positions.items() if p.amount])
        rate = Decimal(self._rng.choice((-1, 1)) * self._rng.randint(10, 300)) / 1_000_000
        amount = self.ledger.funding(symbol, self._mark(symbol), rate)
        isolated = self.ledger.positions[symbol].isolated
        # §5.2: a cross position's funding carries only `B`; an isolated one adds its `P`.
        return [
            self._account_update(
                AccountUpdateReason.FUNDING_FEE,
                now_ms,
                symbol if isolated else None,
                change=amount,
                funding_symbol=symbol,
            )
        ]

    # --- configuration

    def _change_leverage(self, now_ms: int) -> list[Event]:
        symbol = self._pick_symbol()
        position = self.ledger.positions[symbol]
        position.leverage = self._rng.choice(
            [lev for lev in self._config.leverages if lev != position.leverage]
        )
        config = LeverageConfig(symbol=symbol, leverage=position.leverage)
        return [
            AccountConfigUpdate(event_time=now_ms, transaction_time=now_ms, leverage_config=config)
        ]

    def _switch_multi_assets(self, now_ms: int) -> list[Event]:
        self.multi_assets = not self.multi_assets
        config = AccountInfoConfig(multi_assets_mode=self.multi_assets)
        return [
            AccountConfigUpdate(
                event_time=now_ms, transaction_time=now_ms, account_info_config=config
            )
        ]

    # --- orders

    def _place_limit(self, now_ms: int) -> list[Event]:
        symbol = self._pick_symbol()
        instrument = self._instrument(symbol)
        side = self._pick_side(symbol)
        away = Decimal(self._rng.randint(2, 30)) / 10_000
        mark = self._mark(symbol)
        price = instrument.price(mark * (1 - away) if side is Side.BUY else mark * (1 + away))
        quantity = instrument.quantity(self._notional(symbol), price)
        return self._place(self._new_order(symbol, side, OrderType.LIMIT, quantity, price), now_ms)

    def _fill_open_order(self, now_ms: int) -> list[Event]:
        order = self._rng.choice(self.open_orders)
        step = self._instrument(order.symbol).step_size
        steps = int(order.remaining / step)
        if steps > 1 and self._rng.random() < 0.55:
            quantity = self._rng.randint(1, steps - 1) * step
        else:
            quantity = order.remaining
        return self._execute(order, quantity, order.price, True, now_ms)

    def _cancel_open_order(self, now_ms: int) -> list[Event]:
        order = self._rng.choice(self.open_orders)
        self.open_orders.remove(order)
        order.status = OrderStatus.CANCELED
        notional = self._open_notional(order.symbol)
        return [order_event(order, ExecutionType.CANCELED, now_ms, notional)]

    def _market_fills(self, order: SimOrder, now_ms: int) -> list[Event]:
        instrument = self._instrument(order.symbol)
        events: list[Event] = []
        parts = instrument.split(order.quantity, self._rng.randint(1, 3), self._rng)
        for part in parts:
            slip = Decimal(self._rng.randint(0, 5)) / 10_000 * order.signed
            price = instrument.price(self._mark(order.symbol) * (1 + slip))
            events.extend(self._execute(order, part, price, False, now_ms))
        return events

    def _market_order(self, now_ms: int) -> list[Event]:
        symbol = self._pick_symbol()
        side = self._pick_side(symbol)
        instrument = self._instrument(symbol)
        quantity = instrument.quantity(self._notional(symbol), self._mark(symbol))
        order = self._new_order(symbol, side, OrderType.MARKET, quantity)
        return self._place(order, now_ms) + self._market_fills(order, now_ms)

    def _close_position(self, now_ms: int) -> list[Event]:
        held = [p for p in self.ledger.positions.values() if p.amount]
        called = [p for p in held if p.margin_called]
        position = self._rng.choice(called or held)
        side = Side.SELL if position.amount > 0 else Side.BUY
        order = self._new_order(
            position.symbol, side, OrderType.MARKET, abs(position.amount), reduce_only=True
        )
        return self._place(order, now_ms) + self._market_fills(order, now_ms)

    # --- algo orders

    def _place_algo(self, now_ms: int) -> list[Event]:
        symbol = self._pick_symbol()
        instrument = self._instrument(symbol)
        position = self.ledger.positions[symbol]
        order_type = self._rng.choice((OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET))
        mark = self._mark(symbol)
        if position.amount and self._rng.random() < 0.6:
            side = Side.SELL if position.amount > 0 else Side.BUY
            quantity, reduce_only = abs(position.amount), self._rng.random() < 0.7
        else:
            side = self._rng.choice((Side.BUY, Side.SELL))
            quantity = instrument.quantity(self._notional(symbol), mark)
            reduce_only = self._rng.random() < 0.15
        away = Decimal(self._rng.randint(5, 30)) / 10_000
        rising = (side is Side.BUY) == (order_type is OrderType.STOP_MARKET)
        trigger = instrument.price(mark * (1 + away) if rising else mark * (1 - away))
        algo = SimAlgo(
            algo_id=self._venue.algo_id(),
            client_algo_id=self._venue.client_id(),
            symbol=symbol,
            side=side,
            order_type=order_type,
            quantity=quantity,
            trigger_price=trigger,
            reduce_only=reduce_only,
        )
        self.algos.append(algo)
        return [algo_event(algo, now_ms)]

    def _progress_algo(self, now_ms: int) -> list[Event]:
        algo = self.algos[0]
        if algo.status is AlgoStatus.NEW:
            return self._algo_wait(algo, now_ms)
        if algo.status is AlgoStatus.TRIGGERING:
            return self._algo_place_order(algo, now_ms)
        return self._algo_fill(algo, now_ms)

    def _algo_wait(self, algo: SimAlgo, now_ms: int) -> list[Event]:
        if algo.triggered_by(self._mark(algo.symbol)):
            algo.status = AlgoStatus.TRIGGERING
            algo.trigger_time = now_ms
            return [algo_event(algo, now_ms)]
        algo.waited += 1
        if algo.waited < 8:
            return []
        algo.status = AlgoStatus.CANCELED
        self.algos.remove(algo)
        return [algo_event(algo, now_ms)]

    def _algo_place_order(self, algo: SimAlgo, now_ms: int) -> list[Event]:
        position = self.ledger.positions[algo.symbol]
        quantity = algo.quantity
        if algo.reduce_only:
            reduces = position.amount and (position.amount > 0) == (algo.side is Side.SELL)
            if not reduces:
                algo.status = AlgoStatus.REJECTED
                algo.reject_reason = REDUCE_ONLY_REJECT
                self.algos.remove(algo)
                events: list[Event] = [algo_event(algo, now_ms)]
                if self._config.legacy_trigger_reject:
                    events.append(trigger_reject_event(algo, self._venue.order_id(), now_ms))
                return events
            quantity = min(quantity, abs(position.amount))
        algo.order = self._new_order(
            algo.symbol,
            algo.side,
            OrderType.MARKET,
            quantity,
            original_type=algo.order_type,
            client_id=algo.client_algo_id,
            stop_price=algo.trigger_price,
            reduce_only=algo.reduce_only,
        )
        algo.status = AlgoStatus.TRIGGERED
        return [algo_event(algo, now_ms), *self._place(algo.order, now_ms)]

    def _algo_fill(self, algo: SimAlgo, now_ms: int) -> list[Event]:
        assert algo.order is not None
        order = algo.order
        position = self.ledger.positions[algo.symbol]
        reduces = position.amount and (position.amount > 0) == (algo.side is Side.SELL)
        if algo.reduce_only and not (reduces and abs(position.amount) >= order.quantity):
            # The position shrank after the trigger: §5.4 expiry reason 4.
            order.status = OrderStatus.EXPIRED
            algo.status = AlgoStatus.FINISHED
            self.algos.remove(algo)
            notional = self._open_notional(order.symbol)
            expired = order_event(
                order,
                ExecutionType.EXPIRED,
                now_ms,
                notional,
                expiry_reason=ExpiryReason.REDUCE_ONLY_KNOCKED_OUT,
            )
            return [expired, algo_event(algo, now_ms)]
        events = self._market_fills(order, now_ms)
        algo.status = AlgoStatus.FINISHED
        self.algos.remove(algo)
        events.append(algo_event(algo, now_ms))
        return events

    # --- grid strategy

    def _start_grid(self, now_ms: int) -> list[Event]:
        symbol = self._pick_symbol()
        instrument = self._instrument(symbol)
        mark = self._mark(symbol)
        spacing = max(instrument.round_to_tick(mark * Decimal("0.002")), instrument.tick_size)
        share = Decimal(self._rng.randint(15, 40)) / 1000
        quantity = instrument.quantity(self._config.initial_balance * share, mark)
        self.grid = SimGrid(self._venue.strategy_id(), symbol, spacing, quantity)
        return [strategy_event(self.grid, OP_NEW_GRID_ORDER, now_ms)]

    def _grid_fill(self, now_ms: int) -> list[Event]:
        grid = self.grid
        assert grid is not None
        events: list[Event] = []
        if grid.status is StrategyStatus.NEW:
            grid.status = StrategyStatus.WORKING
            events.append(strategy_event(grid, OP_NEW_GRID_ORDER, now_ms))
        instrument = self._instrument(grid.symbol)
        full = len(grid.lots) >= self._config.max_grid_lots
        if grid.lots and (full or self._rng.random() < 0.5):
            side, price = Side.SELL, instrument.price(grid.lots[-1].price + grid.spacing)
        else:
            levels = self._rng.randint(1, 3)
            side = Side.BUY
            price = instrument.price(self._mark(grid.symbol) - levels * grid.spacing)
        grid.orders += 1
        order = self._new_order(
            grid.symbol,
            side,
            OrderType.LIMIT,
            grid.quantity,
            price,
            client_id=f"grid_{grid.strategy_id}_{grid.orders}",
            strategy_id=grid.strategy_id,
        )
        events.extend(self._place(order, now_ms))
        events.extend(self._execute(order, order.quantity, price, True, now_ms))
        commission = money(order.quantity * price * self._config.maker_rate)
        if side is Side.BUY:
            grid.buy(price, commission)
        else:
            grid.sell(price, commission)
        events.append(grid_event(grid, now_ms))
        return events

    def _stop_grid(self, now_ms: int) -> list[Event]:
        grid = self.grid
        assert grid is not None
        grid.status = StrategyStatus.CANCELLED
        self.grid = None
        return [strategy_event(grid, OP_USER_CANCELLED, now_ms)]


def _always() -> bool:
    return True
