"""Signed /fapi endpoints: signatures, orders, account and positions, listen keys."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import pytest_asyncio

from exchange.api.binance.errors import REJECTIONS
from exchange.api.binance.listen_keys import LISTEN_KEYS
from exchange.core.codes import RejectCode
from tests.binance.rest_support import Rest, sign, trader
from tests.e2e.harness import Server, manual_config, running_server


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server(manual_config()) as running:
        yield running


@pytest_asyncio.fixture
async def rest(server: Server) -> Rest:
    return await trader(server, "alice")


def test_every_core_rejection_has_a_binance_code() -> None:
    assert set(REJECTIONS) == set(RejectCode)
    assert REJECTIONS[RejectCode.INSUFFICIENT_MARGIN] == (-2019, "Margin is insufficient.")


# ---------------------------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_signed_request_with_query_and_body_is_accepted(rest: Rest) -> None:
    server = rest.server
    query = urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT"})
    body = urlencode(
        {"timeInForce": "GTC", "quantity": "0.01", "price": "59000", "timestamp": server.clock_ms}
    )
    signature = sign(rest.api_secret, query + body)
    async with server.session.post(
        f"{rest.base}/fapi/v1/order?{query}",
        data=f"{body}&signature={signature}",
        headers={
            "X-MBX-APIKEY": rest.api_key,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    ) as response:
        assert response.status == 200, await response.text()
        order = await response.json()
    assert order["status"] == "NEW"
    assert order["price"] == "59000.0"


@pytest.mark.asyncio
async def test_signature_failures(rest: Rest) -> None:
    server = rest.server
    wrong = Rest(server, rest.api_key, "0" * 64)
    assert await wrong.signed("GET", "/fapi/v2/balance") == (
        400,
        {"code": -1022, "msg": "Signature for this request is not valid."},
    )
    unknown = Rest(server, "a" * 32, rest.api_secret)
    status, body = await unknown.signed("GET", "/fapi/v2/balance")
    assert (status, body["code"]) == (401, -2015)
    malformed = Rest(server, "not a key!", rest.api_secret)
    status, body = await malformed.signed("GET", "/fapi/v2/balance")
    assert (status, body["code"]) == (401, -2014)
    stale = server.clock_ms - 10_000
    status, body = await rest.signed("GET", "/fapi/v2/balance", timestamp=stale)
    assert (status, body["code"]) == (400, -1021)
    status, _ = await rest.signed("GET", "/fapi/v2/balance", timestamp=stale, recvWindow=60_000)
    assert status == 200
    status, body = await rest.signed("GET", "/fapi/v2/balance", recvWindow=70_000)
    assert (status, body["code"]) == (400, -1131)
    ahead = server.clock_ms + 5_000
    status, body = await rest.signed("GET", "/fapi/v2/balance", timestamp=ahead)
    assert (status, body["code"]) == (400, -1021)
    async with server.session.get(
        f"{rest.base}/fapi/v2/balance?timestamp={server.clock_ms}",
        headers={"X-MBX-APIKEY": rest.api_key},
    ) as response:
        assert response.status == 400
        assert (await response.json())["code"] == -1102


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_limit_order_lifecycle(rest: Rest) -> None:
    status, order = await rest.signed(
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.010",
        price="59000",
        newClientOrderId="bot-1",
    )
    assert status == 200, order
    assert order["clientOrderId"] == "bot-1"
    assert (order["status"], order["type"], order["side"]) == ("NEW", "LIMIT", "BUY")
    assert (order["origQty"], order["executedQty"], order["positionSide"]) == (
        "0.010",
        "0.000",
        "BOTH",
    )
    _, fetched = await rest.signed(
        "GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="bot-1"
    )
    assert fetched["orderId"] == order["orderId"]
    _, open_orders = await rest.signed("GET", "/fapi/v1/openOrders", symbol="BTCUSDT")
    assert [o["orderId"] for o in open_orders] == [order["orderId"]]
    status, canceled = await rest.signed(
        "DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=order["orderId"]
    )
    assert (status, canceled["status"]) == (200, "CANCELED")
    status, body = await rest.signed(
        "DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=order["orderId"]
    )
    assert (status, body["code"]) == (400, -2011)
    status, body = await rest.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=999_999)
    assert (status, body["code"]) == (400, -2013)
    _, history = await rest.signed("GET", "/fapi/v1/allOrders", symbol="BTCUSDT")
    assert [o["status"] for o in history] == ["CANCELED"]


@pytest.mark.asyncio
async def test_market_order_fills_and_shows_in_trades_and_positions(rest: Rest) -> None:
    status, order = await rest.signed(
        "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01"
    )
    assert status == 200, order
    assert order["status"] == "FILLED"
    assert order["executedQty"] == "0.010"
    assert Decimal(order["avgPrice"]) > 59_000
    assert Decimal(order["cumQuote"]) == Decimal(order["avgPrice"]) * Decimal("0.01")
    _, trades = await rest.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")
    assert sum(Decimal(t["qty"]) for t in trades) == Decimal("0.01")
    assert all(t["orderId"] == order["orderId"] and t["buyer"] for t in trades)
    _, positions = await rest.signed("GET", "/fapi/v3/positionRisk")
    assert [p["symbol"] for p in positions] == ["BTCUSDT"]
    position = positions[0]
    assert position["positionAmt"] == "0.010"
    # A small long on a large deposit cannot be liquidated: Binance shows "0".
    assert position["liquidationPrice"] == "0"
    assert position["marginType"] == "cross"
    assert Decimal(position["notional"]) > 0
    _, every = await rest.signed("GET", "/fapi/v2/positionRisk")
    assert {p["symbol"] for p in every} == {"BTCUSDT", "ETHUSDT"}


@pytest.mark.asyncio
async def test_liquidation_price_equals_the_native_api(server: Server) -> None:
    admin = await server.admin()
    keys = await admin.call("admin.create_account", {"name": "bob", "deposit": "1000"})
    rest = Rest(server, keys["api_key"], keys["api_secret"])
    await rest.signed("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=50)
    await rest.signed(
        "POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.1"
    )
    _, positions = await rest.signed("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")
    client = await server.connect()
    from tests.e2e.harness import signed_login

    await client.call("auth.login", signed_login(keys, server.clock_ms))
    native = await client.call("account.get")
    assert positions[0]["liquidationPrice"] == native["positions"][0]["liquidation_price"]
    assert positions[0]["positionAmt"] == "-0.100"
    assert Decimal(positions[0]["notional"]) < 0


def limit(quantity: str, price: str, time_in_force: str = "GTC") -> dict[str, str]:
    return {
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": time_in_force,
        "quantity": quantity,
        "price": price,
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("params", "code"),
    [
        (limit("5", "60000"), -2019),
        (limit("0.0101", "59000"), -1111),
        (limit("0.001", "59000"), -4164),
        (limit("0.01", "90000"), -4016),
        (limit("0.01", "30000"), -4024),
        (limit("0.01", "61000", "GTX"), -5022),
        (
            {
                "side": "BUY",
                "type": "STOP_MARKET",
                "quantity": "0.01",
                "stopPrice": "59000",
                "workingType": "MARK_PRICE",
            },
            -2021,
        ),
        ({"side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "59000"}, -1102),
        ({"side": "UP", "type": "MARKET", "quantity": "0.01"}, -1117),
        ({"side": "BUY", "type": "TRAILING_STOP_MARKET", "quantity": "0.01"}, -1116),
        ({"side": "BUY", "type": "MARKET"}, -1102),
        ({"side": "SELL", "type": "MARKET", "quantity": "0.01", "reduceOnly": "true"}, -2022),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.01", "positionSide": "LONG"}, -4061),
    ],
)
async def test_order_rejections_answer_binance_codes(
    server: Server, params: dict[str, str], code: int
) -> None:
    rest = await trader(server, "carol", deposit="1000")
    status, body = await rest.send("POST", "/fapi/v1/order", {"symbol": "BTCUSDT", **params})
    assert (status, body["code"]) == (400, code), body
    assert (await rest.public("/fapi/v1/ping"))[0] == 200


@pytest.mark.asyncio
async def test_conditional_orders_and_cancel_all(rest: Rest) -> None:
    status, stop = await rest.signed(
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_MARKET",
        stopPrice="55000",
        closePosition="true",
        workingType="MARK_PRICE",
    )
    assert status == 200, stop
    assert (stop["type"], stop["stopPrice"], stop["workingType"]) == (
        "STOP_MARKET",
        "55000.0",
        "MARK_PRICE",
    )
    assert stop["closePosition"] is True
    status, take = await rest.signed(
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="BUY",
        type="TAKE_PROFIT",
        timeInForce="GTC",
        quantity="0.01",
        price="58000",
        stopPrice="58000",
    )
    assert status == 200, take
    status, body = await rest.signed("DELETE", "/fapi/v1/allOpenOrders", symbol="BTCUSDT")
    assert (status, body["code"]) == (200, 200)
    _, open_orders = await rest.signed("GET", "/fapi/v1/openOrders")
    assert open_orders == []


# ---------------------------------------------------------------------------------------------
# Account and settings
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_account_and_balance(rest: Rest) -> None:
    status, account = await rest.signed("GET", "/fapi/v2/account")
    assert status == 200
    assert Decimal(account["totalWalletBalance"]) == 100_000
    assert Decimal(account["availableBalance"]) == 100_000
    assert account["assets"][0]["asset"] == "USDT"
    assert {p["symbol"] for p in account["positions"]} == {"BTCUSDT", "ETHUSDT"}
    _, v3 = await rest.signed("GET", "/fapi/v3/account")
    assert v3["positions"] == []
    for path in ("/fapi/v2/balance", "/fapi/v3/balance"):
        _, balances = await rest.signed("GET", path)
        assert Decimal(balances[0]["balance"]) == 100_000
        assert balances[0]["asset"] == "USDT"


@pytest.mark.asyncio
async def test_leverage_margin_type_and_position_mode(rest: Rest) -> None:
    status, body = await rest.signed("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=10)
    assert status == 200
    assert body["leverage"] == 10
    assert Decimal(body["maxNotionalValue"]) > 0
    status, body = await rest.signed("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=200)
    assert (status, body["code"]) == (400, -4028)
    status, body = await rest.signed(
        "POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED"
    )
    assert (status, body) == (200, {"code": 200, "msg": "success"})
    status, body = await rest.signed(
        "POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED"
    )
    assert (status, body["code"]) == (400, -4046)
    _, positions = await rest.signed("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")
    assert (positions[0]["marginType"], positions[0]["leverage"]) == ("isolated", "10")
    assert await rest.signed("GET", "/fapi/v1/positionSide/dual") == (
        200,
        {"dualSidePosition": False},
    )
    status, body = await rest.signed("POST", "/fapi/v1/positionSide/dual", dualSidePosition="true")
    assert (status, body["code"]) == (400, -1130)
    status, body = await rest.signed("POST", "/fapi/v1/positionSide/dual", dualSidePosition="false")
    assert (status, body["code"]) == (400, -4059)
    _, brackets = await rest.signed("GET", "/fapi/v1/leverageBracket")
    assert brackets[0]["brackets"][0]["initialLeverage"] == 125
    _, one = await rest.signed("GET", "/fapi/v1/leverageBracket", symbol="ETHUSDT")
    assert one["symbol"] == "ETHUSDT"
    _, fees = await rest.signed("GET", "/fapi/v1/commissionRate", symbol="BTCUSDT")
    assert Decimal(fees["makerCommissionRate"]) == Decimal("0.0002")
    assert Decimal(fees["takerCommissionRate"]) == Decimal("0.0005")


@pytest.mark.asyncio
async def test_listen_keys(rest: Rest) -> None:
    server = rest.server
    status, body = await rest.keyed("POST", "/fapi/v1/listenKey")
    assert status == 200
    key = body["listenKey"]
    assert (await rest.keyed("POST", "/fapi/v1/listenKey"))[1]["listenKey"] == key
    registry = server.app[LISTEN_KEYS]
    account = registry.account_for(key, server.clock_ms)
    assert account is not None
    assert (await rest.keyed("PUT", "/fapi/v1/listenKey"))[0] == 200
    assert (await rest.keyed("DELETE", "/fapi/v1/listenKey")) == (200, {})
    assert registry.account_for(key, server.clock_ms) is None
    status, body = await rest.keyed("PUT", "/fapi/v1/listenKey")
    assert (status, body["code"]) == (400, -1125)
    status, body = await Rest(server, "b" * 32).keyed("POST", "/fapi/v1/listenKey")
    assert (status, body["code"]) == (401, -2015)
    status, body = await rest.public("/sapi/v1/capital/config/getall")
    assert (status, body) == (200, [])


@pytest.mark.asyncio
async def test_modify_order(rest: Rest) -> None:
    _, order = await rest.signed(
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.010",
        price="59000",
    )
    status, modified = await rest.signed(
        "PUT",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        orderId=order["orderId"],
        side="BUY",
        quantity="0.020",
        price="59100",
    )
    assert status == 200, modified
    assert (modified["origQty"], modified["price"]) == ("0.020", "59100.0")
    status, body = await rest.signed(
        "PUT",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        orderId=order["orderId"],
        side="BUY",
        quantity="0.020",
        price="59100",
    )
    assert (status, body["code"]) == (400, -5027)


@pytest.mark.asyncio
async def test_position_margin_and_income(rest: Rest) -> None:
    await rest.signed("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
    status, body = await rest.signed(
        "POST", "/fapi/v1/positionMargin", symbol="BTCUSDT", amount="10", type=1
    )
    assert (status, body["code"]) == (400, -1130)
    await rest.signed(
        "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01"
    )
    _, before = await rest.signed("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")
    status, body = await rest.signed(
        "POST", "/fapi/v1/positionMargin", symbol="BTCUSDT", amount="10", type=1
    )
    assert (status, body["code"], body["type"]) == (200, 200, 1)
    _, after = await rest.signed("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")
    added = Decimal(after[0]["isolatedWallet"]) - Decimal(before[0]["isolatedWallet"])
    assert added == 10
    status, body = await rest.signed(
        "POST", "/fapi/v1/positionMargin", symbol="BTCUSDT", amount="5", type=2
    )
    assert status == 200
    _, income = await rest.signed("GET", "/fapi/v1/income")
    kinds = {row["incomeType"] for row in income}
    assert {"TRANSFER", "COMMISSION"} <= kinds
    _, fees = await rest.signed("GET", "/fapi/v1/income", incomeType="COMMISSION")
    assert fees
    assert all(Decimal(row["income"]) < 0 for row in fees)


@pytest.mark.asyncio
async def test_algo_orders(rest: Rest) -> None:
    status, algo = await rest.signed(
        "POST",
        "/fapi/v1/algoOrder",
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_MARKET",
        quantity="0.01",
        triggerPrice="55000",
        workingType="MARK_PRICE",
        clientAlgoId="stop-1",
    )
    assert status == 200, algo
    assert (algo["algoStatus"], algo["orderType"], algo["triggerPrice"]) == (
        "NEW",
        "STOP_MARKET",
        "55000.0",
    )
    assert algo["clientAlgoId"] == "stop-1"
    _, fetched = await rest.signed("GET", "/fapi/v1/algoOrder", clientAlgoId="stop-1")
    assert fetched["algoId"] == algo["algoId"]
    _, listed = await rest.signed("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT")
    assert [a["algoId"] for a in listed] == [algo["algoId"]]
    status, body = await rest.signed(
        "POST",
        "/fapi/v1/algoOrder",
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="SELL",
        type="LIMIT",
        quantity="0.01",
        price="59000",
        timeInForce="GTC",
    )
    assert (status, body["code"]) == (400, -1116)
    status, body = await rest.signed(
        "POST",
        "/fapi/v1/algoOrder",
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_MARKET",
        quantity="0.01",
    )
    assert (status, body["code"]) == (400, -1102)
    assert "triggerPrice" in body["msg"]
    status, canceled = await rest.signed("DELETE", "/fapi/v1/algoOrder", algoId=algo["algoId"])
    assert (status, canceled["algoId"]) == (200, algo["algoId"])
    _, history = await rest.signed("GET", "/fapi/v1/allAlgoOrders", symbol="BTCUSDT")
    assert [a["algoStatus"] for a in history] == ["CANCELED"]
    await rest.signed(
        "POST",
        "/fapi/v1/algoOrder",
        algoType="CONDITIONAL",
        symbol="BTCUSDT",
        side="BUY",
        type="TAKE_PROFIT_MARKET",
        quantity="0.01",
        triggerPrice="55000",
        workingType="MARK_PRICE",
    )
    await rest.signed(
        "POST",
        "/fapi/v1/order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price="59000",
    )
    status, body = await rest.signed("DELETE", "/fapi/v1/algoOpenOrders", symbol="BTCUSDT")
    assert (status, body["code"]) == (200, 200)
    assert (await rest.signed("GET", "/fapi/v1/openAlgoOrders"))[1] == []
    _, remaining = await rest.signed("GET", "/fapi/v1/openOrders")
    assert [o["type"] for o in remaining] == ["LIMIT"]


@pytest.mark.asyncio
async def test_batch_orders_answer_each_order(rest: Rest) -> None:
    batch = [
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": "59000",
        },
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01"},
        {"symbol": "NOPE", "side": "BUY", "type": "MARKET", "quantity": "0.01"},
    ]
    status, answers = await rest.signed(
        "POST", "/fapi/v1/batchOrders", batchOrders=json.dumps(batch)
    )
    assert status == 200
    assert answers[0]["status"] == "NEW"
    assert [a.get("code") for a in answers[1:]] == [-1102, -1121]
    status, body = await rest.signed("POST", "/fapi/v1/batchOrders", batchOrders="[1")
    assert (status, body["code"]) == (400, -1130)
