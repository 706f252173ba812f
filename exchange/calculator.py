"""The liquidation-price calculator: one account's positions in, their risk figures out.

`calculate(scenario, instruments)` takes the JSON of `paperex liq --scenario` and returns the
JSON it prints, so the CLI and the server's `public.liquidation_price` give the same answers:

    {"wallet_balance": "5000",
     "positions": [{"symbol": "BTCUSDT", "side": "long", "qty": "1", "entry_price": "60000",
                    "mark_price": "60000", "margin_mode": "isolated", "leverage": 20}]}

Optional per position: "isolated_margin" (else entry notional / leverage), "leverage" (for
cross, Binance's default of 20x, capped by the bracket), "mmr" and "cum" to fix the
maintenance tier instead of using the instrument's brackets, "mark_price" (else the entry).

No I/O here and no floats: decimal strings (or JSON numbers read as Decimal) become exact
fractions, and every figure goes back out as a decimal string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exchange.core.codes import RejectCode
from exchange.core.enums import MarginMode
from exchange.core.instruments import Instrument
from exchange.core.margin import (
    MaintenanceTier,
    atoms_rounded_down,
    atoms_rounded_up,
    bankruptcy_price,
    display_places,
    distance_to_liquidation,
    exact_maintenance_margin,
    fixed_tier,
    format_decimal,
    format_price,
    liquidation_price,
    margin_ratio,
    max_loss,
    risk_level,
    tiers_from_brackets,
    usdt_from_atoms,
)
from exchange.core.numbers import NumberError, atoms, format_atoms
from exchange.instrument_config import DecimalText

DEFAULT_LEVERAGE = 20
"""Binance's leverage for a symbol nobody has set one for."""

RATIO_PLACES = 4
PERCENT_PLACES = 2


class CalculatorError(ValueError):
    """Input the calculator cannot work with; `field` names the part at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------------

PositiveDecimal = Annotated[DecimalText, Field(gt=0)]
NonNegativeDecimal = Annotated[DecimalText, Field(ge=0)]


class PositionRequest(BaseModel):
    """One position of the account, as the trader describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: Annotated[str, Field(min_length=1)]
    side: Literal["long", "short"]
    qty: PositiveDecimal
    entry_price: PositiveDecimal
    mark_price: PositiveDecimal | None = None
    margin_mode: Literal["isolated", "cross"]
    isolated_margin: PositiveDecimal | None = None
    leverage: Annotated[int, Field(strict=True, ge=1)] | None = None
    mmr: Annotated[DecimalText, Field(ge=0, lt=1)] | None = None
    cum: NonNegativeDecimal | None = None


