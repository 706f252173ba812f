"""User data stream payloads in Binance USD-M shapes: ORDER_TRADE_UPDATE, ACCOUNT_UPDATE,
MARGIN_CALL and listenKeyExpired, rendered from one command's events.

The exchange's own orders are shown as Binance shows them: a liquidation order's client id
starts with `autoclose-` and its fills have execution type CALCULATED; a position closed by
auto-deleveraging gets an order with client id `adl_autoclose`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from exchange.api.binance.ws_market import side_text
from exchange.api.context import ApiContext
from exchange.api.history import OrderView
from exchange.core.commands import Command
from exchange.core.enums import (
    LedgerEntryKind,
    LiquiditySide,
    MarginMode,
    OrderStatus,
    OrderType,
    Side,
)
from exchange.core.events import (
    AutoDeleveraged,
    BalanceChanged,
    Event,
    LedgerEntry,
    Liquidated,
    MarginCall,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderTriggered,
    PositionChanged,
)
from exchange.core.instruments import Instrument
from exchange.core.ledger import Position
from exchange.core.margin import display_places, format_decimal
from exchange.core.numbers import format_atoms

ASSET = "USDT"

ORDER_TYPES = {
    OrderType.LIMIT: "LIMIT",
    OrderType.MARKET: "MARKET",
    OrderType.STOP_MARKET: "STOP_MARKET",
    OrderType.STOP_LIMIT: "STOP",
    OrderType.TAKE_PROFIT_MARKET: "TAKE_PROFIT_MARKET",
    OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT",
}
TIME_IN_FORCE = {"gtc": "GTC", "ioc": "IOC", "fok": "FOK", "post_only": "GTX"}
STATUSES = {
    OrderStatus.NEW: "NEW",
    # A triggered conditional order is working in the book: Binance shows it as NEW.
    OrderStatus.TRIGGERED: "NEW",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELED: "CANCELED",
    OrderStatus.EXPIRED: "EXPIRED",
    OrderStatus.REJECTED: "REJECTED",
}
REASONS = {
    LedgerEntryKind.DEPOSIT: "DEPOSIT",
    LedgerEntryKind.WITHDRAWAL: "WITHDRAW",
    LedgerEntryKind.MARGIN_TRANSFER: "MARGIN_TRANSFER",
    LedgerEntryKind.FUNDING: "FUNDING_FEE",
    LedgerEntryKind.INSURANCE_CLEARANCE: "INSURANCE_CLEAR",
}

_ORDER_EVENTS = (OrderAccepted, OrderTriggered, OrderCanceled, OrderExpired, OrderAmended)


def client_order_id(view: OrderView) -> str:
    if view.liquidation:
        return f"autoclose-{view.created_ts}"
    return view.client_order_id or f"paperex-{view.order_id}"


def _average(instrument: Instrument, view: OrderView) -> str:
    if not view.filled_qty:
        return "0"
    value = Fraction(view.filled_ticks_lots, view.filled_qty) * Fraction(instrument.tick_size)
    return format_decimal(value, display_places(instrument))


def order_update(
    instrument: Instrument,
    view: OrderView,
    execution: str,
    ts: int,
    fill: OrderFilled | None = None,
) -> dict[str, Any]:
    """Return an ORDER_TRADE_UPDATE for an order as it stands after the command."""
    status = STATUSES[view.status]
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": ts,
        "T": ts,
        "o": {
            "s": view.symbol,
            "c": client_order_id(view),
            "S": side_text(view.side),
            "o": ORDER_TYPES[view.order_type],
            "f": TIME_IN_FORCE[view.time_in_force.value],
            "q": instrument.qty_text(view.qty),
            "p": instrument.price_text(view.price) if view.price is not None else "0",
            "ap": _average(instrument, view),
            "sp": (
                instrument.price_text(view.trigger_price) if view.trigger_price is not None else "0"
            ),
            "x": execution,
            "X": status,
            "i": view.order_id,
            "l": instrument.qty_text(fill.last_qty) if fill else "0",
            "z": instrument.qty_text(view.filled_qty),
            "L": instrument.price_text(fill.last_px) if fill else "0",
            "N": ASSET,
            "n": format_atoms(fill.fee) if fill else "0",
            "T": ts,
            "t": fill.trade_id if fill else 0,
            "b": "0",
            "a": "0",
            "m": fill is not None and fill.liquidity_side is LiquiditySide.MAKER,
            "R": view.reduce_only,
            "wt": "MARK_PRICE" if view.trigger_by.value == "mark" else "CONTRACT_PRICE",
            "ot": ORDER_TYPES[view.order_type],
            "ps": "BOTH",
            "cp": view.close_position,
            "rp": format_atoms(fill.realized_pnl) if fill else "0",
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "EXPIRE_MAKER",
            "pm": "NONE",
            "gtd": 0,
        },
    }


def adl_order_update(
    instrument: Instrument, event: AutoDeleveraged, side: Side, ts: int
) -> dict[str, Any]:
    """Return the ORDER_TRADE_UPDATE Binance sends for a position closed by auto-deleveraging."""
    qty = instrument.qty_text(event.qty)
    price = instrument.price_text(event.price)
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": ts,
        "T": ts,
        "o": {
            "s": event.symbol,
            "c": "adl_autoclose",
            "S": side_text(side),
            "o": "LIMIT",
            "f": "IOC",
            "q": qty,
            "p": price,
            "ap": price,
            "sp": "0",
            "x": "CALCULATED",
            "X": "FILLED",
            "i": 0,
            "l": qty,
            "z": qty,
            "L": price,
            "N": ASSET,
            "n": "0",
            "T": ts,
            "t": 0,
            "b": "0",
            "a": "0",
            "m": False,
            "R": True,
            "wt": "CONTRACT_PRICE",
            "ot": "LIMIT",
            "ps": "BOTH",
            "cp": False,
            "rp": "0",
        },
    }


def _position_entry(context: ApiContext, position: Position | PositionChanged) -> dict[str, Any]:
    instrument = context.instrument(position.symbol)
    places = display_places(instrument)
    entry = (
        Fraction(position.cost, 10**8) / (position.qty * Fraction(instrument.lot_size))
        if position.qty
        else Fraction(0)
    )
    mark = context.exchange.ledger.marks.get(position.symbol)
    unrealized = instrument.notional(mark, position.qty) - position.cost if mark else 0
    return {
        "s": position.symbol,
        "pa": instrument.qty_text(position.qty),
        "ep": format_decimal(entry, places + 4),
        "bep": format_decimal(entry, places + 4),
        "cr": "0",
        "up": format_atoms(unrealized),
        "mt": position.margin_mode.value,
        "iw": format_atoms(position.isolated_margin),
        "ps": "BOTH",
    }


def account_update(
    context: ApiContext,
    account_id: int,
    ts: int,
    positions: list[PositionChanged],
    ledger: list[LedgerEntry],
    reason: str,
) -> dict[str, Any]:
    account = context.exchange.ledger.accounts[account_id]
    wallet = format_atoms(account.wallet)
    change = sum(entry.amount for entry in ledger if entry.symbol is None)
    return {
        "e": "ACCOUNT_UPDATE",
        "E": ts,
        "T": ts,
        "a": {
            "m": reason,
            "B": [{"a": ASSET, "wb": wallet, "cw": wallet, "bc": format_atoms(change)}],
            "P": [_position_entry(context, p) for p in positions],
        },
    }


def margin_call(context: ApiContext, event: MarginCall, ts: int) -> dict[str, Any]:
    account = context.exchange.ledger.accounts[event.account_id]
    positions = [
        p
        for symbol, p in sorted(account.positions.items())
        if p.qty
        and (symbol == event.symbol or (event.symbol is None and p.margin_mode is MarginMode.CROSS))
    ]
    entries = []
    for position in positions:
        entry = _position_entry(context, position)
        instrument = context.instrument(position.symbol)
        mark = context.exchange.ledger.marks.get(position.symbol)
        notional, _ = context.exchange.ledger.value(position)
        entries.append(
            {
                "s": entry["s"],
                "ps": "BOTH",
                "pa": entry["pa"],
                "mt": "CROSSED" if position.margin_mode is MarginMode.CROSS else "ISOLATED",
                "iw": entry["iw"],
                "mp": instrument.price_text(mark) if mark else "0",
                "up": entry["up"],
                "mm": format_atoms(
                    context.exchange.ledger.position_maintenance(position, notional)
                ),
            }
        )
    return {"e": "MARGIN_CALL", "E": ts, "cw": format_atoms(account.wallet), "p": entries}


def listen_key_expired(listen_key: str, ts: int) -> dict[str, Any]:
    return {"e": "listenKeyExpired", "E": ts, "listenKey": listen_key}


# ---------------------------------------------------------------------------------------------
# One command's events, per account
# ---------------------------------------------------------------------------------------------


def render_command(
    context: ApiContext, command: Command, events: list[Event], accounts: set[int]
) -> dict[int, list[dict[str, Any]]]:
    """Return the user stream payloads of a command for each listed account, in order."""
    ts = command.ts
    out: dict[int, list[dict[str, Any]]] = {}
    positions: dict[int, list[PositionChanged]] = {}
    ledgers: dict[int, list[LedgerEntry]] = {}
    balances: set[int] = set()
    liquidations = {(e.account_id, e.symbol): e for e in events if isinstance(e, Liquidated)}
    history = context.history.orders
    for event in events:
        account_id = getattr(event, "account_id", None)
        if account_id is None or account_id not in accounts:
            continue
        payloads = out.setdefault(account_id, [])
        if isinstance(event, OrderFilled):
            view = history.get(event.order_id)
            if view is not None:
                execution = "CALCULATED" if view.liquidation else "TRADE"
                instrument = context.instrument(event.symbol)
                payloads.append(order_update(instrument, view, execution, ts, event))
        elif isinstance(event, _ORDER_EVENTS):
            view = history.get(event.order_id)
            if view is None or (view.liquidation and isinstance(event, OrderAccepted)):
                continue
            execution = {
                OrderAccepted: "NEW",
                OrderTriggered: "NEW",
                OrderCanceled: "CANCELED",
                OrderExpired: "EXPIRED",
                OrderAmended: "AMENDMENT",
            }[type(event)]
            payloads.append(order_update(context.instrument(event.symbol), view, execution, ts))
        elif isinstance(event, AutoDeleveraged):
            liquidated = liquidations.get((event.liquidated_account_id, event.symbol))
            if liquidated is not None:
                # The deleveraged position is on the other side of the liquidation order.
                side = Side.SELL if liquidated.side is Side.BUY else Side.BUY
                instrument = context.instrument(event.symbol)
                payloads.append(adl_order_update(instrument, event, side, ts))
        elif isinstance(event, MarginCall):
            payloads.append(margin_call(context, event, ts))
        elif isinstance(event, PositionChanged):
            positions.setdefault(account_id, []).append(event)
        elif isinstance(event, LedgerEntry):
            ledgers.setdefault(account_id, []).append(event)
        elif isinstance(event, BalanceChanged):
            balances.add(account_id)
    for account_id in sorted(balances | positions.keys() | ledgers.keys()):
        entries = ledgers.get(account_id, [])
        reason = REASONS[entries[0].kind] if entries else "ORDER"
        update = account_update(
            context, account_id, ts, positions.get(account_id, []), entries, reason
        )
        out.setdefault(account_id, []).append(update)
    return {account_id: payloads for account_id, payloads in out.items() if payloads}
