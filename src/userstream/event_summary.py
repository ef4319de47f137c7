"""One human line per event, for `userstream listen` and other tables (presentation only).

The wire JSON stays available (`encode_event`, `userstream listen --json`); this is what a
trader reads at a glance: what happened, to which symbol, how much, at what price.
"""

from __future__ import annotations

from decimal import Decimal

from userstream.protocol.events import (
    AccountConfigUpdate,
    AccountUpdate,
    AlgoUpdate,
    ConditionalOrderTriggerReject,
    Event,
    GridUpdate,
    ListenKeyExpired,
    MarginCall,
    OrderTradeUpdate,
    StrategyUpdate,
    TradeLite,
)


def _n(value: Decimal) -> str:
    """A decimal without trailing zeros: 0.10000000 -> 0.1, 80.1900 -> 80.19."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _signed(value: Decimal) -> str:
    return _n(value) if value < 0 else "+" + _n(value)


def summarize(event: Event) -> str:
    """A short description of `event`, e.g. `SOLUSDT BUY LIMIT TRADE 0.1 @ 80.19 ...`."""
    match event:
        case OrderTradeUpdate(order=o):
            fill = ""
            if o.last_filled_quantity:
                fill = f" fill {_n(o.last_filled_quantity)} @ {_n(o.last_filled_price)}"
            fee = f" fee {_n(o.commission)} {o.commission_asset}" if o.commission else ""
            price = f" @ {_n(o.original_price)}" if o.original_price else ""
            return (
                f"{o.symbol} {o.side} {o.order_type} {o.execution_type}/{o.order_status} "
                f"{_n(o.filled_accumulated_quantity)}/{_n(o.original_quantity)}{price}{fill}"
                f"{fee} · order {o.order_id} {o.client_order_id}"
            )
        case TradeLite():
            return (
                f"{event.symbol} {event.side} {_n(event.last_filled_quantity)} @ "
                f"{_n(event.last_filled_price)} · order {event.order_id} trade {event.trade_id}"
            )
        case AccountUpdate(update=u):
            parts = [u.reason + (f" {u.funding_symbol}" if u.funding_symbol else "")]
            parts += [
                f"{b.asset} wallet {_n(b.wallet_balance)} ({_signed(b.balance_change)})"
                if b.balance_change
                else f"{b.asset} wallet {_n(b.wallet_balance)}"
                for b in u.balances
            ]
            parts += [
                f"{p.symbol} {p.position_side} {_n(p.position_amount)} @ {_n(p.entry_price)} "
                f"uPnL {_n(p.unrealized_pnl)}"
                for p in u.positions
            ]
            return " · ".join(parts)
        case MarginCall():
            return " · ".join(
                f"{p.symbol} {p.position_side} {_n(p.position_amount)} mark {_n(p.mark_price)} "
                f"maint {_n(p.maintenance_margin)} uPnL {_n(p.unrealized_pnl)}"
                for p in event.positions
            )
        case AccountConfigUpdate(leverage_config=lev, account_info_config=info):
            if lev is not None:
                return f"{lev.symbol} leverage {lev.leverage}x"
            if info is not None:
                return f"multi-assets mode {'on' if info.multi_assets_mode else 'off'}"
            return "account configuration changed"
        case StrategyUpdate(strategy=s):
            return (
                f"{s.strategy_type} {s.strategy_id} {s.symbol} {s.strategy_status} op {s.op_code}"
            )
        case GridUpdate(grid=g):
            return (
                f"{g.strategy_type} {g.strategy_id} {g.symbol} {g.strategy_status} "
                f"realized {_n(g.realized_pnl)} matched {_n(g.matched_pnl)}"
            )
        case ConditionalOrderTriggerReject(reject=r):
            return f"{r.symbol} order {r.order_id} rejected: {r.reason}"
        case AlgoUpdate(order=a):
            reason = f" ({a.reject_reason})" if a.reject_reason else ""
            return (
                f"{a.symbol} {a.side} {a.order_type} {_n(a.quantity)} trigger "
                f"{_n(a.trigger_price)} {a.status}{reason} · algo {a.algo_id}"
            )
        case ListenKeyExpired():
            return f"listenKey {event.listen_key[:4]}… expired"
    return type(event).__name__
