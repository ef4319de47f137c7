"""A seeded synthetic market for every symbol in exchangeInfo (market-data spec §7).

Time runs on a fixed grid of `STEP_MS` steps from `start_ms`; a step is generated as soon as
`now_ms` reaches its start, and its updates come out as `now_ms` passes their times. Each step
draws only from the symbol's own PRNGs, one per `(seed, symbol, component)`, so the market
depends on the seed and the step index alone: advancing to a time in one call or in many
gives the same updates and the same book.

Per symbol and step:
- the *fair* price takes a log-normal step (σ ≈ 0.01 %/s, ≈ 55 %/year), or follows an
  operator path (`controls`);
- the book re-centres on it: best bid and ask one tick apart ~90 % of steps (2–5 otherwise),
  an L1 of 0.5–6 BTC-equivalent, thin levels within `dense` ticks (Poisson add/cancel),
  deeper tiers on fixed multiples of the tick out to ±0.2 % and ±5 % sized to the spec's
  cumulative depth; levels are anchored to prices, so a move changes only the levels it
  crosses;
- trades arrive as a Poisson process (≈ 40/s for BTCUSDT, scaled by `reference.ACTIVITY`),
  log-normal sizes, the aggressor leaning toward the next move; each taker walks the book
  from the touch, and the book change it causes follows its trades at the same instant.
Each whole second: the index (fair × (1 + an OU basis, ±0.02 %, half-life 3 min)), a premium
sample every 5 s from the impact prices, the funding estimate and the mark by the median rule
(spec §4), and funding settlements at each symbol's funding instants.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Final

from userstream.market.book import OrderBook
from userstream.market.controls import (
    Crash,
    DriftTo,
    MarketControl,
    Pause,
    Resume,
    SetFundingRate,
    SetPrice,
    ThinBook,
    WidenSpread,
)
from userstream.market.reference import ACTIVITY, DEFAULT_ACTIVITY, reference_price
from userstream.market.types import (
    BookUpdate,
    FundingSettlement,
    Level,
    MarketUpdate,
    MarkUpdate,
    Trade,
)
from userstream.protocol.exchange_info import LotSize, PriceFilter, Symbol

__all__ = ["STEP_MS", "SyntheticMarket", "funding_rate"]

STEP_MS: Final = 100

_SIGMA_PER_S: Final = 1e-4  # log-volatility per second (spec §7: ≈ 0.01 %/s)
_SIGMA_STEP: Final = _SIGMA_PER_S * math.sqrt(STEP_MS / 1000)
_BTC_PRICE: Final = 65000.0  # sizes are given in BTC-equivalent notional at this price
_TRADES_PER_S: Final = 40.0  # BTCUSDT (spec §7: 20–60/s)
_WIDE_SPREAD_P: Final = 0.1  # share of steps with a 2–5 tick spread
_DENSE: Final = 10  # ticks beyond the touch where thin levels sit
_DENSE_P: Final = 0.6  # chance a dense tick holds a level
_CHURN_PER_STEP: Final = 1.0  # Poisson add/cancel events per side and step (× activity)
_L1_REDRAW_P: Final = 0.2  # chance per step that the touch's queue changes size
_L1: Final = (0.5, 6.0)  # L1 size range, BTC-equivalent (spec §7)
_THIN: Final = (0.001, 0.05)  # L2–L5 size range
_TIER1_DEPTH: Final = 600.0  # cumulative within 0.2 % per side (spec §7: 400–800)
_TIER2_DEPTH: Final = 7500.0  # cumulative from 0.2 % to 5 % (spec §7: 7–10 k within 5 %)
_TRADE_MEDIAN: Final = 0.005  # median trade size, BTC-equivalent (spec §7: 0.002–0.01)
_TRADE_SIGMA: Final = 1.2  # log-normal spread of trade sizes (heavy tail)
_MAX_TAKER_LEVELS: Final = 5
_BASIS_SD: Final = 1e-4  # stationary sd of the index basis (±0.02 % at 2 sd)
_BASIS_HALF_LIFE_S: Final = 180.0
_INTEREST_8H: Final = 0.0001  # spec §4: 0.01 % per 8 h
_PREMIUM_CLAMP: Final = 0.0005  # spec §4: clamp(i − P̄, ±0.05 %)
_BASIS_WINDOW: Final = 60  # 5 s samples over 5 minutes for the mark's MA(basis)
_FUNDING_HOURS: Final = 8
_OPEN_INTEREST_USD: Final = 8e9  # BTCUSDT-like open interest in notional, × activity
_EIGHT_DP: Final = Decimal("0.00000001")


def funding_rate(average_premium: float, interest: float, floor: float, cap: float) -> float:
    """F = P̄ + clamp(i − P̄, −0.05 %, +0.05 %), then held inside [floor, cap] (spec §4).

    `average_premium` is P̄, the premium samples of the interval weighted 1, 2, …, n;
    `interest` is i scaled to the funding interval.
    """
    rate = average_premium + min(max(interest - average_premium, -_PREMIUM_CLAMP), _PREMIUM_CLAMP)
    return min(max(rate, floor), cap)


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; `lam` is small (a few events per step)."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _dec8(value: float) -> Decimal:
    return Decimal(f"{value:.8f}")


class _Side:
    """One side of the generator's own book: integer ticks to integer lot steps, the anchor
    (the touch the last re-centre aimed at) and the changes of the current book update."""

    __slots__ = ("anchor", "changes", "levels", "sgn")

    def __init__(self, sgn: int) -> None:
        self.sgn = sgn  # -1 for bids (further = lower), +1 for asks
        self.anchor = 0
        self.levels: dict[int, int] = {}
        self.changes: dict[int, int] = {}

    def put(self, tick: int, steps: int) -> None:
        self.levels[tick] = steps
        self.changes[tick] = steps

    def remove(self, tick: int) -> None:
        if self.levels.pop(tick, None) is not None:
            self.changes[tick] = 0

    def ticks(self, touch: int, d_lo: int, d_hi: int, spacing: int) -> Iterator[int]:
        """The ticks at distances `d_lo..d_hi` from `touch` that are multiples of `spacing`."""
        if d_hi < d_lo:
            return iter(())
        low, high = (touch + d_lo, touch + d_hi) if self.sgn > 0 else (touch - d_hi, touch - d_lo)
        first = -(-low // spacing) * spacing
        return iter(range(first, high + 1, spacing))


class _Symbol:
    """Everything the generator keeps for one symbol."""

    __slots__ = (
        "activity",
        "asks",
        "basis",
        "basis_samples",
        "basis_sum",
        "bids",
        "book",
        "cap",
        "dense",
        "depth_factor",
        "floor",
        "funding_override",
        "g1",
        "g2",
        "imn",
        "interest",
        "interval_ms",
        "last_mark",
        "last_trade",
        "log_fair",
        "log_max",
        "log_min",
        "max_tick",
        "min_spread",
        "min_tick",
        "name",
        "next_funding_ms",
        "next_shock",
        "path",
        "paused",
        "premium_n",
        "premium_w",
        "premium_wp",
        "r1",
        "r2",
        "rebuild",
        "rng_basis",
        "rng_book",
        "rng_price",
        "rng_trade",
        "scale",
        "step",
        "step_f",
        "tick",
        "tick_f",
        "trade_id",
        "update_id",
    )

    def __init__(self, symbol: Symbol, seed: int, start_ms: int, funding_hours: int) -> None:
        price_filter, lot = symbol.filter(PriceFilter), symbol.filter(LotSize)
        assert price_filter is not None
        assert lot is not None
        self.name = symbol.symbol
        self.tick = Decimal(price_filter.tick_size)
        self.step = Decimal(lot.step_size)
        self.tick_f = float(self.tick)
        self.step_f = float(self.step)
        min_price, max_price = Decimal(price_filter.min_price), Decimal(price_filter.max_price)
        self.min_tick = int(-(-min_price // self.tick))
        self.max_tick = int(max_price // self.tick)
        # The fair price stays a few ticks inside PRICE_FILTER so both touches exist.
        self.log_min = math.log(float(min_price + 5 * self.tick))
        self.log_max = math.log(float(max_price - 5 * self.tick))
        reference = float(reference_price(self.name, min_price, max_price))
        self.log_fair = min(max(math.log(reference), self.log_min), self.log_max)
        self.activity = ACTIVITY.get(self.name, DEFAULT_ACTIVITY)
        self.scale = self.activity * _BTC_PRICE / reference  # base units per BTC-equivalent

        ticks = reference / self.tick_f  # the price in ticks
        self.dense = _DENSE
        self.r1 = max(self.dense + 2, math.ceil(0.002 * ticks))
        self.g1 = max(1, self.r1 // 40)
        self.r2 = max(self.r1 + 2 * self.g1, math.ceil(0.05 * ticks))
        self.g2 = self.g1 * max(1, (self.r2 // self.g1) // 150)

        imr = float(symbol.required_margin_percent) / 100
        mmr = float(symbol.maint_margin_percent) / 100
        # Impact margin notional: 200 USDT at the initial margin rate of max leverage (§4).
        self.imn = 200 / imr if imr > 0 else 4000.0
        # Cap/floor ±0.75 × (IMR − MMR): the fit to the FAQ's example (spec §4, unverified).
        self.cap = 0.75 * (imr - mmr) if imr > mmr else 0.03
        self.floor = -self.cap
        self.interval_ms = funding_hours * 3_600_000
        self.interest = _INTEREST_8H * funding_hours / 8  # spec §4: i scaled to the interval
        self.next_funding_ms = (start_ms // self.interval_ms + 1) * self.interval_ms

        def rng(component: str) -> random.Random:
            return random.Random(f"{seed}:{self.name}:{component}")

        self.rng_price = rng("price")
        self.rng_book = rng("book")
        self.rng_trade = rng("trade")
        self.rng_basis = rng("basis")
        self.next_shock = self.rng_price.gauss(0.0, _SIGMA_STEP)
        self.basis = self.rng_basis.gauss(0.0, _BASIS_SD)
        self.path: tuple[int, int, float, float] | None = None  # start, steps, from, to (log)
        self.paused = False
        self.min_spread = 1
        self.depth_factor = 1.0
        self.rebuild = False
        self.funding_override: float | None = None
        self.premium_n = 0
        self.premium_w = 0
        self.premium_wp = 0.0
        self.basis_samples: deque[float] = deque(maxlen=_BASIS_WINDOW)
        self.basis_sum = 0.0
        self.trade_id = 0
        self.update_id = 0
        self.last_trade: float | None = None
        self.bids = _Side(-1)
        self.asks = _Side(+1)
        self.book = OrderBook(self.name)
        self.last_mark: MarkUpdate | None = None

    # -- sizes, in lot steps ------------------------------------------------------------

    def _steps(self, btc_equivalent: float) -> int:
        return max(1, int(btc_equivalent * self.scale * self.depth_factor / self.step_f))

    def l1_size(self) -> int:
        return self._steps(_log_uniform(self.rng_book, *_L1))

    def thin_size(self) -> int:
        return self._steps(_log_uniform(self.rng_book, *_THIN))

    def tier_size(self, spacing: int, d_lo: int, d_hi: int, depth: float) -> int:
        levels = max(1, (d_hi - d_lo) // spacing)
        mean = depth / levels
        return self._steps(mean * math.exp(self.rng_book.gauss(-0.125, 0.5)))  # mean 1 × mean

    def tier1_size(self) -> int:
        return self.tier_size(self.g1, self.dense, self.r1, _TIER1_DEPTH)

    def tier2_size(self) -> int:
        return self.tier_size(self.g2, self.r1, self.r2, _TIER2_DEPTH)

    # -- the book -----------------------------------------------------------------------

    def in_range(self, tick: int) -> bool:
        return self.min_tick <= tick <= self.max_tick

    def build(self, side: _Side, touch: int) -> None:
        """Replace `side` with a fresh profile around `touch`."""
        for tick in list(side.levels):
            side.remove(tick)
        side.anchor = touch
        if self.in_range(touch):
            side.put(touch, self.l1_size())
        for tick in side.ticks(touch, 1, self.dense, 1):
            if self.rng_book.random() < _DENSE_P and self.in_range(tick):
                side.put(tick, self.thin_size())
        for tick in side.ticks(touch, self.dense + 1, self.r1, self.g1):
            if self.in_range(tick):
                side.put(tick, self.tier1_size())
        for tick in side.ticks(touch, self.r1 + 1, self.r2, self.g2):
            if self.in_range(tick):
                side.put(tick, self.tier2_size())

    def zone(self, distance: int) -> int:
        """-1 inside the spread, 0 the touch, 1 dense, 2 the first tier, 3 the second, 4 out."""
        if distance <= 0:
            return -1 if distance < 0 else 0
        if distance <= self.dense:
            return 1
        if distance <= self.r1:
            return 2
        return 3 if distance <= self.r2 else 4

    def recentre(self, side: _Side, touch: int) -> None:
        """Move `side`'s anchor to `touch`, changing only the levels whose zone changed: the
        ticks within the move's length of a zone edge."""
        moved = side.sgn * (touch - side.anchor)  # > 0: the side retreats toward its depth
        if abs(moved) >= self.r1:
            self.build(side, touch)
            return
        if moved:
            # Zone edges as the first distance of the farther zone, and the spacing that
            # finds every tick that can hold a level on either side of the edge.
            dense, r1, r2, g1 = self.dense, self.r1, self.r2, self.g1
            spans: list[list[int]] = []  # [low, high, spacing] in distance, merged
            for edge, spacing in ((0, 1), (dense + 1, 1), (r1 + 1, g1), (r2 + 1, g1)):
                low = edge - moved if moved > 0 else edge
                high = edge - 1 if moved > 0 else edge - moved - 1
                if edge == 0:  # the touch's edge and the dense zone's (at 1) as one span
                    high += 1
                if spans and low <= spans[-1][1] + 1:
                    spans[-1][1] = max(spans[-1][1], high)
                    spans[-1][2] = min(spans[-1][2], spacing)
                else:
                    spans.append([low, high, spacing])
            for low, high, spacing in spans:
                for tick in side.ticks(touch, low, high, spacing):
                    self.rezone(side, tick, side.sgn * (tick - touch), moved)
        side.anchor = touch
        if side.levels.get(touch, 0) < self._steps(_L1[0]) and self.in_range(touch):
            side.put(touch, self.l1_size())

    def rezone(self, side: _Side, tick: int, distance: int, moved: int) -> None:
        """Give `tick`, now `distance` from the touch and `distance + moved` before, the
        level its new zone calls for."""
        new, old = self.zone(distance), self.zone(distance + moved)
        if new == old or new == 0:  # the touch is sized by `recentre`
            return
        present = tick in side.levels
        if new in (-1, 4):
            side.remove(tick)
        elif not self.in_range(tick):
            return
        elif new == 1:
            if not present and self.rng_book.random() < _DENSE_P:
                side.put(tick, self.thin_size())
        elif new == 2:
            if tick % self.g1:
                side.remove(tick)
            elif not present or old < 2:
                side.put(tick, self.tier1_size())
        elif tick % self.g2:
            side.remove(tick)
        elif not present or old < 2:
            side.put(tick, self.tier2_size())

    def churn(self, side: _Side) -> None:
        """Poisson add/cancel among the thin levels, and the touch's queue changing size."""
        rng = self.rng_book
        for _ in range(_poisson(rng, _CHURN_PER_STEP * self.activity)):
            tick = side.anchor + side.sgn * rng.randint(1, self.dense)
            if rng.random() < 0.5:
                side.remove(tick)
            elif self.in_range(tick):
                side.put(tick, self.thin_size())
        if rng.random() < _L1_REDRAW_P and side.anchor in side.levels:
            side.put(side.anchor, self.l1_size())

    def book_update(self, time_ms: int) -> BookUpdate | None:
        """The changes recorded on both sides since the last call, as one update."""
        bids, asks = self.bids.changes, self.asks.changes
        count = len(bids) + len(asks)
        if count == 0:
            return None
        tick, step = self.tick, self.step
        update = BookUpdate(
            self.name,
            self.update_id + 1,
            self.update_id + count,
            tuple(Level(Decimal(t) * tick, Decimal(q) * step) for t, q in sorted(bids.items())),
            tuple(Level(Decimal(t) * tick, Decimal(q) * step) for t, q in sorted(asks.items())),
            time_ms,
        )
        self.update_id += count
        bids.clear()
        asks.clear()
        return update

    def take(self, side: _Side, qty: int) -> list[tuple[int, int]]:
        """A taker's walk from the touch: (tick, steps) fills, consuming the levels."""
        fills: list[tuple[int, int]] = []
        levels = side.levels
        distance, limit = 0, self.dense + 3 * self.g1
        while qty > 0 and len(fills) < _MAX_TAKER_LEVELS and distance <= limit:
            tick = side.anchor + side.sgn * distance
            resting = levels.get(tick)
            distance += 1
            if resting is None:
                continue
            taken = min(resting, qty)
            fills.append((tick, taken))
            qty -= taken
            if taken == resting:
                side.remove(tick)
            else:
                side.put(tick, resting - taken)
        return fills

    def impact_price(self, side: _Side) -> float | None:
        """The average price of a taker selling into `side` for `imn` USDT (spec §4)."""
        remaining, cost, qty = self.imn, 0.0, 0.0
        for tick in sorted(side.levels, key=lambda t: side.sgn * t):
            price = tick * self.tick_f
            size = side.levels[tick] * self.step_f
            notional = min(remaining, price * size)
            cost += notional
            qty += notional / price
            remaining -= notional
            if remaining <= 0:
                return cost / qty
        return None


