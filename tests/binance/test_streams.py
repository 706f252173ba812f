"""Binance market streams over real sockets: shapes, SUBSCRIBE, depth continuity, liquidations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from exchange.api.binance.stream_hub import StreamSocket
from exchange.api.binance.stream_names import parse_stream
from exchange.api.binance.streams import STREAM_HUB
from exchange.runtime.fanout import Connection
from tests.e2e.harness import TIMEOUT, Client, Server, manual_config, running_server

SYMBOL = "BTCUSDT"
TICK = Decimal("0.1")


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server(manual_config()) as running:
        yield running


class StreamClient:
    """A Binance stream socket whose messages are read in order, with a timeout."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket

    async def next(self) -> Any:
        async with asyncio.timeout(TIMEOUT):
            message = await self.socket.receive()
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)

    async def next_matching(self, match: Callable[[Any], bool]) -> Any:
        async with asyncio.timeout(TIMEOUT):
            while True:
                data = await self.next()
                if match(data):
                    return data

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send_str(json.dumps(message))

    async def close(self) -> None:
        await self.socket.close()


@pytest_asyncio.fixture
async def open_stream(server: Server) -> AsyncIterator[Callable[[str], Any]]:
    base = server.url.removesuffix("/ws")
    opened: list[StreamClient] = []

    async def connect(path: str) -> StreamClient:
        socket = await server.session.ws_connect(base + path)
        client = StreamClient(socket)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        await client.close()


async def market_order(client: Client, side: str, qty: str) -> dict[str, Any]:
    order: dict[str, Any] = await client.call(
        "order.place", {"symbol": SYMBOL, "side": side, "type": "market", "qty": qty}
    )
    return order


@pytest.mark.asyncio
async def test_trades_on_a_raw_and_a_combined_stream(
    server: Server, open_stream: Callable[[str], Any]
) -> None:
    raw = await open_stream("/ws/btcusdt@trade")
    combined = await open_stream("/stream?streams=btcusdt@trade/btcusdt@aggTrade")
    trader, _ = await server.trader("alice")

    await market_order(trader, "buy", "0.01")
    [last] = await trader.call("public.trades", {"symbol": SYMBOL, "limit": 1})

    trade = await raw.next()
    assert trade["e"] == "trade"
    assert trade["s"] == SYMBOL
    assert trade["t"] == last["trade_id"]
    assert trade["p"] == last["price"]
    assert trade["q"] == "0.010"
    assert trade["m"] is False  # the taker bought, so the buyer is not the maker
    assert trade["X"] == "MARKET"
    assert trade["E"] == trade["T"] == last["ts"]

    framed = await combined.next()
    assert framed == {"stream": "btcusdt@trade", "data": trade}
    aggregate = await combined.next()
    assert aggregate["stream"] == "btcusdt@aggTrade"
    assert aggregate["data"]["e"] == "aggTrade"
    assert aggregate["data"]["f"] == aggregate["data"]["l"] == last["trade_id"]
    assert aggregate["data"]["q"] == "0.010"


