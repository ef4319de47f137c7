"""Binance error codes used by the server, with their HTTP status and message.

Source: USDⓈ-M Futures "Error Codes" page and General Info (spec §6.2, §6.5); HTTP statuses
for -2014 / -1125 as observed on testnet 2026-10 (spec §2.2, §2.3). The -2015 status (401) is
what clients expect but is not confirmed by Binance (spec §8 open question 1).
"""

from __future__ import annotations

from userstream.exceptions import (
    BinanceAPIError,
    InvalidAPIKey,
    ListenKeyNotFound,
    RateLimited,
)

UNKNOWN = -1000
TOO_MANY_REQUESTS = -1003
MANDATORY_PARAM = -1102
NOT_FOUND = -1099
INVALID_LISTEN_KEY = -1125
INVALID_PARAMETER = -1130
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015


def listen_key_not_found() -> ListenKeyNotFound:
    return ListenKeyNotFound(INVALID_LISTEN_KEY, "This listenKey does not exist.", 400)


def api_key_format_invalid() -> InvalidAPIKey:
    return InvalidAPIKey(BAD_API_KEY_FMT, "API-key format invalid.", 401)


def api_key_rejected() -> InvalidAPIKey:
    return InvalidAPIKey(REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", 401)


def too_many_requests(limit: int, retry_after_ms: int) -> RateLimited:
    return RateLimited(
        TOO_MANY_REQUESTS,
        f"Too many requests; current limit is {limit} requests per minute. Please use the "
        "websocket for live updates to avoid polling the API.",
        429,
        retry_after_ms,
    )


def too_many_orders(limit: int, interval: str, retry_after_ms: int) -> RateLimited:
    """-1015 (USDⓈ-M "Error Codes": TOO_MANY_ORDERS); 429 as spot documents it."""
    return RateLimited(
        -1015,
        f"Too many new orders; current limit is {limit} orders per {interval}.",
        429,
        retry_after_ms,
    )


def ip_banned(until_ms: int, retry_after_ms: int) -> RateLimited:
    return RateLimited(
        TOO_MANY_REQUESTS,
        f"Way too many requests; IP banned until {until_ms}. Please use the websocket for "
        "live updates to avoid bans.",
        418,
        retry_after_ms,
    )


def mandatory_param(name: str) -> BinanceAPIError:
    return BinanceAPIError(
        MANDATORY_PARAM,
        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
        400,
    )


def invalid_parameter(name: str) -> BinanceAPIError:
    return BinanceAPIError(
        INVALID_PARAMETER, f"Data sent for parameter '{name}' is not valid.", 400
    )


def unknown_error() -> BinanceAPIError:
    return BinanceAPIError(UNKNOWN, "An unknown error occured while processing the request.", 500)
