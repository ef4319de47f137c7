"""The venue's REST endpoints and WebSocket API methods, on the engine (trading spec §2, §3).

Each handler reads its parameters with `protocol.trading` (Binance's parameter errors), calls
the engine through `VenueService` (whose refusals are Binance's errors, HTTP 400, no event)
and answers with the `protocol.trading` struct of the endpoint, formatted at the symbol's
precisions: prices at `pricePrecision`, quantities at `quantityPrecision`, average prices and
quote amounts at `max(5, pricePrecision)` decimals (`"0.51050"`, `"84146.50000"` in §2.3 and
§5), balances and margins at 8 decimals (`"122624.12345678"`, UDS §5.2).

Weights (§2): orders 0 IP weight and 1 on the order counts (batch: 5), cancels and queries 1,
`openOrders` 1 with a symbol and 40 without, `allOrders`/`userTrades` 5, account and balance
reads and `adlQuantile` 5, `commissionRate` 20, `positionSide/dual` and `multiAssetsMargin` GET 30.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from userstream.accounts import Account
from userstream.exceptions import BinanceAPIError
from userstream.protocol import trading as t
from userstream.protocol.events import (
    MarginCallMarginType,
    OrderType,
    PositionSide,
    PriceMatch,
    SelfTradePreventionMode,
    Side,
    TimeInForce,
)
from userstream.protocol.signing import Params, Security
from userstream.server.http import Request, Response
from userstream.server.responses import json_response
from userstream.server.trading import Call, Route
from userstream.server.venue_admin import commission_of, transfer_of
from userstream.venue import (
    Ack,
    BalanceView,
    CancelAllOrders,
    CancelOrder,
    ChangeLeverage,
    ChangeMarginType,
    CountdownCancelAll,
    CountdownView,
    Deposit,
    LeverageView,
    ModifyOrder,
    NewOrder,
    OrderView,
    PositionView,
    ResponseType,
    SetCommission,
    Withdraw,
    adl,
)
from userstream.venue import brackets as venue_brackets
from userstream.venue.collateral import SETTLEMENT_ASSET

if TYPE_CHECKING:
    from userstream.server.venue_service import VenueService

AMOUNT_PLACES = 8
ACCOUNT_ALIAS = "SgsR"  # Binance's per-account alias; constant here, clients ignore it


_SIDES: Final = {m.value: m for m in Side}
_ORDER_TYPES: Final = {m.value: m for m in OrderType}
_TIME_IN_FORCE: Final = {m.value: m for m in TimeInForce}
_POSITION_SIDES: Final = {m.value: m for m in PositionSide}
_PRICE_MATCHES: Final = {m.value: m for m in PriceMatch}
_STP_MODES: Final = {m.value: m for m in SelfTradePreventionMode}
_RESPONSE_TYPES: Final = {m.value: m for m in ResponseType}


class Formats:
    def __init__(self, rules: dict[str, t.SymbolRules]) -> None:
        self._rules = rules
        # Per symbol, the quanta of its prices, quantities and average prices: an order's
        # answer formats eight figures, each a quantize and a plain-notation format.
        self.quanta: dict[str, tuple[Decimal, Decimal, Decimal]] = {
            symbol: (
                t.quantum(r.price_precision),
                t.quantum(r.quantity_precision),
                t.quantum(max(5, r.price_precision)),
            )
            for symbol, r in rules.items()
        }
        # The same figures' strings for a (positive) zero: a new order's answer is mostly
        # zeros (price of a MARKET order, executed, average, cumulated quote, stop price).
        self.zeros: dict[str, tuple[str, str, str]] = {
            symbol: (
                f"{Decimal(0).quantize(p):f}",
                f"{Decimal(0).quantize(q):f}",
                f"{Decimal(0).quantize(a):f}",
            )
            for symbol, (p, q, a) in self.quanta.items()
        }

    def price(self, symbol: str, value: Decimal) -> str:
        return t.fmt(value, self._rules[symbol].price_precision)

    def qty(self, symbol: str, value: Decimal) -> str:
        return t.fmt(value, self._rules[symbol].quantity_precision)

    def avg(self, symbol: str, value: Decimal) -> str:
        return t.fmt(value, max(5, self._rules[symbol].price_precision))


# Fixed lengths, so that mypy checks each figure against its field when they are unpacked
# into a struct: the account totals (11) and an asset row's shared part (12).
_Totals = tuple[str, str, str, str, str, str, str, str, str, str, str]
_AssetFigures = tuple[str, str, str, str, str, str, str, str, str, str, str, str]


def amount(value: Decimal) -> str:
    return t.fmt(value, AMOUNT_PLACES)


class VenueRoutes:
    def __init__(self, service: VenueService) -> None:
        self.s = service
        self.f = Formats(dict(service.rules))

    # conversions

    def order(self, view: OrderView, with_time: bool = False) -> t.Order:
        # `t.fmt` written out with the symbol's quanta (`Formats.quanta`): the same strings,
        # without a call and a precision lookup per figure. A zero that is not negative
        # (`-0` keeps its sign) takes its string from `Formats.zeros`.
        symbol = view.symbol
        price_q, qty_q, avg_q = self.f.quanta[symbol]
        price_0, qty_0, avg_0 = self.f.zeros[symbol]
        value = view.executed_qty
        executed = qty_0 if not value and not value.is_signed() else f"{value.quantize(qty_q):f}"
        value = view.price
        price = price_0 if not value and not value.is_signed() else f"{value.quantize(price_q):f}"
        value = view.avg_price
        avg = avg_0 if not value and not value.is_signed() else f"{value.quantize(avg_q):f}"
        value = view.cum_quote
        cum_quote = avg_0 if not value and not value.is_signed() else f"{value.quantize(avg_q):f}"
        value = view.stop_price
        stop = price_0 if not value and not value.is_signed() else f"{value.quantize(price_q):f}"
        # Positional: 25 keyword arguments take CPython's slow call path (~1.5 µs).
        return t.Order(
            view.order_id,
            view.symbol,
            str(view.status),
            view.client_order_id,
            price,
            avg,
            f"{view.orig_qty.quantize(qty_q):f}",
            executed,
            executed,
            cum_quote,
            str(view.time_in_force),
            str(view.order_type),
            view.reduce_only,
            view.close_position,
            str(view.side),
            str(view.position_side),
            stop,
            view.working_type,
            view.price_protect,
            str(view.orig_type),
            str(view.price_match),
            str(view.self_trade_prevention_mode),
            view.good_till_date,
            view.update_time,
            view.time if with_time else None,
        )

    def _order_result(self, result: object) -> t.Order:
        assert isinstance(result, OrderView)
        return self.order(result)

    # orders

    def new_order(self, call: Call) -> Awaitable[object]:
        # A plain function handing back `_place`'s coroutine: one coroutine less per order
        # (its errors are raised where the caller awaits, inside the same `try`).
        return self._place(call.account_id, t.parse_new_order(call.params, self.s.rules), call)

    async def _place(self, account_id: int, order: t.NewOrder, call: Call) -> t.Order:
        # The values were checked by `parse_new_order`: the members are looked up, not
        # converted (an enum call costs as much as the rest of this).
        command = NewOrder(
            symbol=order.symbol,
            side=_SIDES[order.side],
            order_type=_ORDER_TYPES[order.type],
            quantity=order.quantity,
            price=order.price,
            time_in_force=_TIME_IN_FORCE[order.time_in_force] if order.time_in_force else None,
            position_side=_POSITION_SIDES[order.position_side],
            # Absent and "false" both mean not reduce-only; only "true" is the parameter a
            # hedge-mode account may not send (-1106, trading spec §2.3).
            reduce_only=order.reduce_only or None,
            new_client_order_id=order.new_client_order_id,
            price_match=_PRICE_MATCHES[order.price_match],
            self_trade_prevention_mode=_STP_MODES[order.self_trade_prevention_mode],
            good_till_date=order.good_till_date or None,
            response_type=_RESPONSE_TYPES[order.new_order_resp_type],
        )
        return self._order_result(await self.s.execute(account_id, command, call.now_ms))

    async def batch_orders(self, call: Call) -> object:
        answers: list[t.Order | t.ErrorItem] = []
        for item in t.parse_batch_orders(call.params, self.s.rules):
            if isinstance(item, BinanceAPIError):
                answers.append(t.ErrorItem(item.code, item.msg))
                continue
            try:
                answers.append(await self._place(call.account_id, item, call))
            except BinanceAPIError as error:
                answers.append(t.ErrorItem(error.code, error.msg))
        return answers

    async def modify_order(self, call: Call) -> object:
        modify = t.parse_modify_order(call.params, self.s.rules)
        command = ModifyOrder(
            symbol=modify.ref.symbol,
            side=Side(modify.side),
            quantity=modify.quantity,
            price=modify.price,
            order_id=modify.ref.order_id,
            orig_client_order_id=modify.ref.orig_client_order_id,
            price_match=PriceMatch(modify.price_match) if modify.price_match != "NONE" else None,
        )
        return self._order_result(await self.s.execute(call.account_id, command, call.now_ms))

    async def cancel_order(self, call: Call) -> object:
        ref = t.parse_order_ref(call.params, self.s.rules)
        return await self._cancel(call, ref.symbol, ref.order_id, ref.orig_client_order_id)

    async def _cancel(
        self, call: Call, symbol: str, order_id: int | None, client_id: str | None
    ) -> t.Order:
        command = CancelOrder(symbol=symbol, order_id=order_id, orig_client_order_id=client_id)
        return self._order_result(await self.s.execute(call.account_id, command, call.now_ms))

    async def cancel_batch(self, call: Call) -> object:
        batch = t.parse_cancel_batch(call.params, self.s.rules)
        refs: list[tuple[int | None, str | None]] = [(i, None) for i in batch.order_ids]
        refs += [(None, c) for c in batch.client_order_ids]
        answers: list[t.Order | t.ErrorItem] = []
        for order_id, client_id in refs:
            try:
                answers.append(await self._cancel(call, batch.symbol, order_id, client_id))
            except BinanceAPIError as error:
                answers.append(t.ErrorItem(error.code, error.msg))
        return answers

    async def cancel_all(self, call: Call) -> object:
        symbol = t.parse_symbol(call.params, self.s.rules)
        result = await self.s.execute(call.account_id, CancelAllOrders(symbol=symbol), call.now_ms)
        assert isinstance(result, Ack)
        return t.CodeMsg(result.code, result.msg)

    async def countdown(self, call: Call) -> object:
        countdown = t.parse_countdown(call.params, self.s.rules)
        command = CountdownCancelAll(symbol=countdown.symbol, countdown_ms=countdown.countdown_ms)
        result = await self.s.execute(call.account_id, command, call.now_ms)
        assert isinstance(result, CountdownView)
        return t.CountdownResponse(result.symbol, str(result.countdown_ms))

    async def query_order(self, call: Call) -> object:
        ref = t.parse_order_ref(call.params, self.s.rules)
        return self._query(call.account_id, ref, open_only=False)

    async def open_order(self, call: Call) -> object:
        ref = t.parse_order_ref(call.params, self.s.rules)
        return self._query(call.account_id, ref, open_only=True)

    def _query(self, account_id: int, ref: t.OrderRef, open_only: bool) -> t.Order:
        found = self.s.engine.order(account_id, ref.symbol, ref.order_id, ref.orig_client_order_id)
        if not isinstance(found, OrderView) or (open_only and not found.is_open):
            raise BinanceAPIError(-2013, "Order does not exist.", 400)
        return self.order(found, with_time=True)

    async def open_orders(self, call: Call) -> object:
        symbol = t.parse_open_orders(call.params, self.s.rules)
        views = self.s.engine.open_orders(call.account_id, symbol)
        return [self.order(v, with_time=True) for v in views]

    async def all_orders(self, call: Call) -> object:
        query = t.parse_all_orders(call.params, self.s.rules)
        views = self.s.engine.all_orders(call.account_id, query.symbol)
        chosen = [
            v
            for v in views
            if (query.order_id is None or v.order_id >= query.order_id)
            and (query.start_time is None or v.time >= query.start_time)
            and (query.end_time is None or v.time <= query.end_time)
        ]
        if query.order_id is None and query.start_time is None:
            chosen = chosen[-query.limit :]  # the latest orders by default
        return [self.order(v, with_time=True) for v in chosen[: query.limit]]

    async def user_trades(self, call: Call) -> object:
        query = t.parse_user_trades(call.params, self.s.rules)
        f = self.f
        rows = [
            tr
            for tr in self.s.engine.trades(call.account_id, query.symbol)
            if (query.order_id is None or tr.order_id == query.order_id)
            and (query.from_id is None or tr.trade_id >= query.from_id)
            and (query.start_time is None or tr.time >= query.start_time)
            and (query.end_time is None or tr.time <= query.end_time)
        ]
        rows = rows[: query.limit] if query.from_id is not None else rows[-query.limit :]
        return [
            t.UserTrade(
                buyer=tr.buyer,
                commission=amount(tr.commission),
                commission_asset=tr.commission_asset,
                id=tr.trade_id,
                maker=tr.maker,
                order_id=tr.order_id,
                price=f.price(tr.symbol, tr.price),
                qty=f.qty(tr.symbol, tr.qty),
                quote_qty=f.avg(tr.symbol, tr.quote_qty),
                realized_pnl=amount(tr.realized_pnl),
                side=str(tr.side),
                position_side=str(tr.position_side),
                symbol=tr.symbol,
                time=tr.time,
            )
            for tr in rows
        ]

    # account

    async def _read(self, call: Call) -> None:
        await self.s.ensure(call.account_id, call.now_ms)

    def _positions(self, account_id: int) -> list[PositionView]:
        return self.s.engine.positions(account_id)

    def _balances(self, account_id: int) -> list[BalanceView]:
        return self.s.engine.balances(account_id)

    def _totals(self, account_id: int, balances: list[BalanceView]) -> _Totals:
        """The account's `total*`, `availableBalance` and `maxWithdrawAmount`, in the order
        both versions send them.

        The totals count the USDT row only (Binance's account v2/v3 page: "only for USDT
        asset" in single-asset mode); in multi-assets mode that row's margin and available
        figures already hold the other assets' haircut value (venue.collateral), and the
        wallet totals add it, so totalMarginBalance = wallet + unrealized PnL."""
        usdt = [b for b in balances if b.asset == SETTLEMENT_ASSET]
        collateral = self.s.engine.collateral(account_id)

        def total(pick: Callable[[BalanceView], Decimal], extra: Decimal = Decimal(0)) -> str:
            return amount(sum((pick(b) for b in usdt), extra))

        return (
            total(lambda b: b.initial_margin),
            total(lambda b: b.maint_margin),
            total(lambda b: b.wallet_balance, collateral),
            total(lambda b: b.unrealized_pnl),
            total(lambda b: b.margin_balance),
            total(lambda b: b.position_initial_margin),
            total(lambda b: b.open_order_initial_margin),
            total(lambda b: b.cross_wallet_balance, collateral),
            total(lambda b: b.cross_unrealized_pnl),
            total(lambda b: b.available_balance),
            total(lambda b: b.max_withdraw_amount),
        )

    def account_v2(self, account_id: int) -> t.AccountV2:
        """v2 adds, before the totals, the flags v3 moved to `accountConfig`; its asset rows
        add `marginAvailable`; its positions list every symbol (§2.6)."""
        balances = self._balances(account_id)
        _, multi = self.s.engine.account_flags(account_id)
        f = self.f
        # feeTier, feeBurn, canTrade, canDeposit, canWithdraw, updateTime, multiAssetsMargin,
        # tradeGroupId
        flags = (0, False, True, True, True, 0, multi, -1)
        return t.AccountV2(
            *flags,
            *self._totals(account_id, balances),
            assets=[
                t.AccountV2Asset(*_asset_row(b), margin_available=True, update_time=b.update_time)
                for b in balances
            ],
            positions=[
                t.AccountV2Position(
                    symbol=p.symbol,
                    initial_margin=amount(p.initial_margin),
                    maint_margin=amount(p.maint_margin),
                    unrealized_profit=amount(p.unrealized_pnl),
                    position_initial_margin=amount(p.position_initial_margin),
                    open_order_initial_margin=amount(p.open_order_initial_margin),
                    leverage=str(p.leverage),
                    isolated=p.margin_type == "isolated",
                    entry_price=f.avg(p.symbol, p.entry_price),
                    break_even_price=f.avg(p.symbol, p.breakeven_price),
                    max_notional=amount(p.max_notional),
                    bid_notional=amount(p.bid_notional),
                    ask_notional=amount(p.ask_notional),
                    position_side=str(p.position_side),
                    position_amt=f.qty(p.symbol, p.position_amt),
                    update_time=p.update_time,
                )
                for p in self._positions(account_id)
            ],
        )

    def account_v3(self, account_id: int) -> t.AccountV3:
        """The totals, asset rows without `marginAvailable`, non-zero positions (§2.6)."""
        balances = self._balances(account_id)
        f = self.f
        return t.AccountV3(
            *self._totals(account_id, balances),
            assets=[t.AccountV3Asset(*_asset_row(b), update_time=b.update_time) for b in balances],
            positions=[
                t.AccountV3Position(
                    symbol=p.symbol,
                    position_side=str(p.position_side),
                    position_amt=f.qty(p.symbol, p.position_amt),
                    unrealized_profit=amount(p.unrealized_pnl),
                    isolated_margin=amount(p.isolated_margin),
                    notional=amount(p.notional),
                    isolated_wallet=amount(p.isolated_wallet),
                    initial_margin=amount(p.initial_margin),
                    maint_margin=amount(p.maint_margin),
                    update_time=p.update_time,
                )
                for p in self._positions(account_id)
                if p.position_amt
            ],
        )

    def balance_rows(self, account_id: int) -> list[t.BalanceRow]:
        return [
            t.BalanceRow(
                account_alias=ACCOUNT_ALIAS,
                asset=b.asset,
                balance=amount(b.wallet_balance),
                cross_wallet_balance=amount(b.cross_wallet_balance),
                cross_un_pnl=amount(b.cross_unrealized_pnl),
                available_balance=amount(b.available_balance),
                max_withdraw_amount=amount(b.max_withdraw_amount),
                margin_available=True,
                update_time=b.update_time,
            )
            for b in self._balances(account_id)
        ]

    def _liquidation(self, account_id: int, p: PositionView) -> str:
        """`liquidationPrice`: the FAQ formula (venue/margin.py), "0" when unreachable."""
        price = self.s.engine.risk.liquidation_price(account_id, p.symbol, str(p.position_side))
        return self.f.price(p.symbol, price) if price else "0"

    def position_risk_v2(self, account_id: int, symbol: str | None) -> list[t.PositionRiskV2]:
        f = self.f
        return [
            t.PositionRiskV2(
                entry_price=f.avg(p.symbol, p.entry_price),
                break_even_price=f.avg(p.symbol, p.breakeven_price),
                margin_type=str(p.margin_type),
                is_auto_add_margin="false",
                isolated_margin=amount(p.isolated_margin),
                leverage=str(p.leverage),
                liquidation_price=self._liquidation(account_id, p),
                mark_price=amount(p.mark_price),
                max_notional_value=amount(p.max_notional),
                position_amt=f.qty(p.symbol, p.position_amt),
                notional=amount(p.notional),
                isolated_wallet=amount(p.isolated_wallet),
                symbol=p.symbol,
                un_realized_profit=amount(p.unrealized_pnl),
                position_side=str(p.position_side),
                update_time=p.update_time,
            )
            for p in self._positions(account_id)
            if symbol is None or p.symbol == symbol
        ]

    def position_risk_v3(self, account_id: int, symbol: str | None) -> list[t.PositionRiskV3]:
        f = self.f
        open_symbols = {v.symbol for v in self.s.engine.open_orders(account_id)}
        return [
            t.PositionRiskV3(
                symbol=p.symbol,
                position_side=str(p.position_side),
                position_amt=f.qty(p.symbol, p.position_amt),
                entry_price=f.avg(p.symbol, p.entry_price),
                break_even_price=f.avg(p.symbol, p.breakeven_price),
                mark_price=amount(p.mark_price),
                un_realized_profit=amount(p.unrealized_pnl),
                liquidation_price=self._liquidation(account_id, p),
                isolated_margin=amount(p.isolated_margin),
                notional=amount(p.notional),
                margin_asset=p.margin_asset,
                isolated_wallet=amount(p.isolated_wallet),
                initial_margin=amount(p.initial_margin),
                maint_margin=amount(p.maint_margin),
                position_initial_margin=amount(p.position_initial_margin),
                open_order_initial_margin=amount(p.open_order_initial_margin),
                adl=self.s.engine.risk.adl_quantile(account_id, p.symbol, p.position_side),
                bid_notional=amount(p.bid_notional),
                ask_notional=amount(p.ask_notional),
                update_time=p.update_time,
            )
            for p in self._positions(account_id)
            if (symbol is None or p.symbol == symbol)
            and (p.position_amt or p.symbol in open_symbols)
        ]

    async def get_account_v2(self, call: Call) -> object:
        t.parse_no_params(call.params)
        await self._read(call)
        return self.account_v2(call.account_id)

    async def get_account_v3(self, call: Call) -> object:
        t.parse_no_params(call.params)
        await self._read(call)
        return self.account_v3(call.account_id)

    async def get_balance(self, call: Call) -> object:
        t.parse_no_params(call.params)
        await self._read(call)
        return self.balance_rows(call.account_id)

    async def get_position_risk_v2(self, call: Call) -> object:
        symbol = t.parse_open_orders(call.params, self.s.rules)
        await self._read(call)
        return self.position_risk_v2(call.account_id, symbol)

    async def get_position_risk_v3(self, call: Call) -> object:
        symbol = t.parse_open_orders(call.params, self.s.rules)
        await self._read(call)
        return self.position_risk_v3(call.account_id, symbol)

    async def adl_quantile(self, call: Call) -> object:
        symbol = t.parse_open_orders(call.params, self.s.rules)
        await self._read(call)
        return self.adl_quantiles(call.account_id, symbol)

    def adl_quantiles(self, account_id: int, symbol: str | None) -> list[t.AdlQuantileRow]:
        engine = self.s.engine
        hedge = engine.account_flags(account_id)[0]
        open_by_symbol: dict[str, list[PositionView]] = {}
        for p in self._positions(account_id):
            if p.position_amt and (symbol is None or p.symbol == symbol):
                open_by_symbol.setdefault(p.symbol, []).append(p)
        return [
            t.AdlQuantileRow(
                symbol=name,
                adl_quantile=adl.quantile_sides(
                    hedge and rows[0].margin_type == "cross",
                    {
                        p.position_side: engine.risk.adl_quantile(account_id, name, p.position_side)
                        for p in rows
                    },
                    {p.position_side for p in rows},
                ),
            )
            for name, rows in open_by_symbol.items()
        ]

    async def commission_rate(self, call: Call) -> object:
        symbol = t.parse_symbol(call.params, self.s.rules)
        await self._read(call)
        rates = self.s.engine.commission(call.account_id)
        return t.CommissionRate(
            symbol, _plain(rates.maker_rate), _plain(rates.taker_rate), _plain(Decimal(0))
        )

    async def leverage_bracket(self, call: Call) -> object:
        symbol = t.parse_open_orders(call.params, self.s.rules)
        chosen = [symbol] if symbol is not None else list(self.s.rules)
        rows = [
            t.SymbolBrackets(
                s,
                [
                    t.Bracket(
                        bracket=b.bracket,
                        initial_leverage=b.initial_leverage,
                        notional_cap=float(b.notional_cap),
                        notional_floor=float(b.notional_floor),
                        maint_margin_ratio=float(b.maint_margin_ratio),
                        cum=float(b.cum),
                    )
                    for b in venue_brackets.brackets(s)
                ],
            )
            for s in chosen
        ]
        return rows[0] if symbol is not None else rows

    async def symbol_config(self, call: Call) -> object:
        symbol = t.parse_open_orders(call.params, self.s.rules)
        await self._read(call)
        return [
            t.SymbolConfig(
                symbol=c.symbol,
                margin_type=str(c.margin_type),
                is_auto_add_margin=False,
                leverage=c.leverage,
                max_notional_value=_plain(c.max_notional_value),
            )
            for c in self.s.engine.symbol_config(call.account_id)
            if symbol is None or c.symbol == symbol
        ]

    async def account_config(self, call: Call) -> object:
        t.parse_no_params(call.params)
        await self._read(call)
        dual, multi = self.s.engine.account_flags(call.account_id)
        return t.AccountConfig(0, True, True, True, dual, 0, multi, -1)

    async def get_dual(self, call: Call) -> object:
        t.parse_no_params(call.params)
        return t.DualSideMode(self.s.engine.account_flags(call.account_id)[0])

    async def get_multi(self, call: Call) -> object:
        t.parse_no_params(call.params)
        return t.MultiAssetsMode(self.s.engine.account_flags(call.account_id)[1])

    async def leverage(self, call: Call) -> object:
        change = t.parse_set_leverage(call.params, self.s.rules)
        command = ChangeLeverage(symbol=change.symbol, leverage=change.leverage)
        result = await self.s.execute(call.account_id, command, call.now_ms)
        assert isinstance(result, LeverageView)
        return t.LeverageResponse(result.leverage, _plain(result.max_notional_value), result.symbol)

    async def margin_type(self, call: Call) -> object:
        change = t.parse_set_margin_type(call.params, self.s.rules)
        command = ChangeMarginType(
            symbol=change.symbol, margin_type=MarginCallMarginType(change.margin_type)
        )
        result = await self.s.execute(call.account_id, command, call.now_ms)
        assert isinstance(result, Ack)
        return t.CodeMsg(result.code, result.msg)

    # WebSocket API methods (trading spec §3): the same handlers on signed params

    def ws(
        self, handler: Callable[[Call], Awaitable[object]], orders: int = 0
    ) -> Callable[[int, Params, str, int], Awaitable[object]]:
        """A WebSocket API method on a REST handler; `orders` counts against the account's
        ORDERS limits, which REST and the WebSocket API share (§3, §7)."""
        counts = self.s.trading.order_counts

        # Not a coroutine itself: it hands back the handler's, one coroutine less per request.
        def method(account_id: int, params: Params, version: str, now_ms: int) -> Awaitable[object]:
            if orders:
                counts.charge(account_id, orders, now_ms)
            return handler(Call(account_id, params, now_ms))

        return method

    def ws_versioned(
        self,
        v1: Callable[[Call], Awaitable[object]],
        v2: Callable[[Call], Awaitable[object]],
    ) -> Callable[[int, Params, str, int], Awaitable[object]]:
        async def method(account_id: int, params: Params, version: str, now_ms: int) -> object:
            handler = v2 if version == "v2" else v1
            return await handler(Call(account_id, params, now_ms))

        return method

    # admin

    async def deposit(self, account: Account, request: Request) -> Response:
        asset, value = transfer_of(request.body)
        return await self._transfer(account, Deposit(asset=asset, amount=value))

    async def withdraw(self, account: Account, request: Request) -> Response:
        asset, value = transfer_of(request.body)
        return await self._transfer(account, Withdraw(asset=asset, amount=value))

    async def _transfer(self, account: Account, command: Deposit | Withdraw) -> Response:
        now = self.s.clock_now()
        await self.s.execute(account.id, command, now)
        balances = {b.asset: b for b in self.s.engine.balances(account.id)}
        balance = balances.get(command.asset)
        wallet = balance.wallet_balance if balance is not None else Decimal(0)
        return json_response(
            200, {"accountId": account.id, "asset": command.asset, "balance": amount(wallet)}
        )

    async def commission(self, account: Account, request: Request) -> Response:
        maker, taker = commission_of(request.body)
        await self.s.execute(
            account.id, SetCommission(maker_rate=maker, taker_rate=taker), self.s.clock_now()
        )
        return json_response(
            200, {"accountId": account.id, "maker": _plain(maker), "taker": _plain(taker)}
        )


def _asset_row(b: BalanceView) -> _AssetFigures:
    """An account asset row's figures both versions share, in their order (`asset` to
    `maxWithdrawAmount`); each version adds its own tail."""
    return (
        b.asset,
        amount(b.wallet_balance),
        amount(b.unrealized_pnl),
        amount(b.margin_balance),
        amount(b.maint_margin),
        amount(b.initial_margin),
        amount(b.position_initial_margin),
        amount(b.open_order_initial_margin),
        amount(b.cross_wallet_balance),
        amount(b.cross_unrealized_pnl),
        amount(b.available_balance),
        amount(b.max_withdraw_amount),
    )


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros (`"0.0002"`, `"1000000"`)."""
    text = f"{value.normalize():f}"
    return text if text != "-0" else "0"


