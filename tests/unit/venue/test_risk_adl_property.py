"""Random sequences with several accounts on both sides of BTCUSDT, a book the operator thins
(so forced orders spill into ADL), price gaps and a multi-assets account holding USDC and BTC
collateral. After every step, for every account:

(a) folding the events the account received reproduces the engine's snapshot (the ADL
    counterparties' cancels, CALCULATED fills and ACCOUNT_UPDATEs, AUTO_EXCHANGE included);
(b) each asset's wallet is exactly the sum of that asset's income rows (deposits, realized
    PnL, fees, funding, auto-exchange, insurance clearing);
(c) no wallet is negative, except the multi-assets account's USDT wallet while it holds a
    position: fees and losses may take it below zero with the collateral behind it (Binance
    auto-exchanges at a threshold, at liquidation, or once nothing is open; the venue does the
    last two);
(d) ADL closes, in a step, no more than the forced orders of that step left over, and on the
    other side of them (a liquidated long's remainder is bought back from shorts).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.venue_fixtures import HandMarket, venue_symbols
from userstream.market.types import FundingSettlement
from userstream.protocol.events import Event, OrderTradeUpdate, OrderType, Side
from userstream.protocol.fold import AccountFold
from userstream.venue import ChangeLeverage, Deposit, Engine, NewOrder

D = Decimal
BTC = "BTCUSDT"
ACCOUNTS = (1, 2, 3, 4)
MULTI = 4
BASE = D(100000)


@dataclass(frozen=True)
class Trade:
    account: int
    side: str
    qty: int  # thousandths


@dataclass(frozen=True)
class Move:
    bps: int
    depth: int  # thousandths of BTC on each side at the touch; 0: an empty book


@dataclass(frozen=True)
class Funding:
    rate: int


@dataclass(frozen=True)
class Leverage:
    account: int
    leverage: int


Action = Trade | Move | Funding | Leverage

actions = st.one_of(
    st.builds(
        Trade, st.sampled_from(ACCOUNTS), st.sampled_from(["BUY", "SELL"]), st.integers(1, 400)
    ),
    st.builds(Move, st.integers(-1500, 1500), st.sampled_from([0, 5, 50, 100_000])),
    st.builds(Move, st.integers(-300, 300), st.sampled_from([0, 5, 50, 100_000])),
    st.builds(Funding, st.integers(-300, 300)),
    st.builds(Leverage, st.sampled_from(ACCOUNTS), st.integers(5, 100)),
)


class Harness:
    def __init__(self) -> None:
        self.market = HandMarket([BTC])
        self.price = BASE
        self._set_book(100_000)
        self.engine = Engine(venue_symbols(BTC), self.market)
        self.now = 1
        self.adl_fills = 0
        self.step_adl = {Side.BUY: D(0), Side.SELL: D(0)}
        for account in ACCOUNTS:
            self.engine.handle(account, Deposit(asset="USDT", amount=D(2000)), self.now)
        self.engine.risk.set_multi_assets(MULTI, True, self.now)
        self.engine.handle(MULTI, Deposit(asset="USDC", amount=D(1500)), self.now)
        self.engine.handle(MULTI, Deposit(asset="BTC", amount=D("0.01")), self.now)
        self.folds = {a: AccountFold(self.engine.snapshot(a)) for a in ACCOUNTS}

    def _set_book(self, depth: int) -> None:
        p, q = self.price, str(D(depth) / 1000)
        bids = [(str(p - D("0.1")), q)] if depth else []
        asks = [(str(p), q)] if depth else []
        self.market.set_book(BTC, bids, asks, mark=str(p))

    def deliver(self, out: dict[int, list[Event]]) -> None:
        for account, events in out.items():
            for event in events:
                self.folds[account].apply(event)
                if isinstance(event, OrderTradeUpdate) and event.order.client_order_id.startswith(
                    "adl_autoclose-"
                ):
                    self.adl_fills += 1
                    o = event.order
                    self.step_adl[Side(o.side)] += o.last_filled_quantity

    def run(self, action: Action) -> None:
        self.now += 1000
        self.step_adl = {Side.BUY: D(0), Side.SELL: D(0)}
        engine, now = self.engine, self.now
        if isinstance(action, Trade):
            cmd = NewOrder(
                symbol=BTC,
                side=Side(action.side),
                order_type=OrderType.MARKET,
                quantity=D(action.qty) / 1000,
            )
            self.deliver({action.account: list(engine.handle(action.account, cmd, now).events)})
        elif isinstance(action, Move):
            self.price = max(
                (self.price * (1 + D(action.bps) / 10_000)).quantize(D("0.1")), D(1000)
            )
            self._set_book(action.depth)
            self.deliver(engine.on_market([self.market.mark(BTC)], now))
            forced = engine.risk.drain_force_orders()
            sold = sum((f.quantity for f in forced if f.side == "SELL"), D(0))
            bought = sum((f.quantity for f in forced if f.side == "BUY"), D(0))
            assert self.step_adl[Side.BUY] <= sold  # (d)
            assert self.step_adl[Side.SELL] <= bought
        elif isinstance(action, Funding):
            settle = FundingSettlement(BTC, now, D(action.rate) / 1_000_000, self.price)
            self.deliver(engine.on_market([settle], now))
        else:
            outcome = engine.handle(
                action.account, ChangeLeverage(symbol=BTC, leverage=action.leverage), now
            )
            self.deliver({action.account: list(outcome.events)})
        self.check()

    def check(self) -> None:
        engine = self.engine
        for account in ACCOUNTS:
            snapshot = engine.snapshot(account)
            assert self.folds[account].state == snapshot  # (a)
            rows = engine.risk.income(account, self.now, start_ms=0, limit=10**9)
            for asset, balance in snapshot.balances.items():
                total = sum((r.income for r in rows if r.asset == asset), D(0))
                assert balance.wallet_balance == total  # (b)
                backed = account == MULTI and asset == "USDT" and snapshot.positions
                assert backed or balance.wallet_balance >= 0  # (c)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=10, max_size=50))
def test_adl_and_multi_assets_sequences_keep_the_invariants(script: list[Action]) -> None:
    harness = Harness()
    for action in script:
        harness.run(action)


def test_the_sequences_reach_adl() -> None:
    """The strategy above is not vacuous: this fixed script deleverages."""
    harness = Harness()
    for action in (
        Trade(1, "BUY", 300),
        Trade(2, "SELL", 200),
        Trade(3, "SELL", 200),
        Leverage(1, 100),
        Move(-1500, 0),
    ):
        harness.run(action)
    assert harness.adl_fills >= 1
