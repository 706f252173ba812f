"""Binance's error bodies and the one table from core rejections to Binance codes.

Binance answers `{"code": -1121, "msg": "Invalid symbol."}` with HTTP 400 for a bad request,
401 for a bad or unknown API key. ccxt maps the codes to its exceptions (-2019 is
InsufficientFunds, -1021 InvalidNonce, -2015 AuthenticationError, ...), so the codes matter
more than the messages; the messages are Binance's own where Binance has one.
"""

from __future__ import annotations

from typing import Any

from exchange.api.errors import ApiError
from exchange.core.codes import RejectCode

BAD_REQUEST = 400
UNAUTHORIZED = 401
SERVER_ERROR = 500


class BinanceError(Exception):
    """A request answered with a Binance error body."""

    def __init__(self, code: int, msg: str, status: int = BAD_REQUEST) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


# ---------------------------------------------------------------------------------------------
# Request errors (the adapter's own)
# ---------------------------------------------------------------------------------------------


def unknown_error() -> BinanceError:
    return BinanceError(
        -1000, "An unknown error occurred while processing the request.", SERVER_ERROR
    )


def illegal_characters(name: str) -> BinanceError:
    return BinanceError(
        -1100,
        f"Illegal characters found in parameter '{name}'; "
        "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
    )


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def invalid_value(name: str) -> BinanceError:
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")


def invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def invalid_side() -> BinanceError:
    return BinanceError(-1117, "Invalid side.")


def invalid_order_type() -> BinanceError:
    return BinanceError(-1116, "Invalid orderType.")


def invalid_time_in_force() -> BinanceError:
    return BinanceError(-1115, "Invalid timeInForce.")


def bad_api_key_format() -> BinanceError:
    return BinanceError(-2014, "API-key format invalid.", UNAUTHORIZED)


def rejected_api_key() -> BinanceError:
    return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", UNAUTHORIZED)


def bad_signature() -> BinanceError:
    return BinanceError(-1022, "Signature for this request is not valid.")


def outside_recv_window() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def ahead_of_server(limit_ms: int) -> BinanceError:
    return BinanceError(
        -1021, f"Timestamp for this request was {limit_ms}ms ahead of the server's time."
    )


def bad_recv_window() -> BinanceError:
    return BinanceError(-1131, "recvWindow must be less than 60000")


def unknown_order_sent() -> BinanceError:
    """What a cancel of an order that is not open answers (a query answers -2013)."""
    return BinanceError(-2011, "Unknown order sent.")


def no_need_to_change_margin_type() -> BinanceError:
    return BinanceError(-4046, "No need to change margin type.")


def no_need_to_change_position_side() -> BinanceError:
    return BinanceError(-4059, "No need to change position side.")


def hedge_mode_unsupported() -> BinanceError:
    """Binance has no code for this: paperex keeps one-way positions only."""
    return BinanceError(-1130, "Data sent for parameter 'dualSidePosition' is not valid.")


def position_side_mismatch() -> BinanceError:
    return BinanceError(-4061, "Order's position side does not match user's setting.")


def unknown_listen_key() -> BinanceError:
    return BinanceError(-1125, "This listenKey does not exist.")


# ---------------------------------------------------------------------------------------------
# Core rejections
# ---------------------------------------------------------------------------------------------

_PRECISION = (-1111, "Precision is over the maximum defined for this asset.")
_MARGIN = (-2019, "Margin is insufficient.")

