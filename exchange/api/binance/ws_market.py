"""Market stream payloads in Binance USD-M shapes, rendered from core events and state.

Pure functions of their arguments: the hub decides who gets them. Prices and quantities are
decimal strings, times Unix milliseconds (the command's ts: E and T are the same instant).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

from exchange.api.context import ApiContext
from exchange.api.history import OrderView, Trade
from exchange.core.enums import Side
from exchange.core.events import Liquidated, OrderFilled
from exchange.core.instruments import Instrument
from exchange.core.margin import display_places, format_decimal
from exchange.core.numbers import format_atoms, format_rate

DAY_MS = 24 * 60 * 60 * 1000
PERCENT_PLACES = 3


def levels(instrument: Instrument, rows: Iterable[tuple[int, int]]) -> list[list[str]]:
    return [[instrument.price_text(p), instrument.qty_text(q)] for p, q in rows]


def side_text(side: Side) -> str:
    return "BUY" if side is Side.BUY else "SELL"


# ---------------------------------------------------------------------------------------------
# Depth
# ---------------------------------------------------------------------------------------------


def depth_update(
    instrument: Instrument,
    ts: int,
    first_id: int,
    final_id: int,
    previous_id: int,
    bids: Iterable[tuple[int, int]],
    asks: Iterable[tuple[int, int]],
) -> dict[str, Any]:
    """Return a diff depth event covering book updates first_id..final_id."""
    return {
        "e": "depthUpdate",
        "E": ts,
        "T": ts,
        "s": instrument.symbol,
        "U": first_id,
        "u": final_id,
        "pu": previous_id,
        "b": levels(instrument, bids),
        "a": levels(instrument, asks),
    }


def partial_depth(context: ApiContext, symbol: str, count: int, ts: int) -> dict[str, Any]:
    """Return the top `count` levels per side as Binance's partial depth event."""
    depth = context.exchange.depth(symbol, count)
    update_id = depth["update_id"]
    assert isinstance(update_id, int)
    bids: Any = depth["bids"]
    asks: Any = depth["asks"]
    return depth_update(
        context.instrument(symbol), ts, update_id, update_id, update_id - 1, bids, asks
    )


def book_ticker(context: ApiContext, symbol: str, ts: int) -> dict[str, Any]:
    market = context.exchange.markets[symbol]
    instrument = market.instrument
    bids = market.book.bids.depth(1)
    asks = market.book.asks.depth(1)
    return {
        "e": "bookTicker",
        "u": market.book.update_id,
        "s": symbol,
        "b": instrument.price_text(bids[0][0]) if bids else "0",
        "B": instrument.qty_text(bids[0][1]) if bids else "0",
        "a": instrument.price_text(asks[0][0]) if asks else "0",
        "A": instrument.qty_text(asks[0][1]) if asks else "0",
        "T": ts,
        "E": ts,
    }


# ---------------------------------------------------------------------------------------------
# Trades
# ---------------------------------------------------------------------------------------------


def trade(instrument: Instrument, fill: OrderFilled, ts: int, liquidation: bool) -> dict[str, Any]:
    """Return the trade event of a taker's fill (the public print of one trade)."""
    return {
        "e": "trade",
        "E": ts,
        "T": ts,
        "s": fill.symbol,
        "t": fill.trade_id,
        "p": instrument.price_text(fill.last_px),
        "q": instrument.qty_text(fill.last_qty),
        "X": "LIQUIDATION" if liquidation else "MARKET",
        # The buyer is the maker exactly when the taker sold.
        "m": fill.side is Side.SELL,
    }


def agg_trade(instrument: Instrument, fills: Sequence[OrderFilled], ts: int) -> dict[str, Any]:
    """Return one aggregate trade: a taker's fills at one price within one command."""
    first = fills[0]
    return {
        "e": "aggTrade",
        "E": ts,
        "a": first.trade_id,
        "s": first.symbol,
        "p": instrument.price_text(first.last_px),
        "q": instrument.qty_text(sum(f.last_qty for f in fills)),
        "f": first.trade_id,
        "l": fills[-1].trade_id,
        "T": ts,
        "m": first.side is Side.SELL,
    }


