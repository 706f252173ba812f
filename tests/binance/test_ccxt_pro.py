"""The real ccxt.pro client (binanceusdm) watching paperex's streams with only its URLs changed.

One server for the module: each test trades on its own accounts, and a test that moves the
index puts it back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
import pytest_asyncio

from exchange.api.binance.streams import STREAM_HUB
from tests.binance.rest_support import Rest, trader
from tests.binance.stream_support import ccxt_pro_client, watch_until
from tests.e2e.harness import TIMEOUT, Server, manual_config, running_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

SYMBOL = "BTC/USDT:USDT"
MARKET_ID = "BTCUSDT"
INDEX = Decimal("60000")
TICK = Decimal("0.1")

Factory = Callable[..., Awaitable[Any]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[Server]:
    async with running_server(manual_config()) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def pro(server: Server) -> AsyncIterator[Factory]:
    """Open ccxt.pro clients, public or on a new account; close them after the test.

    With an account name the factory returns (client, account id).
    """
    opened: list[Any] = []

    async def open_client(name: str | None = None, deposit: str = "100000") -> Any:
        keys = None
        if name is not None:
            admin = await server.admin()
            keys = await admin.call("admin.create_account", {"name": name, "deposit": deposit})
        client = ccxt_pro_client(server, keys)
        opened.append(client)
        await client.load_markets()
        return client if keys is None else (client, keys["account_id"])

    yield open_client
    for client in opened:
        await client.close()


async def subscribed(server: Server, name: str) -> None:
    """Wait until the server has added a stream for some socket.

    Event streams (trades, liquidations) send nothing on subscribing, so the test must know
    the subscription is in place before it makes the event happen. This only yields to the
    event loop, which runs the server's socket handlers; it never sleeps.
    """
    hub = server.app[STREAM_HUB]
    async with asyncio.timeout(TIMEOUT):
        while name not in hub.sockets:
            await asyncio.sleep(0)


async def listening(server: Server, account_id: int) -> None:
    """Wait until an account's user data stream is open (see `subscribed`)."""
    hub = server.app[STREAM_HUB]
    async with asyncio.timeout(TIMEOUT):
        while account_id not in hub.accounts:
            await asyncio.sleep(0)


async def set_index(server: Server, price: Decimal) -> None:
    admin = await server.admin()
    await admin.call("admin.set_index", {"symbol": MARKET_ID, "price": str(price)})


async def depth(rest: Rest) -> dict[str, Any]:
    status, book = await rest.public("/fapi/v1/depth", symbol=MARKET_ID, limit=1000)
    assert status == 200, book
    return dict(book)


def as_levels(rows: list[list[str]]) -> list[list[float]]:
    return [[float(price), float(qty)] for price, qty in rows]


