"""Trading against the market maker over real WebSockets: fills, positions, books, stops."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.calculator import calculate
from exchange.server import RUNTIME as RUNTIME_KEY
from tests.e2e.harness import Server

INDEX = Decimal(60_000)


@pytest.mark.asyncio
async def test_market_buy_fills_against_the_market_maker(server: Server) -> None:
    client, account_id = await server.trader("alice")

    order = await client.call(
        "order.place",
        {"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "0.010"},
    )

    assert order["status"] == "filled"
    assert order["filled_qty"] == "0.010"
    assert INDEX < Decimal(order["avg_price"]) < INDEX * Decimal("1.001")
    fill = await client.wait_for("account", lambda d: d["event"] == "fill")
    assert fill["order_id"] == order["order_id"]
    assert fill["liquidity_side"] == "taker"
    position = await client.wait_for("account", lambda d: d["event"] == "position")
    assert position["qty"] == "0.010"
    account = await client.call("account.get")
    assert account["account_id"] == account_id
    [held] = account["positions"]
    assert held["symbol"] == "BTCUSDT"
    assert held["side"] == "long"
    assert held["qty"] == "0.010"
    assert held["margin_mode"] == "cross"
    assert held["mark_price"] == "60000.00"
    assert Decimal(account["available_balance"]) < Decimal(account["wallet_balance"])
    fills = await client.call("account.fills")
    assert [f["order_id"] for f in fills] == [order["order_id"]]
    ledger = await client.call("account.ledger")
    assert {row["kind"] for row in ledger} == {"deposit", "fee"}
    trades = await client.call("public.trades", {"symbol": "BTCUSDT"})
    assert trades[0]["taker_side"] == "buy"


@pytest.mark.asyncio
async def test_cross_and_isolated_positions_side_by_side(server: Server) -> None:
    client, _ = await server.trader("bob")
    mode = await client.call(
        "position.set_margin_mode", {"symbol": "ETHUSDT", "margin_mode": "isolated"}
    )
    assert mode["margin_mode"] == "isolated"
    leverage = await client.call("position.set_leverage", {"symbol": "ETHUSDT", "leverage": 10})
    assert leverage["leverage"] == 10

    await client.call(
        "order.place", {"symbol": "ETHUSDT", "side": "sell", "type": "market", "qty": "1"}
    )
    await client.call(
        "order.place", {"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "0.01"}
    )
    adjusted = await client.call("position.adjust_margin", {"symbol": "ETHUSDT", "amount": "50"})

    account = await client.call("account.get")
    positions = {p["symbol"]: p for p in account["positions"]}
    eth, btc = positions["ETHUSDT"], positions["BTCUSDT"]
    assert (eth["margin_mode"], eth["side"], eth["leverage"]) == ("isolated", "short", 10)
    assert (btc["margin_mode"], btc["side"]) == ("cross", "long")
    # About 3000 / 10 = 300 of initial margin, plus the 50 added.
    assert Decimal("340") < Decimal(eth["isolated_margin"]) < Decimal("360")
    assert adjusted["isolated_margin"] == eth["isolated_margin"]
    assert Decimal(eth["liquidation_price"]) > Decimal(3000)
    assert btc["liquidation_price"] is None or Decimal(btc["liquidation_price"]) < 60_000
    for field in (
        "bankruptcy_price",
        "maintenance_margin",
        "margin_ratio",
        "risk_level",
        "max_loss",
        "notional",
        "unrealized_pnl",
        "entry_price",
    ):
        assert field in eth
    assert Decimal(account["cross_maintenance_margin"]) > 0


@pytest.mark.asyncio
async def test_limit_order_rests_amends_and_cancels_with_book_deltas(server: Server) -> None:
    client, _ = await server.trader("carol")
    await client.call("subscribe", {"channels": ["book.BTCUSDT", "trades.BTCUSDT"]})
    snapshot = await client.wait_for("book.BTCUSDT")
    assert snapshot["type"] == "snapshot"
    book = await client.call("public.book", {"symbol": "BTCUSDT", "depth": 3})
    assert book["update_id"] == snapshot["update_id"]
    assert len(book["bids"]) == 3

    order = await client.call(
        "order.place",
        {
            "symbol": "BTCUSDT",
            "side": "buy",
            "type": "limit",
            "qty": "0.005",
            "price": "59000",
            "client_order_id": "my-bid-1",
        },
    )
    assert order["status"] == "new"
    delta = await client.wait_for("book.BTCUSDT")
    assert delta == {
        "type": "delta",
        "symbol": "BTCUSDT",
        "update_id": snapshot["update_id"] + 1,
        "bids": [["59000.0", "0.005"]],
        "asks": [],
    }
    amended = await client.call("order.amend", {"order_id": order["order_id"], "qty": "0.004"})
    assert amended["qty"] == "0.004"
    fetched = await client.call("order.get", {"client_order_id": "my-bid-1"})
    assert fetched["order_id"] == order["order_id"]
    assert [o["order_id"] for o in await client.call("order.open")] == [order["order_id"]]
    canceled = await client.call("order.cancel", {"order_id": order["order_id"]})
    assert canceled["status"] == "canceled"
    assert await client.call("order.open", {"symbol": "BTCUSDT"}) == []
    assert (await client.call("order.get", {"order_id": order["order_id"]}))["status"] == (
        "canceled"
    )


@pytest.mark.asyncio
async def test_stop_market_triggers_on_the_mark(server: Server) -> None:
    client, _ = await server.trader("dave")
    admin = await server.admin()
    await client.call(
        "order.place", {"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "0.01"}
    )
    stop = await client.call(
        "order.place",
        {
            "symbol": "BTCUSDT",
            "side": "sell",
            "type": "stop_market",
            "qty": "0.01",
            "trigger_price": "59000",
            "trigger_by": "mark",
            "reduce_only": True,
        },
    )
    assert stop["status"] == "new"

    await admin.call("admin.set_index", {"symbol": "BTCUSDT", "price": "58900"})

    update = await client.wait_for(
        "account",
        lambda d: (
            d["event"] == "order"
            and d["order_id"] == stop["order_id"]
            and d["filled_qty"] != "0.000"
        ),
    )
    assert update["status"] == "filled"
    assert Decimal(update["avg_price"]) < INDEX
    account = await client.call("account.get")
    assert account["positions"] == []


@pytest.mark.asyncio
async def test_public_market_data(server: Server) -> None:
    client = await server.connect()
    time = await client.call("public.time")
    assert time["server_time"] == server.clock_ms or time["server_time"] > 0
    instruments = await client.call("public.instruments")
    assert [i["symbol"] for i in instruments] == ["BTCUSDT", "ETHUSDT"]
    assert instruments[0]["tick_size"] == "0.1"
    ticker = await client.call("public.ticker", {"symbol": "BTCUSDT"})
    assert ticker["mark_price"] == ticker["index_price"] == "60000.0"
    assert Decimal(ticker["best_bid"]) < 60_000 < Decimal(ticker["best_ask"])
    assert ticker["funding_rate"] == "0.00000000"
    assert ticker["open_interest"] == "0.000"
    scenario = {
        "wallet_balance": "5000",
        "positions": [
            {
                "symbol": "BTCUSDT",
                "side": "long",
                "qty": "1",
                "entry_price": "60000",
                "margin_mode": "isolated",
                "leverage": 20,
            },
        ],
    }
    result = await client.call("public.liquidation_price", scenario)
    assert result == calculate(scenario, server.app[RUNTIME_KEY].config.instruments)
    assert result["positions"][0]["liquidation_price"] == "57236.18"
