"""Klines (candlesticks): Binance's intervals and one candle built from trades.

The `@kline_<interval>` stream and `GET /fapi/v1/klines` both build their candles here, so
they agree on every candle. A candle covers the trades whose command time falls in its
interval. Intervals without trades have no candle (Binance shows a flat one).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from exchange.api.history import Trade
from exchange.core.enums import Side
from exchange.core.instruments import Instrument
from exchange.core.numbers import format_atoms

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
WEEK_START_MS = 4 * DAY_MS
"""Weekly candles open on Monday; the epoch fell on a Thursday."""
MONTH = "1M"
"""Monthly candles follow calendar months in UTC, so they have no fixed width."""

WIDTHS_MS = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
}

INTERVALS = (*WIDTHS_MS, MONTH)
"""Binance's kline intervals, shortest first."""


def interval_bounds(interval: str, ts: int) -> tuple[int, int]:
    """Return the open time and close time (its last millisecond) of the candle holding ts."""
    if interval == MONTH:
        moment = datetime.fromtimestamp(ts // 1000, UTC)
        start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
        year, month_index = divmod(moment.year * 12 + moment.month, 12)
        end = datetime(year, month_index + 1, 1, tzinfo=UTC)
        return int(start.timestamp()) * 1000, int(end.timestamp()) * 1000 - 1
    width = WIDTHS_MS[interval]
    offset = WEEK_START_MS if interval == "1w" else 0
    open_ms = ts - (ts - offset) % width
    return open_ms, open_ms + width - 1


class Kline:
    """An open candle, kept up to date from the trades of its interval."""

    __slots__ = (
        "buy_quote",
        "buy_volume",
        "close",
        "close_ms",
        "count",
        "first_id",
        "high",
        "interval",
        "last_id",
        "low",
        "open",
        "open_ms",
        "quote",
        "symbol",
        "volume",
    )

    def __init__(self, symbol: str, interval: str, ts: int) -> None:
        self.symbol = symbol
        self.interval = interval
        self.open_ms, self.close_ms = interval_bounds(interval, ts)
        self.open = self.high = self.low = self.close = 0
        self.volume = self.buy_volume = 0
        # Sums of price ticks times lots, turned into money only when rendered.
        self.quote = self.buy_quote = 0
        self.count = 0
        self.first_id = self.last_id = -1

    @classmethod
    def from_history(cls, symbol: str, interval: str, ts: int, trades: Iterable[Trade]) -> Kline:
        """Return the candle holding ts, built from the trades history still holds."""
        kline = cls(symbol, interval, ts)
        for trade in trades:
            if kline.open_ms <= trade.ts <= kline.close_ms:
                kline.add(trade.trade_id, trade.price, trade.qty, trade.taker_side)
        return kline

    def holds(self, ts: int) -> bool:
        return self.open_ms <= ts <= self.close_ms

    def add(self, trade_id: int, price: int, qty: int, taker_side: Side) -> None:
        if not self.count:
            self.open = self.high = self.low = price
            self.first_id = trade_id
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.last_id = trade_id
        self.count += 1
        self.volume += qty
        self.quote += price * qty
        if taker_side is Side.BUY:
            self.buy_volume += qty
            self.buy_quote += price * qty

    def row(self, instrument: Instrument) -> list[Any]:
        """Return the candle as `GET /fapi/v1/klines` lists it."""
        return [
            self.open_ms,
            instrument.price_text(self.open),
            instrument.price_text(self.high),
            instrument.price_text(self.low),
            instrument.price_text(self.close),
            instrument.qty_text(self.volume),
            self.close_ms,
            format_atoms(instrument.notional(self.quote, 1)),
            self.count,
            instrument.qty_text(self.buy_volume),
            format_atoms(instrument.notional(self.buy_quote, 1)),
            "0",
        ]

    def render(self, instrument: Instrument, ts: int, *, closed: bool) -> dict[str, Any]:
        """Return the kline event; `closed` says the interval has ended (x true)."""
        return {
            "e": "kline",
            "E": ts,
            "s": self.symbol,
            "k": {
                "t": self.open_ms,
                "T": self.close_ms,
                "s": self.symbol,
                "i": self.interval,
                "f": self.first_id,
                "L": self.last_id,
                "o": instrument.price_text(self.open),
                "c": instrument.price_text(self.close),
                "h": instrument.price_text(self.high),
                "l": instrument.price_text(self.low),
                "v": instrument.qty_text(self.volume),
                "n": self.count,
                "x": closed,
                "q": format_atoms(instrument.notional(self.quote, 1)),
                "V": instrument.qty_text(self.buy_volume),
                "Q": format_atoms(instrument.notional(self.buy_quote, 1)),
                "B": "0",
            },
        }
