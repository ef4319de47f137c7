"""The Algo Order API, income history and the position/asset mode switches on the venue
(trading spec §2.4, §2.6, §5.7, §5.8): thin handlers over `Engine.risk`.

Routes (weights per §2.4): `POST /fapi/v1/algoOrder` (order counts 1/1, IP 0), `DELETE` and
`GET /fapi/v1/algoOrder` (1), `GET /fapi/v1/openAlgoOrders` (1, 40 without `symbol`),
`GET /fapi/v1/allAlgoOrders` (5), `DELETE /fapi/v1/algoOpenOrders` (1); WS API
`algoOrder.place` / `algoOrder.cancel`.
They also serve `GET /fapi/v1/income`, `POST /fapi/v1/positionSide/dual`,
`POST /fapi/v1/multiAssetsMargin` and `POST /fapi/v1/positionMargin`: the engine keeps an
income ledger, supports both modes and moves isolated margin.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Final

import msgspec

from userstream.accounts import Account
from userstream.exceptions import BinanceAPIError
from userstream.market.controls import SetPrice
from userstream.market.synthetic import SyntheticMarket
from userstream.market.types import Side as MarketSide
from userstream.protocol import algo as a
from userstream.protocol import trading as t
from userstream.protocol.signing import Params, Security
from userstream.server.http import Request, Response
from userstream.server.responses import json_response
from userstream.server.trading import Call, Route
from userstream.server.venue_admin import bad, decode
from userstream.venue.algo import AlgoRecord, CancelAlgoOrder, NewAlgoOrder
from userstream.venue.risk import RiskOutcome
from userstream.venue.views import Ack, VenueError

if TYPE_CHECKING:
    from userstream.server.market import MarketService
    from userstream.server.venue_routes import Formats
    from userstream.server.venue_service import VenueService

__all__ = ["AlgoRoutes", "RiskAdmin", "mount_algo", "publish_force_orders"]


class AlgoRoutes:
    def __init__(self, service: VenueService, formats: Formats) -> None:
        self.s = service
        self.f = formats

    async def _apply(self, account_id: int, outcome: RiskOutcome) -> object:
        """Publish the outcome's events; raise its refusal as Binance's error (no event)."""
        if outcome.events:
            await self.s.publish(account_id, outcome.events)
        if isinstance(outcome.result, VenueError):
            raise outcome.result.to_api_error()
        return outcome.result

    def algo(self, record: AlgoRecord, query: bool = False) -> a.AlgoOrderResponse:
        f, symbol = self.f, record.symbol
        trailing = record.is_trailing
        triggered = record.actual_order_id != 0
        return a.AlgoOrderResponse(
            algo_id=record.algo_id,
            client_algo_id=record.client_algo_id,
            algo_type="CONDITIONAL",
            order_type=record.order_type,
            symbol=symbol,
            side=record.side,
            position_side=str(record.position_side),
            time_in_force=str(record.time_in_force),
            quantity=f.qty(symbol, record.quantity),
            algo_status=record.status,
            trigger_price=f.price(symbol, record.trigger_price),
            price=f.price(symbol, record.price),
            self_trade_prevention_mode=str(record.self_trade_prevention_mode),
            working_type=record.working_type,
            price_match=str(record.price_match),
            close_position=record.close_position,
            price_protect=record.price_protect,
            reduce_only=record.reduce_only,
            create_time=record.create_time,
            update_time=record.update_time,
            trigger_time=record.trigger_time,
            good_till_date=record.good_till_date,
            activate_price=(
                f.price(symbol, record.activate_price)
                if trailing and record.activate_price is not None
                else None
            ),
            callback_rate=(
                t.fmt(record.callback_rate, 2)
                if trailing and record.callback_rate is not None
                else None
            ),
            actual_order_id=(str(record.actual_order_id) if triggered else "") if query else None,
            actual_price=f.avg(symbol, record.actual_price) if query else None,
            actual_type=record.actual_type if query else None,
            actual_qty=f.qty(symbol, record.executed_qty) if query else None,
        )

    async def place(self, call: Call) -> object:
        r = a.parse_algo_order(call.params, self.s.rules)
        await self.s.ensure(call.account_id, call.now_ms)
        command = NewAlgoOrder(
            symbol=r.symbol,
            side=r.side,
            order_type=r.order_type,
            algo_type=r.algo_type,
            quantity=r.quantity,
            price=r.price,
            trigger_price=r.trigger_price,
            time_in_force=r.time_in_force,
            position_side=r.position_side,
            working_type=r.working_type,
            price_match=r.price_match,
            close_position=r.close_position,
            price_protect=r.price_protect,
            reduce_only=r.reduce_only,
            activate_price=r.activate_price,
            callback_rate=r.callback_rate,
            client_algo_id=r.client_algo_id,
            self_trade_prevention_mode=r.self_trade_prevention_mode,
            good_till_date=r.good_till_date,
        )
        outcome = self.s.engine.risk.new_algo_order(call.account_id, command, call.now_ms)
        result = await self._apply(call.account_id, outcome)
        assert isinstance(result, AlgoRecord)
        return self.algo(result)

    async def cancel(self, call: Call) -> object:
        ref = a.parse_algo_ref(call.params)
        command = CancelAlgoOrder(algo_id=ref.algo_id, client_algo_id=ref.client_algo_id)
        outcome = self.s.engine.risk.cancel_algo_order(call.account_id, command, call.now_ms)
        result = await self._apply(call.account_id, outcome)
        assert isinstance(result, AlgoRecord)
        return a.AlgoCancelResponse(result.algo_id, result.client_algo_id, "200", "success")

    async def query(self, call: Call) -> object:
        ref = a.parse_algo_ref(call.params)
        found = self.s.engine.risk.algo_order(call.account_id, ref.algo_id, ref.client_algo_id)
        if isinstance(found, VenueError):
            raise found.to_api_error()
        return self.algo(found, query=True)

    async def open_orders(self, call: Call) -> object:
        symbol = a.parse_algo_list(call.params, self.s.rules, symbol_required=False)
        return [self.algo(r) for r in self.s.engine.risk.open_algo_orders(call.account_id, symbol)]

    async def all_orders(self, call: Call) -> object:
        symbol = a.parse_algo_list(call.params, self.s.rules, symbol_required=False)
        rows = self.s.engine.risk.all_algo_orders(call.account_id, symbol)
        return [self.algo(r, query=True) for r in rows]

    async def cancel_all(self, call: Call) -> object:
        symbol = a.parse_algo_list(call.params, self.s.rules, symbol_required=True)
        assert symbol is not None
        outcome = self.s.engine.risk.cancel_all_algo_orders(call.account_id, symbol, call.now_ms)
        await self._apply(call.account_id, outcome)
        return t.CodeMsg(200, "The operation of cancel all open order is done.")

    async def income(self, call: Call) -> object:
        q = t.parse_income(call.params, self.s.rules)
        rows = self.s.engine.risk.income(
            call.account_id,
            call.now_ms,
            income_type=q.income_type,
            symbol=q.symbol,
            start_ms=q.start_time,
            end_ms=q.end_time,
            limit=q.limit,
        )
        return [
            t.IncomeRow(
                symbol=row.symbol,
                income_type=row.income_type,
                income=t.fmt(row.income, 8),
                asset=row.asset,
                info=row.info,
                time=row.time,
                tran_id=row.tran_id,
                trade_id=row.trade_id,
            )
            for row in rows
        ]

    async def set_dual(self, call: Call) -> object:
        wanted = t.parse_set_dual_side(call.params)
        outcome = self.s.engine.risk.set_position_mode(call.account_id, wanted, call.now_ms)
        await self._apply(call.account_id, outcome)
        self.s.mark_changed()
        return t.CodeMsg(200, "success")

    async def position_margin(self, call: Call) -> object:
        change = t.parse_position_margin(call.params, self.s.rules)
        outcome = self.s.engine.risk.position_margin(
            call.account_id,
            change.symbol,
            change.position_side,
            change.amount,
            change.add,
            call.now_ms,
        )
        result = await self._apply(call.account_id, outcome)
        assert isinstance(result, Ack)
        return t.PositionMarginResponse(
            float(change.amount), 200, result.msg, 1 if change.add else 2
        )

    async def set_multi(self, call: Call) -> object:
        wanted = t.parse_set_multi_assets(call.params)
        outcome = self.s.engine.risk.set_multi_assets(call.account_id, wanted, call.now_ms)
        await self._apply(call.account_id, outcome)
        return t.CodeMsg(200, "success")


class _Target(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    position_side: str = msgspec.field(default="BOTH", name="positionSide")


# How far past the liquidation price the market is set, so the next mark crosses it.
_OVERSHOOT: Final = Decimal("0.002")


class RiskAdmin:
    """`POST /admin/v1/accounts/{id}/marginCall` and `/liquidate` `{"symbol": "BTCUSDT"}`
    (issue 13 item 6): jump the synthetic market's price between the account's margin-call
    price (margin ratio 80 %) and its liquidation price, or just past the liquidation price,
    on that symbol; the venue then sends MARGIN_CALL, or liquidates, on the market's next
    mark updates. Answers the target and the
    price set. 409 when the market takes no operator moves, 400 without a position."""

    def __init__(self, service: VenueService) -> None:
        self.s = service

    async def margin_call(self, account: Account, request: Request) -> Response:
        return await self._drive(account, request, self.s.engine.risk.margin_call_ratio)

    async def liquidate(self, account: Account, request: Request) -> Response:
        return await self._drive(account, request, Decimal(1))

    async def _drive(self, account: Account, request: Request, ratio: Decimal) -> Response:
        body = decode(request.body, _Target)
        market = self.s.market
        source = market.source if market is not None else None
        if not isinstance(source, SyntheticMarket):
            raise BinanceAPIError(-1000, "This market takes no operator moves.", 409)
        if body.symbol not in self.s.rules:
            raise bad(f"unknown symbol {body.symbol!r}")
        now = self.s.clock_now()
        await self.s.ensure(account.id, now)
        engine = self.s.engine
        risk = engine.risk
        target = risk.liquidation_price(account.id, body.symbol, body.position_side, ratio)
        if not target:
            raise bad("no position whose margin can be driven there on this symbol")
        liquidation = risk.liquidation_price(account.id, body.symbol, body.position_side)
        if ratio < 1:
            # A quarter of the way from the margin-call price to the liquidation price:
            # with a low maintenance rate the two are close, and the call must not liquidate.
            price = target + (liquidation - target) / 4
        else:
            mark = risk.mark_price(body.symbol)
            price = target * (1 - _OVERSHOOT) if target < mark else target * (1 + _OVERSHOOT)
        price = self.s.engine.risk.on_tick(body.symbol, price)
        source.control(SetPrice(body.symbol, price), now)
        return json_response(
            200,
            {
                "accountId": account.id,
                "symbol": body.symbol,
                "target": f"{target.normalize():f}",
                "price": f"{price.normalize():f}",
                "time": now,
            },
        )


def publish_force_orders(service: VenueService, market: MarketService) -> None:
    """Feed the liquidations of the last market batch to `@forceOrder` (issue 13 item 3)."""
    for order in service.engine.risk.drain_force_orders():
        market.publish_force_order(
            order.symbol,
            MarketSide(order.side),
            order.quantity,
            order.price,
            order.average_price,
            order.trade_time,
        )


def mount_algo(service: VenueService, formats: Formats) -> None:
    """Add the algo routes and methods, income, the mode switches and isolated margin."""
    r = AlgoRoutes(service, formats)
    api = service.trading
    trade, data = Security.TRADE, Security.USER_DATA
    path = "/fapi/v1/algoOrder"
    api.add(path, "POST", Route(trade, 0, r.place, orders=1, counted=True))
    api.add(path, "DELETE", Route(trade, 1, r.cancel, counted=True))
    api.add(path, "GET", Route(data, 1, r.query))
    # Weight 1 for one symbol, 40 without: Binance's "Current All Algo Open Orders" page.
    api.add(
        "/fapi/v1/openAlgoOrders", "GET", Route(data, 1, r.open_orders, weight_without_symbol=40)
    )
    api.add("/fapi/v1/allAlgoOrders", "GET", Route(data, 5, r.all_orders))
    api.add("/fapi/v1/algoOpenOrders", "DELETE", Route(trade, 1, r.cancel_all, counted=True))
    api.add("/fapi/v1/income", "GET", Route(data, 30, r.income))
    api.add("/fapi/v1/positionSide/dual", "POST", Route(trade, 1, r.set_dual))
    api.add("/fapi/v1/multiAssetsMargin", "POST", Route(trade, 1, r.set_multi))
    api.add("/fapi/v1/positionMargin", "POST", Route(trade, 1, r.position_margin))

    async def place(account_id: int, params: Params, version: str, now_ms: int) -> object:
        return await r.place(Call(account_id, params, now_ms))

    async def cancel(account_id: int, params: Params, version: str, now_ms: int) -> object:
        return await r.cancel(Call(account_id, params, now_ms))

    admin = RiskAdmin(service)
    service.admin_routes.actions["marginCall"] = admin.margin_call
    service.admin_routes.actions["liquidate"] = admin.liquidate

    service.ws_methods["algoOrder.place"] = place
    service.ws_methods["algoOrder.cancel"] = cancel