@pytest.mark.asyncio
async def test_subscribe_list_and_unsubscribe_on_the_ccxt_path(
    server: Server, open_stream: Callable[[str], Any]
) -> None:
    stream = await open_stream("/market/ws/0")
    await stream.send({"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 1})
    assert await stream.next() == {"result": None, "id": 1}
    ticker = await stream.next()
    book = await (await server.connect()).call("public.book", {"symbol": SYMBOL})
    assert ticker["e"] == "bookTicker"
    assert ticker["s"] == SYMBOL
    assert [ticker["b"], ticker["B"]] == book["bids"][0]
    assert [ticker["a"], ticker["A"]] == book["asks"][0]

    await stream.send({"method": "LIST_SUBSCRIPTIONS", "id": 2})
    assert await stream.next() == {"result": ["btcusdt@bookTicker"], "id": 2}
    await stream.send({"method": "UNSUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 3})
    assert await stream.next() == {"result": None, "id": 3}
    await stream.send({"method": "SUBSCRIBE", "params": ["nosuch@trade"], "id": 4})
    error = await stream.next()
    assert error["id"] == 4
    assert error["error"]["code"] == 2
    await stream.send({"method": "LIST_SUBSCRIPTIONS", "id": 5})
    assert await stream.next() == {"result": [], "id": 5}


@pytest.mark.asyncio
async def test_unknown_stream_in_the_path_is_refused(server: Server) -> None:
    base = server.url.removesuffix("/ws")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await server.session.ws_connect(base + "/ws/btcusdt@nonsense")
    assert refused.value.status == 400


@pytest.mark.asyncio
async def test_diff_depth_continues_from_the_book_snapshot(
    server: Server, open_stream: Callable[[str], Any]
) -> None:
    stream = await open_stream("/stream?streams=btcusdt@depth@100ms")
    partial = await open_stream("/ws/btcusdt@depth5")
    trader, _ = await server.trader("bob")
    snapshot = await trader.call("public.book", {"symbol": SYMBOL, "depth": 1000})
    bids = {Decimal(p): q for p, q in snapshot["bids"]}
    asks = {Decimal(p): q for p, q in snapshot["asks"]}
    best_bid = Decimal(snapshot["bids"][0][0])

    for offset in ("50", "60", "70"):
        await trader.call(
            "order.place",
            {
                "symbol": SYMBOL,
                "side": "buy",
                "type": "limit",
                "qty": "0.02",
                "price": str(best_bid - Decimal(offset)),
            },
        )
    await market_order(trader, "buy", "0.05")
    await market_order(trader, "sell", "0.03")
    await trader.call("order.cancel_all", {"symbol": SYMBOL})
    final = await trader.call("public.book", {"symbol": SYMBOL, "depth": 1000})
    assert final["update_id"] >= snapshot["update_id"] + 6

    previous = snapshot["update_id"]
    while previous < final["update_id"]:
        message = await stream.next()
        assert message["stream"] == "btcusdt@depth@100ms"
        update = message["data"]
        assert update["e"] == "depthUpdate"
        assert update["s"] == SYMBOL
        if update["u"] <= snapshot["update_id"]:
            continue
        assert update["pu"] == previous
        assert update["U"] == previous + 1
        assert update["U"] <= update["u"]
        previous = update["u"]
        for side, levels in ((bids, update["b"]), (asks, update["a"])):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = qty
    assert previous == final["update_id"]
    assert sorted(bids.items(), reverse=True) == [(Decimal(p), q) for p, q in final["bids"]]
    assert sorted(asks.items()) == [(Decimal(p), q) for p, q in final["asks"]]

    top = await partial.next_matching(lambda d: d["u"] == final["update_id"])
    assert top["e"] == "depthUpdate"
    assert top["b"] == final["bids"][:5]
    assert top["a"] == final["asks"][:5]


@pytest.mark.asyncio
async def test_a_liquidation_shows_on_force_order_and_the_mark_on_mark_price(
    server: Server, open_stream: Callable[[str], Any]
) -> None:
    liquidations = await open_stream("/ws/btcusdt@forceOrder")
    marks = await open_stream("/stream?streams=btcusdt@markPrice@1s/!markPrice@arr")
    client, _ = await server.trader("erin", deposit="1000")
    await client.call("position.set_margin_mode", {"symbol": SYMBOL, "margin_mode": "isolated"})
    await client.call("position.set_leverage", {"symbol": SYMBOL, "leverage": 50})
    await market_order(client, "buy", "0.1")
    [position] = (await client.call("account.get"))["positions"]
    liquidation_price = Decimal(position["liquidation_price"])
    assert liquidation_price > 0

    past = (liquidation_price - 50).quantize(TICK, ROUND_DOWN)
    admin = await server.admin()
    await admin.call("admin.set_index", {"symbol": SYMBOL, "price": str(past)})

    force = await liquidations.next()
    assert force["e"] == "forceOrder"
    order = force["o"]
    assert order["s"] == SYMBOL
    assert order["S"] == "SELL"
    assert order["q"] == order["z"] == "0.100"
    assert order["X"] == "FILLED"
    assert order["f"] == "IOC"
    assert Decimal(order["p"]) > 0

    mark = await marks.next_matching(
        lambda m: m["stream"] == "btcusdt@markPrice@1s" and m["data"]["p"] == str(past)
    )
    assert mark["data"]["e"] == "markPriceUpdate"
    assert mark["data"]["i"] == str(past)
    every = await marks.next_matching(
        lambda m: (
            m["stream"] == "!markPrice@arr"
            and any(d["s"] == SYMBOL and d["p"] == str(past) for d in m["data"])
        )
    )
    assert {d["s"] for d in every["data"]} == {"BTCUSDT", "ETHUSDT"}


class HeldSink:
    """A socket stand-in that records what the writer sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.arrived = asyncio.Event()

    async def send_str(self, data: str) -> None:
        self.sent.append(data)
        self.arrived.set()

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        return True


@pytest.mark.asyncio
async def test_a_slow_reader_gets_merged_diffs_that_keep_the_chain(server: Server) -> None:
    hub = server.app[STREAM_HUB]
    sink = HeldSink()
    # The writer is not started yet: everything waits in the outbox, as for a slow reader.
    connection = Connection(sink, name="slow")
    socket = StreamSocket(connection, combined=False)
    stream = parse_stream("btcusdt@depth", {SYMBOL})
    assert stream is not None
    trader, _ = await server.trader("carol")
    before = await trader.call("public.book", {"symbol": SYMBOL, "depth": 1000})
    hub.subscribe(socket, stream)

    await market_order(trader, "buy", "0.05")
    await market_order(trader, "sell", "0.05")
    await market_order(trader, "buy", "0.02")
    after = await trader.call("public.book", {"symbol": SYMBOL, "depth": 1000})
    connection.start()
    async with asyncio.timeout(TIMEOUT):
        await sink.arrived.wait()
    hub.drop(socket)
    await connection.close()
    await connection.wait_closed()

    [message] = [json.loads(text) for text in sink.sent]
    assert message["U"] == before["update_id"] + 1
    assert message["pu"] == before["update_id"]
    assert message["u"] == after["update_id"]
    asks = dict(before["asks"])
    asks.update(dict(message["a"]))
    kept = sorted((Decimal(p), q) for p, q in asks.items() if Decimal(q))
    assert [[str(p), q] for p, q in kept] == after["asks"]
