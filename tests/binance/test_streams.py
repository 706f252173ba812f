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
from exchange.runtime.clock import ManualClock
from exchange.runtime.fanout import Connection
from tests.binance.rest_support import trader
from tests.binance.stream_support import StreamClient, connect_stream
from tests.e2e.harness import TIMEOUT, Client, Server, manual_config, running_server

SYMBOL = "BTCUSDT"
TICK = Decimal("0.1")


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server(manual_config()) as running:
        yield running


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


# ---------------------------------------------------------------------------------------------
# Klines
# ---------------------------------------------------------------------------------------------


def test_kline_stream_names_take_binances_intervals() -> None:
    symbols = {SYMBOL}
    for interval in ("1m", "3m", "15m", "1h", "12h", "1d", "3d", "1w", "1M"):
        stream = parse_stream(f"btcusdt@kline_{interval}", symbols)
        assert stream is not None
        assert stream.interval == interval
    for name in ("btcusdt@kline_2m", "btcusdt@kline_", "btcusdt@kline_1mo", "btcusdt@kline"):
        assert parse_stream(name, symbols) is None


def same_candle(kline: dict[str, Any], candle: list[Any]) -> None:
    """Assert a kline stream's candle equals a row of GET /fapi/v1/klines."""
    assert [
        kline["t"],
        kline["o"],
        kline["h"],
        kline["l"],
        kline["c"],
        kline["v"],
        kline["T"],
        kline["q"],
        kline["n"],
        kline["V"],
        kline["Q"],
    ] == candle[:11]


@pytest.mark.asyncio
async def test_klines_follow_each_trade_and_agree_with_rest(
    server: Server, open_stream: Callable[[str], Any]
) -> None:
    raw = await open_stream("/ws/btcusdt@kline_1m")
    combined = await open_stream("/stream?streams=btcusdt@kline_1h/btcusdt@kline_1M")
    taker = await trader(server, "kline-taker")
    bought = await taker.signed(
        "POST", "/fapi/v1/order", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.01"
    )
    sold = await taker.signed(
        "POST", "/fapi/v1/order", symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.03"
    )
    assert bought[0] == sold[0] == 200
    _, [last_trade] = await taker.public("/fapi/v1/trades", symbol=SYMBOL, limit=1)

    first = await raw.next()
    assert first["e"] == "kline"
    assert first["s"] == first["k"]["s"] == SYMBOL
    assert first["k"]["i"] == "1m"
    assert first["k"]["x"] is False
    latest = await raw.next_matching(lambda d: d["k"]["L"] == last_trade["id"])
    assert latest["k"]["x"] is False
    assert latest["E"] == last_trade["time"]
    _, [candle] = await taker.public("/fapi/v1/klines", symbol=SYMBOL, interval="1m", limit=1)
    same_candle(latest["k"], candle)
    assert latest["k"]["T"] - latest["k"]["t"] == 60_000 - 1

    latest_by_stream: dict[str, Any] = {}
    while len(latest_by_stream) < 2:
        message = await combined.next()
        if message["data"]["k"]["L"] == last_trade["id"]:
            latest_by_stream[message["stream"]] = message["data"]["k"]
    hourly, monthly = latest_by_stream["btcusdt@kline_1h"], latest_by_stream["btcusdt@kline_1M"]
    _, [hour] = await taker.public("/fapi/v1/klines", symbol=SYMBOL, interval="1h", limit=1)
    same_candle(hourly, hour)
    assert monthly["i"] == "1M"
    assert monthly["v"] == hourly["v"]


KLINE_MINUTE = 28_333_334 * 60_000
"""The start of a minute, where the held clock of the next test begins."""


@pytest.mark.asyncio
async def test_a_kline_closes_when_its_minute_ends_even_without_a_trade() -> None:
    clock = ManualClock(KLINE_MINUTE + 10_000)
    async with running_server(manual_config(), clock) as held:
        stream = await connect_stream(held, "/ws/btcusdt@kline_1m")
        taker = await trader(held, "quiet-minute")
        status, _ = await taker.signed(
            "POST", "/fapi/v1/order", symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.02"
        )
        assert status == 200
        open_candle = (await stream.next())["k"]
        assert (open_candle["t"], open_candle["x"]) == (KLINE_MINUTE, False)

        # No command follows: the server's own timer must close the candle.
        clock.set(KLINE_MINUTE + 60_000)
        closed = await stream.next()
        assert closed["E"] >= KLINE_MINUTE + 60_000
        assert closed["k"] == {**open_candle, "x": True}
        _, candles = await taker.public("/fapi/v1/klines", symbol=SYMBOL, interval="1m")
        same_candle(closed["k"], candles[-1])

        clock.set(KLINE_MINUTE + 61_000)
        status, _ = await taker.signed(
            "POST", "/fapi/v1/order", symbol=SYMBOL, side="SELL", type="MARKET", quantity="0.01"
        )
        assert status == 200
        following = (await stream.next())["k"]
        assert following["t"] == KLINE_MINUTE + 60_000
        assert following["n"] == 1
        assert following["f"] == following["L"] == open_candle["L"] + 1
        assert following["v"] == "0.010"