def aggregate(fills: Iterable[OrderFilled]) -> list[list[OrderFilled]]:
    """Group consecutive taker fills of the same order at the same price."""
    groups: list[list[OrderFilled]] = []
    for fill in fills:
        last = groups[-1][-1] if groups else None
        if last is not None and last.order_id == fill.order_id and last.last_px == fill.last_px:
            groups[-1].append(fill)
        else:
            groups.append([fill])
    return groups


# ---------------------------------------------------------------------------------------------
# Marks and tickers
# ---------------------------------------------------------------------------------------------


def mark_price(context: ApiContext, symbol: str, ts: int) -> dict[str, Any]:
    market = context.exchange.markets[symbol]
    instrument = market.instrument
    funding = context.funding
    rate = funding.current_rate(symbol) if funding is not None else 0
    next_funding = funding.next_funding_ms if funding is not None else None
    mark = instrument.price_text(market.mark_price) if market.mark_price is not None else "0"
    index = instrument.price_text(market.index_price) if market.index_price is not None else "0"
    return {
        "e": "markPriceUpdate",
        "E": ts,
        "s": symbol,
        "p": mark,
        "i": index,
        # The estimated settle price only matters for delivery contracts; it is the index here.
        "P": index,
        "r": format_rate(rate),
        "T": next_funding or 0,
    }


def _window(trades: Iterable[Trade], now: int) -> list[Trade]:
    return [t for t in trades if t.ts > now - DAY_MS]


def tickers(context: ApiContext, symbol: str, ts: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the 24hr ticker and mini ticker, from the trades the history still holds."""
    instrument = context.instrument(symbol)
    places = display_places(instrument)
    trades = _window(context.history.trades[symbol], ts)
    volume = sum(t.qty for t in trades)
    quote = sum(instrument.notional(t.price, t.qty) for t in trades)
    if trades:
        open_ticks, last = trades[0].price, trades[-1]
        high = max(t.price for t in trades)
        low = min(t.price for t in trades)
        close_ticks, last_qty = last.price, last.qty
        first_id, last_id = trades[0].trade_id, last.trade_id
    else:
        last_price = context.exchange.markets[symbol].last_price or 0
        open_ticks = high = low = close_ticks = last_price
        last_qty, first_id, last_id = 0, -1, -1
    change = close_ticks - open_ticks
    percent = Fraction(change * 100, open_ticks) if open_ticks else Fraction(0)
    weighted = (
        Fraction(sum(t.price * t.qty for t in trades), volume) * Fraction(instrument.tick_size)
        if volume
        else Fraction(0)
    )
    mini = {
        "e": "24hrMiniTicker",
        "E": ts,
        "s": symbol,
        "c": instrument.price_text(close_ticks),
        "o": instrument.price_text(open_ticks),
        "h": instrument.price_text(high),
        "l": instrument.price_text(low),
        "v": instrument.qty_text(volume),
        "q": format_atoms(quote),
    }
    full = {
        "e": "24hrTicker",
        "E": ts,
        "s": symbol,
        "p": instrument.price_text(change),
        "P": format_decimal(percent, PERCENT_PLACES),
        "w": format_decimal(weighted, places),
        "c": mini["c"],
        "Q": instrument.qty_text(last_qty),
        "o": mini["o"],
        "h": mini["h"],
        "l": mini["l"],
        "v": mini["v"],
        "q": mini["q"],
        "O": ts - DAY_MS,
        "C": ts,
        "F": first_id,
        "L": last_id,
        "n": len(trades),
    }
    return full, mini


# ---------------------------------------------------------------------------------------------
# Liquidations
# ---------------------------------------------------------------------------------------------


def force_order(
    instrument: Instrument, event: Liquidated, view: OrderView | None, ts: int
) -> dict[str, Any]:
    """Return the public liquidation order event: no account, no balances."""
    average = (
        Fraction(view.filled_ticks_lots, view.filled_qty) * Fraction(instrument.tick_size)
        if view is not None and view.filled_qty
        else Fraction(instrument.tick_size) * event.bankruptcy_price
    )
    qty = instrument.qty_text(event.qty)
    return {
        "e": "forceOrder",
        "E": ts,
        "o": {
            "s": event.symbol,
            "S": side_text(event.side),
            "o": "LIMIT",
            "f": "IOC",
            "q": qty,
            "p": instrument.price_text(event.bankruptcy_price),
            "ap": format_decimal(average, display_places(instrument)),
            "X": "FILLED",
            "l": qty,
            "z": qty,
            "T": ts,
        },
    }
