"""Margin calls, liquidation by an operator's index move, and funding, seen over the wire."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

import pytest

from tests.e2e.harness import Client, Server, manual_config, running_server

TICK = Decimal("0.1")


async def open_isolated_long(server: Server, name: str) -> tuple[Client, dict[str, Any]]:
    client, _ = await server.trader(name, deposit="1000")
    await client.call("position.set_margin_mode", {"symbol": "BTCUSDT", "margin_mode": "isolated"})
    await client.call("position.set_leverage", {"symbol": "BTCUSDT", "leverage": 50})
    await client.call(
        "order.place", {"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "0.1"}
    )
    [position] = (await client.call("account.get"))["positions"]
    return client, position


@pytest.mark.asyncio
async def test_margin_call_then_liquidation_by_the_operator(server: Server) -> None:
    client, position = await open_isolated_long(server, "erin")
    admin = await server.admin()
    await admin.call("subscribe", {"channels": ["liquidations.BTCUSDT"]})
    liquidation_price = Decimal(position["liquidation_price"])

    near = (liquidation_price + 20).quantize(TICK, ROUND_UP)
    await admin.call("admin.set_index", {"symbol": "BTCUSDT", "price": str(near)})
    call = await client.wait_for("account", lambda d: d["event"] == "margin_call")
    assert call["symbol"] == "BTCUSDT"
    assert Decimal("0.8") <= Decimal(call["margin_ratio"]) < 1

    past = (liquidation_price - 50).quantize(TICK, ROUND_DOWN)
    await admin.call("admin.set_index", {"symbol": "BTCUSDT", "price": str(past)})
    record = await client.wait_for("account", lambda d: d["event"] == "liquidation")
    assert record["symbol"] == "BTCUSDT"
    assert record["margin_mode"] == "isolated"
    assert record["qty"] == "0.100"
    assert record["mark_price"] == str(past)
    assert Decimal(record["margin_balance"]) <= Decimal(record["maintenance_margin"])
    public = await admin.wait_for("liquidations.BTCUSDT")
    assert public["qty"] == "0.100"
    assert "account_id" not in public

    assert (await client.call("account.get"))["positions"] == []
    state = await admin.call("admin.state")
    assert state["conservation_holds"] is True
    assert state["conservation_gap"] == "0.00000000"
    assert state["invariants_hold"] is True
    assert state["open_interest"]["BTCUSDT"] == "0.000"
    leaderboard = await admin.call("admin.accounts")
    erin = next(row for row in leaderboard if row["name"] == "erin")
    # The isolated margin is gone; the rest of the 1000 deposit stays in the wallet.
    assert Decimal(erin["equity"]) < 1000


@pytest.mark.asyncio
async def test_funding_is_paid_on_the_account_stream() -> None:
    config = manual_config()
    config = config.model_copy(
        update={"funding": config.funding.model_copy(update={"enabled": True, "interval_s": 1})}
    )
    async with running_server(config) as server:
        client, _ = await server.trader("frank")
        await client.call(
            "order.place", {"symbol": "BTCUSDT", "side": "buy", "type": "market", "qty": "0.01"}
        )
        ticker = await client.call("public.ticker", {"symbol": "BTCUSDT"})
        assert ticker["next_funding_time"] is not None

        payment = await client.wait_for(
            "account", lambda d: d["event"] == "ledger" and d["kind"] == "funding"
        )

        # A long pays when the rate is positive (interest 0.0001 with no premium).
        assert Decimal(payment["amount"]) < 0
        rows = await client.call("account.ledger", {"symbol": "BTCUSDT"})
        assert any(row["kind"] == "funding" for row in rows)
        admin = await server.admin()
        assert (await admin.call("admin.state"))["conservation_holds"] is True
