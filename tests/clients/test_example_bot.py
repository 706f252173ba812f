"""The example bot trades round trips against the market maker and accounts for its PnL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from clients.examples.market_maker_taker_bot import run
from clients.paperex_client import AdminClient, Client
from tests.clients.conftest import TIMEOUT, ws_url
from tests.e2e.harness import Server


@pytest.mark.asyncio
async def test_the_bot_trades_round_trips_and_its_pnl_adds_up(
    server: Server, admin: AdminClient, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = await admin.create_account("bot", "10000")
    async with Client(ws_url(server), keys.api_key, keys.api_secret, timeout=TIMEOUT) as client:
        summary = await run(client, "BTCUSDT", Decimal("0.002"), rounds=3, hold_s=0)
        fills = await client.fills()

    assert len(fills) == 6
    # Flat after every round trip: the wallet moved by exactly the PnL less the fees.
    assert summary.unrealized_pnl == 0
    assert summary.wallet_change == summary.realized_pnl - summary.fees
    assert summary.realized_pnl < 0  # crossing the market maker's spread costs money
    assert "round 3:" in capsys.readouterr().out
