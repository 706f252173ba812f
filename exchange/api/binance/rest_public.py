"""Public market data under /fapi/v1: time, exchange info, book, trades, tickers."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from aiohttp import web

from exchange.api.binance import errors, render
from exchange.api.binance.handlers import public
from exchange.api.binance.klines import INTERVALS as KLINE_INTERVALS
from exchange.api.binance.klines import Kline, interval_bounds
from exchange.api.binance.params import Params
from exchange.api.context import ApiContext
from exchange.api.history import FundingSettlement
from exchange.core.enums import Side
from exchange.core.margin import display_places
from exchange.core.market import Market
from exchange.core.numbers import format_rate

DAY_MS = 24 * 60 * 60 * 1000
DEFAULT_DEPTH = 500
MAX_DEPTH = 1000
DEFAULT_TRADES = 500
MAX_TRADES = 1000
DEFAULT_KLINES = 500
MAX_KLINES = 1500
DEFAULT_FUNDING_RATES = 100
MAX_FUNDING_RATES = 1000
HOUR_MS = 60 * 60 * 1000
MINUTE_MS = 60_000
INTEREST_RATE = "0.00010000"
"""Binance's fixed interest rate in the funding formula, shown as Binance shows it."""


async def ping(context: ApiContext, params: Params) -> Any:
    return {}


async def server_time(context: ApiContext, params: Params) -> Any:
    return {"serverTime": context.clock.now_ms()}


async def exchange_info(context: ApiContext, params: Params) -> Any:
    instruments = [i for _, i in sorted(context.instruments.items())]
    assets = sorted({i.quote_asset for i in instruments})
    return {
        "timezone": "UTC",
        "serverTime": context.clock.now_ms(),
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 2400,
            },
        ],
        "exchangeFilters": [],
        "assets": [
            {"asset": asset, "marginAvailable": True, "autoAssetExchange": "0"} for asset in assets
        ],
        "symbols": [render.symbol_info(instrument) for instrument in instruments],
    }


async def depth(context: ApiContext, params: Params) -> Any:
    market = params.market(context)
    limit = params.bounded("limit", DEFAULT_DEPTH, 1, MAX_DEPTH)
    now = context.clock.now_ms()
    book = market.book
    instrument = market.instrument
    return {
        "lastUpdateId": book.update_id,
        "E": now,
        "T": now,
        "bids": _levels(instrument, book.bids.depth(limit)),
        "asks": _levels(instrument, book.asks.depth(limit)),
    }


def _levels(instrument: Any, rows: list[tuple[int, int]]) -> list[list[str]]:
    return [[instrument.price_text(p), instrument.qty_text(q)] for p, q in rows]


async def trades(context: ApiContext, params: Params) -> Any:
    market = params.market(context)
    limit = params.bounded("limit", DEFAULT_TRADES, 1, MAX_TRADES)
    recent = list(context.history.trades[market.instrument.symbol])[-limit:]
    return [render.public_trade(market.instrument, trade) for trade in recent]


async def agg_trades(context: ApiContext, params: Params) -> Any:
    """Return trades as aggregate trades, one per trade (paperex does not merge them)."""
    market = params.market(context)
    instrument = market.instrument
    limit = params.bounded("limit", DEFAULT_TRADES, 1, MAX_TRADES)
    from_id = params.integer("fromId")
    start = params.integer("startTime")
    end = params.integer("endTime")
    chosen = [
        t
        for t in context.history.trades[instrument.symbol]
        if (from_id is None or t.trade_id >= from_id)
        and (start is None or t.ts >= start)
        and (end is None or t.ts <= end)
    ]
    chosen = chosen[:limit] if from_id is not None or start is not None else chosen[-limit:]
    return [
        {
            "a": t.trade_id,
            "p": instrument.price_text(t.price),
            "q": instrument.qty_text(t.qty),
            "f": t.trade_id,
            "l": t.trade_id,
            "T": t.ts,
            "m": t.taker_side is Side.SELL,
        }
        for t in chosen
    ]


