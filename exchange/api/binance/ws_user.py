"""User data stream payloads in Binance USD-M shapes: ORDER_TRADE_UPDATE, ALGO_UPDATE,
ACCOUNT_UPDATE, ACCOUNT_CONFIG_UPDATE, MARGIN_CALL and listenKeyExpired, rendered from one
command's events.

The exchange's own orders are shown as Binance shows them: a liquidation order's client id
starts with `autoclose-` and its fills have execution type CALCULATED; a position closed by
auto-deleveraging gets an order with client id `adl_autoclose`.

Conditional orders are shown as Binance's algo service shows them: until it triggers, such an
order exists only as an algo order (ALGO_UPDATE NEW, CANCELED, EXPIRED or REJECTED, and no
ORDER_TRADE_UPDATE). When it triggers: ALGO_UPDATE TRIGGERING and TRIGGERED, then the order in
the book has its ORDER_TRADE_UPDATEs, and ALGO_UPDATE FINISHED once it is filled, cancelled or
expired. paperex keeps one id for both, so `aid` and `ai` (and the order's `i`) are equal.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from exchange.api.binance import algo
from exchange.api.binance.ws_market import side_text
from exchange.api.context import ApiContext
from exchange.api.history import OrderView
from exchange.core.commands import Command, SetLeverage, SetMarginMode
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
_ALGO_EVENTS = (*_ORDER_EVENTS, OrderFilled)


def client_order_id(view: OrderView) -> str:
    if view.liquidation:
        return f"autoclose-{view.created_ts}"
    return view.client_order_id or f"paperex-{view.order_id}"


def _average(instrument: Instrument, filled_qty: int, filled_ticks_lots: int) -> str:
    if not filled_qty:
        return "0"
    value = Fraction(filled_ticks_lots, filled_qty) * Fraction(instrument.tick_size)
    return format_decimal(value, display_places(instrument))


def order_update(
    instrument: Instrument,
    view: OrderView,
    execution: str,
    ts: int,
    fill: OrderFilled | None = None,
    progress: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Return an ORDER_TRADE_UPDATE for an order.

    `progress` (filled lots, filled ticks times lots) is the order's fill as of this update,
    when a command has more to say about it later; without it the order is shown as it stands
    after the command.
    """
    filled_qty, filled_ticks_lots = progress or (view.filled_qty, view.filled_ticks_lots)
    if execution == "NEW":
        status = "NEW"
    elif fill is not None:
        status = "FILLED" if filled_qty >= view.qty else "PARTIALLY_FILLED"
    else:
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
            "ap": _average(instrument, filled_qty, filled_ticks_lots),
            "sp": (
                instrument.price_text(view.trigger_price) if view.trigger_price is not None else "0"
            ),
            "x": execution,
            "X": status,
            "i": view.order_id,
            "l": instrument.qty_text(fill.last_qty) if fill else "0",
            "z": instrument.qty_text(filled_qty),
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


