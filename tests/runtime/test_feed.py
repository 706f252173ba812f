"""The feed: seeded synthetic paths, replay files, operators' moves, and the mark formula."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from exchange.core.commands import PlaceOrder, UpdateMark
from exchange.core.enums import OrderType, Side
from exchange.core.events import MarkUpdated
from exchange.core.exchange import Exchange
from exchange.runtime.clock import ManualClock
from exchange.runtime.config import Config, FundingConfig
from exchange.runtime.feed import Feed, FeedError, SyntheticSource, round_to_ticks
from exchange.runtime.funding import FundingTimer
from exchange.runtime.sequencer import Sequencer
from tests.runtime.helpers import START_MS, config, funded_account, manual_config, stack

INTERVAL_MS = 8 * 3600 * 1000


def synthetic_config(seed: int) -> Config:
    return config(
        f"""
        [feed]
        kind = "synthetic"
        seed = {seed}
        mark = "index"
        [feed.symbols.BTCUSDT]
        start_price = "60000"
        volatility = "0.8"
        jump_probability = "0.05"
        jump_size = "0.01"
        [feed.symbols.ETHUSDT]
        start_price = "3000"
        """
    )


def feed_for(
    cfg: Config, *, funding: bool = False, start_ms: int = START_MS
) -> tuple[Exchange, ManualClock, Sequencer, Feed]:
    core, clock, sequencer = stack(cfg, start_ms)
    timer = FundingTimer(FundingConfig(), core, sequencer, clock) if funding else None
    return core, clock, sequencer, Feed(cfg.feed, core, sequencer, clock, funding=timer)


async def synthetic_path(seed: int, ticks: int = 100) -> list[tuple[int | None, int | None]]:
    core, clock, sequencer, feed = feed_for(synthetic_config(seed))
    path = []
    async with sequencer.running():
        for _ in range(ticks):
            clock.advance(1000)
            await feed.tick()
            path.append((core.markets["BTCUSDT"].index_price, core.markets["ETHUSDT"].index_price))
    return path


# ---------------------------------------------------------------------- synthetic


@pytest.mark.asyncio
async def test_a_seed_gives_the_same_synthetic_path_every_time() -> None:
    first = await synthetic_path(7)
    assert first == await synthetic_path(7)
    assert first != await synthetic_path(8)
    btc = [price for price, _ in first]
    assert all(isinstance(price, int) for price in btc)
    assert len(set(btc)) > 50  # it moves
    assert all(480_000 < price < 720_000 for price in btc if price is not None)


def test_a_restored_synthetic_source_continues_the_same_path() -> None:
    cfg = synthetic_config(11)
    core = Exchange(cfg.instruments.values())
    feed = Feed(cfg.feed, core, Sequencer(core, ManualClock()), ManualClock())
    for _ in range(30):
        feed.source.step(0)
    saved = json.loads(json.dumps(feed.state()))
    expected = []
    for _ in range(30):
        feed.source.step(0)
        expected.append(feed.source.price("BTCUSDT"))
    other = Feed(cfg.feed, core, Sequencer(core, ManualClock()), ManualClock())
    other.restore(saved)
    continued = []
    for _ in range(30):
        other.source.step(0)
        continued.append(other.source.price("BTCUSDT"))
    assert continued == expected


def test_synthetic_prices_are_rounded_to_whole_ticks() -> None:
    source = SyntheticSource(1, {}, 1000)
    assert source.price("BTCUSDT") is None
    cfg = synthetic_config(3)
    core = Exchange(cfg.instruments.values())
    feed = Feed(cfg.feed, core, Sequencer(core, ManualClock()), ManualClock())
    assert feed.index("BTCUSDT") == 600_000  # 60,000.0 in ticks of 0.1
    assert feed.index("ETHUSDT") == 300_000  # 3,000.00 in ticks of 0.01


def test_round_to_ticks_rounds_half_to_even_and_never_to_zero() -> None:
    tick = Decimal("0.1")
    assert round_to_ticks(Decimal("60000.04"), tick) == 600_000
    assert round_to_ticks(Decimal("60000.05"), tick) == 600_000
    assert round_to_ticks(Decimal("60000.15"), tick) == 600_002
    assert round_to_ticks(Decimal("60000.06"), tick) == 600_001
    assert round_to_ticks(Decimal("0.01"), tick) == 1


# ---------------------------------------------------------------------- replay


@pytest.mark.asyncio
async def test_a_replay_plays_the_file_at_its_speed_and_holds_the_last_price(
    tmp_path: Path,
) -> None:
    btc = tmp_path / "btc.csv"
    btc.write_text("timestamp_ms,price\n1000,60000.04\n2000,60000.05\n3000,60000.15\n4000,61000\n")
    eth = tmp_path / "eth.csv"
    eth.write_text("# ETH\n5000,3000.001\n")
    cfg = config(
        f"""
        [feed]
        kind = "replay"
        speed = "2"
        mark = "index"
        [feed.symbols.BTCUSDT]
        replay_file = "{btc}"
        [feed.symbols.ETHUSDT]
        replay_file = "{eth}"
        """
    )
    core, clock, sequencer, feed = feed_for(cfg)
    seen = []
    async with sequencer.running():
        for step in (0, 500, 500, 1000, 5000):
            clock.advance(step)
            await feed.tick()
            seen.append(core.markets["BTCUSDT"].index_price)
    # At speed 2 each 500 ms of clock is a second of recording; prices rounded to the tick.
    assert seen == [600_000, 600_000, 600_002, 610_000, 610_000]
    assert core.markets["ETHUSDT"].index_price == 300_000


def test_a_replay_file_with_a_bad_row_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("1000,60000\n2000,sixty\n")
    cfg = config(
        f"""
        [feed]
        kind = "replay"
        [feed.symbols.BTCUSDT]
        replay_file = "{bad}"
        [feed.symbols.ETHUSDT]
        replay_file = "{bad}"
        """
    )
    with pytest.raises(FeedError, match=r"bad\.csv:2"):
        feed_for(cfg)


# ---------------------------------------------------------------------- operators


@pytest.mark.asyncio
async def test_setting_the_index_publishes_the_mark_at_once() -> None:
    core, _, sequencer, feed = feed_for(manual_config())
    async with sequencer.running():
        result = await feed.set_index("BTCUSDT", 650_000)
        assert result.events == [MarkUpdated(result.command.seq, "BTCUSDT", 650_000, 650_000)]
        assert core.markets["BTCUSDT"].mark_price == 650_000
        # Nothing moved since: a tick sends no command.
        assert await feed.tick() is not None  # ETHUSDT's first mark
        last = sequencer.last_seq
        assert await feed.tick() is None
        assert sequencer.last_seq == last


@pytest.mark.asyncio
async def test_set_index_queues_the_mark_before_the_next_command() -> None:
    _, _, sequencer, feed = feed_for(manual_config())
    async with sequencer.running():
        feed.set_index("BTCUSDT", 650_000)  # not awaited: it is queued already
        trader = await funded_account(sequencer, "t", "100")
    assert trader == 1
    assert sequencer.exchange.markets["BTCUSDT"].index_price == 650_000


@pytest.mark.asyncio
async def test_a_shock_moves_the_index_by_a_percentage_exactly() -> None:
    core, _, sequencer, feed = feed_for(manual_config())
    async with sequencer.running():
        await feed.shock("BTCUSDT", "-10")
        assert core.markets["BTCUSDT"].index_price == 540_000
        await feed.shock("ETHUSDT", Decimal("2.5"))
        assert core.markets["ETHUSDT"].index_price == 307_500


@pytest.mark.asyncio
async def test_a_shock_with_a_duration_ramps_the_index_then_stays_there() -> None:
    core, clock, sequencer, feed = feed_for(manual_config())
    market = core.markets["BTCUSDT"]
    async with sequencer.running():
        await feed.shock("BTCUSDT", "-20", duration_s=10)
        assert market.index_price == 600_000
        clock.advance(2_500)
        await feed.tick()
        assert market.index_price == 570_000
        clock.advance(2_500)
        await feed.tick()
        assert market.index_price == 540_000
        clock.advance(10_000)
        await feed.tick()
        assert market.index_price == 480_000
        clock.advance(1_000)
        await feed.tick()
        assert feed.index("BTCUSDT") == 480_000


def test_operators_get_clear_errors() -> None:
    _, _, _, feed = feed_for(manual_config())
    with pytest.raises(FeedError, match="unknown symbol"):
        feed.set_index("DOGEUSDT", 1)
    with pytest.raises(FeedError, match="positive"):
        feed.set_index("BTCUSDT", 0)
    with pytest.raises(FeedError, match="above -100"):
        feed.shock("BTCUSDT", "-100")


# ---------------------------------------------------------------------- the mark


async def market_with_book(feed: Feed, sequencer: Sequencer) -> None:
    """Index 60,000.0; a trade at 60,005.0; then a bid at 60,010.0 and an ask at 60,030.0."""
    btc = feed.instruments["BTCUSDT"]
    qty = btc.qty_lots("0.002")
    maker = await funded_account(sequencer, "maker", "100000")
    taker = await funded_account(sequencer, "taker", "100000")
    await feed.set_index("BTCUSDT", 600_000)

    def limit(account: int, side: Side, price: str) -> None:
        ticks = btc.price_ticks(price)
        sequencer.enqueue(
            lambda seq, ts: PlaceOrder(
                seq, ts, account, "BTCUSDT", side, OrderType.LIMIT, qty, ticks
            )
        )

    limit(maker, Side.SELL, "60005")
    limit(taker, Side.BUY, "60005")
    limit(maker, Side.BUY, "60010")
    await sequencer.submit(
        lambda seq, ts: PlaceOrder(
            seq, ts, maker, "BTCUSDT", Side.SELL, OrderType.LIMIT, qty, btc.price_ticks("60030")
        )
    )


def premium_config(band: str = "0.01", mark: str = "premium") -> Config:
    return config(
        f"""
        [feed]
        kind = "manual"
        mark = "{mark}"
        mark_band = "{band}"
        [feed.symbols.BTCUSDT]
        start_price = "60000"
        """
    )


@pytest.mark.asyncio
async def test_the_mark_is_the_median_of_funding_basis_and_last_price() -> None:
    # Half an interval before funding: price1 carries half the funding rate.
    half_way = 60_000 * INTERVAL_MS + INTERVAL_MS // 2
    core, _, sequencer, feed = feed_for(premium_config(), funding=True, start_ms=half_way)
    async with sequencer.running():
        await market_with_book(feed, sequencer)
        result = await feed.tick()
    assert result is not None
    assert isinstance(result.command, UpdateMark)
    # price1 = 60,000 x (1 + 0.0001 x 0.5) = 60,003.0; price2 = 60,000 + (60,020 - 60,000)
    # = 60,020.0; last trade 60,005.0. The median is the last trade.
    assert feed.mark("BTCUSDT") == 600_050
    assert core.markets["BTCUSDT"].mark_price == 600_050
    assert core.markets["BTCUSDT"].index_price == 600_000


@pytest.mark.asyncio
async def test_the_mark_stays_within_its_band_around_the_index() -> None:
    core, _, sequencer, feed = feed_for(premium_config(band="0.00005"), funding=True)
    async with sequencer.running():
        await market_with_book(feed, sequencer)
        await feed.tick()
    # The median (60,005.0) is more than 0.005% above the index: clamped to 60,003.0.
    assert core.markets["BTCUSDT"].mark_price == 600_030


@pytest.mark.asyncio
async def test_mark_index_makes_the_mark_equal_the_index() -> None:
    core, _, sequencer, feed = feed_for(premium_config(mark="index"), funding=True)
    async with sequencer.running():
        await market_with_book(feed, sequencer)
        await feed.tick()
    assert core.markets["BTCUSDT"].mark_price == 600_000
