"""Instruments and their leverage brackets: data from config, integers inside."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from decimal import Decimal

from exchange.core.codes import RejectCode
from exchange.core.numbers import (
    ATOMS_PER_UNIT,
    RATE_SCALE,
    NumberError,
    atoms,
    format_steps,
    parse_decimal,
    rate,
    to_steps,
)


class InstrumentError(ValueError):
    """Instrument data that cannot describe a tradable market."""


@dataclass(frozen=True, slots=True)
class LeverageBracket:
    """One notional tier, in atoms: notional_floor <= notional < notional_cap."""

    tier: int
    notional_floor: int
    notional_cap: int
    max_leverage: int
    maintenance_margin_rate: int
    maintenance_amount: int

    def __reduce__(self) -> tuple[type[LeverageBracket], tuple[object, ...]]:
        return type(self), field_values(self)


def field_values(record: Instrument | LeverageBracket) -> tuple[object, ...]:
    """Return a frozen record's fields in order: it is pickled as a call of its class.

    That form is the same interpreted and compiled (exchange/core/pickling.py): a dataclass
    compiled by mypyc can only be made by calling it.
    """
    return tuple(getattr(record, field.name) for field in fields(record))


def build_brackets(
    rows: Sequence[tuple[str | int | Decimal, str | int | Decimal, int, str | int | Decimal]],
) -> tuple[LeverageBracket, ...]:
    """Build brackets from (floor, cap, max leverage, maintenance margin rate) rows.

    The maintenance amount is derived, as Binance does:
    cum_n = floor_n * (MMR_n - MMR_{n-1}) + cum_{n-1}, cum_1 = 0.
    """
    brackets: list[LeverageBracket] = []
    previous_rate = 0
    previous_amount = 0
    previous_cap = -1
    for index, (floor_text, cap_text, max_leverage, rate_text) in enumerate(rows):
        floor = atoms(floor_text, "notional_floor")
        cap = atoms(cap_text, "notional_cap")
        maintenance_rate = rate(rate_text, "maintenance_margin_rate")
        if index == 0 and floor != 0:
            raise InstrumentError("the first bracket must start at notional 0")
        if index > 0 and floor != previous_cap:
            raise InstrumentError(f"bracket {index + 1} must start where the previous one ends")
        if cap <= floor:
            raise InstrumentError(f"bracket {index + 1} has an empty notional range")
        if not 1 <= max_leverage <= 125:
            raise InstrumentError(f"bracket {index + 1} max leverage must be 1..125")
        if not 0 < maintenance_rate < RATE_SCALE:
            raise InstrumentError(f"bracket {index + 1} maintenance margin rate must be in (0, 1)")
        if index > 0 and maintenance_rate < previous_rate:
            raise InstrumentError("maintenance margin rates must not fall with notional")
        step, remainder = divmod(floor * (maintenance_rate - previous_rate), RATE_SCALE)
        if remainder:
            raise InstrumentError(f"bracket {index + 1} maintenance amount is not whole atoms")
        amount = step + previous_amount
        brackets.append(
            LeverageBracket(index + 1, floor, cap, max_leverage, maintenance_rate, amount)
        )
        previous_rate, previous_amount, previous_cap = maintenance_rate, amount, cap
    if not brackets:
        raise InstrumentError("an instrument needs at least one leverage bracket")
    return tuple(brackets)


@dataclass(frozen=True, slots=True)
class Instrument:
    """A USDT-margined perpetual contract.

    Prices are integer ticks of tick_size, quantities integer lots of lot_size, money atoms.
    """

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: int
    max_qty: int
    max_market_qty: int
    min_notional: int
    price_band_rate: int
    maker_fee_rate: int
    taker_fee_rate: int
    brackets: tuple[LeverageBracket, ...]
    max_open_orders: int
    atoms_per_tick_lot: int

    def __reduce__(self) -> tuple[type[Instrument], tuple[object, ...]]:
        return type(self), field_values(self)

    @classmethod
    def create(
        cls,
        *,
        symbol: str,
        base_asset: str,
        quote_asset: str = "USDT",
        tick_size: str,
        lot_size: str,
        min_qty: str,
        max_qty: str,
        max_market_qty: str | None = None,
        min_notional: str = "5",
        price_band: str = "0.05",
        maker_fee: str = "0.0002",
        taker_fee: str = "0.0005",
        brackets: Sequence[
            tuple[str | int | Decimal, str | int | Decimal, int, str | int | Decimal]
        ],
        max_open_orders: int = 200,
    ) -> Instrument:
        """Build an instrument from decimal text, checking that its scales are exact."""
        try:
            tick = parse_decimal(tick_size, "tick_size")
            lot = parse_decimal(lot_size, "lot_size")
            if tick <= 0 or lot <= 0:
                raise InstrumentError("tick_size and lot_size must be positive")
            per_tick_lot = tick * lot * ATOMS_PER_UNIT
            if per_tick_lot != per_tick_lot.to_integral_value():
                raise InstrumentError(
                    f"{symbol}: tick_size x lot_size must be a whole number of atoms (1e-8)"
                )
            minimum = to_steps(parse_decimal(min_qty, "min_qty"), lot, "min_qty")
            maximum = to_steps(parse_decimal(max_qty, "max_qty"), lot, "max_qty")
            market_maximum = (
                maximum
                if max_market_qty is None
                else to_steps(parse_decimal(max_market_qty, "max_market_qty"), lot)
            )
            instrument = cls(
                symbol=symbol,
                base_asset=base_asset,
                quote_asset=quote_asset,
                tick_size=tick,
                lot_size=lot,
                min_qty=minimum,
                max_qty=maximum,
                max_market_qty=market_maximum,
                min_notional=atoms(min_notional, "min_notional"),
                price_band_rate=rate(price_band, "price_band"),
                maker_fee_rate=rate(maker_fee, "maker_fee"),
                taker_fee_rate=rate(taker_fee, "taker_fee"),
                brackets=build_brackets(brackets),
                max_open_orders=max_open_orders,
                atoms_per_tick_lot=int(per_tick_lot),
            )
        except NumberError as error:
            raise InstrumentError(f"{symbol}: {error.message}") from None
        if not 0 < instrument.min_qty <= instrument.max_qty:
            raise InstrumentError(f"{symbol}: need 0 < min_qty <= max_qty")
        if not 0 < instrument.price_band_rate < RATE_SCALE:
            raise InstrumentError(f"{symbol}: price_band must be in (0, 1)")
        if max_open_orders < 1:
            raise InstrumentError(f"{symbol}: max_open_orders must be positive")
        return instrument

    # Unit changes. Every multiplication of scales goes through one of these.

    def notional(self, price_ticks: int, qty_lots: int) -> int:
        """Return the notional in atoms of qty_lots at price_ticks."""
        return price_ticks * qty_lots * self.atoms_per_tick_lot

    def fee(self, price_ticks: int, qty_lots: int, rate: int) -> int:
        """Return the fee in atoms, rounded up, at rate on the notional of qty_lots at price_ticks.

        The same integer as ceil_div(notional * rate, RATE_SCALE), multiplied in another order:
        price by lots, and atoms per tick-lot by rate, are each small for ordinary sizes, and
        the mypyc build multiplies natively only factors below 2^30 that are not negative.
        """
        product = price_ticks * qty_lots * (self.atoms_per_tick_lot * rate)
        return -(-product // RATE_SCALE)

    def price_ticks(self, text: str | int | Decimal, name: str = "price") -> int:
        """Convert a decimal price to ticks; reject zero, negatives and prices off the tick."""
        value = parse_decimal(text, name)
        if value <= 0:
            raise NumberError(RejectCode.INVALID_PRICE, f"{name} must be positive")
        return to_steps(value, self.tick_size, name, RejectCode.PRICE_OFF_TICK)

    def qty_lots(self, text: str | int | Decimal, name: str = "qty") -> int:
        """Convert a decimal quantity to lots; reject zero, negatives and sizes off the lot."""
        value = parse_decimal(text, name)
        if value <= 0:
            raise NumberError(RejectCode.INVALID_QUANTITY, f"{name} must be positive")
        return to_steps(value, self.lot_size, name, RejectCode.QTY_OFF_LOT)

    def price_text(self, ticks: int) -> str:
        """Render ticks as a decimal price."""
        return format_steps(ticks, self.tick_size)

    def qty_text(self, lots: int) -> str:
        """Render lots as a decimal quantity."""
        return format_steps(lots, self.lot_size)

    def bracket_for(self, notional: int) -> LeverageBracket:
        """Return the bracket that holds a notional (atoms); the last one holds anything above."""
        for bracket in self.brackets:
            if notional < bracket.notional_cap:
                return bracket
        return self.brackets[-1]
