"""Margin mathematics for USD-M perpetuals, Binance semantics, one-way mode.

Two layers live here:

- Integer functions on ticks, lots and atoms, for the ledger: initial and maintenance margin,
  notional and unrealised PnL. Every rounding goes against the user.
- Exact functions on `Fraction`s of USDT and base units, for prices that fall between ticks:
  liquidation and bankruptcy prices, margin ratio, distance to liquidation.

Liquidation price, one-way mode, for a position of signed quantity q = side * Q:

    LP = (WB - TMM + UPNL + cum - side * Q * EP) / (Q * MMR - side * Q)

Isolated: WB is the isolated margin and TMM = UPNL = 0. Cross: WB is the wallet, TMM and UPNL
are the maintenance margin and unrealised PnL of the account's *other* cross positions at their
current marks. The bankruptcy price is the same formula with MMR = cum = TMM = 0.

Risk levels by margin ratio (maintenance margin / margin balance):

    SAFE      ratio < 50%
    MODERATE  50% <= ratio < 70%
    HIGH      70% <= ratio < 90%
    CRITICAL  ratio >= 90%, or no margin balance left

Liquidation happens at 100%.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction

from exchange.core.enums import MarginMode
from exchange.core.instruments import Instrument, LeverageBracket
from exchange.core.numbers import ATOMS_PER_UNIT, RATE_SCALE, ceil_div

_ZERO = Fraction(0)

# ---------------------------------------------------------------------------------------------
# Unit changes between the core's integers and exact fractions
# ---------------------------------------------------------------------------------------------


def price_from_ticks(instrument: Instrument, ticks: int) -> Fraction:
    """Return a price in ticks as an exact price in USDT per base unit."""
    return ticks * Fraction(instrument.tick_size)


def qty_from_lots(instrument: Instrument, lots: int) -> Fraction:
    """Return a quantity in lots as an exact (signed) quantity in base units."""
    return lots * Fraction(instrument.lot_size)


def usdt_from_atoms(amount: int) -> Fraction:
    """Return an amount in atoms as an exact amount of USDT."""
    return Fraction(amount, ATOMS_PER_UNIT)


def fraction_from_rate(value: int) -> Fraction:
    """Return a RATE_SCALE integer as an exact fraction (400_000 -> 1/250)."""
    return Fraction(value, RATE_SCALE)


def atoms_rounded_up(amount: Fraction) -> int:
    """Return an amount of USDT in whole atoms, rounded towards positive infinity."""
    return ceil_div(amount.numerator * ATOMS_PER_UNIT, amount.denominator)


def atoms_rounded_down(amount: Fraction) -> int:
    """Return an amount of USDT in whole atoms, rounded towards negative infinity."""
    return (amount.numerator * ATOMS_PER_UNIT) // amount.denominator


def floor_ticks(instrument: Instrument, price: Fraction) -> int:
    """Return the highest tick at or below a price."""
    steps = price / Fraction(instrument.tick_size)
    return steps.numerator // steps.denominator


def ceil_ticks(instrument: Instrument, price: Fraction) -> int:
    """Return the lowest tick at or above a price."""
    steps = price / Fraction(instrument.tick_size)
    return ceil_div(steps.numerator, steps.denominator)


def entry_price(qty: Fraction, cost: Fraction) -> Fraction:
    """Return the entry price of a position from its signed quantity and signed cost."""
    if qty == 0:
        raise ValueError("an empty position has no entry price")
    return cost / qty


def display_places(instrument: Instrument) -> int:
    """Return the decimal places to show a price of this instrument with: the tick's, at least 2."""
    exponent = instrument.tick_size.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(2, -exponent)


def format_decimal(value: Fraction, places: int) -> str:
    """Render a fraction as plain decimal text, rounded half away from zero to `places`."""
    if places < 0:
        raise ValueError("places must not be negative")
    scale = 10**places
    magnitude = abs(value) * scale
    # Half away from zero: floor(|x| + 1/2), then put the sign back.
    units = (2 * magnitude.numerator + magnitude.denominator) // (2 * magnitude.denominator)
    sign = "-" if value < 0 and units != 0 else ""
    whole, part = divmod(units, scale)
    if places == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{part:0{places}d}"


