"""The account mirror's speed: events applied per second, and a gap's cost.

    .venv/bin/python -m bench.mirror [--events 200000] [--repeat 3] [--gap-rounds 5] [--burst 5]

1. **Apply rate** (one core, no I/O): a mixed stream of ORDER_TRADE_UPDATE (NEW, partial
   and full fills) and ACCOUNT_UPDATE (m=ORDER, one balance and one position row) for 50
   symbols, decoded once up front, is fed to `AccountMirror.apply`, the call the mirror's
   stream reader makes per event. The best of `--repeat` runs is reported. Target: 200,000
   events/s (issue 14).
2. **Gap to consistent**: against a local venue (`Server` in this process, real clock), the
   time from dropping the mirror's stream connection with 1006 to `mirror.health.consistent`
   (reconnect, snapshot of 5 requests, merge), median of `--gap-rounds`; then `--burst` drops
   10 ms apart and the number of snapshots they cost (coalescing).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from userstream import Endpoints, Server, ServerConfig
from userstream.client.mirror import AccountMirror
from userstream.protocol.events import (
    AccountUpdate,
    AccountUpdateData,
    Balance,
    Event,
    OrderTradeUpdate,
    OrderUpdate,
    Position,
)

SYMBOLS = [f"S{i:02d}USDT" for i in range(50)]
ZERO = Decimal(0)


def _order(
    symbol: str,
    order_id: int,
    time_ms: int,
    x: str,
    status: str,
    filled: Decimal,
    last: Decimal,
    trade_id: int,
) -> OrderTradeUpdate:
    price = Decimal("101.5")
    return OrderTradeUpdate(
        transaction_time=time_ms,
        event_time=time_ms,
        order=OrderUpdate(
            symbol=symbol,
            client_order_id=f"bench-{order_id}",
            side="BUY",
            order_type="LIMIT",
            time_in_force="GTC",
            original_quantity=Decimal(2),
            original_price=price,
            average_price=price if filled else ZERO,
            stop_price=ZERO,
            execution_type=x,
            order_status=status,
            order_id=order_id,
            last_filled_quantity=last,
            filled_accumulated_quantity=filled,
            last_filled_price=price if last else ZERO,
            commission=ZERO,
            commission_asset="USDT",
            trade_time=time_ms,
            trade_id=trade_id,
            bids_notional=ZERO,
            ask_notional=ZERO,
            is_maker=False,
            reduce_only=False,
            working_type="CONTRACT_PRICE",
            original_order_type="LIMIT",
            position_side="BOTH",
            close_position=False,
            realized_profit=ZERO,
            price_protection=False,
            strategy_id=0,
            ignored_ss=0,
            self_trade_prevention_mode="EXPIRE_MAKER",
            price_match="NONE",
            good_till_date=0,
            expiry_reason="0",
        ),
    )


def _account(symbol: str, time_ms: int, amount: Decimal, wallet: Decimal) -> AccountUpdate:
    return AccountUpdate(
        transaction_time=time_ms,
        event_time=time_ms,
        update=AccountUpdateData(
            balances=(
                Balance(
                    asset="USDT",
                    wallet_balance=wallet,
                    cross_wallet_balance=wallet,
                    balance_change=ZERO,
                ),
            ),
            positions=(
                Position(
                    symbol=symbol,
                    position_amount=amount,
                    entry_price=Decimal("101.5"),
                    accumulated_realized=ZERO,
                    unrealized_pnl=ZERO,
                    margin_type="cross",
                    isolated_wallet=ZERO,
                    position_side="BOTH",
                    margin_asset="USDT",
                    breakeven_price=Decimal("101.55"),
                ),
            ),
            reason="ORDER",
        ),
    )


def mixed_events(count: int) -> list[Event]:
    """Order lifecycles (NEW, partial fill + ACCOUNT_UPDATE, fill + ACCOUNT_UPDATE): 5 events."""
    events: list[Event] = []
    wallet = Decimal(10_000)
    order_id = trade_id = 0
    now = 1_767_225_600_000
    while len(events) < count:
        order_id += 1
        symbol = SYMBOLS[order_id % len(SYMBOLS)]
        now += 1
        amount = Decimal(order_id % 7 + 1)
        events.append(_order(symbol, order_id, now, "NEW", "NEW", ZERO, ZERO, 0))
        for filled, status in ((Decimal(1), "PARTIALLY_FILLED"), (Decimal(2), "FILLED")):
            trade_id += 1
            wallet -= Decimal("0.05")
            events.append(
                _order(symbol, order_id, now, "TRADE", status, filled, Decimal(1), trade_id)
            )
            events.append(_account(symbol, now, amount + filled, wallet))
    return events[:count]


def apply_rate(events: list[Event], repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        mirror = AccountMirror("k" * 64, "s" * 64)
        gc.collect()
        started = time.perf_counter()
        for event in events:
            mirror.apply(event)
        elapsed = time.perf_counter() - started
        best = max(best, len(events) / elapsed)
    return best


TOKEN = "bench-mirror-token"


async def _admin(http: aiohttp.ClientSession, url: str, path: str, body: Any) -> Any:
    async with http.post(
        f"{url}/admin/v1/{path}", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        answer = await response.json(content_type=None)
        assert response.status == 200, answer
        return answer


async def _until_consistent(mirror: AccountMirror, resyncs: int) -> None:
    while mirror.health.resyncs <= resyncs or not mirror.health.consistent:  # noqa: ASYNC110 - health is data
        await asyncio.sleep(0.001)


async def gap_to_consistent(rounds: int, burst: int) -> tuple[list[float], int, int]:
    """Against a local venue (this process, real clock): drop the mirror's stream with 1006
    and time the drop -> consistent mirror; then `burst` drops in a row and count snapshots."""
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(port=0, data_dir=Path(tmp), admin_token=TOKEN, market="synthetic:1")
        async with Server(config) as server, aiohttp.ClientSession() as http:
            url = server.http_url
            account = await _admin(http, url, "accounts", {"name": "bench"})
            deposit = {"asset": "USDT", "amount": "10000"}
            await _admin(http, url, f"accounts/{account['accountId']}/deposit", deposit)
            ws = url.replace("http://", "ws://")
            mirror = AccountMirror(
                account["apiKey"],
                account["secretKey"],
                endpoints=Endpoints(url, f"{ws}/ws-fapi/v1", ws),
                min_resync_interval_ms=0,
            )
            async with mirror:
                times = []
                drop = {"code": 1006, "accountId": account["accountId"]}
                for _ in range(rounds):
                    resyncs = mirror.health.resyncs
                    started = time.perf_counter()
                    await _admin(http, url, "connections/drop", drop)
                    await asyncio.wait_for(_until_consistent(mirror, resyncs), 30)
                    times.append(time.perf_counter() - started)
                before = mirror.health.resyncs
                gaps = mirror.stream.health.gaps
                for _ in range(burst):
                    await _admin(http, url, "connections/drop", drop)
                    await asyncio.sleep(0.01)
                await asyncio.wait_for(_until_consistent(mirror, before), 30)
                await asyncio.sleep(0.5)  # a late extra snapshot would show up here
                return times, mirror.health.resyncs - before, mirror.stream.health.gaps - gaps


async def main_async(args: argparse.Namespace) -> None:
    events = mixed_events(args.events)
    rate = apply_rate(events, args.repeat)
    print(
        f"apply: {rate:,.0f} events/s ({len(events):,} mixed ORDER_TRADE_UPDATE/ACCOUNT_UPDATE,"
        f" best of {args.repeat}; target 200,000)"
    )
    times, burst_resyncs, gaps = await gap_to_consistent(args.gap_rounds, args.burst)
    print(
        f"gap -> consistent: median {statistics.median(times) * 1000:.1f} ms, "
        f"max {max(times) * 1000:.1f} ms over {len(times)} drops (1006, local venue)"
    )
    print(f"burst of {args.burst} drops 10 ms apart: {gaps} gaps, {burst_resyncs} snapshot(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gap-rounds", type=int, default=5)
    parser.add_argument("--burst", type=int, default=5)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