class SyntheticMarket:
    """The seeded synthetic `MarketSource` (market-data spec §7).

    Args:
        symbols: exchangeInfo rows; the `TRADING` ones with a price and a lot filter are
            priced, in the given order (`userstream.symbols.load_symbol_table().symbols`).
        seed: Same seed, same symbols and same advance times give the same updates.
        start_ms: The server time the market starts at; `advance` never goes before it.
        funding_hours: Funding intervals other than 8 h, by symbol (`fundingInfo`'s
            `fundingIntervalHours`); settlements fall on multiples of the interval (UTC).
        max_catch_up_ms: When an advance covers more than this, only its last
            `max_catch_up_ms` are traded step by step; before that the market moves in one
            draw (and settles funding) as if trading had paused, so a clock jumping hours
            ahead costs nothing. None (the default) always plays every step, which keeps the
            market independent of how it is advanced.
    """

    def __init__(
        self,
        symbols: Iterable[Symbol],
        seed: int = 0,
        start_ms: int = 0,
        *,
        funding_hours: Mapping[str, int] | None = None,
        max_catch_up_ms: int | None = None,
    ) -> None:
        hours = funding_hours or {}
        self._max_catch_up_ms = max_catch_up_ms
        self._states: dict[str, _Symbol] = {}
        for symbol in symbols:
            if symbol.status != "TRADING":
                continue
            if symbol.filter(PriceFilter) is None or symbol.filter(LotSize) is None:
                continue
            interval = hours.get(symbol.symbol, _FUNDING_HOURS)
            self._states[symbol.symbol] = _Symbol(symbol, seed, start_ms, interval)
        self._symbols = tuple(self._states)
        self._next_step_ms = start_ms
        self._now_ms = start_ms
        self._pending: deque[MarketUpdate] = deque()
        self._controls: list[tuple[int, MarketControl]] = []
        for state in self._states.values():
            self._start(state, start_ms)

    # -- the MarketSource protocol ----------------------------------------------------------

    @property
    def symbols(self) -> Sequence[str]:
        return self._symbols

    def advance(self, now_ms: int) -> list[MarketUpdate]:
        """Everything after the previous advance up to `now_ms`, oldest first."""
        if now_ms < self._now_ms:
            raise ValueError(f"time went backwards: {now_ms} < {self._now_ms}")
        self._now_ms = now_ms
        limit = self._max_catch_up_ms
        if limit is not None and now_ms - self._next_step_ms > limit:
            resume = self._next_step_ms + (now_ms - limit - self._next_step_ms) // STEP_MS * STEP_MS
            self._skip(self._next_step_ms, resume)
            self._next_step_ms = resume
        while self._next_step_ms <= now_ms:
            self._step(self._next_step_ms)
            self._next_step_ms += STEP_MS
        out: list[MarketUpdate] = []
        pending = self._pending
        while pending and _time_of(pending[0]) <= now_ms:
            update = pending.popleft()
            if isinstance(update, BookUpdate):
                self._states[update.symbol].book.apply(update)
            elif isinstance(update, MarkUpdate):
                self._states[update.symbol].last_mark = update
            out.append(update)
        return out

    def book(self, symbol: str) -> OrderBook:
        return self._states[symbol].book

    def mark(self, symbol: str) -> MarkUpdate:
        mark = self._states[symbol].last_mark
        assert mark is not None  # set by _start
        return mark

    # -- beyond the protocol ------------------------------------------------------------------

    def next_update_ms(self) -> int:
        """When `advance` next has something: the next update of the step being played, or
        the start of the next step (`server.market.TimedSource`)."""
        return _time_of(self._pending[0]) if self._pending else self._next_step_ms

    def control(self, command: MarketControl, now_ms: int) -> None:
        """Apply an operator move from the first step that starts after `now_ms`.

        Raises:
            KeyError: The command names a symbol this market does not price.
            ValueError: A price or a book factor that is not positive, a negative duration,
                a spread under one tick, or a crash of 100 % or more.
        """
        if command.symbol is not None and command.symbol not in self._states:
            raise KeyError(command.symbol)
        problem = _invalid(command)
        if problem:
            raise ValueError(problem)
        self._controls.append((now_ms, command))

    def open_interest(self, symbol: str) -> Decimal:
        """A constant open interest in contracts: the synthetic market has no positions behind
        its trades, so this is BTCUSDT's order of magnitude (≈ 8 bn USDT) scaled by the
        symbol's activity at its reference price, for `GET /fapi/v1/openInterest`."""
        state = self._states[symbol]
        contracts = _OPEN_INTEREST_USD / _BTC_PRICE * state.scale
        return state.step * int(contracts / state.step_f)

    # -- generation -------------------------------------------------------------------------

    def _start(self, state: _Symbol, start_ms: int) -> None:
        bid, ask = self._touches(state)
        state.build(state.bids, bid)
        state.build(state.asks, ask)
        update = state.book_update(start_ms)
        if update is not None:
            state.book.replace(update.bids, update.asks, update.final_update_id)
        state.last_mark = self._mark_update(state, start_ms, None)

    def _touches(self, state: _Symbol) -> tuple[int, int]:
        spread = state.min_spread
        if state.rng_book.random() < _WIDE_SPREAD_P:
            spread = max(spread, state.rng_book.randint(2, 5))
        ticks = math.exp(state.log_fair) / state.tick_f
        bid = math.floor(ticks - spread / 2)
        return bid, bid + spread

    def _apply_controls(self, t0: int) -> None:
        ready = [c for c in self._controls if c[0] < t0]
        if not ready:
            return
        self._controls = [c for c in self._controls if c[0] >= t0]
        for _, command in ready:
            names = self._symbols if command.symbol is None else (command.symbol,)
            for name in names:
                self._control(self._states[name], command, t0)

    @staticmethod
    def _control(state: _Symbol, command: MarketControl, t0: int) -> None:
        if isinstance(command, Pause):
            state.paused = True
        elif isinstance(command, Resume):
            state.paused = False
        elif isinstance(command, (SetPrice, DriftTo, Crash)):
            if isinstance(command, Crash):
                target = math.log(1 - float(command.percent) / 100) + state.log_fair
            else:
                target = math.log(float(command.price))
            seconds = 0.0 if isinstance(command, SetPrice) else command.seconds
            steps = max(1, math.ceil(seconds * 1000 / STEP_MS))
            target = min(max(target, state.log_min), state.log_max)
            state.path = (t0, steps, state.log_fair, target)
        elif isinstance(command, WidenSpread):
            state.min_spread = command.ticks
        elif isinstance(command, ThinBook):
            state.depth_factor = command.factor
            state.rebuild = True
        elif isinstance(command, SetFundingRate):
            state.funding_override = None if command.rate is None else float(command.rate)

    def _step(self, t0: int) -> None:
        self._apply_controls(t0)
        batch: list[MarketUpdate] = []
        for state in self._states.values():
            self._clock_events(state, t0, batch)
            if not state.paused:
                self._trade_step(state, t0, batch)
        batch.sort(key=_time_of)
        self._pending.extend(batch)

    def _trade_step(self, state: _Symbol, t0: int, out: list[MarketUpdate]) -> None:
        # The fair price.
        if state.path is not None:
            start, steps, origin, target = state.path
            done = (t0 - start) // STEP_MS + 1
            state.log_fair = origin + (target - origin) * min(1.0, done / steps)
            if done >= steps:
                state.path = None
        else:
            state.log_fair += state.next_shock
            state.next_shock = state.rng_price.gauss(0.0, _SIGMA_STEP)
        state.log_fair = min(max(state.log_fair, state.log_min), state.log_max)

        # The book follows it.
        bid, ask = self._touches(state)
        if state.rebuild:
            state.rebuild = False
            state.build(state.bids, bid)
            state.build(state.asks, ask)
        else:
            state.recentre(state.bids, bid)
            state.recentre(state.asks, ask)
            state.churn(state.bids)
            state.churn(state.asks)
        update = state.book_update(t0)
        if update is not None:
            out.append(update)

        # Trades against it.
        rng = state.rng_trade
        count = _poisson(rng, _TRADES_PER_S * state.activity * STEP_MS / 1000)
        if count == 0:
            return
        lean = 0.3 * math.tanh(state.next_shock / _SIGMA_STEP)
        median = _TRADE_MEDIAN * state.scale / state.step_f
        for offset in sorted(rng.randrange(STEP_MS) for _ in range(count)):
            buy = rng.random() < 0.5 + lean
            qty = max(1, int(median * math.exp(rng.gauss(0.0, _TRADE_SIGMA))))
            time_ms = t0 + offset
            for tick, taken in state.take(state.asks if buy else state.bids, qty):
                state.trade_id += 1
                price = Decimal(tick) * state.tick
                out.append(
                    Trade(
                        state.name,
                        state.trade_id,
                        price,
                        Decimal(taken) * state.step,
                        not buy,
                        time_ms,
                    )
                )
                state.last_trade = tick * state.tick_f
            update = state.book_update(time_ms)
            if update is not None:
                out.append(update)

    def _clock_events(self, state: _Symbol, t0: int, out: list[MarketUpdate]) -> None:
        """Index, premium, funding and mark at the whole second inside this step, if any."""
        second = -(-t0 // 1000) * 1000
        if second >= t0 + STEP_MS:
            return
        if not state.paused:
            decay = math.exp(-math.log(2) / _BASIS_HALF_LIFE_S)
            state.basis = state.basis * decay + _BASIS_SD * math.sqrt(1 - decay * decay) * (
                state.rng_basis.gauss(0.0, 1.0)
            )
        premium = self._sample(state, second) if second % 5000 == 0 else None
        if second == state.next_funding_ms:
            self._settle(state, second, out)
        out.append(self._mark_update(state, second, premium))

    def _settle(self, state: _Symbol, time_ms: int, out: list[MarketUpdate]) -> None:
        """Settle at the funding instant `time_ms`, start the next interval's average."""
        mark = self._mark_update(state, time_ms, None)
        rate = _dec8(self._funding_rate(state))
        out.append(FundingSettlement(state.name, time_ms, rate, mark.mark_price))
        state.premium_n = state.premium_w = 0
        state.premium_wp = 0.0
        state.next_funding_ms += state.interval_ms

    def _skip(self, start_ms: int, end_ms: int) -> None:
        """Pass the steps in `[start_ms, end_ms)` without trading (`max_catch_up_ms`): one
        price draw for the whole span (or the end of an operator path), the funding
        instants inside it settled at the last estimate."""
        self._apply_controls(start_ms)
        batch: list[MarketUpdate] = []
        for state in self._states.values():
            while state.next_funding_ms < end_ms:
                self._settle(state, state.next_funding_ms, batch)
            if state.path is not None:
                state.log_fair = state.path[3]
                state.path = None
            elif not state.paused:
                sigma = _SIGMA_PER_S * math.sqrt((end_ms - start_ms) / 1000)
                state.log_fair += state.rng_price.gauss(0.0, sigma)
                state.log_fair = min(max(state.log_fair, state.log_min), state.log_max)
        self._pending.extend(batch)

    def _index(self, state: _Symbol) -> float:
        return math.exp(state.log_fair) * (1 + state.basis)

    def _mid(self, state: _Symbol) -> float:
        return (state.bids.anchor + state.asks.anchor) / 2 * state.tick_f

    def _sample(self, state: _Symbol, time_ms: int) -> Decimal:
        """A 5 s sample: the premium index into the funding average, the basis into the
        mark's moving average (spec §4)."""
        index = self._index(state)
        impact_bid = state.impact_price(state.bids)
        impact_ask = state.impact_price(state.asks)
        premium = 0.0
        if impact_bid is not None and impact_ask is not None:
            premium = (max(0.0, impact_bid - index) - max(0.0, index - impact_ask)) / index
        state.premium_n += 1
        state.premium_w += state.premium_n
        state.premium_wp += state.premium_n * premium
        basis = self._mid(state) - index
        if len(state.basis_samples) == _BASIS_WINDOW:
            state.basis_sum -= state.basis_samples[0]
        state.basis_samples.append(basis)
        state.basis_sum += basis
        return _dec8(premium)

    def _funding_rate(self, state: _Symbol) -> float:
        if state.funding_override is not None:
            return state.funding_override
        average = state.premium_wp / state.premium_w if state.premium_w else 0.0
        return funding_rate(average, state.interest, state.floor, state.cap)

    def _mark_update(self, state: _Symbol, time_ms: int, premium: Decimal | None) -> MarkUpdate:
        index = self._index(state)
        rate = self._funding_rate(state)
        to_funding = (state.next_funding_ms - time_ms) / state.interval_ms
        price1 = index * (1 + rate * to_funding)
        price2 = index + state.basis_sum / max(1, len(state.basis_samples))
        last = state.last_trade if state.last_trade is not None else self._mid(state)
        mark = sorted((price1, price2, last))[1]
        return MarkUpdate(
            symbol=state.name,
            mark_price=_dec8(mark),
            index_price=_dec8(index),
            estimated_settle_price=_dec8(index),
            funding_rate=_dec8(rate),
            interest_rate=_dec8(_INTEREST_8H),
            next_funding_time_ms=state.next_funding_ms,
            time_ms=time_ms,
            premium_index=premium,
        )


def _invalid(command: MarketControl) -> str | None:
    if isinstance(command, (SetPrice, DriftTo)) and command.price <= 0:
        return f"price must be positive: {command.price}"
    if isinstance(command, (DriftTo, Crash)) and command.seconds < 0:
        return f"seconds must not be negative: {command.seconds}"
    if isinstance(command, Crash) and command.percent >= 100:
        return f"a crash must leave a price: {command.percent} %"
    if isinstance(command, WidenSpread) and command.ticks < 1:
        return f"the spread is at least one tick: {command.ticks}"
    if isinstance(command, ThinBook) and not command.factor > 0:
        return f"the depth factor must be positive: {command.factor}"
    return None


def _time_of(update: MarketUpdate) -> int:
    if isinstance(update, FundingSettlement):
        return update.funding_time_ms
    return update.time_ms
