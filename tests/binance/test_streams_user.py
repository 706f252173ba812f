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
