"""What the simulated accounts share: settings, instruments, mark prices, ids and the seeded
random source. One `random.Random` drives everything, so a seed fixes every event."""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from userstream.simulator.market import Instrument, MarkPrices

__all__ = ["SimulatorConfig", "Venue"]

_ALNUM: Final = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Knobs of the activity model; the defaults resemble a retail USDⓈ-M account."""

    initial_balance: Decimal = Decimal("10000")
    maker_rate: Decimal = Decimal("0.0002")
    taker_rate: Decimal = Decimal("0.0005")
    leverages: tuple[int, ...] = (5, 10, 20, 25, 50, 75)
    isolated_share: float = 0.3  # share of (account, symbol) pairs margined isolated
    max_open_orders: int = 4
    max_algos: int = 2
    max_grid_lots: int = 5
    # A MARGIN_CALL goes out once a position has lost this share of its initial margin.
    margin_call_loss: Decimal = Decimal("0.5")
    # The account tops its wallet up (DEPOSIT) when the cross wallet falls below this share.
    top_up_below: Decimal = Decimal("0.25")
    # Also send the deprecated CONDITIONAL_ORDER_TRIGGER_REJECT when an algo is rejected.
    legacy_trigger_reject: bool = True


class Venue:
    """Shared state of one simulation run."""

    def __init__(
        self, instruments: Sequence[Instrument], rng: random.Random, config: SimulatorConfig
    ) -> None:
        if not instruments:
            raise ValueError("the simulator needs at least one TRADING symbol")
        self.instruments = {i.symbol: i for i in instruments}
        self.symbols = tuple(self.instruments)
        self.marks = MarkPrices(instruments)
        self.rng = rng
        self.config = config
        self._order_id = rng.randrange(10**10, 10**11)
        self._algo_id = rng.randrange(10**6, 10**7)
        self._strategy_id = rng.randrange(10**8, 10**9)
        self._trade_ids = {s: rng.randrange(10**8, 10**9) for s in self.symbols}

    def order_id(self) -> int:
        self._order_id += 1
        return self._order_id

    def trade_id(self, symbol: str) -> int:
        self._trade_ids[symbol] += 1
        return self._trade_ids[symbol]

    def algo_id(self) -> int:
        self._algo_id += 1
        return self._algo_id

    def strategy_id(self) -> int:
        self._strategy_id += 1
        return self._strategy_id

    def client_id(self) -> str:
        return "".join(self.rng.choices(_ALNUM, k=22))