def format_price(price: Fraction, places: int = 2) -> str:
    """Render a price for display with at least 2 decimals, rounded half away from zero."""
    return format_decimal(price, max(2, places))


# ---------------------------------------------------------------------------------------------
# Integer margin for the ledger
# ---------------------------------------------------------------------------------------------


def initial_margin(notional_atoms: int, leverage: int) -> int:
    """Return the initial margin in atoms of a notional at a leverage, rounded up."""
    if leverage < 1:
        raise ValueError("leverage must be at least 1")
    return ceil_div(abs(notional_atoms), leverage)


def maintenance_margin(notional_atoms: int, bracket: LeverageBracket) -> int:
    """Return notional * MMR - cum in atoms for a bracket, rounded up and never below 0."""
    amount = ceil_div(abs(notional_atoms) * bracket.maintenance_margin_rate, RATE_SCALE)
    return max(0, amount - bracket.maintenance_amount)


def position_notional(instrument: Instrument, qty_lots: int, mark_ticks: int) -> int:
    """Return the notional in atoms of a position (signed lots) at a mark: always >= 0."""
    return abs(instrument.notional(mark_ticks, qty_lots))


def position_maintenance_margin(instrument: Instrument, qty_lots: int, mark_ticks: int) -> int:
    """Return a position's maintenance margin in atoms at a mark, in the bracket of its notional."""
    notional = position_notional(instrument, qty_lots, mark_ticks)
    return maintenance_margin(notional, instrument.bracket_for(notional))


def unrealized_pnl(instrument: Instrument, qty_lots: int, cost_atoms: int, mark_ticks: int) -> int:
    """Return the unrealised PnL in atoms of a position (signed lots, signed cost) at a mark.

    The value at mark of a whole number of lots at a whole tick is whole atoms, so this is exact.
    """
    return instrument.notional(mark_ticks, qty_lots) - cost_atoms


def max_leverage(instrument: Instrument, notional_atoms: int) -> int:
    """Return the highest leverage allowed for a position of this notional."""
    return instrument.bracket_for(abs(notional_atoms)).max_leverage


def is_liquidatable(maintenance: int | Fraction, margin_balance: int | Fraction) -> bool:
    """Return whether a margin ratio has reached 100%: margin balance <= maintenance margin."""
    return maintenance > 0 and margin_balance <= maintenance


# ---------------------------------------------------------------------------------------------
# Maintenance tiers in exact units
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MaintenanceTier:
    """One maintenance line in USDT: margin = notional * rate - amount on [floor, cap).

    A fixed tier (rate and amount given, no brackets) covers every notional: floor 0, no cap.
    """

    maintenance_margin_rate: Fraction
    maintenance_amount: Fraction
    notional_floor: Fraction = _ZERO
    notional_cap: Fraction | None = None
    bracket: LeverageBracket | None = None

    def __post_init__(self) -> None:
        # A rate of 1 or more makes a long's maintenance grow as fast as its value: no solution.
        if not 0 <= self.maintenance_margin_rate < 1:
            raise ValueError("maintenance margin rate must be in [0, 1)")
        if self.maintenance_amount < 0:
            raise ValueError("maintenance amount must not be negative")

    def covers(self, notional: Fraction) -> bool:
        """Return whether a notional (USDT) falls in this tier."""
        return self.notional_floor <= notional and (
            self.notional_cap is None or notional < self.notional_cap
        )


def fixed_tier(maintenance_margin_rate: Fraction, maintenance_amount: Fraction) -> MaintenanceTier:
    """Return a tier that applies at any notional, for "what if MMR and cum were these"."""
    return MaintenanceTier(Fraction(maintenance_margin_rate), Fraction(maintenance_amount))


