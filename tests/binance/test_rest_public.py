"""Public /fapi endpoints: shapes, figures against the engine, Binance's errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import pytest_asyncio

from tests.binance.rest_support import Rest
from tests.e2e.harness import Server, manual_config, running_server


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server(manual_config()) as running:
        yield running


@pytest.mark.asyncio
async def test_ping_and_time(server: Server) -> None:
    rest = Rest(server)
    assert await rest.public("/fapi/v1/ping") == (200, {})
    status, body = await rest.public("/fapi/v1/time")
    assert status == 200
    assert abs(body["serverTime"] - server.clock_ms) < 5_000


@pytest.mark.asyncio
async def test_exchange_info_describes_the_instruments(server: Server) -> None:
    status, body = await Rest(server).public("/fapi/v1/exchangeInfo")
    assert status == 200
    btc = next(s for s in body["symbols"] if s["symbol"] == "BTCUSDT")
    assert btc["status"] == "TRADING"
    assert btc["contractType"] == "PERPETUAL"
    assert (btc["baseAsset"], btc["quoteAsset"], btc["marginAsset"]) == ("BTC", "USDT", "USDT")
    assert (btc["pricePrecision"], btc["quantityPrecision"]) == (1, 3)
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.1"
    assert filters["LOT_SIZE"] == {
        "filterType": "LOT_SIZE",
        "minQty": "0.001",
        "maxQty": "1000.000",
        "stepSize": "0.001",
    }
    assert filters["MARKET_LOT_SIZE"]["maxQty"] == "120.000"
    assert Decimal(filters["MIN_NOTIONAL"]["notional"]) == 100
    assert filters["PERCENT_PRICE"]["multiplierUp"] == "1.0500"
    assert filters["PERCENT_PRICE"]["multiplierDown"] == "0.9500"
    assert set(btc["timeInForce"]) == {"GTC", "IOC", "FOK", "GTX"}
    assert "STOP_MARKET" in btc["orderTypes"]
    assert Decimal(btc["liquidationFee"]) > 0


@pytest.mark.asyncio
async def test_depth_matches_the_engine(server: Server) -> None:
    status, body = await Rest(server).public("/fapi/v1/depth", symbol="BTCUSDT", limit=5)
    assert status == 200
    admin = await server.admin()
    native = await admin.call("public.book", {"symbol": "BTCUSDT", "depth": 5})
    assert body["lastUpdateId"] == native["update_id"]
    assert body["bids"] == native["bids"]
    assert body["asks"] == native["asks"]
    assert Decimal(body["bids"][0][0]) < Decimal(body["asks"][0][0])


@pytest.mark.asyncio
async def test_tickers(server: Server) -> None:
    rest = Rest(server)
    _, book = await rest.public("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT")
    _, depth = await rest.public("/fapi/v1/depth", symbol="BTCUSDT", limit=1)
    assert [book["bidPrice"], book["bidQty"]] == depth["bids"][0]
    assert [book["askPrice"], book["askQty"]] == depth["asks"][0]
    _, premium = await rest.public("/fapi/v1/premiumIndex", symbol="BTCUSDT")
    assert Decimal(premium["markPrice"]) == 60_000
    assert Decimal(premium["indexPrice"]) == 60_000
    _, all_premium = await rest.public("/fapi/v1/premiumIndex")
    assert [p["symbol"] for p in all_premium] == ["BTCUSDT", "ETHUSDT"]
    _, price = await rest.public("/fapi/v1/ticker/price", symbol="ETHUSDT")
    assert Decimal(price["price"]) == 3_000
    status, day = await rest.public("/fapi/v1/ticker/24hr", symbol="BTCUSDT")
    assert status == 200
    assert day["symbol"] == "BTCUSDT"
    assert Decimal(day["lastPrice"]) > 0


@pytest.mark.asyncio
async def test_trades_and_24hr_follow_a_trade(server: Server) -> None:
    client, _ = await server.trader("taker")
    await client.call(
        "order.place", {"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "0.01"}
    )
    rest = Rest(server)
    status, trades = await rest.public("/fapi/v1/trades", symbol="BTCUSDT")
    assert status == 200
    assert trades
    assert trades[-1]["isBuyerMaker"] is False
    assert Decimal(trades[-1]["qty"]) <= Decimal("0.01")
    _, day = await rest.public("/fapi/v1/ticker/24hr", symbol="BTCUSDT")
    assert Decimal(day["volume"]) == Decimal("0.01")
    assert day["count"] == len(trades)
    assert day["lastPrice"] == trades[-1]["price"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/fapi/v1/depth", {"symbol": "NOPE"}, -1121),
        ("/fapi/v1/depth", {}, -1102),
        ("/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": "x"}, -1100),
        ("/fapi/v1/trades", {"symbol": "BTCUSDT", "limit": 5000}, -1130),
        ("/fapi/v1/ticker/price", {"symbol": "NOPE"}, -1121),
    ],
)
async def test_bad_public_requests(
    server: Server, path: str, params: dict[str, object], code: int
) -> None:
    rest = Rest(server)
    status, body = await rest.public(path, **params)
    assert status == 400
    assert body["code"] == code
    assert isinstance(body["msg"], str)
    assert (await rest.public("/fapi/v1/ping"))[0] == 200


@pytest.mark.asyncio
async def test_agg_trades_and_klines_follow_trades(server: Server) -> None:
    client, _ = await server.trader("taker")
    for side in ("buy", "sell"):
        await client.call(
            "order.place", {"symbol": "BTCUSDT", "side": side, "type": "market", "qty": "0.01"}
        )
    rest = Rest(server)
    _, trades = await rest.public("/fapi/v1/trades", symbol="BTCUSDT")
    status, aggregated = await rest.public("/fapi/v1/aggTrades", symbol="BTCUSDT")
    assert status == 200
    assert [(a["a"], a["p"], a["q"]) for a in aggregated] == [
        (t["id"], t["price"], t["qty"]) for t in trades
    ]
    status, candles = await rest.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m")
    assert status == 200
    assert sum(Decimal(c[5]) for c in candles) == Decimal("0.02")
    assert sum(c[8] for c in candles) == len(trades)
    for candle in candles:
        assert Decimal(candle[3]) <= Decimal(candle[1]) <= Decimal(candle[2])
        assert candle[6] == candle[0] + 59_999
    # A monthly candle runs from the first of a calendar month (UTC) to the next.
    status, months = await rest.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1M")
    assert status == 200
    opened = datetime.fromtimestamp(months[-1][0] / 1000, UTC)
    closed = datetime.fromtimestamp((months[-1][6] + 1) / 1000, UTC)
    assert (opened.day, opened.hour, closed.day, closed.hour) == (1, 0, 1, 0)
    assert (closed.year * 12 + closed.month) - (opened.year * 12 + opened.month) == 1
    assert sum(Decimal(c[5]) for c in months) == Decimal("0.02")
    status, body = await rest.public("/fapi/v1/klines", symbol="BTCUSDT", interval="7m")
    assert (status, body["code"]) == (400, -1130)
