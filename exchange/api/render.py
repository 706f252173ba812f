"""Core integers to wire JSON: decimal strings for prices, quantities, money and rates."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from exchange.api.history import Fill, LedgerRow, OrderView, Trade
from exchange.core.enums import Side
from exchange.core.events import (
    AutoDeleveraged,
    BalanceChanged,
    CommandRejected,
    LedgerEntry,
    Liquidated,
    MarginCall,
    OrderRejected,
    PositionChanged,
)
from exchange.core.instruments import Instrument
from exchange.core.margin import display_places, format_decimal, format_price
from exchange.core.numbers import ATOMS_PER_UNIT, format_rate, format_steps
from exchange.core.risk import AccountRisk, PositionRisk

RATIO_PLACES = 4
PERCENT_PLACES = 2


# ---------------------------------------------------------------------- step counts as text

StepsFormatter = Callable[[int], str]

_EXACT_DIGITS = 27
"""Digits below which integer formatting equals format_steps, whose Decimal arithmetic
rounds to 28 significant digits; longer values are left to format_steps itself."""


def steps_formatter(step: Decimal) -> StepsFormatter:
    """Return a function equal to `format_steps(steps, step)` that uses integers only.

    Rendering is most of what a reply costs: the core's format_steps builds Decimals on
    every call, while the step's digits and places can be worked out once per step.
    """
    sign, digits, exponent = step.normalize().as_tuple()
    if sign or not isinstance(exponent, int) or not any(digits):
        return lambda steps: format_steps(steps, step)
    mantissa = int("".join(map(str, digits)))
    limit = 10**_EXACT_DIGITS
    if exponent >= 0:
        factor = mantissa * 10**exponent

        def whole(steps: int) -> str:
            value = steps * factor
            return str(value) if -limit < value < limit else format_steps(steps, step)

        return whole
    places = -exponent

    def fraction(steps: int) -> str:
        value = steps * mantissa
        if 0 <= value < limit:
            # The common case, in as few string operations as it takes.
            text = str(value)
            if len(text) <= places:
                text = "0" * (places + 1 - len(text)) + text
            return f"{text[:-places]}.{text[-places:]}"
        if not -limit < value < limit:
            return format_steps(steps, step)
        text = str(-value).rjust(places + 1, "0")
        return f"-{text[:-places]}.{text[-places:]}"

    return fraction


_FORMATTERS: dict[Decimal, StepsFormatter] = {}


def _formatter(step: Decimal) -> StepsFormatter:
    formatter = _FORMATTERS.get(step)
    if formatter is None:
        formatter = _FORMATTERS[step] = steps_formatter(step)
    return formatter


def price_text(instrument: Instrument, ticks: int) -> str:
    """Return `instrument.price_text(ticks)`, faster."""
    return _formatter(instrument.tick_size)(ticks)


def qty_text(instrument: Instrument, lots: int) -> str:
    """Return `instrument.qty_text(lots)`, faster."""
    return _formatter(instrument.lot_size)(lots)


_money_text = steps_formatter(Decimal(1) / ATOMS_PER_UNIT)


def side_text(side: Side) -> str:
    return "buy" if side is Side.BUY else "sell"


def position_side(qty: int) -> str:
    return "long" if qty > 0 else "short" if qty < 0 else "flat"


def money(amount: int) -> str:
    return _money_text(amount)


def price(instrument: Instrument, ticks: int | None) -> str | None:
    return None if ticks is None else _formatter(instrument.tick_size)(ticks)


def ratio(value: int) -> str:
    return format_rate(value)


def exact_price(instrument: Instrument, value: Fraction | None) -> str | None:
    """Render a derived price (an average, an entry) with the tick's places plus four."""
    if value is None:
        return None
    return format_decimal(value, display_places(instrument) + 4)


def order(instrument: Instrument, view: OrderView) -> dict[str, Any]:
    average = (
        Fraction(view.filled_ticks_lots, view.filled_qty) * Fraction(instrument.tick_size)
        if view.filled_qty
        else None
    )
    qty_of = _formatter(instrument.lot_size)
    price_of = _formatter(instrument.tick_size)
    # Enum members' _value_ is what .value returns, without the descriptor's cost.
    return {
        "order_id": view.order_id,
        "client_order_id": view.client_order_id,
        "symbol": view.symbol,
        "side": side_text(view.side),
        "type": view.order_type._value_,
        "status": view.status._value_,
        "qty": qty_of(view.qty),
        "price": None if view.price is None else price_of(view.price),
        "trigger_price": None if view.trigger_price is None else price_of(view.trigger_price),
        "trigger_by": view.trigger_by._value_,
        "time_in_force": view.time_in_force._value_,
        "reduce_only": view.reduce_only,
        "close_position": view.close_position,
        "filled_qty": qty_of(view.filled_qty),
        "avg_price": exact_price(instrument, average),
        "fee": _money_text(view.fee),
        "reason": view.reason,
        "liquidation": view.liquidation,
        "created_ts": view.created_ts,
        "updated_ts": view.updated_ts,
    }


