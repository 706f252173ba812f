"""The WebSocket API on /ws-fapi/v1: raw frames in Binance's shapes, then the real ccxt.pro."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import ccxt.pro as ccxtpro
import pytest
import pytest_asyncio
from ccxt.base.errors import InsufficientFunds

from tests.binance.rest_support import Rest, WsApi, base_url, trader, ws_api
from tests.binance.test_rest_ccxt import SYMBOL, ccxt_urls, use_linear_exceptions
from tests.e2e.harness import Server, manual_config, running_server

LIMIT: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.010",
    "price": "59000",
}


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server(manual_config()) as running:
        yield running


@pytest_asyncio.fixture
async def rest(server: Server) -> Rest:
    return await trader(server, "wendy")


@pytest_asyncio.fixture
async def api(rest: Rest) -> AsyncIterator[WsApi]:
    connection = await ws_api(rest)
    try:
        yield connection
    finally:
        await connection.close()


def result(answer: dict[str, Any]) -> Any:
    assert answer["status"] == 200, answer
    assert "error" not in answer
    return answer["result"]


def error(answer: dict[str, Any]) -> tuple[int, int]:
    assert "result" not in answer, answer
    assert set(answer["error"]) == {"code", "msg"}
    return answer["status"], answer["error"]["code"]


# ---------------------------------------------------------------------------------------------
# Methods in Binance's shapes
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_place_status_modify_and_cancel_an_order(api: WsApi) -> None:
    placed = await api.signed("order.place", **LIMIT, newClientOrderId="ws-1")
    order = result(placed)
    assert (order["status"], order["clientOrderId"], order["price"]) == ("NEW", "ws-1", "59000.0")
    weight = placed["rateLimits"][0]
    assert {k: weight[k] for k in ("rateLimitType", "interval", "intervalNum")} == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
    }
    assert [row["rateLimitType"] for row in placed["rateLimits"]] == [
        "REQUEST_WEIGHT",
        "ORDERS",
        "ORDERS",
    ]
    assert placed["rateLimits"][1]["count"] == 1

    status = result(await api.signed("order.status", symbol="BTCUSDT", orderId=order["orderId"]))
    assert status == order

    modified = result(
        await api.signed(
            "order.modify",
            symbol="BTCUSDT",
            orderId=order["orderId"],
            side="BUY",
            quantity="0.020",
            price="59100",
        )
    )
    assert (modified["origQty"], modified["price"]) == ("0.020", "59100.0")

    canceled = result(await api.signed("order.cancel", symbol="BTCUSDT", origClientOrderId="ws-1"))
    assert canceled["status"] == "CANCELED"
    # JSON numbers are signed as the text they were sent as.
    filled = result(
        await api.signed("order.place", symbol="BTCUSDT", side="BUY", type="MARKET", quantity=0.01)
    )
    assert (filled["status"], filled["executedQty"]) == ("FILLED", "0.010")


@pytest.mark.asyncio
async def test_pipelined_requests_run_in_the_order_sent(api: WsApi) -> None:
    frames = [
        api.frame("order.place", **LIMIT, newClientOrderId="first"),
        api.frame("order.cancel", symbol="BTCUSDT", origClientOrderId="first"),
        api.frame("order.status", symbol="BTCUSDT", origClientOrderId="first"),
    ]
    for text in frames:
        await api.socket.send_str(text)
    answers = {answer["id"]: answer for answer in [await api.receive() for _ in frames]}
    placed, canceled, status = (result(answers[json.loads(text)["id"]]) for text in frames)
    assert placed["status"] == "NEW"
    assert canceled["status"] == status["status"] == "CANCELED"


@pytest.mark.asyncio
async def test_account_methods_answer_what_rest_answers(rest: Rest, api: WsApi) -> None:
    result(
        await api.signed(
            "order.place", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.02"
        )
    )

    def steady(value: Any) -> Any:
        """Drop the update times, which are stamped per request."""
        if isinstance(value, dict):
            return {k: steady(v) for k, v in value.items() if k != "updateTime"}
        if isinstance(value, list):
            return [steady(v) for v in value]
        return value

    pairs = {
        "account.status": "/fapi/v2/account",
        "v2/account.status": "/fapi/v3/account",
        "account.balance": "/fapi/v2/balance",
        "v2/account.balance": "/fapi/v3/balance",
        "account.position": "/fapi/v2/positionRisk",
        "v2/account.position": "/fapi/v3/positionRisk",
    }
    for method, path in pairs.items():
        over_socket = result(await api.signed(method))
        status, over_http = await rest.signed("GET", path)
        assert status == 200
        assert steady(over_socket) == steady(over_http), method
    [held] = result(await api.signed("v2/account.position", symbol="BTCUSDT"))
    assert held["positionAmt"] == "-0.020"
    assert len(result(await api.signed("account.position"))) == 2
    status_v2 = result(await api.signed("account.status"))
    assert status_v2["assets"][0]["asset"] == "USDT"


@pytest.mark.asyncio
async def test_ping_time_market_data_and_rate_limits_left_out_when_asked(
    server: Server, api: WsApi
) -> None:
    assert result(await api.public("ping")) == {}
    before = server.clock_ms
    assert result(await api.public("time"))["serverTime"] >= before
    book = result(await api.public("depth", symbol="BTCUSDT", limit=5))
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert float(book["bids"][0][0]) < float(book["asks"][0][0])
    best = result(await api.public("ticker.book", symbol="BTCUSDT"))
    assert [best["bidPrice"], best["askPrice"]] == [book["bids"][0][0], book["asks"][0][0]]
    assert result(await api.public("ticker.price", symbol="ETHUSDT"))["symbol"] == "ETHUSDT"
    quiet = await api.signed("account.balance", returnRateLimits=False)
    assert "rateLimits" not in quiet
    assert result(quiet)[0]["asset"] == "USDT"


# ---------------------------------------------------------------------------------------------
# Errors: Binance's codes, and the connection and server stay up
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_errors_answer_binance_codes_and_the_connection_stays_up(
    rest: Rest, api: WsApi
) -> None:
    server = rest.server
    wrong_secret = WsApi(api.socket, Rest(server, rest.api_key, "0" * 64))
    assert error(await wrong_secret.signed("account.balance")) == (400, -1022)
    stale = server.clock_ms - 10_000
    assert error(await api.signed("account.balance", timestamp=stale)) == (400, -1021)
    assert (await api.signed("account.balance", timestamp=stale, recvWindow=60_000))[
        "status"
    ] == 200
    unknown_key = WsApi(api.socket, Rest(server, "a" * 32, rest.api_secret))
    assert error(await unknown_key.signed("account.balance")) == (401, -2015)
    malformed_key = WsApi(api.socket, Rest(server, "not a key!", rest.api_secret))
    assert error(await malformed_key.signed("account.balance")) == (401, -2014)
    unsigned = await api.public("account.balance", apiKey=rest.api_key, timestamp=server.clock_ms)
    assert error(unsigned) == (400, -1102)
    keyless = await api.public("account.balance", timestamp=server.clock_ms, signature="00")
    assert error(keyless) == (400, -1102)
    assert "'apiKey'" in keyless["error"]["msg"]

    unknown_symbol = {**LIMIT, "symbol": "NOPEUSDT"}
    assert error(await api.signed("order.place", **unknown_symbol)) == (400, -1121)
    no_quantity = {k: v for k, v in LIMIT.items() if k != "quantity"}
    answer = await api.signed("order.place", **no_quantity)
    assert error(answer) == (400, -1102)
    assert "'quantity'" in answer["error"]["msg"]
    too_big = {**LIMIT, "quantity": "100"}
    assert error(await api.signed("order.place", **too_big)) == (400, -2019)
    missing = await api.signed("order.status", symbol="BTCUSDT", orderId=987654)
    assert error(missing) == (400, -2013)

    assert error(await api.public("order.nothing")) == (400, -1000)
    garbage = await api.send_text("{not json")
    assert garbage["id"] is None
    assert error(garbage) == (400, -1000)
    listed = await api.send_text(json.dumps({"id": 7, "method": "ping", "params": [1]}))
    assert (listed["id"], *error(listed)) == (7, 400, -1000)

    assert result(await api.public("ping")) == {}
    assert (await rest.public("/fapi/v1/ping")) == (200, {})
    placed = result(await api.signed("order.place", **LIMIT))
    assert placed["status"] == "NEW"


# ---------------------------------------------------------------------------------------------
# ccxt.pro
# ---------------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def pro(server: Server) -> AsyncIterator[Any]:
    admin = await server.admin()
    keys = await admin.call("admin.create_account", {"name": "ccxt-pro", "deposit": "100000"})
    client = ccxtpro.binanceusdm(
        {
            "apiKey": keys["api_key"],
            "secret": keys["api_secret"],
            "enableRateLimit": False,
            "options": {"fetchCurrencies": False},
        }
    )
    base = base_url(server)
    sockets = base.replace("http", "ws", 1)
    client.urls["api"] = {
        **ccxt_urls(base),
        "ws": {"linear": f"{sockets}/ws", "ws-api": {"linear": f"{sockets}/ws-fapi/v1"}},
    }
    use_linear_exceptions(client)
    try:
        yield client
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_ccxt_pro_trades_over_the_websocket_api(pro: Any) -> None:
    await pro.load_markets()
    book = await pro.fetch_order_book_ws(SYMBOL, 5)
    assert book["bids"][0][0] < book["asks"][0][0]
    ticker = await pro.fetch_ticker_ws(SYMBOL)
    assert (ticker["bid"], ticker["ask"]) == (book["bids"][0][0], book["asks"][0][0])
    await pro.set_margin_mode("isolated", SYMBOL)
    await pro.set_leverage(20, SYMBOL)
    order = await pro.create_order_ws(SYMBOL, "limit", "buy", 0.01, 59_000)
    assert (order["status"], order["price"], order["amount"]) == ("open", 59_000, 0.01)
    edited = await pro.edit_order_ws(order["id"], SYMBOL, "limit", "buy", 0.02, 59_100)
    assert (edited["amount"], edited["price"]) == (0.02, 59_100)
    fetched = await pro.fetch_order_ws(order["id"], SYMBOL)
    assert (fetched["status"], fetched["amount"]) == ("open", 0.02)
    canceled = await pro.cancel_order_ws(order["id"], SYMBOL)
    assert canceled["status"] == "canceled"

    bought = await pro.create_order_ws(SYMBOL, "market", "buy", 0.01)
    assert (bought["status"], bought["filled"]) == ("closed", 0.01)
    stop = await pro.create_order_ws(
        SYMBOL, "market", "sell", 0.01, None, {"stopLossPrice": 55_000, "reduceOnly": True}
    )
    assert stop["triggerPrice"] == 55_000
    await pro.cancel_order_ws(stop["id"], SYMBOL, {"trigger": True})
    assert await pro.fetch_open_orders(SYMBOL, None, None, {"trigger": True}) == []

    balance = await pro.fetch_balance_ws()
    assert 0 < balance["USDT"]["free"] < 100_000
    [position] = await pro.fetch_positions_ws([SYMBOL])
    assert (position["symbol"], position["side"], position["contracts"]) == (SYMBOL, "long", 0.01)
    assert position["marginMode"] == "isolated"
    [over_http] = await pro.fetch_positions([SYMBOL])
    assert position["liquidationPrice"] == over_http["liquidationPrice"] > 0


@pytest.mark.asyncio
async def test_ccxt_pro_insufficient_margin_raises_insufficient_funds(pro: Any) -> None:
    await pro.load_markets()
    with pytest.raises(InsufficientFunds):
        await pro.create_order_ws(SYMBOL, "limit", "buy", 100, 59_000)
    # The connection survives the refusal.
    order = await pro.create_order_ws(SYMBOL, "limit", "buy", 0.01, 59_000)
    assert order["status"] == "open"


@pytest.mark.asyncio
async def test_requests_over_the_servers_rate_limit_answer_429() -> None:
    async with running_server(manual_config(rate_limit_per_s=2)) as server:
        connection = await ws_api(await trader(server, "rita"))
        try:
            answers = [await connection.public("ping") for _ in range(4)]
            statuses = [answer["status"] for answer in answers]
            # Two requests a second, in bursts of two: the third and fourth wait their turn.
            assert statuses[:2] == [200, 200]
            assert error(answers[3]) == (429, -1003)
        finally:
            await connection.close()


@pytest.mark.asyncio
async def test_user_data_stream_keys_are_the_rest_keys(rest: Rest, api: WsApi) -> None:
    started = result(await api.public("userDataStream.start", apiKey=rest.api_key))
    assert await rest.keyed("POST", "/fapi/v1/listenKey") == (200, started)
    assert result(await api.public("userDataStream.ping", apiKey=rest.api_key)) == started
    assert result(await api.public("userDataStream.stop", apiKey=rest.api_key)) == {}
    status, body = await rest.keyed("PUT", "/fapi/v1/listenKey")
    assert (status, body["code"]) == (400, -1125)
    assert error(await api.public("userDataStream.ping", apiKey=rest.api_key)) == (400, -1125)
    assert error(await api.public("userDataStream.start")) == (400, -1102)
