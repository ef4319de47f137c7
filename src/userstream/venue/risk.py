"""The derivatives-risk side of the engine: conditional (algo) orders, funding, margin calls and
liquidation, position and multi-assets modes, income history. Sans-I/O, like the engine it
belongs to (`Engine.risk`); the engine calls `on_update` for every market update and
`after_market` after each batch, and the adapters call the command methods.

Event sequences (trading spec §5.7–§5.10):

* Algo order: `ALGO_UPDATE NEW`; at trigger `TRIGGERING`, `TRIGGERED` (`ai`, `act`), the
  child order's ORDER_TRADE_UPDATEs (`ot` = the conditional type, `sp` = trigger price) and
  its fills, then `FINISHED` once the child is final. A refused child: `REJECTED` with `rm`
  and CONDITIONAL_ORDER_TRIGGER_REJECT; a `closePosition` order with nothing to close:
  `EXPIRED`. A resting STOP/TAKE_PROFIT child that ends later is reported FINISHED at the end
  of the market batch or `tick` that ended it.
* Funding (`FundingSettlement`): per open position one ACCOUNT_UPDATE `m=FUNDING_FEE`
  (`venue.funding`), an income row `FUNDING_FEE`.
* Margin (`venue.margin`), after each market batch with the latest marks: per scope (the
  cross positions of one margin asset, or one isolated position) MARGIN_CALL once the ratio
  reaches 80 %, and liquidation once margin balance ≤ maintenance: the scope's open orders
  expire (`er=5`), each position is closed by a forced order (`autoclose-<time><id>`,
  `o`=`ot`=LIQUIDATION, IOC, x=CALCULATED, X=FILLED, no TRADE_LITE) at the bankruptcy price
  net of the symbol's `liquidationFee`, which is charged as the order's commission; then
  ACCOUNT_UPDATE m=ORDER with the position at 0. The market side's book takes what its
  levels at or better than the bankruptcy price itself (before the fee) hold
  (`OrderBook.walk`, no market impact); the rest is
  auto-deleveraged (`venue.adl`): the other accounts' opposite positions that close in profit
  at that price, highest LeveragePnL first, lose their open orders on the symbol (x=CANCELED)
  and are closed by an `adl_autoclose-<time><id>` order (o=ot=LIQUIDATION, IOC,
  x=CALCULATED, X=FILLED, no fee) at that bankruptcy price, then ACCOUNT_UPDATE m=ORDER. What
  neither takes is the insurance fund's. In multi-assets mode the scope's margin includes the
  collateral value, and a USDT wallet the close leaves negative is refilled by auto-exchange
  (ACCOUNT_UPDATE m=AUTO_EXCHANGE, income AUTO_EXCHANGE, `venue.collateral`). A cross wallet
  still negative is cleared by the insurance fund (ACCOUNT_UPDATE m=INSURANCE_CLEAR, income
  INSURANCE_CLEAR). The forced orders are queued for the `@forceOrder` market stream
  (`drain_force_orders`).
* Position mode (`POST /fapi/v1/positionSide/dual`): refused with -4059 when unchanged,
  -4067 with open orders (algo orders included), -4068 with a position; no event.
  Multi-assets mode (`POST /fapi/v1/multiAssetsMargin`): -4171 unchanged, -4168 with an
  isolated symbol, else ACCOUNT_CONFIG_UPDATE `ai`; collateral: `venue.collateral`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Final, TypeAlias

from userstream.exceptions import BinanceAPIError
from userstream.market.types import FundingSettlement, MarketUpdate, MarkUpdate, Trade
from userstream.market.types import Side as MarketSide
from userstream.protocol.events import (
    AccountConfigUpdate,
    AccountInfoConfig,
    AccountUpdateReason,
    AlgoStatus,
    Event,
    ExecutionType,
    ExpiryReason,
    MarginCall,
    MarginCallMarginType,
    MarginCallPosition,
    MarginType,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    PriceMatch,
    SelfTradePreventionMode,
    Side,
    TimeInForce,
    WorkingType,
)
from userstream.protocol.exchange_info import Symbol
from userstream.venue import adl, brackets, emit
from userstream.venue.algo import (
    AlgoBook,
    AlgoRecord,
    CancelAlgoOrder,
    NewAlgoOrder,
    trigger_reject,
)
from userstream.venue.collateral import auto_exchange
from userstream.venue.commands import NewOrder, ResponseType
from userstream.venue.funding import funding_account_update, funding_income
from userstream.venue.ledger import PositionFigures, apply_fill, position_figures
from userstream.venue.margin import (
    MARGIN_CALL_RATIO,
    Leg,
    RiskLevel,
    bankruptcy_price,
    liquidation_price,
    risk_level,
    round_price_for_user,
)
from userstream.venue.numbers import ZERO, money
from userstream.venue.risk_state import IncomeRecord, RiskState
from userstream.venue.state import AccountState, Order, PositionState, TradeRecord
from userstream.venue.views import Ack, OrderView, VenueError

if TYPE_CHECKING:
    from userstream.venue.engine import Engine

__all__ = ["ForceOrder", "OrderOrigin", "Risk", "RiskOutcome"]

_REDUCE_ONLY_REJECT: Final = "Reduce Only reject"  # the doc example's ALGO_UPDATE `rm`
_DAY_MS: Final = 86_400_000
_DERIVED_TRAN_IDS: Final = 10**12  # income rows made from fills: 10**12 + 2 × trade id (+1)
_MONEY: Final = Decimal("0.00000001")
ONE: Final = Decimal(1)


@dataclass(frozen=True, slots=True)
class OrderOrigin:
    """What an order placed by a triggered algo order carries on its events."""

    original_type: str
    stop_price: Decimal
    working_type: str
    close_position: bool
    price_protect: bool
    activation_price: Decimal | None = None
    callback_rate: Decimal | None = None

    def stamp(self, order: Order) -> None:
        order.original_type = self.original_type
        order.stop_price = self.stop_price
        order.working_type = self.working_type
        order.close_position = self.close_position
        order.price_protect = self.price_protect
        order.activation_price = self.activation_price
        order.callback_rate = self.callback_rate


@dataclass(frozen=True, slots=True)
class ForceOrder:
    """A liquidation as the `@forceOrder` market stream reports it (market-data spec §2.2)."""

    symbol: str
    side: str
    order_type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal
    average_price: Decimal
    status: str
    last_filled_quantity: Decimal
    filled_accumulated_quantity: Decimal
    trade_time: int


RiskResult: TypeAlias = AlgoRecord | Ack | VenueError


@dataclass(frozen=True, slots=True)
class RiskOutcome:
    """A risk command's answer (or error) and the account's events, in order."""

    result: RiskResult
    events: Sequence[Event] = ()


def _venue_error(exc: BinanceAPIError) -> VenueError:
    return VenueError(exc.code, exc.msg)


class Risk:
    """Owned by an `Engine`; reaches into its state and helpers, which it extends."""

    def __init__(self, engine: Engine, symbols: Sequence[Symbol], state: RiskState) -> None:
        self._engine = engine
        self._state = state
        self._algo = AlgoBook(state.algo)
        self._liquidation_fee = {s.symbol: Decimal(s.liquidation_fee) for s in symbols}
        self._trigger_protect = {s.symbol: Decimal(s.trigger_protect) for s in symbols}
        self._last: dict[str, Decimal] = {}
        self._children: dict[int, int] = {
            record.actual_order_id: record.algo_id
            for record in state.algo.orders.values()
            if record.status == AlgoStatus.TRIGGERED
        }
        self._force_orders: list[ForceOrder] = []
        # Set when fills or funding moved balances after the last margin check.
        self._unchecked = False
        self._called = set(state.margin_called)
        # MARGIN_CALL from this margin ratio (Binance publishes none; venue.margin).
        self.margin_call_ratio = MARGIN_CALL_RATIO

    # --- algo orders (POST/DELETE/GET /fapi/v1/algoOrder and the lists)

    def new_algo_order(self, account_id: int, cmd: NewAlgoOrder, now_ms: int) -> RiskOutcome:
        engine = self._engine
        if cmd.symbol not in engine._rules:
            return RiskOutcome(VenueError(-1121, "Invalid symbol."))
        account = engine._account(account_id)
        working = self._working_price(cmd.symbol, cmd.working_type or WorkingType.CONTRACT_PRICE)
        try:
            record, event = self._algo.place(
                account_id,
                cmd,
                now_ms=now_ms,
                working_price=working,
                hedge_mode=account.dual_side_position,
                client_id=format(
                    self._state.algo.next_algo_id * 0x9E3779B97F4A7C15 % 2**88, "022x"
                ),
            )
        except BinanceAPIError as exc:
            return RiskOutcome(_venue_error(exc))
        return RiskOutcome(record, [event])

    def cancel_algo_order(self, account_id: int, cmd: CancelAlgoOrder, now_ms: int) -> RiskOutcome:
        try:
            event = self._algo.cancel(account_id, cmd, now_ms)
        except BinanceAPIError as exc:
            return RiskOutcome(_venue_error(exc))
        return RiskOutcome(self._algo.get(account_id, event.order.algo_id, None), [event])

    def cancel_all_algo_orders(self, account_id: int, symbol: str, now_ms: int) -> RiskOutcome:
        events = self._algo.cancel_all(account_id, symbol, now_ms)
        return RiskOutcome(Ack(200, "success"), events)

    def algo_order(
        self, account_id: int, algo_id: int | None, client_algo_id: str | None
    ) -> AlgoRecord | VenueError:
        try:
            return self._algo.get(account_id, algo_id, client_algo_id)
        except BinanceAPIError as exc:
            return _venue_error(exc)

    def open_algo_orders(self, account_id: int, symbol: str | None = None) -> list[AlgoRecord]:
        return self._algo.open_orders(account_id, symbol)

    def all_algo_orders(self, account_id: int, symbol: str | None = None) -> list[AlgoRecord]:
        return list(self._algo.orders_of(account_id, symbol))

    @property
    def algo_book(self) -> AlgoBook:
        return self._algo

    # --- modes

    def set_position_mode(self, account_id: int, dual: bool, now_ms: int) -> RiskOutcome:
        """`POST /fapi/v1/positionSide/dual` (spec §4.4, §5.8)."""
        engine = self._engine
        account = engine._account(account_id)
        if account.dual_side_position == dual:
            return RiskOutcome(VenueError(-4059, "No need to change position side."))
        if any(engine._open.get(account_id, {}).values()) or self._algo.open_orders(account_id):
            return RiskOutcome(
                VenueError(-4067, "Position side cannot be changed if there exists open orders.")
            )
        if any(p.amount for s in account.symbols.values() for p in s.positions.values()):
            return RiskOutcome(
                VenueError(-4068, "Position side cannot be changed if there exists position.")
            )
        account.dual_side_position = dual
        sides = (PositionSide.LONG, PositionSide.SHORT) if dual else (PositionSide.BOTH,)
        for symbol, settings in account.symbols.items():
            settings.positions = {
                side: PositionState(symbol=symbol, position_side=side) for side in sides
            }
        return RiskOutcome(Ack(200, "success"))

    def set_multi_assets(self, account_id: int, on: bool, now_ms: int) -> RiskOutcome:
        """`POST /fapi/v1/multiAssetsMargin` (spec §5.8): ACCOUNT_CONFIG_UPDATE `ai`."""
        account = self._engine._account(account_id)
        if account.multi_assets_margin == on:
            return RiskOutcome(VenueError(-4171, "Adjusted asset mode is currently set."))
        if on and any(s.margin_type is MarginType.ISOLATED for s in account.symbols.values()):
            return RiskOutcome(
                VenueError(
                    -4168,
                    "Unable to adjust to Multi-Assets mode with symbols of USDⓈ-M Futures "
                    "under isolated-margin mode.",
                )
            )
        account.multi_assets_margin = on
        event = AccountConfigUpdate(
            event_time=now_ms,
            transaction_time=now_ms,
            account_info_config=AccountInfoConfig(multi_assets_mode=on),
        )
        return RiskOutcome(Ack(200, "success"), [event])

    def position_margin(
        self,
        account_id: int,
        symbol: str,
        position_side: str,
        amount: Decimal,
        add: bool,
        now_ms: int,
    ) -> RiskOutcome:
        """`POST /fapi/v1/positionMargin`: move `amount` between the cross wallet and an
        isolated position's wallet; ACCOUNT_UPDATE m=MARGIN_TRANSFER (spec §5.8)."""
        engine = self._engine
        account = engine._account(account_id)
        settings = account.symbols.get(symbol)
        if settings is None:
            return RiskOutcome(VenueError(-1121, "Invalid symbol."))
        if settings.margin_type is not MarginType.ISOLATED:
            return RiskOutcome(VenueError(-4049, "Add margin only support for isolated position."))
        position = settings.positions.get(position_side)
        if position is None or not position.amount:
            return RiskOutcome(VenueError(-4054, "Cannot add position margin: position is 0."))
        rules = engine._rules[symbol]
        asset = rules.margin_asset
        if add:
            if amount > engine._figures(account, asset).available_balance:
                return RiskOutcome(VenueError(-4050, "Cross balance insufficient."))
            position.isolated_wallet += amount
        else:
            f = position_figures(symbol, position, engine._mark(symbol), settings.leverage)
            removable = position.isolated_wallet + min(f.unrealized_pnl, ZERO) - f.initial_margin
            if amount > removable:
                return RiskOutcome(VenueError(-4051, "Isolated balance insufficient."))
            position.isolated_wallet -= amount
        position.update_time = now_ms
        balance = engine._balance(account, asset)
        event = emit.account_update(
            AccountUpdateReason.MARGIN_TRANSFER,
            now_ms,
            (
                emit.balance_entry(
                    asset, balance.wallet_balance, engine._cross_wallet(account, asset), ZERO
                ),
            ),
            (emit.position_entry(position, settings.margin_type, engine._mark(symbol), asset),),
        )
        return RiskOutcome(Ack(200, "Successfully modify position margin."), [event])

    # --- figures for the REST views

    def liquidation_price(
        self, account_id: int, symbol: str, position_side: str, margin_ratio: Decimal = ONE
    ) -> Decimal:
        """`liquidationPrice` of positionRisk: the FAQ formula on the account as it is now
        (hedge-mode cross positions of one symbol share one price); 0 when unreachable.
        In multi-assets mode the cross `WB` includes the collateral value at today's index
        (the FAQ formula holds WB constant; a BTC collateral's own fall is not solved for).
        With `margin_ratio` < 1: the mark at which that margin ratio is reached (0.8: the
        margin call)."""
        engine = self._engine
        account = engine._account(account_id)
        settings = account.symbols[symbol]
        mark = engine._mark(symbol)
        table = brackets.brackets_for(symbol)
        if settings.margin_type is MarginType.ISOLATED:
            position = settings.positions.get(position_side)
            if position is None or not position.amount:
                return ZERO
            leg = Leg(position.position_side, position.amount, position.entry_price)
            price = liquidation_price(
                table, [leg], position.isolated_wallet, mark, margin_ratio=margin_ratio
            )
            return money(price)
        legs = [
            Leg(p.position_side, p.amount, p.entry_price)
            for p in settings.positions.values()
            if p.amount
        ]
        if not legs:
            return ZERO
        asset = engine._rules[symbol].margin_asset
        other_mm = other_up = ZERO
        for other, figures in self._cross_figures(account, asset):
            if other.symbol != symbol:
                other_mm += figures.maint_margin
                other_up += figures.unrealized_pnl
        wallet = engine._cross_wallet(account, asset) + engine._collateral(account, asset)
        price = liquidation_price(
            table,
            legs,
            wallet,
            mark,
            other_maintenance=other_mm,
            other_unrealized=other_up,
            margin_ratio=margin_ratio,
        )
        return money(price)

    def mark_price(self, symbol: str) -> Decimal:
        return self._engine._mark(symbol)

    def on_tick(self, symbol: str, price: Decimal) -> Decimal:
        """`price` on the symbol's tick grid (rounded down)."""
        tick = self._engine._rules[symbol].tick_size
        return (price / tick).to_integral_value(rounding=ROUND_DOWN) * tick

    def income(
        self,
        account_id: int,
        now_ms: int,
        *,
        income_type: str | None = None,
        symbol: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 100,
    ) -> list[IncomeRecord]:
        """`GET /fapi/v1/income`: REALIZED_PNL and COMMISSION rows from the fills, FUNDING_FEE,
        TRANSFER and INSURANCE_CLEAR rows as recorded; oldest first, 7 days back by default."""
        account = self._engine._account(account_id)
        if start_ms is None and end_ms is None:
            start_ms = now_ms - 7 * _DAY_MS
        rows = [*self._fill_income(account), *self._state.incomes.get(account_id, [])]
        chosen = [
            row
            for row in rows
            if (income_type is None or row.income_type == income_type)
            and (symbol is None or row.symbol == symbol)
            and (start_ms is None or row.time >= start_ms)
            and (end_ms is None or row.time <= end_ms)
        ]
        chosen.sort(key=lambda row: (row.time, row.tran_id))
        return chosen[:limit]

    def _fill_income(self, account: AccountState) -> Iterable[IncomeRecord]:
        for trade in account.trades:
            tran = _DERIVED_TRAN_IDS + 2 * trade.trade_id
            if trade.realized_pnl:
                yield IncomeRecord(
                    symbol=trade.symbol,
                    income_type="REALIZED_PNL",
                    income=trade.realized_pnl,
                    asset=trade.commission_asset,
                    info="",
                    time=trade.time,
                    tran_id=tran,
                    trade_id=str(trade.trade_id),
                )
            if trade.commission:
                yield IncomeRecord(
                    symbol=trade.symbol,
                    income_type="COMMISSION",
                    income=-trade.commission,
                    asset=trade.commission_asset,
                    info="",
                    time=trade.time,
                    tran_id=tran + 1,
                    trade_id=str(trade.trade_id),
                )

    def _record(
        self, account_id: int, symbol: str, kind: str, amount: Decimal, asset: str, time: int
    ) -> None:
        self._state.incomes.setdefault(account_id, []).append(
            IncomeRecord(
                symbol=symbol,
                income_type=kind,
                income=money(amount),
                asset=asset,
                info=kind,
                time=time,
                tran_id=self._state.next_tran_id,
            )
        )
        self._state.next_tran_id += 1

    def record_transfer(self, account_id: int, asset: str, amount: Decimal, now_ms: int) -> None:
        """A deposit or withdrawal: income TRANSFER (the engine calls this)."""
        self._record(account_id, "", "TRANSFER", amount, asset, now_ms)

    def drain_force_orders(self) -> list[ForceOrder]:
        """The liquidations since the last call, for the `@forceOrder` market stream."""
        drained, self._force_orders = self._force_orders, []
        return drained

    # --- market hooks

    def on_update(self, update: MarketUpdate, now_ms: int, out: dict[int, list[Event]]) -> None:
        if isinstance(update, Trade):
            self._last[update.symbol] = update.price
            self._triggers(update.symbol, WorkingType.CONTRACT_PRICE, update.price, now_ms, out)
            self._unchecked = True  # resting orders may have filled
        elif isinstance(update, MarkUpdate):
            # Liquidation comes before the stops a mark tick fires: a gap through the
            # liquidation price closes at the bankruptcy price, never at the gapped price.
            self._check_margins(now_ms, out)
            self._triggers(update.symbol, WorkingType.MARK_PRICE, update.mark_price, now_ms, out)
        elif isinstance(update, FundingSettlement):
            self._funding(update, now_ms, out)
            self._unchecked = True

    def after_market(self, now_ms: int, out: dict[int, list[Event]]) -> None:
        """After a batch: report finished child orders, and check margins again if fills or
        funding moved balances since the last check."""
        self._finish_children(now_ms, out)
        if self._unchecked:
            self._check_margins(now_ms, out)

    def _working_price(self, symbol: str, working_type: str) -> Decimal:
        mark = self._engine._mark(symbol)
        if working_type == WorkingType.MARK_PRICE:
            return mark
        last = self._last.get(symbol)
        if last is not None:
            return last
        book = self._engine._market.book(symbol)
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            return (bid.price + ask.price) / 2
        return mark

    def _protection_tripped(self, symbol: str) -> bool:
        mark = self._engine._mark(symbol)
        last = self._last.get(symbol, mark)
        return bool(mark) and abs(mark - last) / mark > self._trigger_protect.get(symbol, ZERO)

    # --- triggers

    def _triggers(
        self,
        symbol: str,
        working_type: str,
        price: Decimal,
        now_ms: int,
        out: dict[int, list[Event]],
    ) -> None:
        records, events = self._algo.on_price(
            symbol,
            working_type,
            price,
            now_ms,
            protection_tripped=self._protection_tripped(symbol),
        )
        for event in events:
            if event.order.status == AlgoStatus.NEW:  # a trailing order's activation
                record = self._algo.state.orders[event.order.algo_id]
                out[record.account_id].append(event)
        triggering = {e.order.algo_id: e for e in events if e.order.status != AlgoStatus.NEW}
        for record in records:
            out[record.account_id] += [
                triggering[record.algo_id],
                *self._place_child(record, now_ms),
            ]
        if records:
            self._unchecked = True  # the children may have filled

    def _place_child(self, record: AlgoRecord, now_ms: int) -> list[Event]:
        engine = self._engine
        account = engine._account(record.account_id)
        hedge = account.dual_side_position
        quantity = record.quantity
        if record.close_position:
            position = account.symbols[record.symbol].positions.get(record.position_side)
            amount = position.amount if position is not None else ZERO
            closes = (amount > 0 and record.side == Side.SELL) or (
                amount < 0 and record.side == Side.BUY
            )
            if not closes:
                return [self._algo.expired(record, now_ms)]
            quantity = abs(amount)
        limit = record.child_type == OrderType.LIMIT
        command = NewOrder(
            symbol=record.symbol,
            side=Side(record.side),
            order_type=OrderType(record.child_type),
            quantity=quantity,
            price=record.price if limit and record.price else None,
            time_in_force=TimeInForce(record.time_in_force) if limit else None,
            position_side=PositionSide(record.position_side) if hedge else None,
            reduce_only=True
            if (record.reduce_only or record.close_position) and not hedge
            else None,
            price_match=PriceMatch(record.price_match) if limit and not record.price else None,
            self_trade_prevention_mode=SelfTradePreventionMode(record.self_trade_prevention_mode),
            good_till_date=record.good_till_date if limit and record.good_till_date else None,
            response_type=ResponseType.RESULT,
        )
        origin = OrderOrigin(
            original_type=record.order_type,
            stop_price=record.trigger_price,
            working_type=record.working_type,
            close_position=record.close_position,
            price_protect=record.price_protect,
            # Trailing: the price it activated at (the given one, or the placement price).
            activation_price=(
                (record.activate_price or record.tracking_price) if record.is_trailing else None
            ),
            callback_rate=record.callback_rate if record.is_trailing else None,
        )
        outcome = engine._new_order(account, command, now_ms, origin)
        if not isinstance(outcome.result, OrderView):
            error = outcome.result
            assert isinstance(error, VenueError)
            reason = _REDUCE_ONLY_REJECT if error.code == -2022 else error.msg
            rejected = self._algo.rejected(record, reason, now_ms)
            return [rejected, trigger_reject(record, now_ms)]
        view = outcome.result
        events: list[Event] = [self._algo.triggered(record, view.order_id, now_ms)]
        events += outcome.events
        order = account.orders[view.order_id]
        if order.is_open:
            self._children[order.order_id] = record.algo_id
        else:
            events.append(
                self._algo.finished(record, order.average_price, order.executed_qty, now_ms)
            )
        return events

    def _finish_children(self, now_ms: int, out: dict[int, list[Event]]) -> None:
        for order_id, algo_id in list(self._children.items()):
            record = self._algo.state.orders[algo_id]
            order = self._engine._account(record.account_id).orders[order_id]
            if order.is_open:
                continue
            del self._children[order_id]
            out[record.account_id].append(
                self._algo.finished(record, order.average_price, order.executed_qty, now_ms)
            )

    # --- funding

    def _funding(
        self, settlement: FundingSettlement, now_ms: int, out: dict[int, list[Event]]
    ) -> None:
        engine = self._engine
        symbol = settlement.symbol
        rules = engine._rules.get(symbol)
        if rules is None:
            return
        asset = rules.margin_asset
        for account in engine._state.accounts.values():
            settings = account.symbols.get(symbol)
            if settings is None:
                continue
            for position in settings.positions.values():
                if not position.amount:
                    continue
                income = funding_income(
                    position.amount, settlement.mark_price, settlement.funding_rate
                )
                if not income:
                    continue
                balance = engine._balance(account, asset)
                balance.wallet_balance += income
                balance.update_time = now_ms
                isolated = settings.margin_type is MarginType.ISOLATED
                rows: tuple[Position, ...] = ()
                if isolated:
                    position.isolated_wallet += income
                    rows = (
                        emit.position_entry(
                            position, settings.margin_type, engine._mark(symbol), asset
                        ),
                    )
                self._record(
                    account.account_id,
                    symbol,
                    "FUNDING_FEE",
                    income,
                    asset,
                    settlement.funding_time_ms,
                )
                out[account.account_id].append(
                    funding_account_update(
                        time_ms=now_ms,
                        symbol=symbol,
                        asset=asset,
                        income=money(income),
                        wallet_balance=money(balance.wallet_balance),
                        cross_wallet_balance=money(engine._cross_wallet(account, asset)),
                        isolated_positions=rows,
                    )
                )

    # --- margin calls and liquidation

    def _cross_figures(
        self, account: AccountState, asset: str
    ) -> Iterable[tuple[PositionState, PositionFigures]]:
        engine = self._engine
        for symbol, settings in account.symbols.items():
            if settings.margin_type is not MarginType.CROSS:
                continue
            if engine._rules[symbol].margin_asset != asset:
                continue
            for position in settings.positions.values():
                if position.amount:
                    yield (
                        position,
                        position_figures(symbol, position, engine._mark(symbol), settings.leverage),
                    )

    def _check_margins(self, now_ms: int, out: dict[int, list[Event]]) -> None:
        self._unchecked = False
        engine = self._engine
        for account in list(engine._state.accounts.values()):
            open_positions = [
                (symbol, settings, position)
                for symbol, settings in account.symbols.items()
                for position in settings.positions.values()
                if position.amount
            ]
            if not open_positions:
                self._clear_deficits(account, now_ms, out)
                continue
            assets = {
                engine._rules[symbol].margin_asset
                for symbol, settings, _ in open_positions
                if settings.margin_type is MarginType.CROSS
            }
            for asset in sorted(assets):
                self._check_cross(account, asset, now_ms, out)
            for symbol, settings, position in open_positions:
                if settings.margin_type is MarginType.ISOLATED and position.amount:
                    self._check_isolated(account, symbol, position, now_ms, out)
            self._clear_deficits(account, now_ms, out)
        self._state.margin_called = sorted(self._called)

    def _clear_deficits(
        self, account: AccountState, now_ms: int, out: dict[int, list[Event]]
    ) -> None:
        """A cross wallet below zero with no cross position left in its asset (a stop that
        filled past the bankruptcy price in a gap) is covered by auto-exchange in multi-assets
        mode (the Multi-Assets Info page's third case, taken at once rather than at LTV ≥ 1),
        then by the insurance fund."""
        engine = self._engine
        for asset in list(account.balances):
            if any(True for _ in self._cross_figures(account, asset)):
                continue
            if engine._cross_wallet(account, asset) < 0:
                self._cover_deficit(account, asset, now_ms, out[account.account_id])

    def _escalate(
        self,
        key: str,
        level: RiskLevel,
        call: MarginCall,
        account_id: int,
        out: dict[int, list[Event]],
    ) -> bool:
        """Send MARGIN_CALL once per crossing; True when the scope must be liquidated."""
        if level is RiskLevel.SAFE:
            self._called.discard(key)
            return False
        if key not in self._called:
            self._called.add(key)
            out[account_id].append(call)
        if level is RiskLevel.LIQUIDATE:
            self._called.discard(key)
            return True
        return False

    def _call_row(
        self, position: PositionState, margin_type: str, mark: Decimal, maint: Decimal
    ) -> MarginCallPosition:
        return MarginCallPosition(
            symbol=position.symbol,
            position_side=position.position_side,
            position_amount=position.amount,
            margin_type=margin_type,
            isolated_wallet=money(position.isolated_wallet),
            mark_price=mark,
            unrealized_pnl=money(position.amount * (mark - position.entry_price)),
            maintenance_margin=money(maint),
        )

    def _check_cross(
        self, account: AccountState, asset: str, now_ms: int, out: dict[int, list[Event]]
    ) -> None:
        engine = self._engine
        maint = unrealized = ZERO
        rows = []
        for position, f in self._cross_figures(account, asset):
            maint += f.maint_margin
            unrealized += f.unrealized_pnl
            rows.append(
                self._call_row(position, MarginCallMarginType.CROSSED, f.mark_price, f.maint_margin)
            )
        wallet = engine._cross_wallet(account, asset)
        level = risk_level(
            maint,
            wallet + engine._collateral(account, asset) + unrealized,
            self.margin_call_ratio,
        )
        call = MarginCall(
            event_time=now_ms, cross_wallet_balance=money(wallet), positions=tuple(rows)
        )
        if self._escalate(f"{account.account_id}:{asset}", level, call, account.account_id, out):
            self._liquidate(account, asset, None, now_ms, out)

    def _check_isolated(
        self,
        account: AccountState,
        symbol: str,
        position: PositionState,
        now_ms: int,
        out: dict[int, list[Event]],
    ) -> None:
        settings = account.symbols[symbol]
        f = position_figures(symbol, position, self._engine._mark(symbol), settings.leverage)
        level = risk_level(
            f.maint_margin, position.isolated_wallet + f.unrealized_pnl, self.margin_call_ratio
        )
        call = MarginCall(
            event_time=now_ms,
            positions=(
                self._call_row(
                    position, MarginCallMarginType.ISOLATED, f.mark_price, f.maint_margin
                ),
            ),
        )
        key = f"{account.account_id}:{symbol}:{position.position_side}"
        if self._escalate(key, level, call, account.account_id, out):
            asset = self._engine._rules[symbol].margin_asset
            self._liquidate(account, asset, position, now_ms, out)

    def _liquidate(
        self,
        account: AccountState,
        asset: str,
        isolated: PositionState | None,
        now_ms: int,
        out: dict[int, list[Event]],
    ) -> None:
        """Close the scope: the isolated position, or every cross position of `asset`."""
        engine = self._engine
        events = out[account.account_id]
        if isolated is not None:
            symbols = [isolated.symbol]
            targets = [isolated]
        else:
            targets = sorted(
                (p for p, _ in self._cross_figures(account, asset)),
                key=lambda p: abs(p.amount) * engine._mark(p.symbol),
                reverse=True,
            )
            symbols = sorted({p.symbol for p in targets})
        for symbol in symbols:
            for order in list(engine._open_on(account.account_id, symbol).values()):
                events += engine._end(
                    account, order, OrderStatus.EXPIRED, ExpiryReason.ACCOUNT_LIQUIDATED, now_ms
                )
        # Multi-assets mode: the collateral backs the cross scope down to bankruptcy.
        collateral = engine._collateral(account, asset) if isolated is None else ZERO
        for index, position in enumerate(targets):
            if isolated is not None:
                wallet, others = position.isolated_wallet, ZERO
            else:
                wallet = engine._cross_wallet(account, asset) + collateral
                others = sum(
                    (
                        p.amount * (engine._mark(p.symbol) - p.entry_price)
                        for p in targets[index + 1 :]
                    ),
                    ZERO,
                )
            self._forced_close(account, position, wallet, others, now_ms, out)
        self._cover_deficit(account, asset, now_ms, events)

    def _cover_deficit(
        self, account: AccountState, asset: str, now_ms: int, events: list[Event]
    ) -> None:
        """A negative cross wallet of `asset`: auto-exchange the collateral first (multi-assets
        mode), then the insurance fund clears what is left."""
        engine = self._engine
        if engine._cross_wallet(account, asset) < 0 and engine._collateral(account, asset) > 0:
            self._auto_exchange(account, asset, now_ms, events)
        if engine._cross_wallet(account, asset) < 0:
            self._insurance_clear(account, asset, now_ms, events)

    def _auto_exchange(
        self, account: AccountState, asset: str, now_ms: int, events: list[Event]
    ) -> None:
        """Sell collateral for the USDT deficit (venue.collateral): ACCOUNT_UPDATE
        m=AUTO_EXCHANGE with `bc` +USDT and −each asset sold, income rows AUTO_EXCHANGE."""
        engine = self._engine
        deficit = -engine._cross_wallet(account, asset)
        parts = auto_exchange(deficit, list(account.balances.values()), engine._index_price)
        if not parts:
            return
        usdt = engine._balance(account, asset)
        rows = []
        for part in parts:
            sold = engine._balance(account, part.asset)
            sold.wallet_balance -= part.sold
            sold.update_time = now_ms
            self._record(account.account_id, "", "AUTO_EXCHANGE", -part.sold, part.asset, now_ms)
            rows.append(
                emit.balance_entry(
                    part.asset,
                    sold.wallet_balance,
                    engine._cross_wallet(account, part.asset),
                    -part.sold,
                )
            )
        covered = sum((part.covered for part in parts), ZERO)
        usdt.wallet_balance += covered
        usdt.update_time = now_ms
        self._record(account.account_id, "", "AUTO_EXCHANGE", covered, asset, now_ms)
        rows.insert(
            0,
            emit.balance_entry(
                asset, usdt.wallet_balance, engine._cross_wallet(account, asset), covered
            ),
        )
        events.append(emit.account_update(AccountUpdateReason.AUTO_EXCHANGE, now_ms, tuple(rows)))

    def _insurance_clear(
        self, account: AccountState, asset: str, now_ms: int, events: list[Event]
    ) -> None:
        """Bring the cross wallet of `asset` back to zero: ACCOUNT_UPDATE m=INSURANCE_CLEAR,
        income INSURANCE_CLEAR (trading spec §4.7, §5.9)."""
        engine = self._engine
        balance = engine._balance(account, asset)
        deficit = -engine._cross_wallet(account, asset)
        balance.wallet_balance += deficit
        balance.update_time = now_ms
        self._record(account.account_id, "", "INSURANCE_CLEAR", deficit, asset, now_ms)
        events.append(
            emit.account_update(
                AccountUpdateReason.INSURANCE_CLEAR,
                now_ms,
                (
                    emit.balance_entry(
                        asset,
                        balance.wallet_balance,
                        engine._cross_wallet(account, asset),
                        deficit,
                    ),
                ),
            )
        )

    def _forced_close(
        self,
        account: AccountState,
        position: PositionState,
        wallet: Decimal,
        others: Decimal,
        now_ms: int,
        out: dict[int, list[Event]],
    ) -> None:
        """The `autoclose-` order at the fee-net bankruptcy price; the book takes what it
        holds at the bankruptcy price or better, ADL counterparties the rest at that price."""
        engine = self._engine
        symbol = position.symbol
        rules = engine._rules[symbol]
        fee_rate = self._liquidation_fee.get(symbol, ZERO)
        amount = position.amount
        bankrupt = bankruptcy_price(
            Leg(position.position_side, amount, position.entry_price),
            wallet,
            fee_rate,
            other_unrealized=others,
        )
        price = max(round_price_for_user(bankrupt, rules.tick_size, amount), rules.tick_size)
        qty = abs(amount)
        side = Side.SELL if amount > 0 else Side.BUY
        # The bankruptcy price itself (margin balance 0, before the fee): the book absorbs
        # what it holds at that price or better, and ADL counterparties close at it.
        gross = bankruptcy_price(
            Leg(position.position_side, amount, position.entry_price),
            wallet,
            ZERO,
            other_unrealized=others,
        )
        adl_price = max(round_price_for_user(gross, rules.tick_size, amount), rules.tick_size)
        absorbed = sum(
            (
                f.qty
                for f in engine._market.book(symbol).walk(MarketSide(side.value), qty, adl_price)
            ),
            ZERO,
        )
        out[account.account_id] += self._calculated_close(
            account, position, qty, price, fee_rate, "autoclose", now_ms
        )
        self._force_orders.append(
            ForceOrder(
                symbol=symbol,
                side=side,
                order_type=OrderType.LIMIT,
                time_in_force=TimeInForce.IOC,
                quantity=qty,
                price=price,
                average_price=price,
                status=OrderStatus.FILLED,
                last_filled_quantity=qty,
                filled_accumulated_quantity=qty,
                trade_time=now_ms,
            )
        )
        if absorbed < qty:
            self._deleverage(
                account.account_id, symbol, amount > 0, qty - absorbed, adl_price, now_ms, out
            )

    # --- auto-deleveraging

    def _scope(
        self, account: AccountState, position: PositionState
    ) -> tuple[Decimal, Decimal, Decimal]:
        """(wallet, maintenance, uPnL) of the margin scope holding `position`."""
        engine = self._engine
        settings = account.symbols[position.symbol]
        if settings.margin_type is MarginType.ISOLATED:
            f = position_figures(
                position.symbol, position, engine._mark(position.symbol), settings.leverage
            )
            return position.isolated_wallet, f.maint_margin, f.unrealized_pnl
        asset = engine._rules[position.symbol].margin_asset
        maint = unrealized = ZERO
        for _, f in self._cross_figures(account, asset):
            maint += f.maint_margin
            unrealized += f.unrealized_pnl
        wallet = engine._cross_wallet(account, asset) + engine._collateral(account, asset)
        return wallet, maint, unrealized

    def _score(self, account: AccountState, position: PositionState) -> tuple[Decimal, Decimal]:
        """(LeveragePnL, uPnL) of an open position (venue.adl)."""
        unrealized = position.amount * (self._engine._mark(position.symbol) - position.entry_price)
        wallet, maint, scope_unrealized = self._scope(account, position)
        return adl.leverage_pnl(unrealized, wallet, maint, scope_unrealized), unrealized

    def _open_side(self, symbol: str, long: bool) -> Iterable[tuple[AccountState, PositionState]]:
        for account in self._engine._state.accounts.values():
            settings = account.symbols.get(symbol)
            if settings is None:
                continue
            for position in settings.positions.values():
                if position.amount and (position.amount > 0) == long:
                    yield account, position

    def adl_quantile(self, account_id: int, symbol: str, position_side: str) -> int:
        """positionRisk `adl` / `adlQuantile`: 0–4, the position's place in its symbol and
        direction's ADL queue (venue.adl); 0 without a position."""
        account = self._engine._state.accounts.get(account_id)
        settings = account.symbols.get(symbol) if account is not None else None
        position = settings.positions.get(position_side) if settings is not None else None
        if account is None or position is None or not position.amount:
            return 0
        scores = [self._score(a, p)[0] for a, p in self._open_side(symbol, position.amount > 0)]
        return adl.quantile(self._score(account, position)[0], scores)

    def _deleverage(
        self,
        liquidated: int,
        symbol: str,
        liquidated_long: bool,
        qty: Decimal,
        price: Decimal,
        now_ms: int,
        out: dict[int, list[Event]],
    ) -> None:
        """Close `qty` of the other accounts' opposite positions at `price`, best ranked first;
        only positions that close in profit at `price` queue (a deleveraged account never
        gets a loss it cannot pay)."""
        engine = self._engine
        candidates = []
        positions: dict[tuple[int, str], tuple[AccountState, PositionState]] = {}
        for account, position in self._open_side(symbol, not liquidated_long):
            if account.account_id == liquidated:
                continue
            if position.amount * (price - position.entry_price) < 0:
                continue
            score, unrealized = self._score(account, position)
            candidates.append(
                adl.Candidate(
                    account.account_id, position.position_side, position.amount, score, unrealized
                )
            )
            positions[(account.account_id, position.position_side)] = (account, position)
        for candidate, take in adl.allocate(adl.ranked(candidates), qty):
            account, position = positions[(candidate.account_id, candidate.position_side)]
            events = out[account.account_id]
            for order in list(engine._open_on(account.account_id, symbol).values()):
                events += engine._end(
                    account, order, OrderStatus.CANCELED, ExpiryReason.NONE, now_ms
                )
            events += self._calculated_close(
                account, position, take, price, ZERO, "adl_autoclose", now_ms
            )
            self._unchecked = True

    def _calculated_close(
        self,
        account: AccountState,
        position: PositionState,
        qty: Decimal,
        price: Decimal,
        fee_rate: Decimal,
        prefix: str,
        now_ms: int,
    ) -> list[Event]:
        """Close `qty` of `position` at `price` by a system order (`<prefix>-<time><id>`,
        LIQUIDATION, IOC, x=CALCULATED, X=FILLED, fee at `fee_rate`): its ORDER_TRADE_UPDATE
        and ACCOUNT_UPDATE m=ORDER."""
        engine = self._engine
        symbol = position.symbol
        rules = engine._rules[symbol]
        settings = account.symbols[symbol]
        order_id = engine._state.next_order_id
        engine._state.next_order_id += 1
        order = Order(
            order_id=order_id,
            client_order_id=f"{prefix}-{now_ms}{order_id}",
            symbol=symbol,
            side=Side.SELL if position.amount > 0 else Side.BUY,
            position_side=PositionSide(position.position_side),
            order_type=OrderType.LIQUIDATION,
            time_in_force=TimeInForce.IOC,
            quantity=qty,
            price=price,
            reduce_only=True,
            price_match=PriceMatch.NONE,
            self_trade_prevention_mode=SelfTradePreventionMode.NONE,
            good_till_date=0,
            time=now_ms,
            update_time=now_ms,
        )
        account.orders[order_id] = order
        fee = (qty * price * fee_rate).quantize(_MONEY, rounding=ROUND_DOWN)
        isolated = settings.margin_type is MarginType.ISOLATED
        realized = apply_fill(
            position,
            qty if order.side is Side.BUY else -qty,
            price,
            leverage=settings.leverage,
            isolated=isolated,
            taker_rate=account.taker_rate,
        )
        position.update_time = now_ms
        balance = engine._balance(account, rules.margin_asset)
        balance.wallet_balance += realized - fee
        balance.update_time = now_ms
        order.executed_qty = qty
        order.cum_quote = qty * price
        order.status = OrderStatus.FILLED
        trade = TradeRecord(
            trade_id=engine._state.next_trade_id,
            order_id=order_id,
            symbol=symbol,
            side=order.side,
            position_side=order.position_side,
            price=price,
            qty=qty,
            quote_qty=qty * price,
            realized_pnl=realized,
            commission=fee,
            commission_asset=rules.margin_asset,
            maker=False,
            time=now_ms,
        )
        engine._state.next_trade_id += 1
        account.trades.append(trade)
        return [
            engine._order_event(account, order, ExecutionType.CALCULATED, now_ms, trade),
            emit.account_update(
                AccountUpdateReason.ORDER,
                now_ms,
                (
                    emit.balance_entry(
                        rules.margin_asset,
                        balance.wallet_balance,
                        engine._cross_wallet(account, rules.margin_asset),
                        ZERO,
                    ),
                ),
                (
                    emit.position_entry(
                        position, settings.margin_type, engine._mark(symbol), rules.margin_asset
                    ),
                ),
            ),
        ]
