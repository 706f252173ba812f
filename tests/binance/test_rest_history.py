"""Figures from the past: settled funding rates, funding settings, liquidation and ADL orders,
and where positions stand in the ADL queue."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
import pytest_asyncio

from exchange.api.history import History
from exchange.core.commands import CancelOrder, FundingRate, PlaceOrder, SettleFunding
from exchange.core.enums import CancelReason, OrderStatus, OrderType, Side
from exchange.core.events import OrderAccepted, OrderCanceled
from exchange.runtime.config import Config
from exchange.server import RUNTIME
from tests.binance.rest_support import Rest, base_url, trader
from tests.binance.test_rest_ccxt import SYMBOL, ccxt_urls
from tests.e2e.harness import Server, manual_config, running_server

BTC = "BTCUSDT"
START_PRICE = "60000"


def funding_config(interval_s: int) -> Config:
    """Return the manual config with funding on; the interval is long enough not to pass."""
    config = manual_config()
    funding = config.funding.model_copy(update={"enabled": True, "interval_s": interval_s})
    return config.model_copy(update={"funding": funding})


def bare_config() -> Config:
    """Return the manual config with no market maker and an empty insurance fund.

    Traders meet only each other, so a liquidation finds no bids in the book and no fund
    to take the position over: it auto-deleverages the other side.
    """
    config = manual_config()
    agents = config.agents.model_copy(
        update={"market_maker": config.agents.market_maker.model_copy(update={"enabled": False})}
    )
    return config.model_copy(update={"agents": agents, "insurance_fund_deposit": Decimal(0)})


async def set_index(server: Server, price: str) -> None:
    admin = await server.admin()
    await admin.call("admin.set_index", {"symbol": BTC, "price": price})


async def ok(answer: Any) -> Any:
    status, body = await answer
    assert status == 200, body
    return body


async def trade(seller: Rest, buyer: Rest, qty: str) -> None:
    """Rest a sell at the index and take it with a market buy."""
    await ok(
        seller.signed(
            "POST",
            "/fapi/v1/order",
            symbol=BTC,
            side="SELL",
            type="LIMIT",
            timeInForce="GTC",
            quantity=qty,
            price=START_PRICE,
        )
    )
    await ok(
        buyer.signed("POST", "/fapi/v1/order", symbol=BTC, side="BUY", type="MARKET", quantity=qty)
    )


# ---------------------------------------------------------------------------------------------
# Funding
# ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_funding_rate_history_lists_each_settlement() -> None:
    async with running_server(funding_config(interval_s=8 * 3600)) as server:
        rest = await trader(server, "fay")
        assert await ok(rest.public("/fapi/v1/fundingRate", symbol=BTC)) == []
        timer = server.app[RUNTIME].funding
        first = await timer.settle()
        await set_index(server, "61000")
        second = await timer.settle()

        rows = await ok(rest.public("/fapi/v1/fundingRate", symbol=BTC))
        # No premium was sampled: the rate is the interest rate, 0.01% per interval.
        assert rows == [
            {
                "symbol": BTC,
                "fundingRate": "0.00010000",
                "fundingTime": first.command.ts,
                "markPrice": "60000.0",
            },
            {
                "symbol": BTC,
                "fundingRate": "0.00010000",
                "fundingTime": second.command.ts,
                "markPrice": "61000.0",
            },
        ]
        latest = await ok(rest.public("/fapi/v1/fundingRate", symbol=BTC, limit=1))
        assert latest == rows[1:]
        since = await ok(
            rest.public("/fapi/v1/fundingRate", symbol=BTC, startTime=first.command.ts, limit=1)
        )
        assert since == rows[:1]
        every_symbol = await ok(rest.public("/fapi/v1/fundingRate"))
        assert {row["symbol"] for row in every_symbol} == {BTC, "ETHUSDT"}
        assert len(every_symbol) == 4
        status, body = await rest.public("/fapi/v1/fundingRate", symbol="NOPEUSDT")
        assert (status, body["code"]) == (400, -1121)


def test_a_snapshot_from_before_funding_was_kept_restores_and_records() -> None:
    older = History([BTC])
    # What such a snapshot held: no funding, deleveraged or marks.
    state = {"orders": older.orders, "accounts": older.accounts, "trades": older.trades}
    restored = History([])
    restored.__setstate__(state)
    restored = pickle.loads(pickle.dumps(restored))
    restored.record(SettleFunding(7, 1_000, (FundingRate(BTC, 100),)), [])

    [settled] = restored.funding[BTC]
    assert (settled.rate, settled.ts, settled.mark_price) == (100, 1_000, None)
    assert restored.deleveraged == {}


def test_the_history_pickles_whole_in_either_kind_of_code() -> None:
    history = History([BTC])
    place = PlaceOrder(5, 1_000, 3, BTC, Side.BUY, OrderType.LIMIT, 2, 590_000, client_order_id="a")
    accepted = OrderAccepted(5, 11, 3, BTC, Side.BUY, OrderType.LIMIT, 2, 590_000, "a")
    history.record(place, [accepted])
    history.record(CancelOrder(6, 1_001, 3, 11), [OrderCanceled(6, 11, 3, BTC, CancelReason.USER)])

    restored = pickle.loads(pickle.dumps(history))
    assert restored.orders == history.orders
    assert restored.orders[11].status is OrderStatus.CANCELED
    assert list(restored.account(3).finished) == [11]
    assert restored.funding.keys() == {BTC}


@pytest.mark.asyncio
async def test_funding_info_shows_the_configured_cap_and_interval() -> None:
    async with running_server(funding_config(interval_s=8 * 3600)) as server:
        rest = await trader(server, "gus")
        rows = await ok(rest.public("/fapi/v1/fundingInfo"))
        assert rows == [
            {
                "symbol": symbol,
                "adjustedFundingRateCap": "0.00750000",
                "adjustedFundingRateFloor": "-0.00750000",
                "fundingIntervalHours": 8,
                "disclaimer": False,
            }
            for symbol in (BTC, "ETHUSDT")
        ]


@pytest.mark.asyncio
async def test_funding_info_is_empty_while_funding_is_off() -> None:
    async with running_server(manual_config()) as server:
        rest = await trader(server, "hal")
        assert await ok(rest.public("/fapi/v1/fundingInfo")) == []


# ---------------------------------------------------------------------------------------------
# Liquidation and auto-deleveraging
# ---------------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def bare() -> AsyncIterator[Server]:
    async with running_server(bare_config()) as running:
        yield running


@pytest.mark.asyncio
async def test_force_orders_after_a_liquidation_that_auto_deleverages(bare: Server) -> None:
    erin = await trader(bare, "erin", deposit="1000")
    bob = await trader(bare, "bob")
    await ok(erin.signed("POST", "/fapi/v1/marginType", symbol=BTC, marginType="ISOLATED"))
    await ok(erin.signed("POST", "/fapi/v1/leverage", symbol=BTC, leverage=50))
    await trade(bob, erin, "0.100")
    [position] = await ok(erin.signed("GET", "/fapi/v3/positionRisk", symbol=BTC))
    liquidation = Decimal(position["liquidationPrice"])
    assert await ok(erin.signed("GET", "/fapi/v1/forceOrders")) == []

    # Past the bankruptcy price too (1.2% below entry at 50x), so the empty fund would take
    # the position over at a loss and cannot.
    await set_index(bare, str((liquidation - 1000).quantize(Decimal("0.1"))))

    [liquidated] = await ok(erin.signed("GET", "/fapi/v1/forceOrders"))
    assert liquidated["clientOrderId"].startswith("autoclose-")
    assert (liquidated["symbol"], liquidated["side"], liquidated["status"]) == (
        BTC,
        "SELL",
        "FILLED",
    )
    assert (liquidated["origQty"], liquidated["executedQty"]) == ("0.100", "0.100")
    assert (liquidated["type"], liquidated["timeInForce"]) == ("LIMIT", "IOC")
    assert await ok(erin.signed("GET", "/fapi/v1/forceOrders", autoCloseType="ADL")) == []

    [closed] = await ok(bob.signed("GET", "/fapi/v1/forceOrders", autoCloseType="ADL"))
    assert closed["clientOrderId"] == "adl_autoclose"
    # Bob's short was bought back at the liquidated position's bankruptcy price.
    assert (closed["side"], closed["executedQty"]) == ("BUY", "0.100")
    assert closed["avgPrice"] == liquidated["price"]
    assert await ok(bob.signed("GET", "/fapi/v1/forceOrders", autoCloseType="LIQUIDATION")) == []
    assert await ok(bob.signed("GET", "/fapi/v3/positionRisk", symbol=BTC)) == []
    later = closed["time"] + 1
    assert await ok(bob.signed("GET", "/fapi/v1/forceOrders", startTime=later)) == []
    assert await ok(bob.signed("GET", "/fapi/v1/forceOrders", symbol="ETHUSDT")) == []
    status, body = await bob.signed("GET", "/fapi/v1/forceOrders", autoCloseType="MAYBE")
    assert (status, body["code"]) == (400, -1130)

    exchange = ccxt.binanceusdm(
        {"apiKey": erin.api_key, "secret": erin.api_secret, "options": {"fetchCurrencies": False}}
    )
    exchange.urls["api"] = ccxt_urls(base_url(bare))
    try:
        await exchange.load_markets()
        [mine] = await exchange.fetch_my_liquidations(SYMBOL)
    finally:
        await exchange.close()
    assert (mine["symbol"], mine["side"], mine["contracts"]) == (SYMBOL, "sell", 0.1)
    assert mine["price"] == float(liquidated["avgPrice"])


@pytest.mark.asyncio
async def test_adl_quantile_ranks_the_more_leveraged_winner_first(bare: Server) -> None:
    carol = await trader(bare, "carol")
    alice = await trader(bare, "alice")
    bob = await trader(bare, "bob", deposit="1000")
    await ok(bob.signed("POST", "/fapi/v1/marginType", symbol=BTC, marginType="ISOLATED"))
    await ok(bob.signed("POST", "/fapi/v1/leverage", symbol=BTC, leverage=20))
    await trade(carol, alice, "0.100")
    await trade(carol, bob, "0.100")
    assert await ok(alice.signed("GET", "/fapi/v1/adlQuantile", symbol="ETHUSDT")) == []

    await set_index(bare, "61000")

    def quantile(rows: list[dict[str, Any]]) -> int:
        [row] = rows
        assert row["symbol"] == BTC
        assert (row["adlQuantile"]["LONG"], row["adlQuantile"]["SHORT"]) == (0, 0)
        value: int = row["adlQuantile"]["BOTH"]
        return value

    # Both longs gained 1.67%; bob's at 20x isolated stands before alice's cross position
    # backed by her whole 100,000 wallet.
    assert quantile(await ok(bob.signed("GET", "/fapi/v1/adlQuantile"))) == 4
    assert quantile(await ok(alice.signed("GET", "/fapi/v1/adlQuantile"))) == 2
    # The only short is first in its queue, winning or not.
    assert quantile(await ok(carol.signed("GET", "/fapi/v1/adlQuantile", symbol=BTC))) == 4