class ScenarioRequest(BaseModel):
    """An account: its cross wallet and its positions, at most one per symbol."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wallet_balance: NonNegativeDecimal | None = None
    positions: Annotated[list[PositionRequest], Field(min_length=1)]


@dataclass(frozen=True, slots=True)
class _Position:
    """A position resolved against its instrument, in exact USDT and base units."""

    request: PositionRequest
    instrument: Instrument
    margin_mode: MarginMode
    qty: Fraction
    entry: Fraction
    mark: Fraction
    tiers: tuple[MaintenanceTier, ...]
    leverage: int | None
    isolated_margin: Fraction
    unrealized_pnl: Fraction
    maintenance_margin: Fraction
    initial_margin: Fraction


def _amount(value: Decimal, field: str) -> Fraction:
    # Amounts enter the ledger in atoms, so the calculator takes no more precision than that.
    try:
        return usdt_from_atoms(atoms(value, field))
    except NumberError as error:
        if error.code is RejectCode.AMOUNT_PRECISION:
            raise CalculatorError(field, f"{value:f} has more than 8 decimals") from None
        raise CalculatorError(field, error.message.removeprefix(f"{field} ")) from None


def _resolve(
    index: int,
    request: PositionRequest,
    instruments: Mapping[str, Instrument],
) -> _Position:
    where = f"positions.{index}"
    instrument = instruments.get(request.symbol)
    if instrument is None:
        known = ", ".join(sorted(instruments)) or "none"
        raise CalculatorError(f"{where}.symbol", f"unknown symbol {request.symbol!r} ({known})")
    try:
        instrument.qty_lots(request.qty, "qty")
    except NumberError as error:
        raise CalculatorError(f"{where}.qty", error.message.removeprefix("qty ")) from None
    size = Fraction(request.qty)
    qty = size if request.side == "long" else -size
    entry = Fraction(request.entry_price)
    mark = entry if request.mark_price is None else Fraction(request.mark_price)

    if request.mmr is not None:
        cum = Fraction(0) if request.cum is None else _amount(request.cum, f"{where}.cum")
        tiers: tuple[MaintenanceTier, ...] = (fixed_tier(Fraction(request.mmr), cum),)
    elif request.cum is not None:
        raise CalculatorError(f"{where}.cum", "a fixed cum needs mmr as well")
    else:
        tiers = tiers_from_brackets(instrument.brackets)

    # Leverage limits are the instrument's, even when the maintenance tier is fixed.
    notional_at_mark = size * mark
    bracket = instrument.bracket_for(atoms_rounded_up(notional_at_mark))
    leverage = request.leverage
    if leverage is not None and leverage > bracket.max_leverage:
        raise CalculatorError(
            f"{where}.leverage",
            f"{leverage}x is above the {bracket.max_leverage}x maximum of {request.symbol} "
            f"at a notional of {format_decimal(notional_at_mark, 2)} USDT",
        )

    margin_mode = MarginMode(request.margin_mode)
    if margin_mode is MarginMode.ISOLATED:
        if request.isolated_margin is not None:
            isolated_margin = _amount(request.isolated_margin, f"{where}.isolated_margin")
        elif leverage is not None:
            isolated_margin = usdt_from_atoms(atoms_rounded_up(size * entry / leverage))
        else:
            raise CalculatorError(
                f"{where}.isolated_margin", "an isolated position needs isolated_margin or leverage"
            )
    else:
        if request.isolated_margin is not None:
            raise CalculatorError(
                f"{where}.isolated_margin", "only an isolated position has isolated margin"
            )
        isolated_margin = Fraction(0)
        if leverage is None:
            leverage = min(DEFAULT_LEVERAGE, bracket.max_leverage)

    if leverage is None:
        # Isolated with only its margin given: what was posted is what opened the position.
        initial = isolated_margin
    else:
        initial = usdt_from_atoms(atoms_rounded_up(notional_at_mark / leverage))
    maintenance = exact_maintenance_margin(notional_at_mark, tiers)
    return _Position(
        request=request,
        instrument=instrument,
        margin_mode=margin_mode,
        qty=qty,
        entry=entry,
        mark=mark,
        tiers=tiers,
        leverage=leverage,
        isolated_margin=isolated_margin,
        unrealized_pnl=qty * (mark - entry),
        maintenance_margin=maintenance,
        initial_margin=initial,
    )


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def _money(amount: Fraction, *, round_up: bool) -> str:
    """Render USDT in whole atoms, trailing zeros trimmed down to 2 decimals."""
    whole_atoms = atoms_rounded_up(amount) if round_up else atoms_rounded_down(amount)
    text = format_atoms(whole_atoms).rstrip("0")
    decimals = len(text.partition(".")[2])
    return text + "0" * max(0, 2 - decimals)


def _optional(value: Fraction | None, places: int) -> str | None:
    return None if value is None else format_decimal(value, places)


def _report(
    position: _Position,
    *,
    price: Fraction | None,
    bankruptcy: Fraction | None,
    margin_balance: Fraction,
    maintenance_for_ratio: Fraction,
    loss_limit: Fraction,
) -> dict[str, Any]:
    places = display_places(position.instrument)
    ratio = margin_ratio(maintenance_for_ratio, margin_balance)
    distance = distance_to_liquidation(position.qty, position.mark, price)
    return {
        "symbol": position.request.symbol,
        "side": position.request.side,
        "margin_mode": position.margin_mode.value,
        "liquidation_price": None if price is None else format_price(price, places),
        "bankruptcy_price": None if bankruptcy is None else format_price(bankruptcy, places),
        "initial_margin": _money(position.initial_margin, round_up=True),
        "maintenance_margin": _money(position.maintenance_margin, round_up=True),
        "margin_balance": _money(margin_balance, round_up=False),
        "margin_ratio": _optional(ratio, RATIO_PLACES),
        "distance_to_liquidation_pct": _optional(distance, PERCENT_PLACES),
        "risk_level": risk_level(ratio).value,
        "max_loss": _money(loss_limit, round_up=False),
        "unrealized_pnl": _money(position.unrealized_pnl, round_up=False),
    }


# ---------------------------------------------------------------------------------------------
# The calculation
# ---------------------------------------------------------------------------------------------


def parse_scenario(scenario: object) -> ScenarioRequest:
    """Validate a scenario's shape, or raise CalculatorError naming the first field at fault."""
    try:
        return ScenarioRequest.model_validate(scenario)
    except ValidationError as error:
        first = error.errors()[0]
        if not first["loc"]:
            raise CalculatorError("scenario", "must be a JSON object") from None
        field = ".".join(str(part) for part in first["loc"])
        raise CalculatorError(field, first["msg"].removeprefix("Value error, ")) from None


