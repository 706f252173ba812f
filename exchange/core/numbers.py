"""Fixed-point scales and the only conversions between decimal text and integers.

Prices are integer ticks and quantities integer lots of an instrument; money is integer
atoms of the settlement asset; rates are integers in RATE_SCALE. Decimal text exists only
at the edges, and a value that does not fit its step exactly is an error, never rounded.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

from exchange.core.codes import RejectCode

ATOMS_PER_UNIT: Final = 100_000_000
"""Atoms in one unit of the settlement asset (USDT): 1 atom = 1e-8 USDT."""

RATE_SCALE: Final = 100_000_000
"""Rates (fees, maintenance margin rates, funding) are integers over this scale."""

_ATOM = Decimal(1) / ATOMS_PER_UNIT
_RATE_STEP = Decimal(1) / RATE_SCALE
_MAX_DIGITS = 30


class NumberError(ValueError):
    """A decimal value that cannot enter the core exactly."""

    def __init__(self, code: RejectCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_decimal(text: str | int | Decimal, name: str = "value") -> Decimal:
    """Parse decimal text strictly: finite, plain, and of bounded size."""
    if isinstance(text, bool):
        raise NumberError(RejectCode.INVALID_NUMBER, f"{name} must be a decimal string")
    # A tuple, not A | B: compiled, the union is built anew on every call.
    if isinstance(text, (Decimal, int)):
        value = Decimal(text)
    elif isinstance(text, str):
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            raise NumberError(
                RejectCode.INVALID_NUMBER, f"{name} is not a decimal number: {text!r}"
            ) from None
    else:
        raise NumberError(RejectCode.INVALID_NUMBER, f"{name} must be a decimal string")
    if not value.is_finite():
        raise NumberError(RejectCode.INVALID_NUMBER, f"{name} must be finite")
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) + max(exponent, 0) > _MAX_DIGITS or exponent < -_MAX_DIGITS:
        raise NumberError(RejectCode.INVALID_NUMBER, f"{name} is out of range")
    return value


def to_steps(
    value: Decimal, step: Decimal, name: str = "value", code: RejectCode = RejectCode.INVALID_NUMBER
) -> int:
    """Return value / step as an integer, or raise if value is not a whole number of steps."""
    steps, remainder = divmod(value, step)
    if remainder != 0:
        raise NumberError(code, f"{name} {value} is not a multiple of {step}")
    return int(steps)


def atoms(text: str | int | Decimal, name: str = "amount") -> int:
    """Convert a decimal amount of the settlement asset to atoms, exactly."""
    return to_steps(parse_decimal(text, name), _ATOM, name, RejectCode.AMOUNT_PRECISION)


def rate(text: str | int | Decimal, name: str = "rate") -> int:
    """Convert a decimal rate (0.0004 for 4 basis points) to RATE_SCALE, exactly."""
    return to_steps(parse_decimal(text, name), _RATE_STEP, name)


def format_steps(steps: int, step: Decimal) -> str:
    """Render an integer count of steps as plain decimal text with the step's precision."""
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    places = max(-exponent, 0)
    value = Decimal(steps) * step
    return f"{value:.{places}f}"


def format_atoms(amount: int) -> str:
    """Render atoms as decimal text of the settlement asset with 8 places."""
    return format_steps(amount, _ATOM)


def format_rate(value: int) -> str:
    """Render a RATE_SCALE integer as plain decimal text."""
    return format_steps(value, _RATE_STEP)


def ceil_div(numerator: int, denominator: int) -> int:
    """Divide and round towards positive infinity (denominator > 0)."""
    return -((-numerator) // denominator)
