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


# --- Order and account rules of the venue (USDⓈ-M "Error Codes" page,
# https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code; trading spec
# §1.7, §2.3, §2.5, §2.6, §4.1). `%s` is filled in by the caller. All answer HTTP 400.

PARAM_NOT_REQUIRED = -1106
BAD_PRECISION = -1111
BAD_SYMBOL = -1121
INVALID_SYMBOL_STATUS = -1122
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BALANCE_NOT_SUFFICIENT = -2018
MARGIN_NOT_SUFFICIENT = -2019
REDUCE_ONLY_REJECT = -2022
MAX_OPEN_ORDER_EXCEEDED = -2025
MAX_LEVERAGE_RATIO = -2027
PRICE_GREATER_THAN_MAX_PRICE = -4002
QTY_LESS_THAN_ZERO = -4003
QTY_LESS_THAN_MIN_QTY = -4004
QTY_GREATER_THAN_MAX_QTY = -4005
PRICE_LESS_THAN_MIN_PRICE = -4013
PRICE_NOT_INCREASED_BY_TICK_SIZE = -4014
INVALID_CL_ORD_ID_LEN = -4015
PRICE_HIGHER_THAN_MULTIPLIER_UP = -4016
QTY_NOT_INCREASED_BY_STEP_SIZE = -4023
PRICE_LOWER_THAN_MULTIPLIER_DOWN = -4024
INVALID_LEVERAGE = -4028
NO_NEED_TO_CHANGE_MARGIN_TYPE = -4046
THERE_EXISTS_OPEN_ORDERS = -4047
THERE_EXISTS_QUANTITY = -4048
POSITION_SIDE_NOT_MATCH = -4061
DUPLICATED_CLIENT_ORDER_ID = -4116
STOP_ORDER_SWITCH_ALGO = -4120
MARKET_ORDER_REJECT = -4131
MIN_NOTIONAL = -4164
JOINT_MARGIN_REJECT_WITH_ISOLATED = -4168
FOK_ORDER_REJECT = -5021
GTX_ORDER_REJECT = -5022
LIMIT_ORDER_ONLY = -5025
EXCEED_MAXIMUM_MODIFY_ORDER_LIMIT = -5026
SAME_ORDER = -5027
MODIFICATION_MIN_NOTIONAL = -5029
INVALID_PRICE_MATCH = -5037
UNSUPPORTED_ORDER_TYPE_PRICE_MATCH = -5038
FUTURE_GOOD_TILL_DATE = -5040
BBO_ORDER_REJECT = -5041

MESSAGES: dict[int, str] = {
    MANDATORY_PARAM: "Mandatory parameter '%s' was not sent, was empty/null, or malformed.",
    PARAM_NOT_REQUIRED: "Parameter '%s' sent when not required.",
    BAD_PRECISION: "Precision is over the maximum defined for this asset.",
    BAD_SYMBOL: "Invalid symbol.",
    INVALID_SYMBOL_STATUS: "Invalid symbol status.",
    INVALID_PARAMETER: "Data sent for parameter '%s' is not valid.",
    # hummingbot matches this exact text (spec §1.6), not the error page's "CANCEL_REJECTED".
    CANCEL_REJECTED: "Unknown order sent.",
    NO_SUCH_ORDER: "Order does not exist.",
    BALANCE_NOT_SUFFICIENT: "Balance is insufficient.",
    MARGIN_NOT_SUFFICIENT: "Margin is insufficient.",
    REDUCE_ONLY_REJECT: "ReduceOnly Order is rejected.",
    MAX_OPEN_ORDER_EXCEEDED: "Reach max open order limit.",
    MAX_LEVERAGE_RATIO: "Exceeded the maximum allowable position at current leverage.",
    PRICE_GREATER_THAN_MAX_PRICE: "Price greater than max price.",
    QTY_LESS_THAN_ZERO: "Quantity less than zero.",
    QTY_LESS_THAN_MIN_QTY: "Quantity less than min quantity.",
    QTY_GREATER_THAN_MAX_QTY: "Quantity greater than max quantity.",
    PRICE_LESS_THAN_MIN_PRICE: "Price less than min price.",
    PRICE_NOT_INCREASED_BY_TICK_SIZE: "Price not increased by tick size.",
    INVALID_CL_ORD_ID_LEN: "%s",
    PRICE_HIGHER_THAN_MULTIPLIER_UP: "Price is higher than mark price multiplier cap.",
    QTY_NOT_INCREASED_BY_STEP_SIZE: "Qty not increased by step size.",
    PRICE_LOWER_THAN_MULTIPLIER_DOWN: "Price is lower than mark price multiplier floor.",
    INVALID_LEVERAGE: "Leverage %s is not valid",
    NO_NEED_TO_CHANGE_MARGIN_TYPE: "No need to change margin type.",
    THERE_EXISTS_OPEN_ORDERS: "Margin type cannot be changed if there exists open orders.",
    THERE_EXISTS_QUANTITY: "Margin type cannot be changed if there exists position.",
    POSITION_SIDE_NOT_MATCH: "Order's position side does not match user's setting.",
    DUPLICATED_CLIENT_ORDER_ID: "clientOrderId is duplicated",
    STOP_ORDER_SWITCH_ALGO: (
        "Order type not supported for this endpoint. Please use the Algo Order API endpoints "
        "instead."
    ),
    MARKET_ORDER_REJECT: (
        "The counterparty's best price does not meet the PERCENT_PRICE filter limit"
    ),
    MIN_NOTIONAL: "Order's notional must be no smaller than %s (unless you choose reduce only)",
    JOINT_MARGIN_REJECT_WITH_ISOLATED: (
        "Unable to adjust to isolated-margin mode under the Multi-Assets mode."
    ),
    # spec §4.1 rows 19-20: the 2025 captures carry the second sentence.
    FOK_ORDER_REJECT: (
        "Due to the order could not be filled immediately, the FOK order has been rejected. "
        "The order will not be recorded in the order history"
    ),
    GTX_ORDER_REJECT: (
        "Due to the order could not be executed as maker, the Post Only order will be "
        "rejected. The order will not be recorded in the order history"
    ),
    LIMIT_ORDER_ONLY: "Only limit order is supported.",
    EXCEED_MAXIMUM_MODIFY_ORDER_LIMIT: "Exceed maximum modify order limit.",
    SAME_ORDER: "No need to modify the order.",
    MODIFICATION_MIN_NOTIONAL: "Order's notional must be no smaller than %s",
    INVALID_PRICE_MATCH: "Invalid price match",
    UNSUPPORTED_ORDER_TYPE_PRICE_MATCH: (
        "Price match only supports order type: LIMIT, STOP AND TAKE_PROFIT"
    ),
    FUTURE_GOOD_TILL_DATE: (
        "The goodTillDate timestamp must be greater than the current time plus 600 seconds and "
        "smaller than 253402300799000 (UTC 9999-12-31 23:59:59)"
    ),
    BBO_ORDER_REJECT: "No depth matches this BBO order",
}
"""Message per code; `%s` marks where the caller's value goes (spec §1.7, §4.1)."""

CLIENT_ORDER_ID_TOO_LONG = "Client order id length should not be more than 36 chars"
CLIENT_ORDER_ID_INVALID = "Client order id is not valid."
ORDER_IDS_BOTH_EMPTY = (
    "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
)
