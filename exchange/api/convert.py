"""Wire decimals to core integers through the core's exact converters, errors with the field."""

from __future__ import annotations

from decimal import Decimal

from exchange.api.errors import ApiError, rejected
from exchange.core.codes import RejectCode
from exchange.core.instruments import Instrument
from exchange.core.numbers import NumberError, atoms, parse_decimal

Text = str | int | Decimal


def _error(error: NumberError, field: str) -> ApiError:
    return rejected(error.code, error.message, field)


def price_ticks(instrument: Instrument, value: Text, field: str) -> int:
    try:
        return instrument.price_ticks(value, field)
    except NumberError as error:
        raise _error(error, field) from None


def qty_lots(instrument: Instrument, value: Text, field: str) -> int:
    try:
        return instrument.qty_lots(value, field)
    except NumberError as error:
        raise _error(error, field) from None


def amount_atoms(value: Text, field: str, *, positive: bool = True) -> int:
    """Convert an amount of USDT; positive unless told it may be signed (then not zero)."""
    try:
        result = atoms(value, field)
    except NumberError as error:
        raise _error(error, field) from None
    if result == 0 or (positive and result < 0):
        need = "positive" if positive else "non-zero"
        raise rejected(RejectCode.INVALID_AMOUNT, f"{field} must be {need}", field)
    return result


def decimal(value: Text, field: str) -> Decimal:
    try:
        return parse_decimal(value, field)
    except NumberError as error:
        raise _error(error, field) from None