def mount(service: VenueService) -> None:
    """Add the venue's REST routes, WebSocket API methods and admin actions."""
    r = VenueRoutes(service)
    api = service.trading
    trade, data = Security.TRADE, Security.USER_DATA
    order = "/fapi/v1/order"
    api.add(order, "POST", Route(trade, 0, r.new_order, orders=1, counted=True))
    api.add(order, "PUT", Route(trade, 0, r.modify_order, orders=1, counted=True))
    api.add(order, "DELETE", Route(trade, 1, r.cancel_order, counted=True))
    api.add(order, "GET", Route(data, 1, r.query_order))
    api.add("/fapi/v1/order/test", "POST", Route(trade, 0, _test_order(r)))
    api.add("/fapi/v1/batchOrders", "POST", Route(trade, 5, r.batch_orders, orders=5, counted=True))
    api.add("/fapi/v1/batchOrders", "DELETE", Route(trade, 1, r.cancel_batch, counted=True))
    api.add("/fapi/v1/allOpenOrders", "DELETE", Route(trade, 1, r.cancel_all, counted=True))
    api.add("/fapi/v1/countdownCancelAll", "POST", Route(trade, 10, r.countdown))
    api.add("/fapi/v1/openOrder", "GET", Route(data, 1, r.open_order))
    api.add("/fapi/v1/openOrders", "GET", Route(data, 1, r.open_orders, weight_without_symbol=40))
    api.add("/fapi/v1/allOrders", "GET", Route(data, 5, r.all_orders))
    api.add("/fapi/v1/userTrades", "GET", Route(data, 5, r.user_trades))
    api.add("/fapi/v2/account", "GET", Route(data, 5, r.get_account_v2))
    api.add("/fapi/v3/account", "GET", Route(data, 5, r.get_account_v3))
    api.add("/fapi/v2/balance", "GET", Route(data, 5, r.get_balance))
    api.add("/fapi/v3/balance", "GET", Route(data, 5, r.get_balance))
    api.add("/fapi/v2/positionRisk", "GET", Route(data, 5, r.get_position_risk_v2))
    api.add("/fapi/v3/positionRisk", "GET", Route(data, 5, r.get_position_risk_v3))
    api.add("/fapi/v1/adlQuantile", "GET", Route(data, 5, r.adl_quantile))
    api.add("/fapi/v1/commissionRate", "GET", Route(data, 20, r.commission_rate))
    api.add("/fapi/v1/leverageBracket", "GET", Route(data, 1, r.leverage_bracket))
    api.add("/fapi/v1/symbolConfig", "GET", Route(data, 5, r.symbol_config))
    api.add("/fapi/v1/accountConfig", "GET", Route(data, 5, r.account_config))
    api.add("/fapi/v1/positionSide/dual", "GET", Route(data, 30, r.get_dual))
    api.add("/fapi/v1/multiAssetsMargin", "GET", Route(data, 30, r.get_multi))
    api.add("/fapi/v1/leverage", "POST", Route(trade, 1, r.leverage))
    api.add("/fapi/v1/marginType", "POST", Route(trade, 1, r.margin_type))

    methods = service.ws_methods
    methods["order.place"] = r.ws(r.new_order, orders=1)
    methods["order.modify"] = r.ws(r.modify_order, orders=1)
    methods["order.cancel"] = r.ws(r.cancel_order)
    methods["order.status"] = r.ws(r.query_order)
    methods["account.status"] = r.ws_versioned(r.get_account_v2, r.get_account_v3)
    methods["account.balance"] = r.ws(r.get_balance)
    methods["account.position"] = r.ws_versioned(r.get_position_risk_v2, r.get_position_risk_v3)

    # Algo orders, income, position and multi-assets modes, isolated margin (issue 13).
    from userstream.server.algo import mount_algo

    mount_algo(service, r.f)

    refusal = api.refusal
    if refusal is not None:
        for name in list(methods):
            methods[name] = _refusing(refusal)
        return
    actions = service.admin_routes.actions
    actions["deposit"] = r.deposit
    actions["withdraw"] = r.withdraw
    actions["commission"] = r.commission


def _refusing(refusal: BinanceAPIError) -> Callable[[int, Params, str, int], Awaitable[object]]:
    async def method(account_id: int, params: Params, version: str, now_ms: int) -> object:
        raise refusal

    return method


def _test_order(r: VenueRoutes) -> Callable[[Call], Awaitable[object]]:
    async def handler(call: Call) -> object:
        # Same parameter checks, no order (§2.3 "POST /fapi/v1/order/test").
        t.parse_new_order(call.params, r.s.rules)
        return {}

    return handler
