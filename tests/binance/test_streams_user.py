"""The Binance user data stream over real sockets: orders, account updates, margin calls and
a liquidation, on `/private/ws?listenKey=` and `/ws/<listenKey>`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from exchange.api.binance.listen_keys import listen_keys
from tests.binance.rest_support import Rest, trader
from tests.binance.stream_support import StreamClient, connect_stream
from tests.e2e.harness import TIMEOUT, Client, Server, manual_config, running_server

SYMBOL = "BTCUSDT"
TICK = Decimal("0.1")


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server(manual_config()) as running:
        yield running


class UserStream:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket

    async def next_matching(self, match: Callable[[Any], bool]) -> Any:
        async with asyncio.timeout(TIMEOUT):
            while True:
                message = await self.socket.receive()
                assert message.type is aiohttp.WSMsgType.TEXT, message
                data = json.loads(message.data)
                if match(data):
                    return data


async def user_stream(server: Server, account_id: int, path: str) -> UserStream:
    key = listen_keys(server.app).issue(account_id, server.clock_ms)
    base = server.url.removesuffix("/ws")
    url = base + path.format(key=key)
    return UserStream(await server.session.ws_connect(url))


def order_update(execution: str) -> Callable[[Any], bool]:
    return lambda d: d["e"] == "ORDER_TRADE_UPDATE" and d["o"]["x"] == execution


async def place(client: Client, **params: Any) -> dict[str, Any]:
    order: dict[str, Any] = await client.call("order.place", {"symbol": SYMBOL, **params})
    return order


@pytest.mark.asyncio
async def test_orders_and_account_updates_arrive_in_binance_shapes(server: Server) -> None:
    trader, account_id = await server.trader("alice")
    stream = await user_stream(server, account_id, "/private/ws/0?listenKey={key}")
    book = await trader.call("public.book", {"symbol": SYMBOL})
    below = str(Decimal(book["bids"][0][0]) - 100)

    resting = await place(
        trader, side="buy", type="limit", qty="0.01", price=below, client_order_id="mine-1"
    )
    new = (await stream.next_matching(order_update("NEW")))["o"]
    assert new["i"] == resting["order_id"]
    assert new["c"] == "mine-1"
    assert (new["s"], new["S"], new["o"], new["f"], new["X"]) == (
        SYMBOL,
        "BUY",
        "LIMIT",
        "GTC",
        "NEW",
    )
    assert new["p"] == below
    assert new["q"] == "0.010"

    await trader.call("order.cancel", {"order_id": resting["order_id"]})
    canceled = (await stream.next_matching(order_update("CANCELED")))["o"]
    assert canceled["X"] == "CANCELED"

    taken = await place(trader, side="buy", type="market", qty="0.02")
    trade = (await stream.next_matching(order_update("TRADE")))["o"]
    assert trade["i"] == taken["order_id"]
    assert trade["X"] == "FILLED"
    assert trade["z"] == trade["l"] == "0.020"
    assert trade["m"] is False
    assert Decimal(trade["n"]) > 0
    update = await stream.next_matching(lambda d: d["e"] == "ACCOUNT_UPDATE")
    assert update["a"]["m"] == "ORDER"
    [balance] = update["a"]["B"]
    assert balance["a"] == "USDT"
    account = await trader.call("account.get")
    assert Decimal(balance["wb"]) == Decimal(account["wallet_balance"])
    [position] = update["a"]["P"]
    assert position["s"] == SYMBOL
    assert position["pa"] == "0.020"
    assert position["ps"] == "BOTH"


@pytest.mark.asyncio
async def test_margin_call_and_liquidation_on_the_user_stream(server: Server) -> None:
    client, account_id = await server.trader("erin", deposit="1000")
    stream = await user_stream(server, account_id, "/ws/{key}")
    await client.call("position.set_margin_mode", {"symbol": SYMBOL, "margin_mode": "isolated"})
    await client.call("position.set_leverage", {"symbol": SYMBOL, "leverage": 50})
    await place(client, side="buy", type="market", qty="0.1")
    [position] = (await client.call("account.get"))["positions"]
    liquidation_price = Decimal(position["liquidation_price"])
    admin = await server.admin()

    near = (liquidation_price + 20).quantize(TICK, ROUND_UP)
    await admin.call("admin.set_index", {"symbol": SYMBOL, "price": str(near)})
    call = await stream.next_matching(lambda d: d["e"] == "MARGIN_CALL")
    [at_risk] = call["p"]
    assert at_risk["s"] == SYMBOL
    assert at_risk["mt"] == "ISOLATED"
    assert at_risk["pa"] == "0.100"
    assert at_risk["mp"] == str(near)

    past = (liquidation_price - 50).quantize(TICK, ROUND_DOWN)
    await admin.call("admin.set_index", {"symbol": SYMBOL, "price": str(past)})
    closed = (await stream.next_matching(order_update("CALCULATED")))["o"]
    assert closed["c"].startswith("autoclose-")
    assert closed["S"] == "SELL"
    assert closed["R"] is True
    update = await stream.next_matching(lambda d: d["e"] == "ACCOUNT_UPDATE")
    assert [p["pa"] for p in update["a"]["P"]] == ["0.000"]


@pytest.mark.asyncio
async def test_an_unknown_listen_key_is_refused(server: Server) -> None:
    base = server.url.removesuffix("/ws")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await server.session.ws_connect(base + "/private/ws?listenKey=nosuchkey")
    assert refused.value.status == 400


# ---------------------------------------------------------------------------------------------
# Conditional (algo) orders and account configuration
# ---------------------------------------------------------------------------------------------


async def binance_user_stream(rest: Rest) -> StreamClient:
    """Open the user data stream the way a Binance client does: a listen key from REST."""
    status, body = await rest.keyed("POST", "/fapi/v1/listenKey")
    assert status == 200, body
    return await connect_stream(rest.server, f"/private/ws?listenKey={body['listenKey']}")


async def algo_order(rest: Rest, **params: Any) -> dict[str, Any]:
    status, body = await rest.signed(
        "POST",
        "/fapi/v1/algoOrder",
        algoType="CONDITIONAL",
        symbol=SYMBOL,
        workingType="MARK_PRICE",
        **params,
    )
    assert status == 200, body
    return dict(body)


def algo(message: Any) -> tuple[str, int, str]:
    """Return (event, order id, status) of an order event, algo or not, for sequence checks."""
    order = message["o"]
    if message["e"] == "ALGO_UPDATE":
        return "ALGO_UPDATE", order["aid"], order["X"]
    return message["e"], order["i"], order["X"]


@pytest.mark.asyncio
async def test_conditional_orders_show_on_algo_update_through_their_lives(
    server: Server,
) -> None:
    rest = await trader(server, "algo")
    stream = await binance_user_stream(rest)
    index = Decimal((await rest.public("/fapi/v1/premiumIndex", symbol=SYMBOL))[1]["indexPrice"])
    trigger = index + 100

    stop = await algo_order(
        rest,
        side="BUY",
        type="STOP_MARKET",
        quantity="0.01",
        triggerPrice=str(trigger),
        clientAlgoId="stop-1",
    )
    new = await stream.next()
    assert algo(new) == ("ALGO_UPDATE", stop["algoId"], "NEW")
    assert new["o"]["caid"] == "stop-1"
    assert new["o"]["at"] == "CONDITIONAL"
    assert (new["o"]["o"], new["o"]["S"], new["o"]["q"]) == ("STOP_MARKET", "BUY", "0.010")
    assert new["o"]["tp"] == str(trigger)
    assert new["o"]["wt"] == "MARK_PRICE"
    assert (new["o"]["ai"], new["o"]["tt"]) == ("", 0)

    spare = await algo_order(
        rest, side="BUY", type="STOP_MARKET", quantity="0.02", triggerPrice=str(trigger + 500)
    )
    status, _ = await rest.signed(
        "DELETE", "/fapi/v1/algoOrder", symbol=SYMBOL, algoId=spare["algoId"]
    )
    assert status == 200
    # Before it triggers a conditional order lives in the algo service only: no
    # ORDER_TRADE_UPDATE for it.
    assert algo(await stream.next()) == ("ALGO_UPDATE", spare["algoId"], "NEW")
    assert algo(await stream.next()) == ("ALGO_UPDATE", spare["algoId"], "CANCELED")

    # Reduce-only with no short position to reduce: refused when it triggers.
    refused = await algo_order(
        rest,
        side="BUY",
        type="STOP_MARKET",
        quantity="0.01",
        triggerPrice=str(trigger),
        reduceOnly="true",
    )
    assert algo(await stream.next()) == ("ALGO_UPDATE", refused["algoId"], "NEW")

    admin = await server.admin()
    await admin.call("admin.set_index", {"symbol": SYMBOL, "price": str(trigger + 10)})
    messages = [await stream.next() for _ in range(6)]
    assert [algo(message) for message in messages] == [
        ("ALGO_UPDATE", stop["algoId"], "TRIGGERING"),
        ("ALGO_UPDATE", stop["algoId"], "TRIGGERED"),
        ("ALGO_UPDATE", stop["algoId"], "FINISHED"),
        ("ORDER_TRADE_UPDATE", stop["algoId"], "NEW"),
        ("ORDER_TRADE_UPDATE", stop["algoId"], "FILLED"),
        ("ALGO_UPDATE", refused["algoId"], "REJECTED"),
    ]
    triggering, triggered, finished, placed, filled = (m["o"] for m in messages[:5])
    assert triggering["ai"] == ""
    assert triggered["ai"] == finished["ai"] == str(stop["algoId"])
    assert triggered["tt"] == finished["tt"] == messages[0]["E"]
    # Each update tells the order as it stood at that step of the trigger.
    assert Decimal(triggered["aq"]) == 0
    assert finished["aq"] == "0.010"
    assert placed["x"] == "NEW"
    assert Decimal(placed["z"]) == 0
    assert (filled["x"], filled["z"]) == ("TRADE", "0.010")
    rejected = messages[5]["o"]
    assert rejected["rm"] == "Reduce Only reject"
    assert rejected["ai"] == ""

    status, queried = await rest.signed(
        "GET", "/fapi/v1/algoOrder", symbol=SYMBOL, algoId=stop["algoId"]
    )
    assert status == 200
    assert queried["algoStatus"] == finished["X"] == "FINISHED"
    assert finished["ai"] == queried["actualOrderId"]
    assert finished["aq"] == queried["executedQty"] == "0.010"
    assert Decimal(finished["ap"]) == Decimal(queried["avgPrice"])
    assert finished["act"] == "MARKET"
    status, queried = await rest.signed(
        "GET", "/fapi/v1/algoOrder", symbol=SYMBOL, algoId=refused["algoId"]
    )
    assert status == 200
    assert (queried["algoStatus"], queried["actualOrderId"]) == ("REJECTED", "")
    assert queried["triggerTime"] == 0


@pytest.mark.asyncio
async def test_leverage_and_margin_type_changes_on_the_user_stream(server: Server) -> None:
    rest = await trader(server, "config")
    stream = await binance_user_stream(rest)

    status, _ = await rest.signed("POST", "/fapi/v1/leverage", symbol=SYMBOL, leverage=17)
    assert status == 200
    config = await stream.next()
    assert config["e"] == "ACCOUNT_CONFIG_UPDATE"
    assert config["ac"] == {"s": SYMBOL, "l": 17}
    assert config["E"] == config["T"]

    status, _ = await rest.signed(
        "POST", "/fapi/v1/marginType", symbol=SYMBOL, marginType="ISOLATED"
    )
    assert status == 200
    # The very next message: a leverage change sends no ACCOUNT_UPDATE.
    update = await stream.next()
    assert update["e"] == "ACCOUNT_UPDATE"
    assert update["a"]["m"] == "MARGIN_TYPE_CHANGE"
    [position] = update["a"]["P"]
    assert (position["s"], position["mt"], position["pa"]) == (SYMBOL, "isolated", "0.000")


@pytest.mark.asyncio
async def test_a_triggered_stop_limit_cancelled_in_the_book_is_finished_on_rest_and_stream(
    server: Server,
) -> None:
    rest = await trader(server, "resting-stop")
    stream = await binance_user_stream(rest)
    index = Decimal((await rest.public("/fapi/v1/premiumIndex", symbol=SYMBOL))[1]["indexPrice"])
    # A buy stop-limit priced well under the asks: once triggered it rests in the book.
    stop = await algo_order(
        rest,
        side="BUY",
        type="STOP",
        quantity="0.01",
        triggerPrice=str(index + 50),
        price=str(index - 500),
        timeInForce="GTC",
    )
    assert algo(await stream.next()) == ("ALGO_UPDATE", stop["algoId"], "NEW")
    admin = await server.admin()
    await admin.call("admin.set_index", {"symbol": SYMBOL, "price": str(index + 60)})
    messages = [await stream.next() for _ in range(3)]
    assert [algo(message) for message in messages] == [
        ("ALGO_UPDATE", stop["algoId"], "TRIGGERING"),
        ("ALGO_UPDATE", stop["algoId"], "TRIGGERED"),
        ("ORDER_TRADE_UPDATE", stop["algoId"], "NEW"),
    ]
    trigger_ts = messages[1]["o"]["tt"]
    _, working = await rest.signed(
        "GET", "/fapi/v1/algoOrder", symbol=SYMBOL, algoId=stop["algoId"]
    )
    assert (working["algoStatus"], working["triggerTime"]) == ("TRIGGERED", trigger_ts)

    status, _ = await rest.signed(
        "DELETE", "/fapi/v1/order", symbol=SYMBOL, orderId=working["actualOrderId"]
    )
    assert status == 200
    assert [algo(await stream.next()) for _ in range(2)] == [
        ("ALGO_UPDATE", stop["algoId"], "FINISHED"),
        ("ORDER_TRADE_UPDATE", stop["algoId"], "CANCELED"),
    ]
    _, ended = await rest.signed("GET", "/fapi/v1/algoOrder", symbol=SYMBOL, algoId=stop["algoId"])
    assert (ended["algoStatus"], ended["actualOrderId"]) == ("FINISHED", str(stop["algoId"]))
    assert ended["triggerTime"] == trigger_ts
