"""The account engine: commands, market updates and `now` in; results and user-data events
out. No I/O and no clock: the server adapter passes `now_ms` and delivers the events.

Event sequences follow trading spec §5: a resting order sends ORDER_TRADE_UPDATE x=NEW; a
fill sends TRADE_LITE, ORDER_TRADE_UPDATE x=TRADE and ACCOUNT_UPDATE m=ORDER; a cancel
x=CANCELED; an IOC/MARKET remainder x=EXPIRED; a rejected command no event at all (§5.5).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

import msgspec

from userstream.market.types import MarketSource, MarketUpdate, Trade
from userstream.protocol import errors
from userstream.protocol.events import (
    AccountUpdateReason,
    Event,
    ExecutionType,
    ExpiryReason,
    MarginCallMarginType,
    MarginType,
    OrderStatus,
    OrderTradeUpdate,
    OrderType,
    OrderUpdate,
    PositionSide,
    PriceMatch,
    SelfTradePreventionMode,
    Side,
    TimeInForce,
)
from userstream.protocol.exchange_info import Symbol
from userstream.protocol.fold import AccountSnapshot, FoldBalance, FoldOrder, FoldPosition
from userstream.venue import brackets, emit
from userstream.venue.collateral import COLLATERAL_RATES, SETTLEMENT_ASSET, collateral_value
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
from userstream.venue.ledger import (
    AssetFigures,
    OpenOrderSums,
    apply_fill,
    asset_figures,
    available_balance,
    position_figures,
)
from userstream.venue.matching import RestingBook, TakerStep, plan_taker
from userstream.venue.numbers import ZERO, money
from userstream.venue.risk import OrderOrigin, Risk
from userstream.venue.rules import SymbolRules
from userstream.venue.state import (
    AccountState,
    AssetBalance,
    EngineState,
    Order,
    PositionState,
    SymbolState,
    TradeRecord,
)
from userstream.venue.validation import (
    check_band,
    check_filters,
    check_new_order,
    match_price,
)
from userstream.venue.views import (
    Ack,
    BalanceView,
    CommissionView,
    CountdownView,
    LeverageView,
    OrderView,
    Outcome,
    PositionView,
    SymbolConfigView,
    TradeView,
    VenueError,
)

__all__ = ["DEFAULT_LEVERAGE", "Engine"]

DEFAULT_LEVERAGE: Final = 20
_MAX_MODIFY: Final = 10_000
_CANCEL_ALL_MSG: Final = "The operation of cancel all open order is done."
_ID_MASK: Final = 2**88 - 1
# A bit above the id's 88 bits: `hex` then always writes 22 digits after "0x1".
_ID_PAD: Final = 2**88
_ID_MIX: Final = 0x5DEECE66D1B3F5A7  # odd: multiplying by it is a bijection modulo 2**88
_STATE_ENCODER: Final = msgspec.json.Encoder()
_STATE_DECODER: Final = msgspec.json.Decoder(EngineState)


def _generated_client_id(order_id: int) -> str:
    """A 22-character alphanumeric client order id (spec §2.3), unique per order id: the id
    times an odd constant modulo 2**88, in hex."""
    return hex(order_id * _ID_MIX & _ID_MASK | _ID_PAD)[3:]


def _order_id(order: Order) -> int:
    return order.order_id


class Engine:
    """The venue's accounts, trading against one market source.

    Args:
        symbols: The exchangeInfo symbols the venue trades (their filters are the rules).
        market: Where books and marks come from; the caller advances it and passes the
            updates to `on_market`.
        default_leverage: A new account's leverage on every symbol (Binance's is 20).
        state: A state from `export_state` to continue from (ids continue after it).
    """

    def __init__(
        self,
        symbols: Sequence[Symbol],
        market: MarketSource,
        *,
        default_leverage: int = DEFAULT_LEVERAGE,
        state: EngineState | None = None,
    ) -> None:
        self._rules = {s.symbol: SymbolRules.of(s) for s in symbols}
        self._market = market
        self._default_leverage = default_leverage
        self._state = state if state is not None else EngineState()
        # Indexes derived from the state: open orders per account and symbol (placement
        # order), the resting book, GTD orders, countdown deadlines.
        self._open: dict[int, dict[str, dict[int, Order]]] = {}
        # The same open orders summed (margin, open notional), kept with the index.
        self._sums: dict[int, dict[str, OpenOrderSums]] = {}
        self._resting = RestingBook()
        self._gtd: dict[int, tuple[int, Order]] = {}
        self._countdowns: dict[tuple[int, str], int] = {}
        # The newest order per (account, symbol, client order id).
        self._client_ids: dict[tuple[int, str, str], int] = {}
        for account in self._state.accounts.values():
            self._complete(account)
            for order in account.orders.values():
                self._client_ids[(account.account_id, order.symbol, order.client_order_id)] = (
                    order.order_id
                )
                if order.is_open:
                    self._index(account.account_id, order)
            for symbol, settings in account.symbols.items():
                if settings.countdown_deadline:
                    self._countdowns[(account.account_id, symbol)] = settings.countdown_deadline
        # Algo orders, funding, margin calls, liquidation, position modes, income.
        self.risk = Risk(self, symbols, self._state.risk)

    # --- state export / import

    def export_state(self) -> EngineState:
        """The whole state (live objects: encode it before the engine moves on)."""
        return self._state

    def encode_state(self) -> bytes:
        """The state as JSON bytes, for storage; `decode_state` reads them back."""
        return _STATE_ENCODER.encode(self._state)

    @staticmethod
    def decode_state(raw: bytes) -> EngineState:
        return _STATE_DECODER.decode(raw)

    # --- commands

    def handle(self, account_id: int, command: Command, now_ms: int) -> Outcome:
        """Apply `command` for `account_id` at `now_ms`; the account is created on first use."""
        account = self._account(account_id)
        match command:
            case NewOrder():
                return self._new_order(account, command, now_ms)
            case ModifyOrder():
                return self._modify(account, command, now_ms)
            case CancelOrder():
                return self._cancel_one(account, command, now_ms)
            case CancelAllOrders():
                return self._cancel_all(account, command.symbol, now_ms)
            case CountdownCancelAll():
                return self._countdown(account, command, now_ms)
            case ChangeLeverage():
                return self._leverage(account, command, now_ms)
            case ChangeMarginType():
                return self._margin_type(account, command, now_ms)
            case Deposit():
                return self._transfer(account, command.asset, command.amount, now_ms)
            case Withdraw():
                return self._transfer(account, command.asset, -command.amount, now_ms)
            case SetCommission():
                return self._commission(account, command)

    def on_market(self, updates: Sequence[MarketUpdate], now_ms: int) -> dict[int, list[Event]]:
        """Fill resting orders from the market's trades, then expire what `now_ms` ends
        (`tick`). Returns each affected account's events, in order."""
        out: dict[int, list[Event]] = defaultdict(list)
        for update in updates:
            if isinstance(update, Trade):
                self._trade(update, now_ms, out)
            self.risk.on_update(update, now_ms, out)
        self._expire(now_ms, out)
        self.risk.after_market(now_ms, out)
        return dict(out)

    def tick(self, now_ms: int) -> dict[int, list[Event]]:
        """Expire GTD orders and fire countdown cancel-alls due at `now_ms`."""
        out: dict[int, list[Event]] = defaultdict(list)
        self._expire(now_ms, out)
        self.risk.after_market(now_ms, out)
        return dict(out)

    # --- read views

    @property
    def symbols(self) -> Sequence[str]:
        return list(self._rules)

    def accounts(self) -> list[int]:
        return list(self._state.accounts)

    def order(
        self,
        account_id: int,
        symbol: str,
        order_id: int | None = None,
        client_order_id: str | None = None,
    ) -> OrderView | VenueError:
        """`GET /fapi/v1/order`: -2013 when no such order exists."""
        if order_id is None and client_order_id is None:
            return VenueError(errors.MANDATORY_PARAM, errors.ORDER_IDS_BOTH_EMPTY)
        account = self._state.accounts.get(account_id)
        found = self._find(account, symbol, order_id, client_order_id) if account else None
        if found is None:
            return VenueError.of(errors.NO_SUCH_ORDER)
        return OrderView.of(found)

    def open_orders(self, account_id: int, symbol: str | None = None) -> list[OrderView]:
        """Open orders, oldest first (by order id, the same before and after a restore)."""
        by_symbol = self._open.get(account_id, {})
        chosen = [by_symbol.get(symbol, {})] if symbol is not None else by_symbol.values()
        orders = sorted((o for group in chosen for o in group.values()), key=_order_id)
        return [OrderView.of(o) for o in orders]

    def all_orders(self, account_id: int, symbol: str | None = None) -> list[OrderView]:
        account = self._state.accounts.get(account_id)
        if account is None:
            return []
        return [
            OrderView.of(o) for o in account.orders.values() if symbol is None or o.symbol == symbol
        ]

    def trades(self, account_id: int, symbol: str | None = None) -> list[TradeView]:
        account = self._state.accounts.get(account_id)
        if account is None:
            return []
        return [TradeView.of(t) for t in account.trades if symbol is None or t.symbol == symbol]

    def balances(self, account_id: int) -> list[BalanceView]:
        """Every margin asset of the venue's symbols, zero balances included."""
        account = self._account(account_id)
        assets = dict.fromkeys([*account.balances, *(r.margin_asset for r in self._rules.values())])
        return [self._balance_view(self._figures(account, asset)) for asset in assets]

    def positions(self, account_id: int) -> list[PositionView]:
        """One row per symbol and position side, zero rows included."""
        account = self._account(account_id)
        rows: list[PositionView] = []
        for symbol, settings in account.symbols.items():
            rules = self._rules[symbol]
            mark = self._mark(symbol)
            sums = self._sums_on(account.account_id, symbol)
            bids, asks = sums.bids, sums.asks
            order_margin = self._order_margin(account, symbol, sums) if sums.count else ZERO
            for position in settings.positions.values():
                figures = position_figures(symbol, position, mark, settings.leverage)
                isolated = settings.margin_type is MarginType.ISOLATED
                rows.append(
                    PositionView(
                        symbol=symbol,
                        position_side=position.position_side,
                        position_amt=position.amount,
                        entry_price=position.entry_price,
                        breakeven_price=position.breakeven_price,
                        mark_price=mark,
                        unrealized_pnl=figures.unrealized_pnl,
                        notional=figures.notional,
                        leverage=settings.leverage,
                        margin_type=settings.margin_type,
                        isolated_wallet=position.isolated_wallet,
                        isolated_margin=(
                            position.isolated_wallet + figures.unrealized_pnl if isolated else ZERO
                        ),
                        initial_margin=figures.initial_margin + order_margin,
                        maint_margin=figures.maint_margin,
                        open_order_initial_margin=order_margin,
                        bid_notional=money(bids),
                        ask_notional=money(asks),
                        max_notional=brackets.max_notional(symbol, settings.leverage),
                        margin_asset=rules.margin_asset,
                        update_time=position.update_time,
                        position_initial_margin=figures.initial_margin,
                    )
                )
        return rows

    def symbol_config(self, account_id: int) -> list[SymbolConfigView]:
        account = self._account(account_id)
        return [
            SymbolConfigView(
                symbol=symbol,
                margin_type=(
                    MarginCallMarginType.ISOLATED
                    if settings.margin_type is MarginType.ISOLATED
                    else MarginCallMarginType.CROSSED
                ),
                leverage=settings.leverage,
                max_notional_value=brackets.max_notional(symbol, settings.leverage),
            )
            for symbol, settings in account.symbols.items()
        ]

    def commission(self, account_id: int) -> CommissionView:
        account = self._account(account_id)
        return CommissionView(account.maker_rate, account.taker_rate)

    def collateral(self, account_id: int) -> Decimal:
        """The USDT value the account's other assets add to its cross margin (0 in
        single-asset mode)."""
        return self._collateral(self._account(account_id), SETTLEMENT_ASSET)

    def account_flags(self, account_id: int) -> tuple[bool, bool]:
        """(dualSidePosition, multiAssetsMargin)."""
        account = self._account(account_id)
        return account.dual_side_position, account.multi_assets_margin

    def snapshot(self, account_id: int) -> AccountSnapshot:
        """The account as `protocol.fold` describes it: folding the account's events from
        an earlier snapshot gives exactly this."""
        account = self._account(account_id)
        balances = {}
        for asset, balance in account.balances.items():
            figures = self._figures(account, asset)
            balances[asset] = FoldBalance(
                asset=asset,
                wallet_balance=balance.wallet_balance,
                cross_wallet_balance=figures.cross_wallet_balance,
            )
        positions = {}
        for symbol, settings in account.symbols.items():
            for side, p in settings.positions.items():
                if p.amount:
                    positions[(symbol, side)] = FoldPosition(
                        symbol=symbol,
                        position_side=side,
                        position_amount=p.amount,
                        entry_price=p.entry_price,
                        breakeven_price=p.breakeven_price,
                        accumulated_realized=p.accumulated_realized,
                        margin_type=settings.margin_type,
                        isolated_wallet=p.isolated_wallet,
                    )
        open_orders = {
            o.order_id: FoldOrder(
                order_id=o.order_id,
                symbol=o.symbol,
                client_order_id=o.client_order_id,
                side=o.side,
                position_side=o.position_side,
                order_type=o.order_type,
                time_in_force=o.time_in_force,
                original_quantity=o.quantity,
                price=o.price,
                average_price=o.average_price,
                filled_quantity=o.executed_qty,
                status=o.status,
                reduce_only=o.reduce_only,
                price_match=o.price_match,
                self_trade_prevention_mode=o.self_trade_prevention_mode,
                good_till_date=o.good_till_date,
                update_time=o.update_time,
            )
            for orders in self._open.get(account_id, {}).values()
            for o in orders.values()
        }
        return AccountSnapshot(
            balances=balances,
            positions=positions,
            open_orders=open_orders,
            leverages={s: st.leverage for s, st in account.symbols.items()},
            margin_types={s: str(st.margin_type) for s, st in account.symbols.items()},
            multi_assets_margin=account.multi_assets_margin,
            dual_side_position=account.dual_side_position,
        )

    # --- accounts and indexes

    def _account(self, account_id: int) -> AccountState:
        account = self._state.accounts.get(account_id)
        if account is None:
            account = self._state.accounts[account_id] = AccountState(account_id=account_id)
            self._complete(account)
        return account

    def _complete(self, account: AccountState) -> None:
        """Give `account` a settings row and a one-way position for every traded symbol."""
        for symbol in self._rules:
            settings = account.symbols.get(symbol)
            if settings is None:
                settings = account.symbols[symbol] = SymbolState(leverage=self._default_leverage)
            if not settings.positions:
                settings.positions[PositionSide.BOTH] = PositionState(
                    symbol=symbol, position_side=PositionSide.BOTH
                )

    def _open_on(self, account_id: int, symbol: str) -> dict[int, Order]:
        try:  # the common case, several times per order: both levels exist
            return self._open[account_id][symbol]
        except KeyError:
            pass
        by_symbol = self._open.setdefault(account_id, {})
        orders = by_symbol.get(symbol)
        if orders is None:
            orders = by_symbol[symbol] = {}
        return orders

    def _sums_on(self, account_id: int, symbol: str) -> OpenOrderSums:
        try:
            return self._sums[account_id][symbol]
        except KeyError:
            pass
        by_symbol = self._sums.setdefault(account_id, {})
        sums = by_symbol.get(symbol)
        if sums is None:
            sums = by_symbol[symbol] = OpenOrderSums()
        return sums

    def _index(self, account_id: int, order: Order) -> None:
        orders = self._open_on(account_id, order.symbol)
        sums = self._sums_on(account_id, order.symbol)
        counted = orders.get(order.order_id)
        if counted is not None:  # indexed again: its old share out first
            sums.remove(counted)
        orders[order.order_id] = order
        sums.add(order)
        if order.order_type is OrderType.LIMIT:
            self._resting.add(account_id, order)
        if order.good_till_date:
            self._gtd[order.order_id] = (account_id, order)

    def _unindex(self, account_id: int, order: Order) -> None:
        counted = self._open_on(account_id, order.symbol).pop(order.order_id, None)
        if counted is not None:
            self._sums_on(account_id, order.symbol).remove(counted)
        if order.order_type is OrderType.LIMIT:
            self._resting.remove(order)
        self._gtd.pop(order.order_id, None)

    def _find(
        self,
        account: AccountState,
        symbol: str,
        order_id: int | None,
        client_order_id: str | None,
    ) -> Order | None:
        """The order by id (which wins) or by client id (the newest order carrying it)."""
        if order_id is not None:
            order = account.orders.get(order_id)
            return order if order is not None and order.symbol == symbol else None
        assert client_order_id is not None
        found = self._client_ids.get((account.account_id, symbol, client_order_id))
        return account.orders[found] if found is not None else None

    def _client_id_open(self, account: AccountState, symbol: str, client_order_id: str) -> bool:
        """Whether an open order of the account on `symbol` carries `client_order_id`: the
        newest order carrying it is open. No older one can be, since a new order is refused
        an id an open order carries (-4116), and final orders never reopen."""
        found = self._client_ids.get((account.account_id, symbol, client_order_id))
        return found is not None and account.orders[found].is_open

    def _next_priority(self) -> int:
        priority = self._state.next_priority
        self._state.next_priority += 1
        return priority

    # --- market figures

    def _mark(self, symbol: str) -> Decimal:
        return self._market.mark(symbol).mark_price

    def _figures(
        self, account: AccountState, asset: str, extra: Order | None = None
    ) -> AssetFigures:
        return asset_figures(
            account,
            asset,
            self._rules,
            lambda symbol: self._open_on(account.account_id, symbol).values(),
            self._mark,
            (extra.symbol, extra) if extra is not None else None,
            self._collateral(account, asset),
        )

    def _available(self, account: AccountState, asset: str) -> Decimal:
        """`_figures(account, asset).available_balance`, computed alone."""
        return available_balance(
            account,
            asset,
            self._rules,
            self._sums.get(account.account_id, {}),
            self._mark,
            self._collateral(account, asset),
        )

    def _collateral(self, account: AccountState, asset: str) -> Decimal:
        """What the account's other assets add to `asset`'s cross margin: their haircut
        value in multi-assets mode (venue.collateral), nothing in single-asset mode."""
        if not account.multi_assets_margin or asset != SETTLEMENT_ASSET:
            return ZERO
        return collateral_value(account.balances.values(), self._index_price)

    def _backs_positions(self, account: AccountState, asset: str, amount: Decimal) -> bool:
        """Whether withdrawing `amount` of a collateral asset would take more value than the
        settlement asset has available (the collateral backs its margin)."""
        if not account.multi_assets_margin or asset not in COLLATERAL_RATES:
            return False
        taken = collateral_value(
            [AssetBalance(asset=asset, wallet_balance=amount)], self._index_price
        )
        return taken > self._figures(account, SETTLEMENT_ASSET).available_balance

    def _index_price(self, symbol: str) -> Decimal | None:
        return self._mark(symbol) if symbol in self._rules else None

    def _order_margin(
        self,
        account: AccountState,
        symbol: str,
        sums: OpenOrderSums,
        extra: tuple[Side, Decimal, Decimal] | None = None,
    ) -> Decimal:
        settings = account.symbols[symbol]
        amount = ZERO  # a loop, not `sum` over a generator: this runs for every order
        for position in settings.positions.values():
            amount += position.amount
        return money(sums.margin(amount, settings.leverage, extra))

    def _balance_view(self, f: AssetFigures) -> BalanceView:
        return BalanceView(
            asset=f.asset,
            wallet_balance=f.wallet_balance,
            cross_wallet_balance=f.cross_wallet_balance,
            unrealized_pnl=f.unrealized_pnl,
            cross_unrealized_pnl=f.cross_unrealized_pnl,
            margin_balance=f.margin_balance,
            initial_margin=f.initial_margin,
            position_initial_margin=f.position_initial_margin,
            open_order_initial_margin=f.open_order_initial_margin,
            maint_margin=f.maint_margin,
            available_balance=f.available_balance,
            max_withdraw_amount=f.max_withdraw_amount,
            update_time=f.update_time,
        )

    def _position(self, account: AccountState, order: Order) -> PositionState:
        """The position `order` trades, created on first use (hedge mode's LONG/SHORT)."""
        positions = account.symbols[order.symbol].positions
        position = positions.get(order.position_side)
        if position is None:
            position = positions[order.position_side] = PositionState(
                symbol=order.symbol, position_side=order.position_side
            )
        return position

    def _notional(self, account: AccountState, symbol: str) -> tuple[Decimal, Decimal]:
        sums = self._sums_on(account.account_id, symbol)
        return sums.bids, sums.asks

    # --- new orders

    def _new_order(
        self,
        account: AccountState,
        command: NewOrder,
        now_ms: int,
        origin: OrderOrigin | None = None,
    ) -> Outcome:
        rules = self._rules.get(command.symbol)
        book = self._market.book(command.symbol) if rules is not None else None
        settings = account.symbols.get(command.symbol)
        position_side = command.position_side or PositionSide.BOTH
        position = settings.positions.get(position_side) if settings else None
        accepted = check_new_order(
            command,
            rules,
            dual_side_position=account.dual_side_position,
            open_orders=self._open_on(account.account_id, command.symbol).values() if rules else (),
            client_id_open=lambda client_order_id: self._client_id_open(
                account, command.symbol, client_order_id
            ),
            position_amount=position.amount if position else ZERO,
            book=book,
            mark=self._mark(command.symbol) if rules else ZERO,
            now_ms=now_ms,
        )
        if isinstance(accepted, VenueError):
            return Outcome(accepted)
        assert settings is not None
        if position is None:  # a hedge-mode side's first order
            position = settings.positions[position_side] = PositionState(
                symbol=command.symbol, position_side=position_side
            )
        order = Order(  # positionally, in the field order (see `Order`)
            0,  # order_id
            accepted.client_order_id or "",  # client_order_id
            command.symbol,  # symbol
            accepted.side,  # side
            accepted.position_side,  # position_side
            accepted.order_type,  # order_type
            accepted.time_in_force,  # time_in_force
            accepted.quantity,  # quantity
            accepted.price,  # price
            accepted.reduce_only,  # reduce_only
            accepted.price_match,  # price_match
            accepted.self_trade_prevention_mode,  # self_trade_prevention_mode
            accepted.good_till_date,  # good_till_date
            now_ms,  # time
            now_ms,  # update_time
        )
        if origin is not None:
            origin.stamp(order)
        # Row 18: margin.
        error = self._check_margin(account, order, accepted.reference_price, position)
        if error is not None:
            return Outcome(error)
        plan = self._plan(account, order)
        # Row 19: a post-only order that would take is rejected, without an event.
        if order.time_in_force is TimeInForce.GTX and plan:
            return Outcome(VenueError.of(errors.GTX_ORDER_REJECT))
        # Row 20: a fill-or-kill order must fill completely now.
        if order.time_in_force is TimeInForce.FOK:
            fillable = sum((s.qty for s in plan), ZERO)
            if fillable < self._cap(account, order):
                return Outcome(VenueError.of(errors.FOK_ORDER_REJECT))
        order.order_id = self._state.next_order_id
        self._state.next_order_id += 1
        if not order.client_order_id:
            order.client_order_id = _generated_client_id(order.order_id)
        if order.order_type is OrderType.LIMIT:
            order.priority = self._next_priority()
        account.orders[order.order_id] = order
        self._client_ids[(account.account_id, order.symbol, order.client_order_id)] = order.order_id
        # A MARKET order never rests: it fills or expires before this returns. Its share of
        # the open notional (`b`/`a`) is 0 at price 0, so only a reduce-only one, which the
        # knock-out of its own fills counts (§5.6), needs to be among the open orders.
        if order.order_type is not OrderType.MARKET or order.reduce_only:
            self._index(account.account_id, order)
        new = self._order_event(account, order, ExecutionType.NEW, now_ms)
        events: list[Event] = [new]
        # ACK answers with the order as accepted: its view is taken before it trades.
        ack = OrderView.of(order) if command.response_type is not ResponseType.RESULT else None
        events += self._take(account, order, plan, now_ms, new.order)
        if ack is not None:
            return Outcome(ack, events)
        # The order's last event reports it as it is now: its average price is taken from
        # there rather than divided and rounded again.
        for event in reversed(events):
            if type(event) is OrderTradeUpdate and event.order.order_id == order.order_id:
                return Outcome(OrderView.of(order, event.order.average_price), events)
        return Outcome(OrderView.of(order), events)

    def _check_margin(
        self, account: AccountState, order: Order, reference: Decimal, position: PositionState
    ) -> VenueError | None:
        """Row 18: the initial margin the order adds (plus a taker's fee) must fit in the
        available balance, and the position it can open must fit the leverage's bracket."""
        if order.reduce_only:
            return None
        rules = self._rules[order.symbol]
        settings = account.symbols[order.symbol]
        signed = order.quantity if order.side is Side.BUY else -order.quantity
        after = abs(position.amount + signed)
        if after > abs(position.amount) and after * reference > brackets.max_notional(
            order.symbol, settings.leverage
        ):
            return VenueError.of(errors.MAX_LEVERAGE_RATIO)
        # The order counted as one more open order of its whole quantity at `reference`.
        sums = self._sums_on(account.account_id, order.symbol)
        need = self._order_margin(
            account, order.symbol, sums, (order.side, order.quantity, reference)
        )
        if sums.count:  # with none open, what is already charged is 0
            need -= self._order_margin(account, order.symbol, sums)
        if order.order_type is OrderType.MARKET and need > 0:
            need += order.quantity * reference * account.taker_rate
        if need > 0 and need > self._available(account, rules.margin_asset):
            return VenueError.of(errors.MARGIN_NOT_SUFFICIENT)
        return None

    def _cap(self, account: AccountState, order: Order) -> Decimal:
        """How much of `order` may fill now: its remainder, or for a reduce-only order no
        more than the position it reduces."""
        if not order.reduce_only:
            return order.remaining
        amount = self._position(account, order).amount
        reducible = amount if order.side is Side.SELL else -amount
        return max(min(order.remaining, reducible), ZERO)

    def _plan(self, account: AccountState, order: Order) -> list[TakerStep]:
        """The liquidity `order` would take now (empty when it does not cross)."""
        rules = self._rules[order.symbol]
        if order.order_type is OrderType.MARKET:
            # A MARKET order walks no further than the PERCENT_PRICE band around the mark.
            mark = self._mark(order.symbol)
            if order.side is Side.BUY:
                limit = mark * rules.multiplier_up if rules.multiplier_up else None
            else:
                limit = mark * rules.multiplier_down if rules.multiplier_down else None
        else:
            limit = order.price
        # The account's open orders on the symbol: `plan_taker` meets those on the other
        # side only, so `order` itself (when indexed) is never among them.
        own = self._open_on(account.account_id, order.symbol).values()
        book = self._market.book(order.symbol)
        return plan_taker(book, order.side, self._cap(account, order), limit, own)

    def _take(
        self,
        account: AccountState,
        order: Order,
        plan: list[TakerStep],
        now_ms: int,
        earlier: OrderUpdate | None = None,
    ) -> list[Event]:
        """Execute `order` as taker along `plan`, then expire or rest what is left.
        `earlier` is the order's NEW `o` when it was just placed: its events copy it."""
        events: list[Event] = []
        stp = order.self_trade_prevention_mode
        if order.time_in_force in (TimeInForce.FOK, TimeInForce.GTX):
            stp = SelfTradePreventionMode.NONE  # STP applies to IOC/GTC/GTD only (§4.3)
        ioc = order.order_type is OrderType.MARKET or order.time_in_force is TimeInForce.IOC
        for step in plan:
            cap = self._cap(account, order)
            if cap <= 0 or not order.is_open:
                break
            own = step.own
            if own is None:
                events += self._fill(
                    account, order, min(step.qty, cap), step.price, False, now_ms, earlier
                )
                continue
            if not own.is_open:
                continue
            if stp is SelfTradePreventionMode.NONE:
                qty = min(own.remaining, cap)
                events += self._fill(account, order, qty, own.price, False, now_ms, earlier)
                events += self._fill(account, own, qty, own.price, True, now_ms)
                continue
            if stp in (SelfTradePreventionMode.EXPIRE_MAKER, SelfTradePreventionMode.EXPIRE_BOTH):
                events += self._end(
                    account,
                    own,
                    OrderStatus.EXPIRED_IN_MATCH,
                    ExpiryReason.SELF_TRADE_PREVENTION,
                    now_ms,
                )
            if stp in (SelfTradePreventionMode.EXPIRE_TAKER, SelfTradePreventionMode.EXPIRE_BOTH):
                reason = (
                    ExpiryReason.IOC_NOT_FILLED_STP if ioc else ExpiryReason.SELF_TRADE_PREVENTION
                )
                events += self._end(
                    account, order, OrderStatus.EXPIRED_IN_MATCH, reason, now_ms, earlier
                )
                break
        if not order.is_open:
            return events
        if ioc or order.time_in_force is TimeInForce.FOK:
            reason = (
                ExpiryReason.MARKET_NOT_FILLED
                if order.order_type is OrderType.MARKET
                else ExpiryReason.IOC_NOT_FILLED
            )
            events += self._end(account, order, OrderStatus.EXPIRED, reason, now_ms, earlier)
        return events

    # --- fills

    def _fill(
        self,
        account: AccountState,
        order: Order,
        qty: Decimal,
        price: Decimal,
        maker: bool,
        now_ms: int,
        earlier: OrderUpdate | None = None,
    ) -> list[Event]:
        """One execution of `order`: TRADE_LITE, ORDER_TRADE_UPDATE x=TRADE and
        ACCOUNT_UPDATE m=ORDER, then any reduce-only orders it knocks out (spec §5.6)."""
        rules = self._rules[order.symbol]
        settings = account.symbols[order.symbol]
        position = self._position(account, order)
        isolated = settings.margin_type is MarginType.ISOLATED
        quote = qty * price
        commission = money(quote * (account.maker_rate if maker else account.taker_rate))
        signed = qty if order.side is Side.BUY else -qty
        realized = apply_fill(
            position,
            signed,
            price,
            leverage=settings.leverage,
            isolated=isolated,
            taker_rate=account.taker_rate,
        )
        position.update_time = now_ms
        balance = self._balance(account, rules.margin_asset)
        balance.wallet_balance += realized - commission
        balance.update_time = now_ms
        # The fill shrinks the order's remaining quantity, and its share of the sums with it.
        if self._open_on(account.account_id, order.symbol).get(order.order_id) is order:
            self._sums_on(account.account_id, order.symbol).fill(order, qty)
        order.executed_qty += qty
        order.cum_quote += quote
        order.update_time = now_ms
        order.status = OrderStatus.FILLED if not order.remaining else OrderStatus.PARTIALLY_FILLED
        if not order.is_open:
            self._unindex(account.account_id, order)
        trade = TradeRecord(  # positionally, in the field order
            self._state.next_trade_id,  # trade_id
            order.order_id,  # order_id
            order.symbol,  # symbol
            order.side,  # side
            order.position_side,  # position_side
            price,  # price
            qty,  # qty
            quote,  # quote_qty
            realized,  # realized_pnl
            commission,  # commission
            rules.margin_asset,  # commission_asset
            maker,  # maker
            now_ms,  # time
        )
        self._state.next_trade_id += 1
        account.trades.append(trade)
        events: list[Event] = [
            emit.trade_lite(order, trade, rules.price_precision, rules.quantity_precision),
            self._order_event(account, order, ExecutionType.TRADE, now_ms, trade, None, earlier),
            emit.account_update(
                AccountUpdateReason.ORDER,
                now_ms,
                (
                    emit.balance_entry(
                        rules.margin_asset,
                        balance.wallet_balance,
                        self._cross_wallet(account, rules.margin_asset),
                        ZERO,
                    ),
                ),
                (
                    emit.position_entry(
                        position, settings.margin_type, self._mark(order.symbol), rules.margin_asset
                    ),
                ),
            ),
        ]
        events += self._knock_out(account, order, now_ms)
        return events

    def _knock_out(self, account: AccountState, filled: Order, now_ms: int) -> list[Event]:
        """Resting reduce-only orders beyond what the position covers expire (x=EXPIRED,
        er=4; spec §5.6): oldest first, an order is kept while the position is not yet
        covered by the older ones (its excess is trimmed when it fills, `_cap`)."""
        if not self._sums_on(account.account_id, filled.symbol).reduce_only:
            return []  # the common case: no reduce-only order open on the symbol
        reduce_only = [
            o
            for o in self._open_on(account.account_id, filled.symbol).values()
            if o.reduce_only and o.position_side == filled.position_side
        ]
        if not reduce_only:  # the common case: nothing to knock out
            return []
        events: list[Event] = []
        amount = self._position(account, filled).amount
        covered = ZERO
        for order in reduce_only:
            reduces = (amount > 0 and order.side is Side.SELL) or (
                amount < 0 and order.side is Side.BUY
            )
            if reduces and covered < abs(amount):
                covered += order.remaining
                continue
            events += self._end(
                account, order, OrderStatus.EXPIRED, ExpiryReason.REDUCE_ONLY_KNOCKED_OUT, now_ms
            )
        return events

    def _cross_wallet(self, account: AccountState, asset: str) -> Decimal:
        """The wallet of `asset` minus the isolated wallets margined in it."""
        balance = account.balances.get(asset)
        cross = balance.wallet_balance if balance else ZERO
        for symbol, settings in account.symbols.items():
            if settings.margin_type is MarginType.ISOLATED and (
                self._rules[symbol].margin_asset == asset
            ):
                cross -= sum((p.isolated_wallet for p in settings.positions.values()), ZERO)
        return cross

    def _balance(self, account: AccountState, asset: str) -> AssetBalance:
        balance = account.balances.get(asset)
        if balance is None:
            balance = account.balances[asset] = AssetBalance(asset=asset)
        return balance

    def _order_event(
        self,
        account: AccountState,
        order: Order,
        execution: ExecutionType,
        now_ms: int,
        fill: TradeRecord | None = None,
        modify_id: str | None = None,
        earlier: OrderUpdate | None = None,
    ) -> OrderTradeUpdate:
        return emit.order_update(
            order,
            execution,
            now_ms,
            self._notional(account, order.symbol),
            self._rules[order.symbol].margin_asset,
            fill,
            modify_id,
            earlier,
        )

    def _end(
        self,
        account: AccountState,
        order: Order,
        status: OrderStatus,
        reason: ExpiryReason,
        now_ms: int,
        earlier: OrderUpdate | None = None,
    ) -> list[Event]:
        """Take `order` off the book as CANCELED, EXPIRED or EXPIRED_IN_MATCH."""
        order.status = status
        order.update_time = now_ms
        if status is not OrderStatus.CANCELED:
            order.expiry_reason = reason
        self._unindex(account.account_id, order)
        execution = (
            ExecutionType.CANCELED if status is OrderStatus.CANCELED else ExecutionType.EXPIRED
        )
        return [self._order_event(account, order, execution, now_ms, None, None, earlier)]

    # --- market trades and timers

    def _trade(self, trade: Trade, now_ms: int, out: dict[int, list[Event]]) -> None:
        left = trade.qty
        for account_id, order in self._resting.filled_by_trade(
            trade.symbol, trade.buyer_is_maker, trade.price
        ):
            if left <= 0:
                break
            if not order.is_open:
                continue
            account = self._state.accounts[account_id]
            qty = min(self._cap(account, order), left)
            if qty <= 0:
                continue
            out[account_id] += self._fill(account, order, qty, order.price, True, now_ms)
            left -= qty

    def _expire(self, now_ms: int, out: dict[int, list[Event]]) -> None:
        due = sorted(
            (order.good_till_date, order.order_id, account_id)
            for account_id, order in self._gtd.values()
            if order.good_till_date <= now_ms
        )
        for _, order_id, account_id in due:
            account = self._state.accounts[account_id]
            out[account_id] += self._end(
                account, account.orders[order_id], OrderStatus.EXPIRED, ExpiryReason.NONE, now_ms
            )
        fired = sorted(
            (deadline, account_id, symbol)
            for (account_id, symbol), deadline in self._countdowns.items()
            if deadline <= now_ms
        )
        for _, account_id, symbol in fired:
            del self._countdowns[(account_id, symbol)]
            account = self._state.accounts[account_id]
            account.symbols[symbol].countdown_deadline = 0
            out[account_id] += self._cancel_symbol(account, symbol, now_ms)

    # --- cancel and modify

    def _cancel_symbol(self, account: AccountState, symbol: str, now_ms: int) -> list[Event]:
        events: list[Event] = []
        for order in list(self._open_on(account.account_id, symbol).values()):
            events += self._end(account, order, OrderStatus.CANCELED, ExpiryReason.NONE, now_ms)
        return events

    def _cancel_one(self, account: AccountState, command: CancelOrder, now_ms: int) -> Outcome:
        if command.symbol not in self._rules:
            return Outcome(VenueError.of(errors.BAD_SYMBOL))
        if command.order_id is None and command.orig_client_order_id is None:
            return Outcome(VenueError(errors.MANDATORY_PARAM, errors.ORDER_IDS_BOTH_EMPTY))
        order = self._find(account, command.symbol, command.order_id, command.orig_client_order_id)
        if order is None or not order.is_open:
            return Outcome(VenueError.of(errors.CANCEL_REJECTED))
        events = self._end(account, order, OrderStatus.CANCELED, ExpiryReason.NONE, now_ms)
        return Outcome(OrderView.of(order), events)

    def _cancel_all(self, account: AccountState, symbol: str, now_ms: int) -> Outcome:
        if symbol not in self._rules:
            return Outcome(VenueError.of(errors.BAD_SYMBOL))
        return Outcome(Ack(200, _CANCEL_ALL_MSG), self._cancel_symbol(account, symbol, now_ms))

    def _countdown(
        self, account: AccountState, command: CountdownCancelAll, now_ms: int
    ) -> Outcome:
        if command.symbol not in self._rules:
            return Outcome(VenueError.of(errors.BAD_SYMBOL))
        if command.countdown_ms < 0:
            return Outcome(VenueError.of(errors.INVALID_PARAMETER, "countdownTime"))
        deadline = now_ms + command.countdown_ms if command.countdown_ms else 0
        account.symbols[command.symbol].countdown_deadline = deadline
        key = (account.account_id, command.symbol)
        if deadline:
            self._countdowns[key] = deadline
        else:
            self._countdowns.pop(key, None)
        return Outcome(CountdownView(command.symbol, command.countdown_ms))

    def _modify(self, account: AccountState, command: ModifyOrder, now_ms: int) -> Outcome:
        """`PUT /fapi/v1/order` (spec §2.5, §5.3)."""
        rules = self._rules.get(command.symbol)
        if rules is None:
            return Outcome(VenueError.of(errors.BAD_SYMBOL))
        if command.order_id is None and command.orig_client_order_id is None:
            return Outcome(VenueError(errors.MANDATORY_PARAM, errors.ORDER_IDS_BOTH_EMPTY))
        if command.quantity is None:
            return Outcome(VenueError.of(errors.MANDATORY_PARAM, "quantity"))
        match = command.price_match or PriceMatch.NONE
        matching = match is not PriceMatch.NONE
        if command.price is None and not matching:
            return Outcome(VenueError.of(errors.MANDATORY_PARAM, "price"))
        if command.price is not None and matching:
            return Outcome(VenueError.of(errors.PARAM_NOT_REQUIRED, "price"))
        order = self._find(account, command.symbol, command.order_id, command.orig_client_order_id)
        if order is None or not order.is_open:
            return Outcome(VenueError.of(errors.NO_SUCH_ORDER))
        if order.modify_count >= _MAX_MODIFY:
            return Outcome(VenueError.of(errors.EXCEED_MAXIMUM_MODIFY_ORDER_LIMIT))
        book = self._market.book(command.symbol)
        if matching:
            resolved = match_price(book, order.side, match)
            if isinstance(resolved, VenueError):
                return Outcome(resolved)
            price = resolved
        else:
            assert command.price is not None
            price = command.price
        quantity = command.quantity
        error = check_filters(rules, price, quantity, market=False) or check_band(
            rules, order.side, price, self._mark(order.symbol)
        )
        if error is not None:
            return Outcome(error)
        if not order.reduce_only and quantity * price < rules.min_notional:
            return Outcome(VenueError.of(errors.MODIFICATION_MIN_NOTIONAL, rules.min_notional_text))
        if price == order.price and quantity == order.quantity:
            return Outcome(VenueError.of(errors.SAME_ORDER))
        # An amend to no more than what already filled cancels the order (spec §2.5).
        if quantity <= order.executed_qty:
            cancelled = self._end(account, order, OrderStatus.CANCELED, ExpiryReason.NONE, now_ms)
            return Outcome(OrderView.of(order), cancelled)
        old_price, old_quantity = order.price, order.quantity
        self._unindex(account.account_id, order)
        order.price, order.quantity = price, quantity
        if order.time_in_force is TimeInForce.GTX and self._plan(account, order):
            order.price, order.quantity = old_price, old_quantity
            self._index(account.account_id, order)
            cancelled = self._end(account, order, OrderStatus.CANCELED, ExpiryReason.NONE, now_ms)
            return Outcome(OrderView.of(order), cancelled)
        order.price, order.quantity = old_price, old_quantity
        margin = self._amend_margin(account, order, price, quantity)
        if margin is not None:
            self._index(account.account_id, order)
            return Outcome(margin)
        if price != old_price:
            order.priority = self._next_priority()
        order.price, order.quantity = price, quantity
        # The amend's own priceMatch (or none, with an explicit price) is the order's now.
        order.price_match = match
        order.modify_count += 1
        order.update_time = now_ms
        self._index(account.account_id, order)
        events: list[Event] = [
            self._order_event(
                account, order, ExecutionType.AMENDMENT, now_ms, modify_id=command.modify_id
            )
        ]
        plan = self._plan(account, order)
        if plan:
            events += self._take(account, order, plan, now_ms)
        return Outcome(OrderView.of(order), events)

    def _amend_margin(
        self, account: AccountState, order: Order, price: Decimal, quantity: Decimal
    ) -> VenueError | None:
        """An amend must not need more margin than is available (row 18 for the change);
        `order` is out of the indexes while this runs."""
        if order.reduce_only:
            return None
        asset = self._rules[order.symbol].margin_asset
        before = self._figures(account, asset, order)
        amended = msgspec.structs.replace(order, price=price, quantity=quantity)
        after = self._figures(account, asset, amended)
        need = after.open_order_initial_margin - before.open_order_initial_margin
        if need > 0 and need > before.available_balance:
            return VenueError.of(errors.MARGIN_NOT_SUFFICIENT)
        return None

    # --- settings and transfers

    def _leverage(self, account: AccountState, command: ChangeLeverage, now_ms: int) -> Outcome:
        symbol = command.symbol
        if symbol not in self._rules:
            return Outcome(VenueError.of(errors.BAD_SYMBOL))
        top = brackets.brackets(symbol)[0].initial_leverage
        if not 1 <= command.leverage <= top:
            return Outcome(VenueError.of(errors.INVALID_LEVERAGE, command.leverage))
        settings = account.symbols[symbol]
        cap = brackets.max_notional(symbol, command.leverage)
        mark = self._mark(symbol)
        if any(abs(p.amount) * mark > cap for p in settings.positions.values()):
            return Outcome(VenueError.of(errors.MAX_LEVERAGE_RATIO))
        settings.leverage = command.leverage
        return Outcome(
            LeverageView(symbol, command.leverage, cap),
            [emit.leverage_update(symbol, command.leverage, now_ms)],
        )

    def _margin_type(
        self, account: AccountState, command: ChangeMarginType, now_ms: int
    ) -> Outcome:
        symbol = command.symbol
        rules = self._rules.get(symbol)
        if rules is None:
            return Outcome(VenueError.of(errors.BAD_SYMBOL))
        settings = account.symbols[symbol]
        target = (
            MarginType.ISOLATED
            if command.margin_type == MarginCallMarginType.ISOLATED
            else MarginType.CROSS
        )
        if settings.margin_type is target:
            return Outcome(VenueError.of(errors.NO_NEED_TO_CHANGE_MARGIN_TYPE))
        if target is MarginType.ISOLATED and account.multi_assets_margin:
            return Outcome(VenueError.of(errors.JOINT_MARGIN_REJECT_WITH_ISOLATED))
        if self._open_on(account.account_id, symbol):
            return Outcome(VenueError.of(errors.THERE_EXISTS_OPEN_ORDERS))
        if any(p.amount for p in settings.positions.values()):
            return Outcome(VenueError.of(errors.THERE_EXISTS_QUANTITY))
        settings.margin_type = target
        mark = self._mark(symbol)
        # spec §5.8: m=MARGIN_TYPE_CHANGE with no balance and the symbol's (zero) position.
        rows = tuple(
            emit.position_entry(p, target, mark, rules.margin_asset)
            for p in settings.positions.values()
        )
        event = emit.account_update(AccountUpdateReason.MARGIN_TYPE_CHANGE, now_ms, (), rows)
        return Outcome(Ack(200, "success"), [event])

    def _transfer(self, account: AccountState, asset: str, amount: Decimal, now_ms: int) -> Outcome:
        """A deposit (`amount` > 0) or withdrawal (< 0): ACCOUNT_UPDATE m=DEPOSIT/WITHDRAW
        with `bc` the signed amount and `P` empty (spec §5.2)."""
        margin_assets = {r.margin_asset for r in self._rules.values()}
        if asset not in margin_assets and asset not in COLLATERAL_RATES:
            return Outcome(VenueError.of(errors.INVALID_PARAMETER, "asset"))
        if not amount:
            return Outcome(VenueError.of(errors.INVALID_PARAMETER, "amount"))
        if amount < 0 and -amount > self._figures(account, asset).max_withdraw_amount:
            return Outcome(VenueError.of(errors.BALANCE_NOT_SUFFICIENT))
        if amount < 0 and self._backs_positions(account, asset, -amount):
            return Outcome(VenueError.of(errors.BALANCE_NOT_SUFFICIENT))
        balance = self._balance(account, asset)
        balance.wallet_balance += amount
        balance.update_time = now_ms
        self.risk.record_transfer(account.account_id, asset, amount, now_ms)
        figures = self._figures(account, asset)
        reason = AccountUpdateReason.DEPOSIT if amount > 0 else AccountUpdateReason.WITHDRAW
        event = emit.account_update(
            reason,
            now_ms,
            (
                emit.balance_entry(
                    asset, balance.wallet_balance, figures.cross_wallet_balance, amount
                ),
            ),
        )
        return Outcome(self._balance_view(figures), [event])

    def _commission(self, account: AccountState, command: SetCommission) -> Outcome:
        for name, rate in (
            ("makerCommissionRate", command.maker_rate),
            ("takerCommissionRate", command.taker_rate),
        ):
            if not -1 < rate < 1:
                return Outcome(VenueError.of(errors.INVALID_PARAMETER, name))
        account.maker_rate = command.maker_rate
        account.taker_rate = command.taker_rate
        return Outcome(CommissionView(command.maker_rate, command.taker_rate))
