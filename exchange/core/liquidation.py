"""Liquidation arithmetic: health checks, bankruptcy bounds and the ADL queue.

The waterfall itself (cancel, close through the book, insurance fund, ADL, clearance) runs in
`Exchange`, because it trades; this module holds the numbers it decides with.
"""

from __future__ import annotations

from fractions import Fraction

from exchange.core.enums import MarginMode
from exchange.core.instruments import Instrument
from exchange.core.ledger import Account, Ledger, Position
from exchange.core.margin import (
    ceil_ticks,
    floor_ticks,
    liquidation_price,
    qty_from_lots,
    tiers_from_brackets,
    usdt_from_atoms,
)
from exchange.core.numbers import RATE_SCALE, ceil_div

DEFAULT_MARGIN_CALL_RATIO = 80 * RATE_SCALE // 100
"""A margin call is raised when maintenance margin reaches 80% of the margin balance."""


def is_liquidatable(margin_balance: int, maintenance: int) -> bool:
    """Tell whether the margin ratio has reached 100%."""
    return maintenance > 0 and margin_balance <= maintenance


def is_margin_call(margin_balance: int, maintenance: int, ratio: int) -> bool:
    """Tell whether maintenance / margin balance has reached ratio (RATE_SCALE)."""
    if maintenance <= 0:
        return False
    return margin_balance <= 0 or maintenance * RATE_SCALE >= ratio * margin_balance


def margin_ratio(margin_balance: int, maintenance: int) -> int:
    """Return maintenance / margin balance in RATE_SCALE, rounded up; no balance is 100%+."""
    if margin_balance <= 0:
        return RATE_SCALE if maintenance <= 0 else 10 * RATE_SCALE
    return ceil_div(maintenance * RATE_SCALE, margin_balance)


def bankruptcy_ticks(instrument: Instrument, qty: int, cost: int, base: int) -> int:
    """Return the worst tick a position can close at without its margin going below zero.

    base is what stands behind the position: its isolated margin, or for cross the wallet
    plus the other cross positions' unrealised PnL. A long sells at or above the returned
    tick, a short buys at or below it; never below one tick.
    """
    per_tick = abs(qty) * instrument.atoms_per_tick_lot
    if qty > 0:
        return max(1, ceil_div(cost - base, per_tick))
    return max(1, (base - cost) // per_tick)


def liquidation_ticks(
    ledger: Ledger, position: Position, base: int, other_maintenance: int
) -> int | None:
    """Return the liquidation price in ticks, rounded towards the mark (None: no price)."""
    instrument = ledger.instruments[position.symbol]
    qty = qty_from_lots(instrument, position.qty)
    price = liquidation_price(
        qty=qty,
        entry_price=usdt_from_atoms(position.cost) / qty,
        wallet_balance=usdt_from_atoms(base),
        tiers=tiers_from_brackets(instrument.brackets),
        other_maintenance_margin=usdt_from_atoms(other_maintenance),
    )
    if price is None:
        return None
    return floor_ticks(instrument, price) if position.qty > 0 else ceil_ticks(instrument, price)


def adl_queue(ledger: Ledger, symbol: str, liquidated: Account, side_sign: int) -> list[Position]:
    """Return the opposite positions to deleverage, first to last.

    A position whose owner is liquidated long is matched against shorts (side_sign = -1)
    and the other way round. Ranked by profit % x effective leverage, highest first, as
    Binance does; ties go to the lower account id so the order is deterministic.
    """
    ranked: list[tuple[Fraction, int, Position]] = []
    for account_id, position in ledger.open_positions[symbol].items():
        if account_id in (liquidated.account_id, ledger.insurance.account_id):
            continue
        if (position.qty > 0) != (side_sign > 0):
            continue
        notional, pnl = ledger.value(position)
        if position.margin_mode is MarginMode.ISOLATED:
            balance = position.isolated_margin + pnl
        else:
            balance = ledger.cross_state(ledger.accounts[account_id]).margin_balance
        profit = Fraction(pnl, abs(position.cost)) if position.cost else Fraction(0)
        leverage = Fraction(notional, balance) if balance > 0 else Fraction(notional)
        ranked.append((profit * leverage, account_id, position))
    ranked.sort(key=lambda entry: (-entry[0], entry[1]))
    return [position for _, _, position in ranked]
