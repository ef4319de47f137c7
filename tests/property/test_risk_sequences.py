"""Random sequences with conditional orders, funding instants, price paths through triggers
and liquidation prices, isolated and cross margin, one-way and hedge mode (issue 13 "Tests
and proof"). After every step, for every account:

(a) folding the events the account received reproduces the engine's snapshot;
(b) wallet = deposits + realized PnL − fees ± funding − liquidation fees + insurance
    clearing, i.e. exactly the sum of the account's income rows;
(c) no negative wallet: a liquidation closes at the fee-net bankruptcy price, and the
    insurance fund clears any cross deficit (Binance's rule for users, INSURANCE_CLEAR);
(d) isolated losses never exceed isolated margin: on a price move, an account whose
    positions are all isolated loses at most their isolated wallets plus the fees it pays;
(e) the algo orders waiting for their trigger are exactly the NEW ones; a TRIGGERED one has
    its child order open (it becomes FINISHED when the child ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.venue_fixtures import HandMarket, venue_symbols
from userstream.market.types import FundingSettlement, MarketUpdate
from userstream.protocol.events import (
    Event,
    MarginCallMarginType,
    MarginType,
    OrderType,
    PositionSide,
    Side,
)
from userstream.protocol.fold import AccountFold
from userstream.venue import (
    ChangeLeverage,
    ChangeMarginType,
    Deposit,
    Engine,
    NewOrder,
    OrderView,
)
from userstream.venue.algo import CancelAlgoOrder, NewAlgoOrder

D = Decimal
BTC = "BTCUSDT"
ACCOUNTS = (1, 2)
BASE = D(100000)


@dataclass(frozen=True)
class Trade:
    account: int
    side: str
    qty: int  # thousandths
    hedge_side: str


@dataclass(frozen=True)
class Algo:
    account: int
    order_type: str
    side: str
    offset: int  # basis points from the price, signed
    close: bool
    working_type: str
    hedge_side: str


@dataclass(frozen=True)
class CancelAlgo:
    account: int
    pick: int


@dataclass(frozen=True)
class Move:
    bps: int  # the new price, in basis points from the current one


@dataclass(frozen=True)
class Funding:
    rate: int  # hundredths of a basis point


@dataclass(frozen=True)
class Config:
    account: int
    leverage: int
    isolated: bool
    hedge: bool


Action = Trade | Algo | CancelAlgo | Move | Funding | Config

sides = st.sampled_from(["BUY", "SELL"])
hedge_sides = st.sampled_from(["LONG", "SHORT"])
actions = st.one_of(
    st.builds(Trade, st.sampled_from(ACCOUNTS), sides, st.integers(1, 600), hedge_sides),
    st.builds(
        Algo,
        st.sampled_from(ACCOUNTS),
        st.sampled_from(
            ["STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET"]
        ),
        sides,
        st.integers(-400, 400),
        st.booleans(),
        st.sampled_from(["MARK_PRICE", "CONTRACT_PRICE"]),
        hedge_sides,
    ),
    st.builds(CancelAlgo, st.sampled_from(ACCOUNTS), st.integers(0, 5)),
    st.builds(Move, st.integers(-300, 300)),
    st.builds(Move, st.integers(-300, 300)),
    st.builds(Move, st.integers(-1200, 1200)),
    st.builds(Funding, st.integers(-300, 300)),
    st.builds(Config, st.sampled_from(ACCOUNTS), st.integers(1, 50), st.booleans(), st.booleans()),
)


class Harness:
    def __init__(self) -> None:
        self.market = HandMarket([BTC])
        self.price = BASE
        self._set_book()
        self.engine = Engine(venue_symbols(BTC), self.market)
        self.now = 1
        self.folds: dict[int, AccountFold] = {}
        for account in ACCOUNTS:
            self.engine.handle(account, Deposit(asset="USDT", amount=D(3000)), self.now)
            self.folds[account] = AccountFold(self.engine.snapshot(account))

    def _set_book(self) -> None:
        p = self.price
        self.market.set_book(BTC, [(str(p - D("0.1")), "100")], [(str(p), "100")], mark=str(p))

    def deliver(self, account: int, events: object) -> None:
        assert isinstance(events, (list, tuple))
        for event in events:
            self.folds[account].apply(event)

    def deliver_all(self, out: dict[int, list[Event]]) -> None:
        for account, events in out.items():
            self.deliver(account, events)

    def run(self, action: Action) -> None:
        self.now += 1000
        engine, now = self.engine, self.now
        hedge = {a: engine.account_flags(a)[0] for a in ACCOUNTS}
        if isinstance(action, Trade):
            cmd = NewOrder(
                symbol=BTC,
                side=Side(action.side),
                order_type=OrderType.MARKET,
                quantity=D(action.qty) / 1000,
                position_side=PositionSide(action.hedge_side) if hedge[action.account] else None,
            )
            self.deliver(action.account, engine.handle(action.account, cmd, now).events)
        elif isinstance(action, Algo):
            self._algo(action, hedge[action.account])
        elif isinstance(action, CancelAlgo):
            open_algos = engine.risk.open_algo_orders(action.account)
            if open_algos:
                chosen = open_algos[action.pick % len(open_algos)]
                outcome = engine.risk.cancel_algo_order(
                    action.account, CancelAlgoOrder(algo_id=chosen.algo_id), now
                )
                self.deliver(action.account, outcome.events)
        elif isinstance(action, Move):
            self._move(action)
        elif isinstance(action, Funding):
            settle = FundingSettlement(BTC, now, D(action.rate) / 1_000_000, self.price)
            self.deliver_all(engine.on_market([settle], now))
        else:
            self._config(action)
        self.check()

    def _algo(self, action: Algo, hedge: bool) -> None:
        trigger = (self.price * (1 + D(action.offset) / 10_000)).quantize(D("0.1"))
        trailing = action.order_type == "TRAILING_STOP_MARKET"
        limit = action.order_type in ("STOP", "TAKE_PROFIT")
        close = action.close and action.order_type in ("STOP_MARKET", "TAKE_PROFIT_MARKET")
        cmd = NewAlgoOrder(
            symbol=BTC,
            side=action.side,
            order_type=action.order_type,
            quantity=None if close else D("0.05"),
            price=trigger if limit else None,
            time_in_force="GTC" if limit else None,
            trigger_price=None if trailing else trigger,
            activate_price=trigger if trailing and action.offset % 2 else None,
            callback_rate=D(abs(action.offset) % 50 + 1) / 10 if trailing else None,
            close_position=True if close else None,
            working_type=action.working_type,
            position_side=action.hedge_side if hedge else None,
        )
        outcome = self.engine.risk.new_algo_order(action.account, cmd, self.now)
        self.deliver(action.account, outcome.events)

    def _move(self, action: Move) -> None:
        self.price = max((self.price * (1 + D(action.bps) / 10_000)).quantize(D("0.1")), D(1000))
        self._set_book()
        updates: list[MarketUpdate] = [
            self.market.mark(BTC),
            self.market.trade(BTC, str(self.price), "1", buyer_is_maker=action.bps < 0),
        ]
        before = {a: self._isolated_margin(a) for a in ACCOUNTS}
        self.deliver_all(self.engine.on_market(updates, self.now))
        for account, held in before.items():
            if held is None:
                continue
            wallet, margin = held
            after = self.engine.snapshot(account).balances["USDT"].wallet_balance
            fees = -sum(
                (
                    r.income
                    for r in self.engine.risk.income(account, self.now, start_ms=self.now)
                    if r.income_type == "COMMISSION"
                ),
                D(0),
            )
            assert wallet - after <= margin + fees  # (d)

    def _isolated_margin(self, account: int) -> tuple[Decimal, Decimal] | None:
        """(wallet, Σ isolated wallets) of an account whose positions are all isolated."""
        snapshot = self.engine.snapshot(account)
        if not snapshot.positions or any(
            p.margin_type != MarginType.ISOLATED for p in snapshot.positions.values()
        ):
            return None
        margin = sum((p.isolated_wallet for p in snapshot.positions.values()), D(0))
        return snapshot.balances["USDT"].wallet_balance, margin

    def _config(self, action: Config) -> None:
        engine, account, now = self.engine, action.account, self.now
        self.deliver(
            account,
            engine.handle(
                account, ChangeLeverage(symbol=BTC, leverage=action.leverage), now
            ).events,
        )
        margin = MarginCallMarginType.ISOLATED if action.isolated else MarginCallMarginType.CROSSED
        self.deliver(
            account,
            engine.handle(account, ChangeMarginType(symbol=BTC, margin_type=margin), now).events,
        )
        self.deliver(account, engine.risk.set_position_mode(account, action.hedge, now).events)
        self.folds[account].state.dual_side_position = engine.account_flags(account)[0]

    def check(self) -> None:
        engine = self.engine
        for account in ACCOUNTS:
            snapshot = engine.snapshot(account)
            assert self.folds[account].state == snapshot  # (a)
            wallet = snapshot.balances["USDT"].wallet_balance
            rows = engine.risk.income(account, self.now, start_ms=0, limit=10**9)
            assert wallet == sum((r.income for r in rows), D(0))  # (b)
            assert wallet >= 0  # (c)
            for balance in engine.balances(account):
                assert balance.available_balance >= 0
        book = engine.risk.algo_book
        waiting = [r for r in book.state.orders.values() if r.status == "NEW"]
        assert len(book) == len(waiting)  # (e)
        for record in book.state.orders.values():
            assert record.status != "TRIGGERING"
            if record.status == "TRIGGERED":
                child = engine.order(record.account_id, BTC, record.actual_order_id)
                assert isinstance(child, OrderView)
                assert child.is_open


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=10, max_size=60))
def test_risk_sequences_keep_the_invariants(script: list[Action]) -> None:
    harness = Harness()
    for action in script:
        harness.run(action)
