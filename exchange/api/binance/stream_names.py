"""Binance market stream names: `btcusdt@depth@100ms`, `!markPrice@arr`, and what they mean."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from enum import Enum

from exchange.api.binance import klines

PARTIAL_DEPTH_LEVELS = (5, 10, 20)
DEPTH_SPEEDS = ("", "@100ms", "@250ms", "@500ms")


class StreamKind(Enum):
    DIFF_DEPTH = "depth"
    PARTIAL_DEPTH = "partial_depth"
    TRADE = "trade"
    AGG_TRADE = "aggTrade"
    MARK_PRICE = "markPrice"
    ALL_MARK_PRICES = "all_mark_prices"
    BOOK_TICKER = "bookTicker"
    TICKER = "ticker"
    MINI_TICKER = "miniTicker"
    FORCE_ORDER = "forceOrder"
    KLINE = "kline"


@dataclass(frozen=True, slots=True)
class Stream:
    """One market stream: its name as the client wrote it, its kind and its symbol."""

    name: str
    kind: StreamKind
    symbol: str | None
    levels: int = 0
    interval: str = ""


_SIMPLE = {
    "trade": StreamKind.TRADE,
    "aggTrade": StreamKind.AGG_TRADE,
    "markPrice": StreamKind.MARK_PRICE,
    "markPrice@1s": StreamKind.MARK_PRICE,
    "bookTicker": StreamKind.BOOK_TICKER,
    "ticker": StreamKind.TICKER,
    "miniTicker": StreamKind.MINI_TICKER,
    "forceOrder": StreamKind.FORCE_ORDER,
}
_ALL_MARK_PRICES = ("!markPrice@arr", "!markPrice@arr@1s")
KLINE_INTERVALS = klines.INTERVALS


def is_market_stream(name: str) -> bool:
    """Tell a market stream name from a listen key (which has neither '@' nor '!')."""
    return "@" in name or name.startswith("!")


def parse_stream(name: str, symbols: Container[str]) -> Stream | None:
    """Return the stream a name asks for, or None if it is unknown or names no symbol."""
    if name in _ALL_MARK_PRICES:
        return Stream(name, StreamKind.ALL_MARK_PRICES, None)
    lower_symbol, at, rest = name.partition("@")
    symbol = lower_symbol.upper()
    if not at or lower_symbol != lower_symbol.lower() or symbol not in symbols:
        return None
    kind = _SIMPLE.get(rest)
    if kind is not None:
        return Stream(name, kind, symbol)
    if rest.startswith("kline_"):
        interval = rest[len("kline_") :]
        if interval not in KLINE_INTERVALS:
            return None
        return Stream(name, StreamKind.KLINE, symbol, interval=interval)
    if not rest.startswith("depth"):
        return None
    levels_text, _, speed = rest[len("depth") :].partition("@")
    if speed and f"@{speed}" not in DEPTH_SPEEDS:
        return None
    if not levels_text:
        return Stream(name, StreamKind.DIFF_DEPTH, symbol)
    if levels_text.isdigit() and int(levels_text) in PARTIAL_DEPTH_LEVELS:
        return Stream(name, StreamKind.PARTIAL_DEPTH, symbol, int(levels_text))
    return None