async def book_at(client: Any, update_id: int) -> Any:
    """Return ccxt.pro's book once it has applied the update a REST snapshot stands at."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            book = client.orderbooks.get(SYMBOL)
            if book is not None and (book["nonce"] or 0) >= update_id:
                return book
            await client.watch_order_book(SYMBOL)


async def limit_order(rest: Rest, side: str, qty: str, price: Decimal) -> dict[str, Any]:
    status, order = await rest.signed(
        "POST",
        "/fapi/v1/order",
        symbol=MARKET_ID,
        side=side,
        type="LIMIT",
        timeInForce="GTC",
        quantity=qty,
        price=str(price),
    )
    assert status == 200, order
    return dict(order)


async def market_order(rest: Rest, side: str, qty: str) -> dict[str, Any]:
    status, order = await rest.signed(
        "POST", "/fapi/v1/order", symbol=MARKET_ID, side=side, type="MARKET", quantity=qty
    )
    assert status == 200, order
    return dict(order)


# ---------------------------------------------------------------------------------------------
# Market streams
# ---------------------------------------------------------------------------------------------


async def test_watch_order_book_keeps_the_rest_book(server: Server, pro: Factory) -> None:
    watcher = await pro()
    other = await trader(server, "book-maker")
    book = await asyncio.wait_for(watcher.watch_order_book(SYMBOL), TIMEOUT)
    assert book["bids"]
    assert book["asks"]
    best_bid = Decimal((await depth(other))["bids"][0][0])

    placed = []
    for offset in (30, 40, 50):
        placed.append(await limit_order(other, "BUY", "0.02", best_bid - offset))
        snapshot = await depth(other)
        book = await book_at(watcher, snapshot["lastUpdateId"])
        assert book["nonce"] == snapshot["lastUpdateId"]
        assert book["bids"] == as_levels(snapshot["bids"])
        assert book["asks"] == as_levels(snapshot["asks"])

    status, _ = await other.signed(
        "DELETE", "/fapi/v1/order", symbol=MARKET_ID, orderId=placed[1]["orderId"]
    )
    assert status == 200
    await market_order(other, "SELL", "0.01")
    snapshot = await depth(other)
    book = await book_at(watcher, snapshot["lastUpdateId"])
    assert book["bids"] == as_levels(snapshot["bids"])
    assert book["asks"] == as_levels(snapshot["asks"])
    assert [float(best_bid - 40), 0.02] not in book["bids"]


async def test_watch_trades_sees_a_fill_as_rest_reports_it(server: Server, pro: Factory) -> None:
    watcher = await pro()
    taker = await trader(server, "trade-taker")
    watching = asyncio.create_task(watcher.watch_trades(SYMBOL))
    await subscribed(server, "btcusdt@trade")

    await market_order(taker, "BUY", "0.015")
    [trade] = await asyncio.wait_for(watching, TIMEOUT)
    [last] = await watcher.fetch_trades(SYMBOL, limit=1)
    assert trade["id"] == last["id"]
    assert trade["price"] == last["price"]
    assert trade["amount"] == 0.015
    assert trade["side"] == "buy"
    assert trade["timestamp"] == last["timestamp"]


async def test_watch_ticker_follows_the_last_trade(server: Server, pro: Factory) -> None:
    watcher = await pro()
    taker = await trader(server, "ticker-taker")
    first = await asyncio.wait_for(watcher.watch_ticker(SYMBOL), TIMEOUT)

    await market_order(taker, "SELL", "0.012")
    ticker = await watch_until(
        lambda: watcher.watch_ticker(SYMBOL),
        lambda t: t["baseVolume"] > first["baseVolume"],
        lambda: watcher.tickers.get(SYMBOL),
    )
    rest = await watcher.fetch_ticker(SYMBOL)
    [last] = await watcher.fetch_trades(SYMBOL, limit=1)
    assert ticker["last"] == last["price"] == rest["last"]
    assert ticker["baseVolume"] == rest["baseVolume"]
    assert ticker["high"] == rest["high"]
    assert ticker["low"] == rest["low"]


async def test_watch_mark_price_follows_the_operators_index(server: Server, pro: Factory) -> None:
    watcher = await pro()
    first = await asyncio.wait_for(watcher.watch_mark_price(SYMBOL), TIMEOUT)
    assert first["markPrice"] == float(INDEX)
    moved = INDEX + 125
    await set_index(server, moved)
    try:
        ticker = await watch_until(
            lambda: watcher.watch_mark_price(SYMBOL),
            lambda t: t["markPrice"] == float(moved),
            lambda: watcher.tickers.get(SYMBOL),
        )
        assert ticker["indexPrice"] == float(moved)
        assert ticker["symbol"] == SYMBOL
    finally:
        await set_index(server, INDEX)


async def test_watch_ohlcv_agrees_with_fetch_ohlcv(server: Server, pro: Factory) -> None:
    watcher = await pro()
    taker = await trader(server, "candle-taker")
    await market_order(taker, "BUY", "0.01")
    # The candle is open and has a trade: the stream sends it at once.
    candles = await asyncio.wait_for(watcher.watch_ohlcv(SYMBOL, "1m"), TIMEOUT)
    # ccxt.pro updates a candle in place: keep a copy.
    before = list(candles[-1])

    await market_order(taker, "BUY", "0.03")
    await market_order(taker, "SELL", "0.02")
    [rest] = await watcher.fetch_ohlcv(SYMBOL, "1m", limit=1)
    candles = await watch_until(
        lambda: watcher.watch_ohlcv(SYMBOL, "1m"),
        lambda c: c[-1][0] != before[0] or c[-1][5] >= round(before[5] + 0.05, 3),
        lambda: watcher.ohlcvs.get(SYMBOL, {}).get("1m"),
    )
    # A new minute may have begun between the trades; the REST candle is the newest either way.
    assert candles[-1] == rest


# ---------------------------------------------------------------------------------------------
# User data stream
# ---------------------------------------------------------------------------------------------


async def test_watch_orders_positions_and_balance_after_a_fill(
    server: Server, pro: Factory
) -> None:
    client, account_id = await pro("pro-fills")
    orders = asyncio.create_task(client.watch_orders(SYMBOL))
    await listening(server, account_id)
    positions = asyncio.create_task(client.watch_positions([SYMBOL]))
    balance = asyncio.create_task(client.watch_balance())

    placed = await client.create_order(SYMBOL, "market", "buy", 0.02)
    watched = await watch_until(
        lambda: orders if not orders.done() else client.watch_orders(SYMBOL),
        lambda found: any(o["id"] == placed["id"] and o["status"] == "closed" for o in found),
        lambda: client.orders,
    )
    [order] = [o for o in watched if o["id"] == placed["id"]]
    rest_order = await client.fetch_order(placed["id"], SYMBOL)
    assert order["filled"] == rest_order["filled"] == 0.02
    assert order["side"] == "buy"
    assert order["average"] == rest_order["average"]

    # The first answers of watch_positions and watch_balance are REST snapshots; the fill's
    # ACCOUNT_UPDATE may have reached the client's caches already.
    watched_positions = await watch_until(
        lambda: positions if not positions.done() else client.watch_positions([SYMBOL]),
        lambda found: any(p["contracts"] for p in found),
        lambda: (client.positions or {}).get("linear"),
    )
    [rest_position] = await client.fetch_positions([SYMBOL])
    [live] = [p for p in watched_positions if p["contracts"]]
    assert live["contracts"] == rest_position["contracts"] == 0.02
    assert live["side"] == "long"
    assert live["entryPrice"] == rest_position["entryPrice"]

    # The stream's balance is the wallet balance (Binance's `wb`); ccxt's REST total is the
    # margin balance, which adds the unrealised PnL.
    rest_balance = await client.fetch_balance()
    [usdt] = [a for a in rest_balance["info"]["assets"] if a["asset"] == "USDT"]
    wallet = float(usdt["walletBalance"])
    assert wallet < 100000  # the fee was paid
    await watch_until(
        lambda: balance if not balance.done() else client.watch_balance(),
        lambda found: found["USDT"]["total"] == wallet,
        lambda: client.balance.get("linear"),
    )


async def test_watch_orders_follows_a_stop_order_from_trigger_to_fill(
    server: Server, pro: Factory
) -> None:
    client, account_id = await pro("pro-stop")
    orders = asyncio.create_task(client.watch_orders(SYMBOL))
    await listening(server, account_id)
    trigger = INDEX + 100
    stop = await client.create_order(
        SYMBOL,
        "market",
        "buy",
        0.01,
        params={"triggerPrice": float(trigger), "workingType": "MARK_PRICE"},
    )

    def stop_order(found: list[Any]) -> Any:
        return next((o for o in found if o["id"] == stop["id"]), None)

    waiting = await watch_until(
        lambda: orders if not orders.done() else client.watch_orders(SYMBOL),
        lambda found: stop_order(found) is not None,
        lambda: client.orders,
    )
    assert stop_order(waiting)["status"] == "open"
    assert stop_order(waiting)["triggerPrice"] == float(trigger)
    assert stop_order(waiting)["clientOrderId"] == stop["clientOrderId"]

    await set_index(server, trigger + 10)
    try:
        done = await watch_until(
            lambda: client.watch_orders(SYMBOL),
            # ALGO_UPDATE TRIGGERED closes the algo order in ccxt's eyes; the fill follows.
            lambda found: stop_order(found)["filled"] == 0.01,
            lambda: client.orders,
        )
    finally:
        await set_index(server, INDEX)
    assert stop_order(done)["status"] == "closed"
    assert stop_order(done)["side"] == "buy"
    [position] = await client.fetch_positions([SYMBOL])
    assert position["contracts"] == 0.01


async def open_liquidatable_long(client: Any) -> Decimal:
    """Open a 50x isolated long and return a price just past its liquidation price."""
    await client.set_margin_mode("isolated", SYMBOL)
    await client.set_leverage(50, SYMBOL)
    await client.create_order(SYMBOL, "market", "buy", 0.1)
    [position] = await client.fetch_positions([SYMBOL])
    liquidation_price = Decimal(str(position["liquidationPrice"]))
    assert 0 < liquidation_price < INDEX
    return (liquidation_price - 50).quantize(TICK, ROUND_DOWN)


async def test_watch_liquidations_reports_a_liquidation(server: Server, pro: Factory) -> None:
    watcher = await pro()
    victim, _ = await pro("pro-liquidated", deposit="1000")
    watching = asyncio.create_task(watcher.watch_liquidations(SYMBOL))
    await subscribed(server, "btcusdt@forceOrder")
    past = await open_liquidatable_long(victim)

    await set_index(server, past)
    try:
        [liquidation] = await asyncio.wait_for(watching, TIMEOUT)
    finally:
        await set_index(server, INDEX)
    assert liquidation["symbol"] == SYMBOL
    assert liquidation["contracts"] == 0.1
    assert liquidation["side"] == "sell"
    assert 0 < liquidation["price"] < float(INDEX)
    # ccxt leaves closed positions out.
    assert await victim.fetch_positions([SYMBOL]) == []


async def test_an_index_move_liquidation_reaches_watch_orders_and_force_order(
    server: Server, pro: Factory
) -> None:
    watcher = await pro()
    victim, account_id = await pro("pro-autoclose", deposit="1000")
    liquidations = asyncio.create_task(watcher.watch_liquidations(SYMBOL))
    await subscribed(server, "btcusdt@forceOrder")
    past = await open_liquidatable_long(victim)
    orders = asyncio.create_task(victim.watch_orders(SYMBOL))
    await listening(server, account_id)

    await set_index(server, past)
    try:
        watched = await watch_until(
            lambda: orders if not orders.done() else victim.watch_orders(SYMBOL),
            lambda found: any(o["clientOrderId"].startswith("autoclose-") for o in found),
            lambda: victim.orders,
        )
        [liquidation] = await asyncio.wait_for(liquidations, TIMEOUT)
    finally:
        await set_index(server, INDEX)
    [closing] = [o for o in watched if o["clientOrderId"].startswith("autoclose-")]
    assert closing["side"] == "sell"
    assert closing["reduceOnly"] is True
    assert closing["status"] == "closed"
    assert closing["filled"] == liquidation["contracts"] == 0.1
    assert liquidation["side"] == "sell"
