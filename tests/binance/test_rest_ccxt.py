"""The real ccxt client (binanceusdm) trading on paperex with only its URLs changed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
import pytest_asyncio

from exchange.api.ws import API_CONTEXT
from exchange.server import RUNTIME
from tests.binance.rest_support import base_url
from tests.e2e.harness import Server, manual_config, running_server, signed_login

SYMBOL = "BTC/USDT:USDT"


def ccxt_urls(base: str) -> dict[str, str]:
    """Return every binanceusdm API URL key pointed at a paperex server."""
    return {
        "fapiPublic": f"{base}/fapi/v1",
        "fapiPublicV2": f"{base}/fapi/v2",
        "fapiPublicV3": f"{base}/fapi/v3",
        "fapiPrivate": f"{base}/fapi/v1",
        "fapiPrivateV2": f"{base}/fapi/v2",
        "fapiPrivateV3": f"{base}/fapi/v3",
        "fapiData": f"{base}/futures/data",
        "sapi": f"{base}/sapi/v1",
        "sapiV2": f"{base}/sapi/v2",
        "sapiV3": f"{base}/sapi/v3",
        "sapiV4": f"{base}/sapi/v4",
        "public": f"{base}/api/v3",
        "private": f"{base}/api/v3",
        "v1": f"{base}/api/v1",
    }


def use_linear_exceptions(client: Any) -> None:
    """Map error codes as ccxt does for fapi.binance.com, whose host it recognises by name."""
    linear = client.exceptions["linear"]
    for kind in ("exact", "broad"):
        client.exceptions[kind] = {**client.exceptions[kind], **linear.get(kind, {})}


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server(manual_config()) as running:
        yield running


@contextlib.asynccontextmanager
async def ccxt_client(server: Server) -> AsyncIterator[Any]:
    """Open a new account and return ccxt's binanceusdm trading it on the server."""
    admin = await server.admin()
    keys = await admin.call("admin.create_account", {"name": "ccxt", "deposit": "100000"})
    client = ccxt.binanceusdm(
        {
            "apiKey": keys["api_key"],
            "secret": keys["api_secret"],
            "enableRateLimit": False,
            "options": {"fetchCurrencies": False},
        }
    )
    client.urls["api"] = ccxt_urls(base_url(server))
    use_linear_exceptions(client)
    try:
        yield client
    finally:
        await client.close()


@pytest_asyncio.fixture
async def exchange(server: Server) -> AsyncIterator[Any]:
    async with ccxt_client(server) as client:
        yield client


@pytest.mark.asyncio
async def test_markets_and_market_data(exchange: Any) -> None:
    markets = await exchange.load_markets()
    market = markets[SYMBOL]
    assert market["id"] == "BTCUSDT"
    assert market["linear"] is True
    assert market["swap"] is True
    assert market["active"] is True
    assert market["precision"]["price"] == 0.1
    assert market["limits"]["cost"]["min"] == 100
    ticker = await exchange.fetch_ticker(SYMBOL)
    assert ticker["symbol"] == SYMBOL
    book = await exchange.fetch_order_book(SYMBOL, 5)
    assert book["bids"][0][0] < book["asks"][0][0]
    assert len(book["bids"]) == 5
    assert await exchange.fetch_time() > 0


@pytest.mark.asyncio
async def test_orders_balance_and_positions(exchange: Any) -> None:
    await exchange.load_markets()
    await exchange.set_leverage(10, SYMBOL)
    await exchange.set_margin_mode("isolated", SYMBOL)
    resting = await exchange.create_order(SYMBOL, "limit", "buy", 0.01, 59_000)
    assert resting["status"] == "open"
    assert resting["price"] == 59_000
    open_orders = await exchange.fetch_open_orders(SYMBOL)
    assert [o["id"] for o in open_orders] == [resting["id"]]
    canceled = await exchange.cancel_order(resting["id"], SYMBOL)
    assert canceled["status"] == "canceled"
    filled = await exchange.create_order(SYMBOL, "market", "buy", 0.01)
    assert filled["status"] == "closed"
    assert filled["filled"] == 0.01
    balance = await exchange.fetch_balance()
    assert balance["USDT"]["total"] > 0
    assert balance["USDT"]["free"] < 100_000
    positions = await exchange.fetch_positions([SYMBOL])
    assert len(positions) == 1
    position = positions[0]
    assert position["contracts"] == 0.01
    assert position["side"] == "long"
    assert position["marginMode"] == "isolated"
    assert position["leverage"] == 10
    assert position["liquidationPrice"] > 0


@pytest.mark.asyncio
async def test_insufficient_margin_raises_insufficient_funds(exchange: Any) -> None:
    await exchange.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):
        await exchange.create_order(SYMBOL, "limit", "buy", 100, 59_000)


