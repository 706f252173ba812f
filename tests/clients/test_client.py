"""The SDK against a real server: typed results, errors, streams, the local book, reconnects."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from clients.paperex_client import (
    AdminClient,
    BalanceUpdate,
    Client,
    ClientClosedError,
    Fill,
    Order,
    PaperexError,
    PositionUpdate,
    StreamUpdate,
    Subscription,
    Ticker,
    Trade,
)
from exchange.api.ws import CONNECTIONS
from exchange.runtime.fanout import Connection
from tests.clients.conftest import TIMEOUT, Trader, ws_url
from tests.e2e.harness import Server

SYMBOL = "BTCUSDT"
INDEX = Decimal(60_000)


async def next_matching(
    subscription: Subscription, match: type | None = None, *, connection: int = 1
) -> StreamUpdate:
    """Return the next update of a subscription from a connection whose data is a `match`."""
    async with asyncio.timeout(TIMEOUT):
        async for update in subscription:
            wanted = match is None or isinstance(update.data, match)
            if update.connection >= connection and wanted:
                return update
    raise AssertionError("the subscription ended")


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_market_order_fills_against_the_market_maker(trader: Trader) -> None:
    client = await trader("alice")

    order = await client.market_order(SYMBOL, "buy", "0.010")

    assert isinstance(order, Order)
    assert order.status == "filled"
    assert order.filled_qty == Decimal("0.010")
    assert order.avg_price is not None
    assert INDEX < order.avg_price < INDEX * Decimal("1.001")
    assert isinstance(order.fee, Decimal)
    account = await client.account()
    assert account.account_id == client.account_id
    position = account.position(SYMBOL)
    assert position is not None
    assert (position.side, position.qty, position.mark_price) == ("long", Decimal("0.010"), INDEX)
    assert account.available_balance < account.wallet_balance
    [fill] = await client.fills()
    assert (fill.order_id, fill.liquidity_side) == (order.order_id, "taker")
    assert {row.kind for row in await client.ledger()} == {"deposit", "fee"}
    [trade, *_] = await client.trades(SYMBOL)
    assert (trade.taker_side, trade.qty) == ("buy", Decimal("0.010"))


@pytest.mark.asyncio
async def test_orders_can_be_placed_amended_listed_and_canceled(trader: Trader) -> None:
    client = await trader("bob")

    resting = await client.limit_order(SYMBOL, "buy", "0.002", "59000.0", client_order_id="b-1")
    amended = await client.amend_order(resting.order_id, price=Decimal("59100.0"))
    listed = await client.open_orders(SYMBOL)
    by_client_id = await client.get_order(client_order_id="b-1")
    canceled = await client.cancel_order(client_order_id="b-1")

    assert resting.status == "new"
    assert resting.is_open
    assert amended.price == Decimal("59100")
    assert [o.order_id for o in listed] == [resting.order_id]
    assert by_client_id.order_id == resting.order_id
    assert (canceled.status, canceled.reason) == ("canceled", "user")
    assert not canceled.is_open
    assert await client.cancel_all() == []


@pytest.mark.asyncio
async def test_position_settings_and_public_data_are_typed(trader: Trader) -> None:
    client = await trader("carol")

    mode = await client.set_margin_mode("ETHUSDT", "isolated")
    leverage = await client.set_leverage("ETHUSDT", 10)
    await client.market_order("ETHUSDT", "sell", "1")
    adjusted = await client.adjust_margin("ETHUSDT", Decimal("50"))
    instruments = {i.symbol: i for i in await client.instruments()}
    ticker = await client.ticker(SYMBOL)
    server_time = await client.time()
    report = await client.liquidation_price(
        {
            "positions": [
                {
                    "symbol": SYMBOL,
                    "side": "long",
                    "qty": "1",
                    "entry_price": "60000",
                    "margin_mode": "isolated",
                    "leverage": 20,
                }
            ]
        }
    )

    assert (mode.margin_mode, leverage.leverage) == ("isolated", 10)
    assert Decimal("340") < adjusted.isolated_margin < Decimal("360")
    assert instruments[SYMBOL].tick_size == Decimal("0.1")
    assert instruments[SYMBOL].brackets[0].max_leverage == 125
    assert ticker.mark_price == INDEX
    assert ticker.best_bid is not None
    assert ticker.best_ask is not None
    assert ticker.best_bid < ticker.best_ask
    assert server_time.server_time > 0
    assert report.positions[0].liquidation_price == Decimal("57236.18")


@pytest.mark.asyncio
async def test_refusals_raise_paperex_error_with_code_and_field(
    server: Server, trader: Trader
) -> None:
    client = await trader("dave")

    with pytest.raises(PaperexError) as off_lot:
        await client.market_order(SYMBOL, "buy", "0.0001")
    with pytest.raises(PaperexError) as unknown:
        await client.call("public.nothing")
    async with Client(ws_url(server), timeout=TIMEOUT) as anonymous:
        with pytest.raises(PaperexError) as not_logged_in:
            await anonymous.account()

    assert (off_lot.value.code, off_lot.value.field) == (1004, "qty")
    assert off_lot.value.data is not None
    assert off_lot.value.data["reason"] == "qty_off_lot"
    assert unknown.value.code == -32601
    assert not_logged_in.value.code == 5001
    with pytest.raises(TypeError):
        await client.market_order(SYMBOL, "buy", 0.01)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_wrong_credentials_fail_the_first_connect(server: Server) -> None:
    client = Client(ws_url(server), "0" * 32, "not-the-secret", timeout=TIMEOUT)

    with pytest.raises(PaperexError) as refused:
        await client.connect()

    assert refused.value.code == 5002
    with pytest.raises(ClientClosedError):
        await client.time()


# ---------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_trades_and_account_events_arrive_as_typed_async_iterators(trader: Trader) -> None:
    client = await trader("erin")
    async with client.subscribe(f"trades.{SYMBOL}") as trades, client.subscribe("account") as me:
        order = await client.market_order(SYMBOL, "sell", "0.005")

        trade = await next_matching(trades, Trade)
        fill = await next_matching(me, Fill)
        position = await next_matching(me, PositionUpdate)
        update = await next_matching(me, Order)

    assert trade.channel == f"trades.{SYMBOL}"
    assert (trade.data.taker_side, trade.data.qty) == ("sell", Decimal("0.005"))
    assert fill.data.order_id == order.order_id
    # The position event's qty is signed: negative for a short.
    assert (position.data.side, position.data.qty) == ("short", Decimal("-0.005"))
    assert update.data.status == "filled"
    assert fill.seq < update.seq


@pytest.mark.asyncio
async def test_closing_the_client_ends_its_subscriptions(trader: Trader) -> None:
    client = await trader("frank")
    trades = await client.subscribe(f"ticker.{SYMBOL}").start()
    first = await trades.next()

    await client.close()

    assert first.seq == 1
    async with asyncio.timeout(TIMEOUT):
        remaining = [update async for update in trades]
    assert all(update.seq > 1 for update in remaining)
    with pytest.raises(ClientClosedError):
        await client.ticker(SYMBOL)


# ---------------------------------------------------------------------------------------------
# The local book
# ---------------------------------------------------------------------------------------------


async def burst(client: Client, admin: AdminClient) -> None:
    """Move the book many times: resting orders, amends, cancels, takers and index moves."""
    resting = await asyncio.gather(
        *(
            client.limit_order(SYMBOL, "buy", "0.002", Decimal("59900") - i)
            for i in range(0, 40, 2)
        ),
        *(
            client.limit_order(SYMBOL, "sell", "0.003", Decimal("60100") + i)
            for i in range(0, 40, 2)
        ),
    )
    await asyncio.gather(
        *(client.amend_order(o.order_id, qty="0.004") for o in resting[::3]),
        *(client.cancel_order(o.order_id) for o in resting[1::3]),
    )
    for price in ("60010", "59980", "60000"):
        await admin.set_index(SYMBOL, price)
        await client.market_order(SYMBOL, "buy", "0.010")
        await client.market_order(SYMBOL, "sell", "0.010")


@pytest.mark.asyncio
async def test_the_local_book_equals_public_book_after_a_burst_of_updates(
    server: Server, admin: AdminClient, trader: Trader
) -> None:
    taker = await trader("grace")
    async with (
        Client(ws_url(server), timeout=TIMEOUT) as watcher,
        watcher.local_book(SYMBOL) as feed,
    ):
        start = feed.book.update_id

        await burst(taker, admin)
        # The market maker may still be requoting: the feed is read up to exactly the
        # update id of the snapshot, so both show the same moment.
        snapshot = await watcher.book(SYMBOL)
        book = await feed.sync_to(snapshot.update_id)

    assert book.update_id == snapshot.update_id
    assert snapshot.update_id - start > 50
    assert book.snapshot() == snapshot
    assert len(snapshot.bids) > 10
    assert len(snapshot.asks) > 10
    # A reader that keeps up never has to fetch the book again: the stream alone kept it.
    assert feed.resyncs == 0


@pytest.mark.asyncio
async def test_the_local_book_resyncs_from_a_snapshot_after_missing_updates(
    server: Server, trader: Trader
) -> None:
    maker = await trader("heidi")
    async with (
        Client(ws_url(server), timeout=TIMEOUT) as watcher,
        # A queue of two that is not read during the burst must drop updates.
        watcher.local_book(SYMBOL, queue_size=2) as feed,
    ):
        for i in range(20):
            await maker.limit_order(SYMBOL, "buy", "0.002", Decimal("59800") - i)
        snapshot = await watcher.book(SYMBOL)
        book = await feed.sync_to(snapshot.update_id)

    assert feed.subscription.dropped > 0
    assert feed.resyncs >= 1
    assert book.snapshot() == snapshot


# ---------------------------------------------------------------------------------------------
# Reconnects
# ---------------------------------------------------------------------------------------------


async def drop_every_connection(server: Server) -> None:
    """Close every WebSocket from the server side, as a restart or a network failure would."""
    connections: set[Connection] = server.app[CONNECTIONS]
    for connection in list(connections):
        await connection.close("dropped by the test", 1011)


async def drain(subscription: Subscription) -> None:
    async with asyncio.timeout(TIMEOUT):
        async for _ in subscription:
            pass


@pytest.mark.asyncio
async def test_the_client_reconnects_logs_in_and_resubscribes(server: Server) -> None:
    url = ws_url(server)
    async with AdminClient(url, "test-operator-token", timeout=TIMEOUT) as admin:
        keys = await admin.create_account("ivan", "100000")
        async with (
            Client(url, keys.api_key, keys.api_secret, timeout=TIMEOUT) as client,
            client.subscribe("account", f"trades.{SYMBOL}", f"ticker.{SYMBOL}") as stream,
            client.local_book(SYMBOL) as feed,
        ):
            account_id = client.account_id
            await client.market_order(SYMBOL, "buy", "0.002")
            before = await next_matching(stream, Trade)

            await drop_every_connection(server)
            # Subscribing again pushes the ticker at once: the sign the client is back.
            resubscribed = await next_matching(stream, Ticker, connection=2)
            await client.market_order(SYMBOL, "sell", "0.002")
            # The stream resumes on the second connection, with seqs starting again at 1.
            trade = await next_matching(stream, Trade, connection=2)
            balance = await next_matching(stream, BalanceUpdate, connection=2)
            account = await client.account()
            await admin.set_index(SYMBOL, "60050")
            snapshot = await client.book(SYMBOL)
            book = await feed.sync_to(snapshot.update_id)

    assert before.connection == 1
    assert resubscribed.seq == 1
    assert client.connection >= 2
    assert admin.connection >= 2
    assert client.account_id == account_id
    assert account.account_id == account_id
    assert trade.data.taker_side == "sell"
    assert trade.seq <= 2
    assert isinstance(balance.data, BalanceUpdate)
    assert book.update_id == snapshot.update_id
    assert book.snapshot() == snapshot


@pytest.mark.asyncio
async def test_a_client_without_reconnect_ends_its_streams_when_dropped(server: Server) -> None:
    async with Client(ws_url(server), timeout=TIMEOUT, reconnect=False) as client:
        stream = await client.subscribe(f"ticker.{SYMBOL}").start()
        await stream.next()

        await drop_every_connection(server)

        with pytest.raises(ClientClosedError):
            await drain(stream)
        with pytest.raises(ClientClosedError):
            await client.time()
