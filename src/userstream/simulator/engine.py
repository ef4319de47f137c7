"""The sans-I/O simulator: seeded accounts, paced to a total event rate.

`Simulator.next_events(now_ms)` returns the events due by `now_ms` as `(account_id, event)`
pairs and never awaits, sleeps or reads a clock; the caller (`userstream.simulator.driver`,
or a test) supplies the time. The same seed, accounts and sequence of `now_ms` values give
the same events, byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Final

from userstream.protocol.events import Event
from userstream.simulator.account import AccountActivity
from userstream.simulator.market import Instrument, instruments_from_symbols
from userstream.simulator.venue import SimulatorConfig, Venue
from userstream.symbols import load_symbol_table

__all__ = ["AccountEvent", "Simulator"]

AccountEvent = tuple[int, Event]
_MAX_IDLE_STEPS: Final = 100


class Simulator:
    """Paper-trading activity for `account_ids`, `rate` events per second in total.

    Args:
        account_ids: The accounts to simulate; each step picks one of them at random.
        seed: Fixes every choice the simulator makes.
        rate: Events per second over all accounts for `next_events`; `0` or less means
            unpaced (use `take`).
        instruments: Symbols to trade; the server's packaged exchangeInfo by default.
        config: The activity model's knobs.
        max_lag_s: When the caller falls further behind than this, the backlog beyond it is
            forgiven rather than delivered in one burst.
    """

    def __init__(
        self,
        account_ids: Sequence[int],
        *,
        seed: int,
        rate: float = 0.0,
        instruments: Sequence[Instrument] | None = None,
        config: SimulatorConfig | None = None,
        max_lag_s: float = 1.0,
    ) -> None:
        if not account_ids:
            raise ValueError("the simulator needs at least one account")
        self._rng = random.Random(seed)
        if instruments is None:
            instruments = instruments_from_symbols(load_symbol_table().symbols)
        self.venue = Venue(instruments, self._rng, config or SimulatorConfig())
        self.accounts = {i: AccountActivity(i, self.venue) for i in account_ids}
        self._ids = tuple(self.accounts)
        self.rate = rate
        self._max_lag = max(1, int(rate * max_lag_s))
        self._start_ms: int | None = None
        self._paced = 0
        self.emitted = 0

    def step(self, now_ms: int) -> list[AccountEvent]:
        """One action of one account (a few events), stamped `now_ms`. Unpaced."""
        for _ in range(_MAX_IDLE_STEPS):
            account = self.accounts[self._rng.choice(self._ids)]
            self.venue.marks.walk(self._rng.choice(self.venue.symbols), self._rng)
            events = account.act(now_ms)
            if events:
                self.emitted += len(events)
                return [(account.account_id, event) for event in events]
        return []

    def take(self, count: int, now_ms: int) -> list[AccountEvent]:
        """At least `count` events (whole actions, so up to a few more), stamped `now_ms`."""
        out: list[AccountEvent] = []
        while len(out) < count:
            out.extend(self.step(now_ms))
        return out

    def next_events(self, now_ms: int, limit: int | None = None) -> list[AccountEvent]:
        """The events due by `now_ms` at `rate` events/s since the first call (whose first
        action is due at once); at most about `limit` of them, the rest stay due."""
        if self.rate <= 0:
            raise ValueError("next_events needs a positive rate; use take() unpaced")
        if self._start_ms is None:
            self._start_ms = now_ms
        due = int(self.rate * (now_ms - self._start_ms) / 1000) + 1
        if due - self._paced > self._max_lag:
            self._paced = due - self._max_lag
        out: list[AccountEvent] = []
        while self._paced < due and (limit is None or len(out) < limit):
            batch = self.step(now_ms)
            self._paced += len(batch)
            out.extend(batch)
        return out
