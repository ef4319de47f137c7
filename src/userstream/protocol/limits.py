"""REQUEST_WEIGHT accounting per IP, shared by REST and the WebSocket API: the Binance rate-limit
and ban rules (spec = binance-usdm-user-data-streams.md §3.1, §6.2, §6.3; trading spec §7).

Sans-I/O: every call takes `now_ms`; nothing here reads a clock, sleeps or awaits.

Policy (Binance documents the shape, not the numbers; where it is silent we choose and say so):

* **Window.** Weight is summed per **UTC clock minute** (`window = now_ms // 60_000`) and resets
  at :00, not over a sliding 60 s (spec §6.3, 3P-OBS 2026-10-07).
* **429.** A request whose weight would take the minute's total over `per_minute` is refused with
  HTTP/WS status 429, -1003 "Too many requests; current limit is ...". `retry_after_ms` is the
  time left until the next minute starts.
* **What counts.** Every request that is evaluated counts its weight, including those refused
  with 429 (spec §6.3: "a 400 still costs weight"), so the reported count can exceed the limit.
  Requests refused with 418 during a ban are not counted: they never reach accounting.
* **Ban start.** The first 429 in a minute is a warning. If the IP sends `ban_after_violations`
  more over-limit requests in that same minute, the one after that starts a ban: the request is
  refused with 418 -1003 "Way too many requests; IP banned until <ms>..." (spec §6.2: IPs are
  auto-banned "after continuing to send requests after 429s"). With the default 5, the 1st-6th
  over-limit requests of a minute get 429 and the 7th gets 418.
* **Ban length.** Bans escalate: the n-th ban of an IP (n = 0, 1, ...) lasts
  `min(first_ban_ms * 2**n, max_ban_ms)`, i.e. 2 min, 4 min, 8 min ... capped at 3 days
  (spec §6.2: "bans scale from 2 minutes to 3 days"). Every request during a ban gets 418 with
  the same `until`; requests during a ban do not extend it.
* **Decay.** The escalation level returns to 0 once an IP has been ban-free for
  `escalation_decay_ms` (default one day) after its last ban ended.
* **Memory.** State for an IP is dropped once its minute is over, it is not banned, and it has
  no escalation level left to remember. Dropping happens lazily: one sweep at the first call of
  each new minute, so cost is O(tracked IPs) per minute and memory is bounded by the IPs seen in
  the current minute plus the IPs banned within the last `escalation_decay_ms`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from userstream.protocol import errors
from userstream.protocol.wsapi import RateLimitStatus

__all__ = [
    "MINUTE_MS",
    "ORDER_COUNT_1M_HEADER",
    "ORDER_COUNT_10S_HEADER",
    "USED_WEIGHT_HEADER",
    "OrderCountLimiter",
    "OrderLimits",
    "RequestWeightLimiter",
    "WeightLimits",
]

USED_WEIGHT_HEADER: Final = "X-MBX-USED-WEIGHT-1M"
"""Response header carrying the IP's used weight in the current minute (spec §6.3)."""

MINUTE_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class WeightLimits:
    """Limits for `RequestWeightLimiter`; see the module docstring for the policy."""

    per_minute: int = 2400
    ban_after_violations: int = 5
    first_ban_ms: int = 120_000
    max_ban_ms: int = 3 * 24 * 3600 * 1000
    escalation_decay_ms: int = 24 * 3600 * 1000

    def ban_duration_ms(self, level: int) -> int:
        """Length of a ban given how many bans the IP had before it (0 for the first)."""
        if level >= 62:
            return self.max_ban_ms
        return min(self.first_ban_ms << level, self.max_ban_ms)


