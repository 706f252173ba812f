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


# Decimal text already converted, per step size: clients send the same sizes and nearby
# prices again and again, and the core's exact conversion builds Decimals every time. Only
# successful conversions are kept (a refusal is raised afresh, with its field), and a table
# that fills up is simply emptied.
_CONVERTED_KEPT = 4096
_ticks_by_text: dict[tuple[Decimal, str], int] = {}
_lots_by_text: dict[tuple[Decimal, str], int] = {}


def price_ticks(instrument: Instrument, value: Text, field: str) -> int:
    if type(value) is str:
        key = (instrument.tick_size, value)
        ticks = _ticks_by_text.get(key)
        if ticks is not None:
            return ticks
    try:
        ticks = instrument.price_ticks(value, field)
    except NumberError as error:
        raise _error(error, field) from None
    if type(value) is str:
        if len(_ticks_by_text) >= _CONVERTED_KEPT:
            _ticks_by_text.clear()
        _ticks_by_text[key] = ticks
    return ticks


def qty_lots(instrument: Instrument, value: Text, field: str) -> int:
    if type(value) is str:
        key = (instrument.lot_size, value)
        lots = _lots_by_text.get(key)
        if lots is not None:
            return lots
    try:
        lots = instrument.qty_lots(value, field)
    except NumberError as error:
        raise _error(error, field) from None
    if type(value) is str:
        if len(_lots_by_text) >= _CONVERTED_KEPT:
            _lots_by_text.clear()
        _lots_by_text[key] = lots
    return lots


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