def calculate(scenario: object, instruments: Mapping[str, Instrument]) -> dict[str, Any]:
    """Return the liquidation figures of every position of a scenario, as JSON-ready data.

    Cross positions share the wallet: each one's liquidation price counts the maintenance
    margin and unrealised PnL of the other cross positions at their marks, and the margin
    ratio and max loss are the cross account's. Raise CalculatorError on bad input.
    """
    request = parse_scenario(scenario)
    first_index: dict[str, int] = {}
    for index, requested in enumerate(request.positions):
        if requested.symbol in first_index:
            raise CalculatorError(
                f"positions.{index}.symbol",
                f"{requested.symbol} is also positions.{first_index[requested.symbol]}; "
                "one-way mode holds one position per symbol",
            )
        first_index[requested.symbol] = index
    positions = [
        _resolve(index, requested, instruments) for index, requested in enumerate(request.positions)
    ]

    cross = [p for p in positions if p.margin_mode is MarginMode.CROSS]
    wallet = Fraction(0)
    if cross:
        if request.wallet_balance is None:
            raise CalculatorError("wallet_balance", "cross positions need a wallet balance")
        wallet = _amount(request.wallet_balance, "wallet_balance")
    elif request.wallet_balance is not None:
        _amount(request.wallet_balance, "wallet_balance")
    cross_maintenance = sum((p.maintenance_margin for p in cross), Fraction(0))
    cross_pnl = sum((p.unrealized_pnl for p in cross), Fraction(0))
    cross_balance = wallet + cross_pnl

    reports = []
    for position in positions:
        if position.margin_mode is MarginMode.CROSS:
            other_maintenance = cross_maintenance - position.maintenance_margin
            other_pnl = cross_pnl - position.unrealized_pnl
            base = wallet
            margin_balance = cross_balance
            maintenance_for_ratio = cross_maintenance
        else:
            other_maintenance = other_pnl = Fraction(0)
            base = position.isolated_margin
            margin_balance = position.isolated_margin + position.unrealized_pnl
            maintenance_for_ratio = position.maintenance_margin
        price = liquidation_price(
            qty=position.qty,
            entry_price=position.entry,
            wallet_balance=base,
            tiers=position.tiers,
            other_maintenance_margin=other_maintenance,
            other_unrealized_pnl=other_pnl,
        )
        bankruptcy = bankruptcy_price(
            qty=position.qty,
            entry_price=position.entry,
            wallet_balance=base,
            other_unrealized_pnl=other_pnl,
        )
        loss_limit = max_loss(
            position.margin_mode,
            isolated_margin=position.isolated_margin,
            cross_margin_balance=cross_balance,
        )
        reports.append(
            _report(
                position,
                price=price,
                bankruptcy=bankruptcy,
                margin_balance=margin_balance,
                maintenance_for_ratio=maintenance_for_ratio,
                loss_limit=loss_limit,
            )
        )
    return {"positions": reports}


# ---------------------------------------------------------------------------------------------
# Text rendering
# ---------------------------------------------------------------------------------------------

_TABLE_ROWS = (
    ("margin mode", "margin_mode", ""),
    ("liquidation price", "liquidation_price", ""),
    ("bankruptcy price", "bankruptcy_price", ""),
    ("distance to liq.", "distance_to_liquidation_pct", "%"),
    ("initial margin", "initial_margin", ""),
    ("maintenance margin", "maintenance_margin", ""),
    ("margin balance", "margin_balance", ""),
    ("margin ratio", "margin_ratio", "ratio"),
    ("risk level", "risk_level", ""),
    ("unrealized PnL", "unrealized_pnl", ""),
    ("max loss", "max_loss", ""),
)


def _cell(value: object, unit: str) -> str:
    if value is None:
        return "none"
    text = str(value)
    if unit == "%":
        return f"{text}%"
    if unit == "ratio":
        return f"{format_decimal(Fraction(Decimal(text)) * 100, PERCENT_PLACES)}%"
    return text


def render_table(result: Mapping[str, Any]) -> str:
    """Render calculate()'s result as a table: one column per position."""
    positions = result["positions"]
    header = [""] + [f"{p['symbol']} {p['side']}" for p in positions]
    rows = [header] + [
        [label] + [_cell(p[key], unit) for p in positions] for label, key, unit in _TABLE_ROWS
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