class _IpState:
    __slots__ = ("ban_until_ms", "level", "used", "violations", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.used = 0
        self.violations = 0
        self.ban_until_ms = 0
        self.level = 0


class RequestWeightLimiter:
    """REQUEST_WEIGHT per IP per UTC minute, with 429 warnings and escalating 418 bans."""

    def __init__(self, limits: WeightLimits = WeightLimits()) -> None:
        if limits.per_minute <= 0 or limits.first_ban_ms <= 0 or limits.max_ban_ms <= 0:
            raise ValueError("per_minute, first_ban_ms and max_ban_ms must be positive")
        if limits.ban_after_violations < 0 or limits.escalation_decay_ms < 0:
            raise ValueError("ban_after_violations and escalation_decay_ms must be >= 0")
        self.limits = limits
        self._ips: dict[str, _IpState] = {}
        self._swept_window = -1
        self.rejected = 0  # requests refused with 429 or 418 (the /metrics counter)

    def __len__(self) -> int:
        """Number of IPs whose state is currently held."""
        return len(self._ips)

    def charge(self, ip: str, weight: int, now_ms: int) -> int:
        """Account one request of `weight` from `ip`.

        Returns:
            The IP's used weight in the current minute after this request; send it as
            `X-MBX-USED-WEIGHT-1M` / the REQUEST_WEIGHT `count`.

        Raises:
            RateLimited: 429 when the minute's limit is exceeded (`retry_after_ms` = until the
                next minute), 418 when the IP is banned (`retry_after_ms` = until the ban ends).
        """
        if weight < 0:
            raise ValueError("weight must be >= 0")
        window = now_ms // MINUTE_MS
        self._sweep(window, now_ms)
        state = self._ips.get(ip)
        if state is None:
            state = self._ips[ip] = _IpState(window)
        limits = self.limits

        if now_ms < state.ban_until_ms:
            self.rejected += 1
            raise errors.ip_banned(state.ban_until_ms, state.ban_until_ms - now_ms)
        if state.level and now_ms >= state.ban_until_ms + limits.escalation_decay_ms:
            state.level = 0
        if state.window != window:
            state.window = window
            state.used = 0
            state.violations = 0

        state.used += weight
        if state.used <= limits.per_minute:
            return state.used

        state.violations += 1
        if state.violations > limits.ban_after_violations + 1:
            duration = limits.ban_duration_ms(state.level)
            state.level += 1
            state.violations = 0
            state.ban_until_ms = now_ms + duration
            self.rejected += 1
            raise errors.ip_banned(state.ban_until_ms, duration)
        self.rejected += 1
        raise errors.too_many_requests(limits.per_minute, (window + 1) * MINUTE_MS - now_ms)

    def used(self, ip: str, now_ms: int) -> int:
        """Weight `ip` has used in the current UTC minute (0 if unknown)."""
        state = self._ips.get(ip)
        if state is None or state.window != now_ms // MINUTE_MS:
            return 0
        return state.used

    def status(self, ip: str, now_ms: int) -> RateLimitStatus:
        """The REQUEST_WEIGHT item for a WebSocket API `rateLimits` array."""
        return RateLimitStatus(
            "REQUEST_WEIGHT", "MINUTE", 1, self.limits.per_minute, self.used(ip, now_ms)
        )

    def banned_until(self, ip: str, now_ms: int) -> int | None:
        """End of `ip`'s current ban in ms, or None if it is not banned."""
        state = self._ips.get(ip)
        if state is None or now_ms >= state.ban_until_ms:
            return None
        return state.ban_until_ms

    def _sweep(self, window: int, now_ms: int) -> None:
        if window == self._swept_window:
            return
        self._swept_window = window
        decay = self.limits.escalation_decay_ms
        dead = [
            ip
            for ip, s in self._ips.items()
            if s.window != window
            and now_ms >= s.ban_until_ms
            and (s.level == 0 or now_ms >= s.ban_until_ms + decay)
        ]
        for ip in dead:
            del self._ips[ip]


ORDER_COUNT_10S_HEADER: Final = "X-MBX-ORDER-COUNT-10S"
ORDER_COUNT_1M_HEADER: Final = "X-MBX-ORDER-COUNT-1M"
"""Order counts of the account, sent back on order placement, amend and cancel answers
(trading spec §7; 3P-OBS ccxt #18051: `x-mbx-order-count-10s: 2`)."""


@dataclass(frozen=True, slots=True)
class OrderLimits:
    """The ORDERS limits exchangeInfo lists, per account (trading spec §7)."""

    per_10s: int = 300
    per_minute: int = 1200


class OrderCountLimiter:
    """ORDERS per account over a 10-second and a one-minute window, both fixed windows
    aligned on the clock like REQUEST_WEIGHT's minute (trading spec §7).

    An order over either limit is refused with -1015 "Too many new orders; current limit is
    %s orders per %s." and HTTP 429 (the status is [UNCONFIRMED] for fapi, §8 q5; spot
    documents 429). Refused orders still count, as refused requests count weight.
    """

    def __init__(self, limits: OrderLimits = OrderLimits()) -> None:
        self.limits = limits
        # account -> (10 s window, count in it, minute window, count in it)
        self._counts: dict[int, tuple[int, int, int, int]] = {}

    def charge(self, account_id: int, orders: int, now_ms: int) -> tuple[int, int]:
        """Count `orders` new orders; return the (10 s, 1 min) counts after them.

        Raises:
            RateLimited: 429 -1015 when either window's limit is exceeded.
        """
        ten, minute = now_ms // 10_000, now_ms // MINUTE_MS
        w10, c10, w60, c60 = self._counts.get(account_id, (ten, 0, minute, 0))
        c10 = (c10 if w10 == ten else 0) + orders
        c60 = (c60 if w60 == minute else 0) + orders
        self._counts[account_id] = (ten, c10, minute, c60)
        if len(self._counts) > 100_000:
            self._counts = {a: c for a, c in self._counts.items() if c[2] == minute}
        if c10 > self.limits.per_10s:
            raise errors.too_many_orders(
                self.limits.per_10s, "10 SECOND", (ten + 1) * 10_000 - now_ms
            )
        if c60 > self.limits.per_minute:
            raise errors.too_many_orders(
                self.limits.per_minute, "1 MINUTE", (minute + 1) * MINUTE_MS - now_ms
            )
        return c10, c60

    def counts(self, account_id: int, now_ms: int) -> tuple[int, int]:
        """The account's (10 s, 1 min) counts now, without counting anything."""
        ten, minute = now_ms // 10_000, now_ms // MINUTE_MS
        w10, c10, w60, c60 = self._counts.get(account_id, (ten, 0, minute, 0))
        return (c10 if w10 == ten else 0), (c60 if w60 == minute else 0)