def tiers_from_brackets(brackets: Sequence[LeverageBracket]) -> tuple[MaintenanceTier, ...]:
    """Return an instrument's brackets as exact tiers; the last one holds anything above."""
    tiers = []
    for index, bracket in enumerate(brackets):
        last = index == len(brackets) - 1
        tiers.append(
            MaintenanceTier(
                maintenance_margin_rate=fraction_from_rate(bracket.maintenance_margin_rate),
                maintenance_amount=usdt_from_atoms(bracket.maintenance_amount),
                notional_floor=usdt_from_atoms(bracket.notional_floor),
                notional_cap=None if last else usdt_from_atoms(bracket.notional_cap),
                bracket=bracket,
            )
        )
    return tuple(tiers)


def tier_for_notional(tiers: Sequence[MaintenanceTier], notional: Fraction) -> MaintenanceTier:
    """Return the tier that holds a notional (USDT); below the first floor, the first tier."""
    if not tiers:
        raise ValueError("at least one maintenance tier is needed")
    for tier in tiers:
        if tier.covers(notional):
            return tier
    return tiers[0] if notional < tiers[0].notional_floor else tiers[-1]


def tier_maintenance_margin(notional: Fraction, tier: MaintenanceTier) -> Fraction:
    """Return notional * MMR - cum of one tier, exactly, never below 0."""
    return max(_ZERO, abs(notional) * tier.maintenance_margin_rate - tier.maintenance_amount)


def exact_maintenance_margin(notional: Fraction, tiers: Sequence[MaintenanceTier]) -> Fraction:
    """Return the exact maintenance margin of a notional in the tier that holds it."""
    return tier_maintenance_margin(notional, tier_for_notional(tiers, abs(notional)))


# ---------------------------------------------------------------------------------------------
# Liquidation and bankruptcy prices
# ---------------------------------------------------------------------------------------------


def _line_price(
    qty: Fraction,
    entry: Fraction,
    wallet_balance: Fraction,
    other_maintenance_margin: Fraction,
    other_unrealized_pnl: Fraction,
    rate: Fraction,
    amount: Fraction,
) -> Fraction:
    """Solve margin balance == Q * P * rate - amount for P, with one maintenance line."""
    size = abs(qty)
    numerator = (
        wallet_balance - other_maintenance_margin + other_unrealized_pnl + amount - qty * entry
    )
    return numerator / (size * rate - qty)


def liquidation_price(
    *,
    qty: Fraction,
    entry_price: Fraction,
    wallet_balance: Fraction,
    tiers: Sequence[MaintenanceTier],
    other_maintenance_margin: Fraction = _ZERO,
    other_unrealized_pnl: Fraction = _ZERO,
) -> Fraction | None:
    """Return the mark at which margin balance falls to maintenance margin, or None if none.

    qty is signed (positive long, negative short) in base units; prices in USDT. For isolated,
    wallet_balance is the isolated margin and the others are 0; for cross, the wallet and the
    maintenance margin and unrealised PnL of the account's other cross positions.

    The answer is the price Binance's tier loop looks for, the one whose notional lies in the
    tier its formula used, found without iterating. With cum derived from the brackets,
    maintenance margin is continuous and convex in notional and equals the highest of the
    tiers' lines, max(0, N * MMR_t - cum_t), at every notional. The margin balance of a long
    minus one line rises with the price, so the long is healthy only above every line's root:
    its LP is the highest root. A short's is the lowest. Each line's root is one evaluation of
    the published formula, so the result is exact, deterministic, and cannot oscillate; it is
    always consistent with tier_for_notional at Q * LP (at a tier boundary both neighbouring
    lines agree). LP <= 0 means no mark liquidates the position (a short with LP <= 0 has no
    margin to stand on at any price; None there too, as the formula has no positive root).
    """
    if qty == 0:
        raise ValueError("an empty position has no liquidation price")
    if not tiers:
        raise ValueError("at least one maintenance tier is needed")
    lines = [(tier.maintenance_margin_rate, tier.maintenance_amount) for tier in tiers]
    # The zero line is the "never below 0" floor of maintenance margin: bankruptcy.
    lines.append((_ZERO, _ZERO))
    roots = [
        _line_price(
            qty,
            entry_price,
            wallet_balance,
            other_maintenance_margin,
            other_unrealized_pnl,
            rate,
            amount,
        )
        for rate, amount in lines
    ]
    price = max(roots) if qty > 0 else min(roots)
    return price if price > 0 else None