def fill(instrument: Instrument, record: Fill) -> dict[str, Any]:
    event = record.event
    return {
        "order_id": event.order_id,
        "trade_id": event.trade_id,
        "symbol": event.symbol,
        "side": side_text(event.side),
        "last_px": price_text(instrument, event.last_px),
        "last_qty": qty_text(instrument, event.last_qty),
        "leaves_qty": qty_text(instrument, event.leaves_qty),
        "liquidity_side": event.liquidity_side._value_,
        "fee": money(event.fee),
        "realized_pnl": money(event.realized_pnl),
        "ts": record.ts,
    }


def trade(instrument: Instrument, record: Trade) -> dict[str, Any]:
    return {
        "trade_id": record.trade_id,
        "symbol": record.symbol,
        "price": price_text(instrument, record.price),
        "qty": qty_text(instrument, record.qty),
        "taker_side": side_text(record.taker_side),
        "ts": record.ts,
    }


def ledger_row(row: LedgerRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "ts": row.ts,
        "kind": row.kind,
        "symbol": row.symbol,
        "amount": money(row.amount),
    }


def levels(instrument: Instrument, rows: Any) -> list[list[str]]:
    price_of, qty_of = _formatter(instrument.tick_size), _formatter(instrument.lot_size)
    return [[price_of(p), qty_of(q)] for p, q in rows]


def book(instrument: Instrument, depth: dict[str, Any]) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol,
        "update_id": depth["update_id"],
        "bids": levels(instrument, depth["bids"]),
        "asks": levels(instrument, depth["asks"]),
    }


def instrument_spec(instrument: Instrument) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol,
        "base_asset": instrument.base_asset,
        "quote_asset": instrument.quote_asset,
        "tick_size": str(instrument.tick_size),
        "lot_size": str(instrument.lot_size),
        "min_qty": instrument.qty_text(instrument.min_qty),
        "max_qty": instrument.qty_text(instrument.max_qty),
        "max_market_qty": instrument.qty_text(instrument.max_market_qty),
        "min_notional": money(instrument.min_notional),
        "price_band": ratio(instrument.price_band_rate),
        "maker_fee": ratio(instrument.maker_fee_rate),
        "taker_fee": ratio(instrument.taker_fee_rate),
        "max_open_orders": instrument.max_open_orders,
        "brackets": [
            {
                "tier": b.tier,
                "notional_floor": money(b.notional_floor),
                "notional_cap": money(b.notional_cap),
                "max_leverage": b.max_leverage,
                "maintenance_margin_rate": ratio(b.maintenance_margin_rate),
                "maintenance_amount": money(b.maintenance_amount),
            }
            for b in instrument.brackets
        ],
    }


def _optional(value: Fraction | None, places: int) -> str | None:
    return None if value is None else format_decimal(value, places)


def position_risk(instrument: Instrument, risk: PositionRisk) -> dict[str, Any]:
    """Render a position with the calculator's fields plus what the exchange knows of it."""
    places = display_places(instrument)
    return {
        "symbol": risk.symbol,
        "side": position_side(risk.qty),
        "margin_mode": risk.margin_mode.value,
        "liquidation_price": _optional(risk.liquidation_price, places),
        "bankruptcy_price": _optional(risk.bankruptcy_price, places),
        "initial_margin": money(risk.initial_margin),
        "maintenance_margin": money(risk.maintenance_margin),
        "margin_balance": money(risk.margin_balance),
        "margin_ratio": _optional(risk.margin_ratio, RATIO_PLACES),
        "distance_to_liquidation_pct": _optional(risk.distance_to_liquidation_pct, PERCENT_PLACES),
        "risk_level": risk.risk_level.value,
        "max_loss": money(risk.max_loss),
        "unrealized_pnl": money(risk.unrealized_pnl),
        "qty": instrument.qty_text(risk.qty),
        "entry_price": format_price(risk.entry_price, places + 4),
        "mark_price": format_price(risk.mark_price, places),
        "notional": money(risk.notional),
        "leverage": risk.leverage,
        "isolated_margin": money(risk.isolated_margin),
    }