async def klines(context: ApiContext, params: Params) -> Any:
    """Return candles built from the trades history holds (the last 1,000 per symbol).

    Only intervals with trades have a candle; Binance fills quiet intervals with the close.
    """
    market = params.market(context)
    instrument = market.instrument
    interval = params.required("interval")
    if interval not in KLINE_INTERVALS:
        raise errors.invalid_value("interval")
    limit = params.bounded("limit", DEFAULT_KLINES, 1, MAX_KLINES)
    start = params.integer("startTime")
    end = params.integer("endTime")
    candles: dict[int, Kline] = {}
    for trade in context.history.trades[instrument.symbol]:
        if (start is None or trade.ts >= start) and (end is None or trade.ts <= end):
            open_ms, _ = interval_bounds(interval, trade.ts)
            candle = candles.get(open_ms)
            if candle is None:
                candle = candles[open_ms] = Kline(instrument.symbol, interval, trade.ts)
            candle.add(trade.trade_id, trade.price, trade.qty, trade.taker_side)
    opens = sorted(candles)
    opens = opens[:limit] if start is not None else opens[-limit:]
    return [candles[open_ms].row(instrument) for open_ms in opens]


def _last_price(market: Market) -> int | None:
    return market.last_price if market.last_price is not None else market.mark_price


def _each(context: ApiContext, params: Params) -> tuple[list[Market], bool]:
    """Return the markets asked for and whether one symbol was (a single object answers)."""
    market = params.optional_market(context)
    if market is not None:
        return [market], True
    return [m for _, m in sorted(context.exchange.markets.items())], False


async def ticker_price(context: ApiContext, params: Params) -> Any:
    markets, single = _each(context, params)
    now = context.clock.now_ms()
    rows = [
        {
            "symbol": m.instrument.symbol,
            "price": render.price(m.instrument, _last_price(m)),
            "time": now,
        }
        for m in markets
    ]
    return rows[0] if single else rows


async def book_ticker(context: ApiContext, params: Params) -> Any:
    markets, single = _each(context, params)
    now = context.clock.now_ms()
    rows = []
    for market in markets:
        instrument = market.instrument
        bids = market.book.bids.depth(1)
        asks = market.book.asks.depth(1)
        rows.append(
            {
                "symbol": instrument.symbol,
                "bidPrice": instrument.price_text(bids[0][0]) if bids else "0",
                "bidQty": instrument.qty_text(bids[0][1]) if bids else "0",
                "askPrice": instrument.price_text(asks[0][0]) if asks else "0",
                "askQty": instrument.qty_text(asks[0][1]) if asks else "0",
                "time": now,
                "lastUpdateId": market.book.update_id,
            }
        )
    return rows[0] if single else rows


async def premium_index(context: ApiContext, params: Params) -> Any:
    markets, single = _each(context, params)
    now = context.clock.now_ms()
    funding = context.funding
    rows = []
    for market in markets:
        instrument = market.instrument
        symbol = instrument.symbol
        rate = funding.current_rate(symbol) if funding is not None else 0
        next_time = funding.next_funding_ms if funding is not None else None
        rows.append(
            {
                "symbol": symbol,
                "markPrice": render.price(instrument, market.mark_price),
                "indexPrice": render.price(instrument, market.index_price),
                "estimatedSettlePrice": render.price(instrument, market.index_price),
                "lastFundingRate": format_rate(rate),
                "interestRate": INTEREST_RATE,
                "nextFundingTime": next_time or 0,
                "time": now,
            }
        )
    return rows[0] if single else rows


async def funding_rate_history(context: ApiContext, params: Params) -> Any:
    """Return settled funding rates that history holds (the last 1,000 per symbol), oldest first.

    Without startTime the latest `limit` answer; with it, the first `limit` from then on.
    """
    market = params.optional_market(context)
    start = params.integer("startTime")
    end = params.integer("endTime")
    limit = params.bounded("limit", DEFAULT_FUNDING_RATES, 1, MAX_FUNDING_RATES)
    history = context.history.funding
    symbols = [market.instrument.symbol] if market is not None else sorted(history)
    settled: list[FundingSettlement] = sorted(
        (
            row
            for symbol in symbols
            for row in history.get(symbol, ())
            if (start is None or row.ts >= start) and (end is None or row.ts <= end)
        ),
        key=lambda row: (row.ts, row.symbol),
    )
    chosen = settled[:limit] if start is not None else settled[-limit:]
    return [
        {
            "symbol": row.symbol,
            "fundingRate": format_rate(row.rate),
            "fundingTime": row.ts,
            "markPrice": render.price(context.instrument(row.symbol), row.mark_price),
        }
        for row in chosen
    ]


