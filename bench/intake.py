"""Admin intake cost per event: what `POST /admin/v1/accounts/{id}/events` spends on a body.

    .venv/bin/python -m bench.intake [--batch 25] [--number 2000] [--repeat 5]

Bodies of `--batch` realistic events (bench/common.py: ORDER_TRADE_UPDATE, TRADE_LITE and
ACCOUNT_UPDATE in turn, as the fan-out benchmark publishes them), timed per event, best of
`--repeat` runs, in one process with nothing else running:

- userstream, `parse_admin_encoded`: the server's intake (validate every field, re-encode to
  Binance's exact bytes);
- userstream, `parse_admin_events`: the same intake, then each event decoded into its model
  (what tests and in-process producers that want models use);
- baselines: `msgspec.json.decode` of the body to untyped objects, and that plus encoding
  each object back: the least any intake that parses and re-serialises can do.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

import msgspec

from bench.common import encoded_events
from userstream.protocol.codec import parse_admin_encoded, parse_admin_events

NOW_MS = 1_800_000_000_000


def per_event_us(work: Callable[[], object], events: int, number: int, repeat: int) -> float:
    best = min(timeit.repeat(work, number=number, repeat=repeat)) / number
    return best / events * 1e6


def measure(batch: int, number: int, repeat: int) -> tuple[float, list[tuple[str, float]]]:
    """Bytes per event, and (what, µs per event) for userstream's intake and the baselines."""
    events = encoded_events(batch)
    body = b"[" + b",".join(events) + b"]"
    # Accepted as sent, or the figure would not be that of a valid body.
    assert [e.raw for e in parse_admin_encoded(body, NOW_MS)] == events
    decode, encode = msgspec.json.decode, msgspec.json.Encoder().encode

    def untyped_round_trip() -> list[bytes]:
        return [encode(item) for item in decode(body)]

    rows: list[tuple[str, Callable[[], object]]] = [
        ("userstream `parse_admin_encoded`", lambda: parse_admin_encoded(body, NOW_MS)),
        ("userstream `parse_admin_events` (models)", lambda: parse_admin_events(body, NOW_MS)),
        ("baseline: `msgspec.json.decode`, untyped", lambda: decode(body)),
        ("baseline: untyped decode + encode each", untyped_round_trip),
    ]
    timed = [(name, per_event_us(work, batch, number, repeat)) for name, work in rows]
    return len(body) / batch, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=25, help="events per body")
    parser.add_argument("--number", type=int, default=2_000, help="bodies per run")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size, rows = measure(args.batch, args.number, args.repeat)
    print(f"# {args.batch} events per body, {size:.0f} bytes per event")
    for name, us in rows:
        print(f"{name:<44} {us:6.2f} µs/event")


if __name__ == "__main__":
    main()
