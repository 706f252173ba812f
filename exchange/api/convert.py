"""Wire decimals to core integers through the core's exact converters, errors with the field."""

from __future__ import annotations

from collections.abc import Callable
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
    return _remembered(_ticks_by_text, instrument.tick_size, instrument.price_ticks, value, field)


def qty_lots(instrument: Instrument, value: Text, field: str) -> int:
    return _remembered(_lots_by_text, instrument.lot_size, instrument.qty_lots, value, field)


def _remembered(
    table: dict[tuple[Decimal, str], int],
    step: Decimal,
    convert: Callable[[Text, str], int],
    value: Text,
    field: str,
) -> int:
    """Convert value to steps of `step`, from the table when this text was converted before."""
    if type(value) is str:
        key = (step, value)
        steps = table.get(key)
        if steps is not None:
            return steps
    try:
        steps = convert(value, field)
    except NumberError as error:
        raise _error(error, field) from None
    if type(value) is str:
        if len(table) >= _CONVERTED_KEPT:
            table.clear()
        table[key] = steps
    return steps


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