def algo_update(
    instrument: Instrument,
    view: OrderView,
    status: str,
    ts: int,
    trigger_ts: int | None,
    reason: str = "",
    progress: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Return an ALGO_UPDATE for a conditional order; trigger_ts None: not triggered (yet).

    `progress` (filled lots, ticks times lots) is the fill in the book as of this update;
    without it, the fill after the command.
    """
    placed = status in (algo.TRIGGERED, algo.FINISHED)
    filled_qty, filled_ticks_lots = progress or (view.filled_qty, view.filled_ticks_lots)
    return {
        "e": "ALGO_UPDATE",
        "T": ts,
        "E": ts,
        "o": {
            "caid": client_order_id(view),
            "aid": view.order_id,
            "at": "CONDITIONAL",
            "o": ORDER_TYPES[view.order_type],
            "s": view.symbol,
            "S": side_text(view.side),
            "ps": "BOTH",
            "f": TIME_IN_FORCE[view.time_in_force.value],
            "q": instrument.qty_text(view.qty),
            "X": status,
            # The order in the book; Binance fills these in once it is placed there.
            "ai": str(view.order_id) if placed else "",
            "ap": _average(instrument, filled_qty, filled_ticks_lots) if placed else "0",
            "aq": instrument.qty_text(filled_qty) if placed else "0",
            "act": algo.ACTUAL_ORDER_TYPES[view.order_type] if placed else "0",
            "tp": (
                instrument.price_text(view.trigger_price) if view.trigger_price is not None else "0"
            ),
            "p": instrument.price_text(view.price) if view.price is not None else "0",
            "V": "EXPIRE_MAKER",
            "wt": "MARK_PRICE" if view.trigger_by.value == "mark" else "CONTRACT_PRICE",
            "pm": "NONE",
            "cp": view.close_position,
            "pP": False,
            "R": view.reduce_only,
            "tt": trigger_ts or 0,
            "gtd": 0,
            "rm": reason,
        },
    }


def account_config_update(symbol: str, leverage: int, ts: int) -> dict[str, Any]:
    """Return the ACCOUNT_CONFIG_UPDATE Binance sends when a symbol's leverage is set."""
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": ts, "T": ts, "ac": {"s": symbol, "l": leverage}}


def listen_key_expired(listen_key: str, ts: int) -> dict[str, Any]:
    return {"e": "listenKeyExpired", "E": ts, "listenKey": listen_key}


# ---------------------------------------------------------------------------------------------
# One command's events, per account
# ---------------------------------------------------------------------------------------------


class _AlgoSteps:
    """What one command did to one conditional order, for its ALGO_UPDATEs."""

    __slots__ = ("accepted", "amended", "ended", "filled", "triggered")

    def __init__(self) -> None:
        self.accepted = False
        self.amended = False
        self.triggered = False
        self.filled = False
        self.ended: OrderCanceled | OrderExpired | None = None


def _algo_steps(
    context: ApiContext, events: list[Event], accounts: set[int]
) -> dict[int, _AlgoSteps]:
    steps: dict[int, _AlgoSteps] = {}
    history = context.history.orders
    for event in events:
        if not isinstance(event, _ALGO_EVENTS) or event.account_id not in accounts:
            continue
        view = history.get(event.order_id)
        if view is None or not view.order_type.is_conditional:
            continue
        step = steps.get(event.order_id)
        if step is None:
            step = steps[event.order_id] = _AlgoSteps()
        if isinstance(event, OrderAccepted):
            step.accepted = True
        elif isinstance(event, OrderAmended):
            step.amended = True
        elif isinstance(event, OrderTriggered):
            step.triggered = True
        elif isinstance(event, OrderFilled):
            step.filled = step.filled or event.leaves_qty == 0
        else:
            step.ended = event
    return steps


def _algo_updates(
    context: ApiContext,
    view: OrderView,
    step: _AlgoSteps,
    ts: int,
    before: tuple[int, int] | None,
) -> list[dict[str, Any]]:
    """Return a conditional order's ALGO_UPDATEs for one command.

    `before` is the order's fill before the command, if the command filled it.
    """
    instrument = context.instrument(view.symbol)
    # A filled order has triggered even in a history restored from before triggers were kept.
    trigger_ts = view.triggered_ts or (ts if view.filled_qty else None)
    updates = []
    if trigger_ts is None:
        if step.accepted or step.amended:
            updates.append(algo_update(instrument, view, algo.NEW, ts, None))
        if isinstance(step.ended, OrderCanceled):
            updates.append(algo_update(instrument, view, algo.CANCELED, ts, None))
        elif isinstance(step.ended, OrderExpired):
            reason = algo.REJECT_REASONS.get(step.ended.reason)
            if reason is not None:
                updates.append(algo_update(instrument, view, algo.REJECTED, ts, None, reason))
            else:
                updates.append(algo_update(instrument, view, algo.EXPIRED, ts, None))
        return updates
    if step.triggered:
        updates.append(algo_update(instrument, view, algo.TRIGGERING, ts, trigger_ts))
        updates.append(
            algo_update(instrument, view, algo.TRIGGERED, ts, trigger_ts, progress=before)
        )
    if step.ended is not None or step.filled:
        updates.append(algo_update(instrument, view, algo.FINISHED, ts, trigger_ts))
    return updates


def _fills_before(
    context: ApiContext, events: list[Event], accounts: set[int]
) -> dict[int, tuple[int, int]]:
    """Return, for orders filled in this command, their fill before it (lots, ticks x lots).

    An order accepted and filled by one command is NEW, then PARTIALLY_FILLED or FILLED fill
    by fill, as Binance tells it; history holds only the state after the command.
    """
    during: dict[int, tuple[int, int]] = {}
    for event in events:
        if isinstance(event, OrderFilled) and event.account_id in accounts:
            qty, ticks_lots = during.get(event.order_id, (0, 0))
            during[event.order_id] = (
                qty + event.last_qty,
                ticks_lots + event.last_px * event.last_qty,
            )
    before = {}
    history = context.history.orders
    for order_id, (qty, ticks_lots) in during.items():
        view = history.get(order_id)
        if view is not None:
            before[order_id] = (view.filled_qty - qty, view.filled_ticks_lots - ticks_lots)
    return before


def render_command(
    context: ApiContext,
    command: Command,
    events: list[Event],
    accounts: set[int],
) -> dict[int, list[dict[str, Any]]]:
    """Return the user stream payloads of a command for each listed account, in order."""
    ts = command.ts
    out: dict[int, list[dict[str, Any]]] = {}
    positions: dict[int, list[PositionChanged]] = {}
    ledgers: dict[int, list[LedgerEntry]] = {}
    balances: set[int] = set()
    liquidations = {(e.account_id, e.symbol): e for e in events if isinstance(e, Liquidated)}
    history = context.history.orders
    algo_steps = _algo_steps(context, events, accounts)
    progress = _fills_before(context, events, accounts)
    # Conditional orders seen only by the algo service so far: no ORDER_TRADE_UPDATE for them.
    algo_only: set[int] = set()
    for conditional_id, conditional in algo_steps.items():
        if not conditional.triggered and not algo.triggered(history[conditional_id]):
            algo_only.add(conditional_id)
    for event in events:
        account_id = getattr(event, "account_id", None)
        if account_id is None or account_id not in accounts:
            continue
        payloads = out.setdefault(account_id, [])
        event_order_id: int = getattr(event, "order_id", -1)
        step = algo_steps.pop(event_order_id, None)
        if step is not None:
            # The algo service's news comes first, so a client that keys orders by id (as
            # ccxt does) ends with the book order's fuller update of the same command.
            conditional_view = history[event_order_id]
            before = progress.get(event_order_id)
            payloads.extend(_algo_updates(context, conditional_view, step, ts, before))
        if isinstance(event, OrderFilled):
            view = history.get(event.order_id)
            if view is not None:
                execution = "CALCULATED" if view.liquidation else "TRADE"
                instrument = context.instrument(event.symbol)
                filled, ticks_lots = progress[event.order_id]
                after = (filled + event.last_qty, ticks_lots + event.last_px * event.last_qty)
                progress[event.order_id] = after
                payloads.append(order_update(instrument, view, execution, ts, event, after))
        elif isinstance(event, _ORDER_EVENTS):
            view = history.get(event.order_id)
            if view is None or (view.liquidation and isinstance(event, OrderAccepted)):
                continue
            if event.order_id in algo_only:
                continue
            execution = {
                OrderAccepted: "NEW",
                OrderTriggered: "NEW",
                OrderCanceled: "CANCELED",
                OrderExpired: "EXPIRED",
                OrderAmended: "AMENDMENT",
            }[type(event)]
            instrument = context.instrument(event.symbol)
            payloads.append(
                order_update(instrument, view, execution, ts, progress=progress.get(event.order_id))
            )
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
            if isinstance(command, SetLeverage):
                # Binance tells a leverage change apart from position changes.
                payloads.append(account_config_update(event.symbol, event.leverage, ts))
            else:
                positions.setdefault(account_id, []).append(event)
        elif isinstance(event, LedgerEntry):
            ledgers.setdefault(account_id, []).append(event)
        elif isinstance(event, BalanceChanged):
            balances.add(account_id)
    for account_id in sorted(balances | positions.keys() | ledgers.keys()):
        entries = ledgers.get(account_id, [])
        if entries:
            reason = REASONS[entries[0].kind]
        elif isinstance(command, SetMarginMode):
            reason = "MARGIN_TYPE_CHANGE"
        else:
            reason = "ORDER"
        update = account_update(
            context, account_id, ts, positions.get(account_id, []), entries, reason
        )
        out.setdefault(account_id, []).append(update)
    return {account_id: payloads for account_id, payloads in out.items() if payloads}