REJECTIONS: dict[RejectCode, tuple[int, str]] = {
    RejectCode.INVALID_NUMBER: (-1100, "Illegal characters found in parameter '{field}'."),
    RejectCode.UNKNOWN_SYMBOL: (-1121, "Invalid symbol."),
    RejectCode.INVALID_QUANTITY: (-4003, "Quantity less than or equal to zero."),
    RejectCode.QTY_OFF_LOT: _PRECISION,
    RejectCode.INVALID_PRICE: (-4001, "Price less than 0."),
    RejectCode.PRICE_OFF_TICK: _PRECISION,
    RejectCode.QTY_BELOW_MINIMUM: (-4004, "Quantity less than min quantity."),
    RejectCode.QTY_ABOVE_MAXIMUM: (-4005, "Quantity greater than max quantity."),
    RejectCode.NOTIONAL_BELOW_MINIMUM: (
        -4164,
        "Order's notional must be no smaller than {min_notional} (unless you choose reduce only).",
    ),
    # Above the band; a price below it answers PRICE_BELOW_BAND.
    RejectCode.PRICE_OUTSIDE_BAND: (-4016, "Price is higher than mark price multiplier cap."),
    RejectCode.PRICE_REQUIRED: (
        -1102,
        "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
    ),
    RejectCode.PRICE_NOT_ALLOWED: (-1106, "Parameter 'price' sent when not required."),
    RejectCode.TRIGGER_PRICE_REQUIRED: (
        -1102,
        "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.",
    ),
    RejectCode.TRIGGER_PRICE_NOT_ALLOWED: (-1106, "Parameter 'stopPrice' sent when not required."),
    RejectCode.INVALID_TIME_IN_FORCE: (-1115, "Invalid timeInForce."),
    RejectCode.CLOSE_POSITION_NOT_ALLOWED: (
        -1106,
        "Parameter 'closePosition' sent when not required.",
    ),
    RejectCode.INVALID_CLIENT_ORDER_ID: (-4015, "Client order id is not valid."),
    RejectCode.DUPLICATE_CLIENT_ORDER_ID: (-4116, "ClientOrderId is duplicated."),
    RejectCode.WOULD_IMMEDIATELY_TRIGGER: (-2021, "Order would immediately trigger."),
    RejectCode.AMOUNT_PRECISION: _PRECISION,
    RejectCode.INVALID_AMOUNT: (-1130, "Data sent for parameter '{field}' is not valid."),
    RejectCode.INVALID_LEVERAGE: (-4028, "Leverage is not valid"),
    RejectCode.TOO_MANY_OPEN_ORDERS: (-2025, "Reach max open order limit."),
    RejectCode.INSUFFICIENT_MARGIN: _MARGIN,
    RejectCode.REDUCE_ONLY_REJECTED: (-2022, "ReduceOnly Order is rejected."),
    RejectCode.POSITION_OVER_BRACKET: (
        -2027,
        "Exceeded the maximum allowable position at current leverage.",
    ),
    RejectCode.INSUFFICIENT_BALANCE: _MARGIN,
    # With a position; with open orders only it answers MARGIN_TYPE_OPEN_ORDERS.
    RejectCode.MARGIN_MODE_CHANGE_BLOCKED: (
        -4048,
        "Margin type cannot be changed if there exists position.",
    ),
    # Binance lets leverage change under open orders; paperex holds margin per order, so not.
    RejectCode.LEVERAGE_CHANGE_BLOCKED: (
        -4161,
        "Leverage cannot be changed while the symbol has open orders.",
    ),
    RejectCode.ISOLATED_MARGIN_BLOCKED: (
        -1130,
        "Isolated margin can only be adjusted on an open isolated position.",
    ),
    RejectCode.POST_ONLY_WOULD_TAKE: (
        -5022,
        "Due to the order could not be executed as maker, the Post Only order will be "
        "rejected. The order will not be recorded in the order history",
    ),
    RejectCode.UNKNOWN_ORDER: (-2013, "Order does not exist."),
    RejectCode.ORDER_NOT_AMENDABLE: (-2013, "Order does not exist."),
    RejectCode.AMEND_NO_CHANGE: (-5027, "No need to modify the order."),
    RejectCode.SYMBOL_HALTED: (-1122, "Invalid symbol status."),
    RejectCode.UNKNOWN_ACCOUNT: (-2015, "Invalid API-key, IP, or permissions for action."),
    RejectCode.ACCOUNT_EXISTS: (-1000, "An unknown error occurred while processing the request."),
}
"""Every core rejection's Binance code and message; formatted with `field` and `min_notional`."""

PRICE_BELOW_BAND = (-4024, "Price is lower than mark price multiplier floor.")
MARGIN_TYPE_OPEN_ORDERS = (-4047, "Margin type cannot be changed if there exists open orders.")


def from_reject(
    code: RejectCode, field: str | None = None, *, min_notional: str = ""
) -> BinanceError:
    """Return the Binance error for a core rejection."""
    binance_code, template = REJECTIONS[code]
    status = 401 if binance_code == -2015 else BAD_REQUEST
    return BinanceError(
        binance_code, template.format(field=field or "", min_notional=min_notional), status
    )


def from_api_error(error: ApiError, *, min_notional: str = "") -> BinanceError:
    """Translate an error of the shared converters (a core code and the field) to Binance's."""
    field = error.data.get("field") if error.data else None
    if isinstance(error.code, RejectCode):
        return from_reject(error.code, field, min_notional=min_notional)
    return unknown_error()