async def funding_info(context: ApiContext, params: Params) -> Any:
    """Return every symbol's funding cap, floor and interval; none while funding is off."""
    funding = context.funding
    if funding is None or funding.next_funding_ms is None:
        return []
    hours = Fraction(funding.interval_ms, HOUR_MS)
    # Binance's intervals are whole hours; a shorter configured one shows as a fraction.
    interval_hours: int | float = int(hours) if hours.denominator == 1 else float(hours)
    return [
        {
            "symbol": symbol,
            "adjustedFundingRateCap": format_rate(funding.cap),
            "adjustedFundingRateFloor": format_rate(-funding.cap),
            "fundingIntervalHours": interval_hours,
            "disclaimer": False,
        }
        for symbol in sorted(context.exchange.markets)
    ]


async def ticker_24hr(context: ApiContext, params: Params) -> Any:
    """Summarise the trades of the last 24 hours that history still holds (the last 1,000)."""
    markets, single = _each(context, params)
    now = context.clock.now_ms()
    rows = [_day_summary(context, market, now) for market in markets]
    return rows[0] if single else rows


def _day_summary(context: ApiContext, market: Market, now: int) -> dict[str, Any]:
    instrument = market.instrument
    symbol = instrument.symbol
    day = [t for t in context.history.trades[symbol] if t.ts > now - DAY_MS]
    last = _last_price(market)
    last_text = render.price(instrument, last)
    if not day:
        return {
            "symbol": symbol,
            "priceChange": "0",
            "priceChangePercent": "0.000",
            "weightedAvgPrice": last_text,
            "lastPrice": last_text,
            "lastQty": "0",
            "openPrice": last_text,
            "highPrice": last_text,
            "lowPrice": last_text,
            "volume": "0",
            "quoteVolume": "0",
            "openTime": now - DAY_MS,
            "closeTime": now,
            "firstId": -1,
            "lastId": -1,
            "count": 0,
        }
    open_price = Decimal(instrument.price_text(day[0].price))
    last_price = Decimal(instrument.price_text(day[-1].price))
    volume_lots = sum(t.qty for t in day)
    quote_atoms = instrument.notional(sum(t.price * t.qty for t in day), 1)
    volume = Decimal(instrument.qty_text(volume_lots))
    quote_volume = Decimal(render.money(quote_atoms))
    change = last_price - open_price
    average = quote_volume / volume
    return {
        "symbol": symbol,
        "priceChange": str(change),
        "priceChangePercent": f"{change / open_price * 100:.3f}",
        "weightedAvgPrice": f"{average:.{display_places(instrument)}f}",
        "lastPrice": instrument.price_text(day[-1].price),
        "lastQty": instrument.qty_text(day[-1].qty),
        "openPrice": instrument.price_text(day[0].price),
        "highPrice": instrument.price_text(max(t.price for t in day)),
        "lowPrice": instrument.price_text(min(t.price for t in day)),
        "volume": instrument.qty_text(volume_lots),
        "quoteVolume": render.money(quote_atoms),
        "openTime": day[0].ts,
        "closeTime": day[-1].ts,
        "firstId": day[0].trade_id,
        "lastId": day[-1].trade_id,
        "count": len(day),
    }


def register(app: web.Application) -> None:
    """Add the public routes."""
    routes = {
        "/fapi/v1/ping": ping,
        "/fapi/v1/time": server_time,
        "/fapi/v1/exchangeInfo": exchange_info,
        "/fapi/v1/depth": depth,
        "/fapi/v1/trades": trades,
        "/fapi/v1/aggTrades": agg_trades,
        "/fapi/v1/klines": klines,
        "/fapi/v1/ticker/price": ticker_price,
        "/fapi/v2/ticker/price": ticker_price,
        "/fapi/v1/ticker/bookTicker": book_ticker,
        "/fapi/v1/premiumIndex": premium_index,
        "/fapi/v1/fundingRate": funding_rate_history,
        "/fapi/v1/fundingInfo": funding_info,
        "/fapi/v1/ticker/24hr": ticker_24hr,
    }
    for path, handler in routes.items():
        app.router.add_get(path, public(handler))
