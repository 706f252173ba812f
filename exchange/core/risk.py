"""What a trader should see about a position before it hurts: the risk report.

Read-only: it computes from the ledger's state at the current marks with the same margin
functions as the calculator, so `paperex liq` and the exchange agree to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from exchange.core.enums import MarginMode
from exchange.core.ledger import Account, Ledger, Position
from exchange.core.margin import (
    RiskLevel,
    bankruptcy_price,
    distance_to_liquidation,
    initial_margin,
    liquidation_price,
    margin_ratio,
    price_from_ticks,
    qty_from_lots,
    risk_level,
    tiers_from_brackets,
    usdt_from_atoms,
)


@dataclass(frozen=True, slots=True)
class PositionRisk:
    """One position's numbers. Money in atoms; prices exact, in USDT."""

    symbol: str
    qty: int
    entry_price: Fraction
    mark_price: Fraction
    notional: int
    unrealized_pnl: int
    margin_mode: MarginMode
    leverage: int
    isolated_margin: int
    initial_margin: int
    maintenance_margin: int
    margin_balance: int
    margin_ratio: Fraction | None
    liquidation_price: Fraction | None
    bankruptcy_price: Fraction | None
    distance_to_liquidation_pct: Fraction | None
    risk_level: RiskLevel
    max_loss: int


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """An account's cross figures and every open position's report."""

    wallet_balance: int
    cross_margin_balance: int
    available_balance: int
    cross_maintenance_margin: int
    cross_margin_ratio: Fraction | None
    order_margin: int
    positions: tuple[PositionRisk, ...]


def account_risk(ledger: Ledger, account: Account) -> AccountRisk:
    """Return the account's risk report at the current marks."""
    state = ledger.cross_state(account)
    positions = tuple(
        position_risk(ledger, account, position)
        for _, position in sorted(account.positions.items())
        if position.qty
    )
    return AccountRisk(
        wallet_balance=account.wallet,
        cross_margin_balance=state.margin_balance,
        available_balance=ledger.available_balance(account, state),
        cross_maintenance_margin=state.maintenance_margin,
        cross_margin_ratio=margin_ratio(state.maintenance_margin, state.margin_balance),
        order_margin=account.order_margin,
        positions=positions,
    )


def position_risk(ledger: Ledger, account: Account, position: Position) -> PositionRisk:
    """Return one open position's risk report at the current mark."""
    instrument = ledger.instruments[position.symbol]
    notional, pnl = ledger.value(position)
    maintenance = ledger.position_maintenance(position, notional)
    qty = qty_from_lots(instrument, position.qty)
    entry = usdt_from_atoms(position.cost) / qty
    mark_ticks = ledger.marks.get(position.symbol)
    mark = entry if mark_ticks is None else price_from_ticks(instrument, mark_ticks)
    tiers = tiers_from_brackets(instrument.brackets)
    if position.margin_mode is MarginMode.ISOLATED:
        base = position.isolated_margin
        other_maintenance = other_pnl = 0
        balance = position.isolated_margin + pnl
        loss_bound = position.isolated_margin
    else:
        state = ledger.cross_state(account)
        base = account.wallet
        other_maintenance = state.maintenance_margin - maintenance
        other_pnl = state.unrealized_pnl - pnl
        balance = state.margin_balance
        loss_bound = state.margin_balance
    liquidation = liquidation_price(
        qty=qty,
        entry_price=entry,
        wallet_balance=usdt_from_atoms(base),
        tiers=tiers,
        other_maintenance_margin=usdt_from_atoms(other_maintenance),
        other_unrealized_pnl=usdt_from_atoms(other_pnl),
    )
    bankruptcy = bankruptcy_price(
        qty=qty,
        entry_price=entry,
        wallet_balance=usdt_from_atoms(base),
        other_unrealized_pnl=usdt_from_atoms(other_pnl),
    )
    # A cross position's ratio is its account's: all cross positions share one balance.
    ratio_maintenance = (
        maintenance
        if position.margin_mode is MarginMode.ISOLATED
        else other_maintenance + maintenance
    )
    ratio = margin_ratio(ratio_maintenance, balance)
    return PositionRisk(
        symbol=position.symbol,
        qty=position.qty,
        entry_price=entry,
        mark_price=mark,
        notional=notional,
        unrealized_pnl=pnl,
        margin_mode=position.margin_mode,
        leverage=position.leverage,
        isolated_margin=position.isolated_margin,
        initial_margin=initial_margin(notional, position.leverage),
        maintenance_margin=maintenance,
        margin_balance=balance,
        margin_ratio=ratio,
        liquidation_price=liquidation,
        bankruptcy_price=bankruptcy,
        distance_to_liquidation_pct=distance_to_liquidation(qty, mark, liquidation),
        risk_level=risk_level(ratio),
        max_loss=max(0, loss_bound),
    )