def liquidation_tier(
    tiers: Sequence[MaintenanceTier], qty: Fraction, price: Fraction | None
) -> MaintenanceTier | None:
    """Return the tier a position is in at its liquidation price, or None without one."""
    if price is None:
        return None
    return tier_for_notional(tiers, abs(qty) * price)


def bankruptcy_price(
    *,
    qty: Fraction,
    entry_price: Fraction,
    wallet_balance: Fraction,
    other_unrealized_pnl: Fraction = _ZERO,
) -> Fraction | None:
    """Return the mark at which margin balance reaches zero, or None if it never does.

    The liquidation formula with MMR = cum = TMM = 0; the arguments mean the same.
    """
    if qty == 0:
        raise ValueError("an empty position has no bankruptcy price")
    price = _line_price(
        qty,
        entry_price,
        wallet_balance,
        _ZERO,
        other_unrealized_pnl,
        _ZERO,
        _ZERO,
    )
    return price if price > 0 else None


# ---------------------------------------------------------------------------------------------
# Risk figures
# ---------------------------------------------------------------------------------------------


class RiskLevel(Enum):
    """How close an account or isolated position is to liquidation, by margin ratio."""

    SAFE = "safe"
    MODERATE = "moderate"
    HIGH = "high"
    CRITICAL = "critical"


MODERATE_RISK_RATIO = Fraction(50, 100)
"""Margin ratio from which the risk is MODERATE (below it, SAFE)."""

HIGH_RISK_RATIO = Fraction(70, 100)
"""Margin ratio from which the risk is HIGH."""

CRITICAL_RISK_RATIO = Fraction(90, 100)
"""Margin ratio from which the risk is CRITICAL; liquidation comes at 1."""


def margin_ratio(maintenance: int | Fraction, margin_balance: int | Fraction) -> Fraction | None:
    """Return maintenance margin / margin balance, or None when no margin balance is left."""
    if margin_balance <= 0:
        return None
    return Fraction(maintenance) / Fraction(margin_balance)


def risk_level(ratio: Fraction | None) -> RiskLevel:
    """Return the risk level of a margin ratio; None (no margin balance left) is CRITICAL."""
    if ratio is None or ratio >= CRITICAL_RISK_RATIO:
        return RiskLevel.CRITICAL
    if ratio >= HIGH_RISK_RATIO:
        return RiskLevel.HIGH
    if ratio >= MODERATE_RISK_RATIO:
        return RiskLevel.MODERATE
    return RiskLevel.SAFE


def distance_to_liquidation(
    qty: Fraction, mark_price: Fraction, price: Fraction | None
) -> Fraction | None:
    """Return how far the mark may move against the position before liquidation, in % of mark.

    Negative when the mark is already past the liquidation price; None without one.
    """
    if price is None:
        return None
    if mark_price <= 0:
        raise ValueError("mark price must be positive")
    move = mark_price - price if qty > 0 else price - mark_price
    return move / mark_price * 100


def max_loss(
    margin_mode: MarginMode, *, isolated_margin: Fraction, cross_margin_balance: Fraction
) -> Fraction:
    """Return the most a position can still cost its owner.

    Isolated: its margin, since a liquidation never reaches the wallet. Cross: the whole cross
    margin balance, since every cross position stands on all of it.
    """
    amount = isolated_margin if margin_mode is MarginMode.ISOLATED else cross_margin_balance
    return max(_ZERO, amount)
