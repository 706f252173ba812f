"""Liquidity agents through a real sequencer and a real exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio

from exchange.core.commands import PlaceOrder
from exchange.core.enums import OrderType, Side
from exchange.core.events import OrderFilled
from exchange.core.exchange import Exchange
from exchange.core.numbers import ATOMS_PER_UNIT
from exchange.runtime.agents import MarketMaker, NoiseTaker, open_account
from exchange.runtime.config import MarketMakerConfig, NoiseTakerConfig
from exchange.runtime.feed import Feed
from exchange.runtime.sequencer import Sequencer
from tests.runtime.helpers import funded_account, manual_config, stack, until

LEVELS = 3
LADDER = MarketMakerConfig(
    levels=LEVELS, spread_bps=Decimal(2), step_bps=Decimal(1), size=Decimal(10_000)
)


class Market:
    """A running exchange with a manual feed and a market maker on a house account."""

    def __init__(self, core: Exchange, sequencer: Sequencer, feed: Feed, maker: MarketMaker):
        self.core = core
        self.sequencer = sequencer
        self.feed = feed
        self.maker = maker

    def levels(self, symbol: str = "BTCUSDT") -> tuple[list[int], list[int]]:
        depth = self.core.depth(symbol)
        bids = depth["bids"]
        asks = depth["asks"]
        assert isinstance(bids, list)
        assert isinstance(asks, list)
        return [price for price, _ in bids], [price for price, _ in asks]

    async def quoted_around(self, index: int, symbol: str = "BTCUSDT") -> None:
        def ready() -> bool:
            bids, asks = self.levels(symbol)
            return (
                len(bids) == LEVELS
                and len(asks) == LEVELS
                and bids[0] < index < asks[0]
                and self.maker._quoted_index.get(symbol) == index
            )

        await until(self.sequencer, ready)


@pytest_asyncio.fixture
async def market() -> AsyncIterator[Market]:
    cfg = manual_config()
    core, clock, sequencer = stack(cfg)
    feed = Feed(cfg.feed, core, sequencer, clock)
    async with sequencer.running():
        house = await open_account(sequencer, "house", 100_000_000 * ATOMS_PER_UNIT)
        maker = MarketMaker(LADDER, sequencer, core, house)
        first_marks = feed.publish(force=True)
        assert first_marks is not None
        await first_marks
        task = asyncio.create_task(maker.run())
        try:
            yield Market(core, sequencer, feed, maker)
        finally:
            task.cancel()
            maker.close()
            with pytest.raises(asyncio.CancelledError):
                await task
    core.check_invariants()


@pytest.mark.asyncio
async def test_open_account_creates_the_account_with_its_deposit() -> None:
    core, _, sequencer = stack()
    async with sequencer.running():
        account_id = await open_account(sequencer, "house", 5 * ATOMS_PER_UNIT)
    assert core.ledger.accounts[account_id].wallet == 5 * ATOMS_PER_UNIT


@pytest.mark.asyncio
async def test_the_market_maker_quotes_its_ladder_around_the_index(market: Market) -> None:
    await market.quoted_around(600_000)
    bids, asks = market.levels()
    # Index 60,000.0, spread 2 bps (1 bp each side), then a level every 1 bp.
    assert bids == [599_940, 599_880, 599_820]
    assert asks == [600_060, 600_120, 600_180]
    btc = market.core.markets["BTCUSDT"].instrument
    # 10,000 USDT a level: 0.167 BTC at about 60,000 (rounded up to whole lots).
    sizes = {order.qty for order in market.core.open_orders(market.maker.account_id, "BTCUSDT")}
    assert sizes == {btc.qty_lots("0.167")}
    await market.quoted_around(300_000, "ETHUSDT")


@pytest.mark.asyncio
async def test_the_ladder_follows_the_index_when_it_moves(market: Market) -> None:
    await market.quoted_around(600_000)
    await market.feed.set_index("BTCUSDT", 620_000)
    await market.quoted_around(620_000)
    bids, asks = market.levels()
    assert bids == [619_938, 619_876, 619_814]
    assert asks == [620_062, 620_124, 620_186]
    # The old quotes are gone: only one ladder rests.
    assert len(market.core.open_orders(market.maker.account_id, "BTCUSDT")) == 2 * LEVELS


@pytest.mark.asyncio
async def test_a_level_traded_away_is_put_back(market: Market) -> None:
    await market.quoted_around(600_000)
    taker = await funded_account(market.sequencer, "taker", "100000")
    btc = market.core.markets["BTCUSDT"].instrument
    qty = btc.qty_lots("0.167")
    result = await market.sequencer.submit(
        lambda seq, ts: PlaceOrder(seq, ts, taker, "BTCUSDT", Side.BUY, OrderType.MARKET, qty)
    )
    fills = [event for event in result.events if isinstance(event, OrderFilled)]
    assert [fill.last_px for fill in fills] == [600_060, 600_060]
    # The best ask was taken; the maker puts the whole ladder back.
    await until(market.sequencer, lambda: market.levels()[1] == [600_060, 600_120, 600_180])


@pytest.mark.asyncio
async def test_the_noise_taker_trades_with_the_maker_from_a_seeded_generator(
    market: Market,
) -> None:
    await market.quoted_around(600_000)
    await market.quoted_around(300_000, "ETHUSDT")
    sequencer, core = market.sequencer, market.core
    config = NoiseTakerConfig(min_size=Decimal(200), max_size=Decimal(2000))
    noise = await funded_account(sequencer, "noise", "1000000")
    taker = NoiseTaker(config, sequencer, core, noise, seed=5)
    twin = NoiseTaker(config, sequencer, core, noise, seed=5)
    assert [taker.next_order() for _ in range(20)] == [twin.next_order() for _ in range(20)]
    await taker.prepare()
    assert core.ledger.accounts[noise].positions["BTCUSDT"].leverage == config.leverage
    result = await taker.trade_once()
    assert result is not None
    fills = [event for event in result.events if isinstance(event, OrderFilled)]
    assert fills
    assert {fill.account_id for fill in fills} == {noise, market.maker.account_id}
    taker_fill = next(fill for fill in fills if fill.account_id == noise)
    notional = core.markets[taker_fill.symbol].instrument.notional(
        taker_fill.last_px, sum(fill.last_qty for fill in fills if fill.account_id == noise)
    )
    assert 200 * ATOMS_PER_UNIT <= notional <= 2100 * ATOMS_PER_UNIT
