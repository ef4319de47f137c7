"""Seeded, self-consistent paper-trading activity that produces user-data events.

The core is sans-I/O: `Simulator.next_events(now_ms)` returns `(account_id, event)` pairs
built through `userstream.protocol.events` and never awaits. `userstream.simulator.driver`
runs it against a sink: the server's `bus.publish` in process, or the admin API over HTTP
(`AdminPublisher`). Used by `userstream simulate` and `userstream serve --demo`.
"""

from userstream.simulator.engine import AccountEvent, Simulator
from userstream.simulator.market import Instrument, instruments_from_symbols
from userstream.simulator.venue import SimulatorConfig

__all__ = [
    "AccountEvent",
    "Instrument",
    "Simulator",
    "SimulatorConfig",
    "instruments_from_symbols",
]