@pytest.mark.asyncio
async def test_edit_fetch_cancel_all_and_trades(exchange: Any) -> None:
    await exchange.load_markets()
    order = await exchange.create_order(
        SYMBOL, "limit", "buy", 0.01, 59_000, {"clientOrderId": "ccxt-1"}
    )
    assert order["clientOrderId"] == "ccxt-1"
    edited = await exchange.edit_order(order["id"], SYMBOL, "limit", "buy", 0.02, 59_100)
    assert (edited["amount"], edited["price"]) == (0.02, 59_100)
    fetched = await exchange.fetch_order(order["id"], SYMBOL)
    assert fetched["status"] == "open"
    assert fetched["amount"] == 0.02
    maker = await exchange.create_order(SYMBOL, "limit", "buy", 0.01, 59_000, {"postOnly": True})
    assert (maker["postOnly"], maker["timeInForce"]) == (True, "PO")
    await exchange.cancel_all_orders(SYMBOL)
    assert await exchange.fetch_open_orders(SYMBOL) == []
    await exchange.create_order(SYMBOL, "market", "buy", 0.02)
    closed = await exchange.create_order(SYMBOL, "market", "sell", 0.02, None, {"reduceOnly": True})
    assert closed["reduceOnly"] is True
    trades = await exchange.fetch_my_trades(SYMBOL)
    assert sum(t["amount"] for t in trades if t["side"] == "sell") == pytest.approx(0.02)
    public_trades = await exchange.fetch_trades(SYMBOL)
    assert public_trades
    candles = await exchange.fetch_ohlcv(SYMBOL, "1m")
    assert sum(c[5] for c in candles) == pytest.approx(0.04)
    assert await exchange.fetch_positions([SYMBOL]) == []


@pytest.mark.asyncio
async def test_isolated_margin_and_native_liquidation_price(server: Server, exchange: Any) -> None:
    await exchange.load_markets()
    await exchange.set_margin_mode("isolated", SYMBOL)
    await exchange.set_leverage(20, SYMBOL)
    await exchange.create_order(SYMBOL, "market", "sell", 0.1)
    before = (await exchange.fetch_positions([SYMBOL]))[0]["info"]["isolatedWallet"]
    added = await exchange.add_margin(SYMBOL, 50)
    reduced = await exchange.reduce_margin(SYMBOL, 20)
    assert (added["type"], added["amount"]) == ("add", 50)
    assert (reduced["type"], reduced["amount"]) == ("reduce", 20)
    [position] = await exchange.fetch_positions([SYMBOL])
    assert position["side"] == "short"
    raw = position["info"]
    keys = server.app[API_CONTEXT].keys
    account_id = keys.account_of(exchange.apiKey)
    assert account_id is not None
    credentials = keys.credentials_for(account_id)
    assert credentials is not None
    client = await server.connect()
    await client.call(
        "auth.login",
        signed_login(
            {"api_key": credentials.api_key, "api_secret": credentials.api_secret},
            server.clock_ms,
        ),
    )
    native = await client.call("account.get")
    assert raw["liquidationPrice"] == native["positions"][0]["liquidation_price"]
    assert raw["isolatedWallet"] == native["positions"][0]["isolated_margin"]
    assert Decimal(raw["isolatedWallet"]) == Decimal(before) + 30


@pytest.mark.asyncio
async def test_stop_and_take_profit_orders_by_trigger_price(exchange: Any) -> None:
    await exchange.load_markets()
    await exchange.create_order(SYMBOL, "market", "buy", 0.01)
    stop = await exchange.create_order(
        SYMBOL, "market", "sell", 0.01, None, {"stopLossPrice": 55_000, "reduceOnly": True}
    )
    take = await exchange.create_order(
        SYMBOL, "market", "sell", 0.01, None, {"takeProfitPrice": 65_000, "reduceOnly": True}
    )
    assert stop["triggerPrice"] == 55_000
    assert take["triggerPrice"] == 65_000
    open_triggers = await exchange.fetch_open_orders(SYMBOL, None, None, {"trigger": True})
    assert {o["id"] for o in open_triggers} == {stop["id"], take["id"]}
    await exchange.cancel_order(stop["id"], SYMBOL, {"trigger": True})
    remaining = await exchange.fetch_open_orders(SYMBOL, None, None, {"trigger": True})
    assert [o["id"] for o in remaining] == [take["id"]]


@pytest.mark.asyncio
async def test_funding_rate_and_its_history() -> None:
    config = manual_config()
    # Funding on, with an interval that does not pass during the test: the timer settles
    # when told to.
    funding = config.funding.model_copy(update={"enabled": True, "interval_s": 8 * 3600})
    async with (
        running_server(config.model_copy(update={"funding": funding})) as server,
        ccxt_client(server) as exchange,
    ):
        await exchange.load_markets()
        timer = server.app[RUNTIME].funding
        current = await exchange.fetch_funding_rate(SYMBOL)
        assert current["fundingRate"] == 0.0001
        assert current["markPrice"] == 60_000
        assert current["fundingTimestamp"] == timer.next_funding_ms
        settled = await timer.settle()
        history = await exchange.fetch_funding_rate_history(SYMBOL)
        assert [(row["fundingRate"], row["timestamp"]) for row in history] == [
            (0.0001, settled.command.ts)
        ]
