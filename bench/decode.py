"""Client decode cost: userstream's models against the official SDK's pydantic models.

    .venv/bin/python -m bench.decode [--number 20000] [--repeat 5]

For one ORDER_TRADE_UPDATE and one ACCOUNT_UPDATE (real 2026 captures, tests/fixtures/events)
it times, per event, from the raw frame bytes to a typed object:

- userstream: `userstream.protocol.codec.decode_event` (msgspec Structs, Decimal amounts);
- official SDK, as its stream client does it: `json.loads` then
  `binance_common.utils.parse_user_event(dict, UserDataStreamEventsResponse)`;
- official SDK, best case: the event's own pydantic model, `model_validate_json(raw)`;
- baseline: `orjson.loads` (or `json.loads`) to a plain dict, no types.

The best of `--repeat` runs is reported, with the ratio SDK / userstream.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from binance_common.utils import parse_user_event
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    AccountUpdate as SdkAccountUpdate,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    OrderTradeUpdate as SdkOrderTradeUpdate,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_streams.models import (
    UserDataStreamEventsResponse,
)

from userstream.protocol.codec import decode_event

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "events"
EVENTS: dict[str, tuple[str, Any]] = {
    "ORDER_TRADE_UPDATE": ("order_trade_update_real_2026.json", SdkOrderTradeUpdate),
    "ACCOUNT_UPDATE": ("account_update_real_2026.json", SdkAccountUpdate),
}


def dict_loader() -> tuple[str, Callable[[bytes], Any]]:
    try:
        import orjson
    except ImportError:
        return "json.loads", json.loads
    return "orjson.loads", orjson.loads


def best_ns(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e9


@dataclass(frozen=True)
class DecodeRow:
    event: str
    decoder: str
    ns: float
    ours_ns: float

    @property
    def ratio(self) -> float:
        return self.ns / self.ours_ns


def measure(number: int, repeat: int) -> list[DecodeRow]:
    """Every decoder on every event; the first row of each event is userstream's."""
    loader_name, loader = dict_loader()
    out: list[DecodeRow] = []
    for name, (fixture, model_class) in EVENTS.items():
        model_name = model_class.__name__
        raw = (FIXTURES / fixture).read_bytes().strip()

        def ours_decode(raw: bytes = raw) -> object:
            return decode_event(raw)

        def sdk_stream_path(raw: bytes = raw) -> object:
            return parse_user_event(json.loads(raw), UserDataStreamEventsResponse)

        def sdk_model(raw: bytes = raw, model: Any = model_class) -> object:
            return model.model_validate_json(raw)

        def untyped(raw: bytes = raw) -> object:
            return loader(raw)

        ours = best_ns(ours_decode, number, repeat)
        rows = [
            ("userstream decode_event", ours),
            (
                "SDK stream path (json + parse_user_event)",
                best_ns(sdk_stream_path, max(1, number // 4), repeat),
            ),
            (f"SDK {model_name}.model_validate_json", best_ns(sdk_model, number, repeat)),
            (f"{loader_name} (dict, untyped)", best_ns(untyped, number, repeat)),
        ]
        out += [DecodeRow(name, label, ns, ours) for label, ns in rows]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"# {' '.join(sys.argv)}")
    print(
        f"# Python {platform.python_version()}, msgspec {version('msgspec')}, "
        f"pydantic {version('pydantic')}, "
        f"official SDK {version('binance-sdk-derivatives-trading-usds-futures')}"
    )
    print(f"{'event':<20} {'decoder':<44} {'ns/event':>9} {'vs userstream':>14}")
    for row in measure(args.number, args.repeat):
        print(f"{row.event:<20} {row.decoder:<44} {row.ns:>9,.0f} {row.ratio:>13.1f}x")


if __name__ == "__main__":
    main()
