"""Load instruments from TOML into core `Instrument`s.

The file holds one table per symbol under `instruments`:

    [instruments.BTCUSDT]
    base_asset = "BTC"
    tick_size = "0.1"
    ...
    brackets = [
        { floor = "0", cap = "50000", max_leverage = 125, maintenance_margin_rate = "0.004" },
        ...
    ]

Decimal values may be strings, integers or TOML floats; floats are read as exact decimals of
their text, never through binary floating point. The maintenance amount (cum) of each bracket
is derived by the core, not configured.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from exchange.core.instruments import Instrument, InstrumentError
from exchange.core.numbers import NumberError, parse_decimal


class InstrumentConfigError(ValueError):
    """An instruments file that cannot be read or describes no valid market."""


def _decimal_text(value: object) -> Decimal:
    # Booleans are ints in Python and floats have lost their text already: refuse both.
    if isinstance(value, bool | float):
        raise ValueError("must be a decimal string, not a binary float or boolean")
    if not isinstance(value, str | int | Decimal):
        raise ValueError("must be a decimal string")
    try:
        return parse_decimal(value)
    except NumberError as error:
        # parse_decimal names its input "value"; the caller's location names the field.
        raise ValueError(error.message.removeprefix("value is ").removeprefix("value ")) from None


DecimalText = Annotated[Decimal, BeforeValidator(_decimal_text)]
"""A decimal read exactly from a string, an integer or a Decimal; floats are refused."""


class BracketConfig(BaseModel):
    """One leverage bracket: notional floor and cap in USDT, max leverage and MMR."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    floor: DecimalText
    cap: DecimalText
    max_leverage: Annotated[int, Field(strict=True, ge=1, le=125)]
    maintenance_margin_rate: DecimalText


class InstrumentConfig(BaseModel):
    """One perpetual contract as written in the instruments file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_asset: Annotated[str, Field(min_length=1)]
    quote_asset: str = "USDT"
    tick_size: DecimalText
    lot_size: DecimalText
    min_qty: DecimalText
    max_qty: DecimalText
    max_market_qty: DecimalText | None = None
    min_notional: DecimalText = Decimal(5)
    price_band: DecimalText = Decimal("0.05")
    maker_fee: DecimalText = Decimal("0.0002")
    taker_fee: DecimalText = Decimal("0.0005")
    max_open_orders: Annotated[int, Field(strict=True, ge=1)] = 200
    brackets: Annotated[list[BracketConfig], Field(min_length=1)]


class InstrumentsFile(BaseModel):
    """The whole instruments file: symbol -> instrument."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instruments: Annotated[
        dict[Annotated[str, Field(pattern=r"^[A-Z0-9]{2,20}$")], InstrumentConfig],
        Field(min_length=1),
    ]


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """Return the first problem of a pydantic error as one line naming the field."""
    first = error.errors()[0]
    # A bad mapping key is reported as "[key]" after the key itself; the key is enough.
    where = ".".join(str(part) for part in first["loc"] if part != "[key]")
    message = first["msg"].removeprefix("Value error, ")
    location = f"{prefix}.{where}" if prefix and where else prefix or where
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{location}: {message}{suffix}"


def build_instrument(symbol: str, config: InstrumentConfig) -> Instrument:
    """Build a core instrument from its validated configuration."""
    return Instrument.create(
        symbol=symbol,
        base_asset=config.base_asset,
        quote_asset=config.quote_asset,
        tick_size=str(config.tick_size),
        lot_size=str(config.lot_size),
        min_qty=str(config.min_qty),
        max_qty=str(config.max_qty),
        max_market_qty=None if config.max_market_qty is None else str(config.max_market_qty),
        min_notional=str(config.min_notional),
        price_band=str(config.price_band),
        maker_fee=str(config.maker_fee),
        taker_fee=str(config.taker_fee),
        brackets=[
            (row.floor, row.cap, row.max_leverage, row.maintenance_margin_rate)
            for row in config.brackets
        ],
        max_open_orders=config.max_open_orders,
    )


def parse_instruments(data: Mapping[str, Any]) -> dict[str, Instrument]:
    """Validate parsed instruments data and build the instruments, keyed by symbol."""
    try:
        parsed = InstrumentsFile.model_validate(data)
    except ValidationError as error:
        raise InstrumentConfigError(describe_validation_error(error)) from None
    instruments: dict[str, Instrument] = {}
    for symbol, config in parsed.instruments.items():
        try:
            instruments[symbol] = build_instrument(symbol, config)
        except InstrumentError as error:
            # The core's messages may or may not start with the symbol already.
            message = str(error).removeprefix(f"{symbol}: ")
            raise InstrumentConfigError(f"instruments.{symbol}: {message}") from None
    return instruments


def loads_instruments(text: str) -> dict[str, Instrument]:
    """Parse instruments from TOML text."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise InstrumentConfigError(f"malformed TOML: {error}") from None
    return parse_instruments(data)


def load_instruments(path: Path) -> dict[str, Instrument]:
    """Read instruments from a TOML file; errors name the file and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InstrumentConfigError(f"{path}: cannot read: {error.strerror}") from None
    try:
        return loads_instruments(text)
    except InstrumentConfigError as error:
        raise InstrumentConfigError(f"{path}: {error}") from None