def account(
    account_id: int, name: str, risk: AccountRisk, instruments: dict[str, Instrument]
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "name": name,
        "wallet_balance": money(risk.wallet_balance),
        "margin_balance": money(risk.cross_margin_balance),
        "available_balance": money(risk.available_balance),
        "cross_maintenance_margin": money(risk.cross_maintenance_margin),
        "cross_margin_ratio": _optional(risk.cross_margin_ratio, RATIO_PLACES),
        "order_margin": money(risk.order_margin),
        "positions": [position_risk(instruments[p.symbol], p) for p in risk.positions],
    }


# ---------------------------------------------------------------------------------------------
# Account stream events
# ---------------------------------------------------------------------------------------------


def position_changed(instrument: Instrument, event: PositionChanged) -> dict[str, Any]:
    entry = (
        Fraction(event.cost, 10**8) / (event.qty * Fraction(instrument.lot_size))
        if event.qty
        else None
    )
    return {
        "event": "position",
        "symbol": event.symbol,
        "side": position_side(event.qty),
        "qty": instrument.qty_text(event.qty),
        "entry_price": exact_price(instrument, entry),
        "margin_mode": event.margin_mode.value,
        "leverage": event.leverage,
        "isolated_margin": money(event.isolated_margin),
    }


def balance_changed(event: BalanceChanged) -> dict[str, Any]:
    return {"event": "balance", "wallet_balance": money(event.wallet_balance)}


def ledger_entry(event: LedgerEntry) -> dict[str, Any]:
    return {
        "event": "ledger",
        "kind": event.kind.value,
        "symbol": event.symbol,
        "amount": money(event.amount),
    }


def margin_call(event: MarginCall) -> dict[str, Any]:
    return {
        "event": "margin_call",
        "symbol": event.symbol,
        "margin_ratio": ratio(event.margin_ratio),
        "margin_balance": money(event.margin_balance),
        "maintenance_margin": money(event.maintenance_margin),
    }


def liquidation(instrument: Instrument, event: Liquidated) -> dict[str, Any]:
    """The full liquidation record, for the liquidated account."""
    return {
        "event": "liquidation",
        "symbol": event.symbol,
        "margin_mode": event.margin_mode.value,
        "order_id": event.order_id,
        "side": side_text(event.side),
        "qty": instrument.qty_text(event.qty),
        "mark_price": instrument.price_text(event.mark_price),
        "margin_balance": money(event.margin_balance),
        "maintenance_margin": money(event.maintenance_margin),
        "tier": event.tier,
        "liquidation_price": price(instrument, event.liquidation_price),
        "bankruptcy_price": instrument.price_text(event.bankruptcy_price),
        "book_qty": instrument.qty_text(event.book_qty),
        "insurance_qty": instrument.qty_text(event.insurance_qty),
        "adl_qty": instrument.qty_text(sum(qty for _, qty in event.adl)),
        "clearance_fee": money(event.clearance_fee),
        "insurance_fund_before": money(event.insurance_fund_before),
        "insurance_fund_after": money(event.insurance_fund_after),
    }


def public_liquidation(instrument: Instrument, event: Liquidated, ts: int) -> dict[str, Any]:
    """What everyone sees of a liquidation: no account, no balances."""
    return {
        "symbol": event.symbol,
        "side": side_text(event.side),
        "qty": instrument.qty_text(event.qty),
        "bankruptcy_price": instrument.price_text(event.bankruptcy_price),
        "mark_price": instrument.price_text(event.mark_price),
        "ts": ts,
    }


def auto_deleveraged(instrument: Instrument, event: AutoDeleveraged) -> dict[str, Any]:
    return {
        "event": "adl",
        "symbol": event.symbol,
        "qty": instrument.qty_text(event.qty),
        "price": instrument.price_text(event.price),
    }


def order_rejected(event: OrderRejected) -> dict[str, Any]:
    return {
        "event": "order_rejected",
        "symbol": event.symbol,
        "client_order_id": event.client_order_id,
        "code": int(event.code),
        "reason": event.reason,
    }


def command_rejected(event: CommandRejected) -> dict[str, Any]:
    return {"event": "rejected", "code": int(event.code), "reason": event.reason}
