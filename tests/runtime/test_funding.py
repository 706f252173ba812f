"""Funding: the rate formula and its clamps, premium sampling, settlement every interval."""

from __future__ import annotations

import pytest

from exchange.core.commands import PlaceOrder
from exchange.core.enums import LedgerEntryKind, OrderType, Side
from exchange.core.events import LedgerEntry
from exchange.core.numbers import rate
from exchange.runtime.config import FundingConfig
from exchange.runtime.funding import FundingTimer, funding_rate, premium_sample
from tests.runtime.helpers import funded_account, set_marks, stack

INTERVAL_MS = 8 * 3600 * 1000
INTEREST = rate("0.0001")
CAP = rate("0.0075")


@pytest.mark.parametrize(
    ("premium", "expected"),
    [
        ("0", "0.0001"),  # no premium: longs pay the interest rate
        ("0.0003", "0.0001"),  # within 0.05% of the interest rate: the interest rate
        ("-0.0003", "0.0001"),
        ("0.001", "0.0005"),  # further away: the premium, pulled back by at most 0.05%
        ("-0.001", "-0.0005"),
        ("0.01", "0.0075"),  # capped
        ("-0.02", "-0.0075"),
    ],
)
def test_the_rate_is_the_premium_pulled_towards_interest_then_capped(
    premium: str, expected: str
) -> None:
    assert funding_rate(rate(premium), INTEREST, CAP) == rate(expected)


def test_a_premium_sample_is_mid_minus_index_over_index() -> None:
    # Index 60,000.0, bid 60,010.0, ask 60,030.0: mid 60,020.0, premium 1/3000.
    assert premium_sample(600_000, 600_100, 600_300) == 33_333
    assert premium_sample(600_000, 599_900, 600_000) == -8_333


def test_the_premium_index_averages_the_samples_of_the_interval() -> None:
    core, clock, sequencer = stack()
    timer = FundingTimer(FundingConfig(), core, sequencer, clock)
    assert timer.current_rate("BTCUSDT") == INTEREST
    timer.sample("BTCUSDT", 600_000, 600_100, 600_300)  # +0.0333%
    timer.sample("BTCUSDT", 600_000, 601_100, 601_300)  # +0.2%
    timer.sample("BTCUSDT", 600_000, None, 601_300)  # one-sided book: no sample
    assert timer.premium_index("BTCUSDT") == (33_333 + 200_000) // 2
    assert timer.current_rate("BTCUSDT") == 116_666 - rate("0.0005")
    assert timer.current_rate("ETHUSDT") == INTEREST


def test_funding_times_fall_on_whole_intervals_since_the_epoch() -> None:
    core, clock, sequencer = stack()
    clock.set(60_000 * INTERVAL_MS + 1234)
    timer = FundingTimer(FundingConfig(), core, sequencer, clock)
    assert timer.next_funding_ms == 60_001 * INTERVAL_MS
    assert not timer.due()
    clock.set(60_001 * INTERVAL_MS)
    assert timer.due()


def test_funding_off_has_no_funding_time_and_no_rate() -> None:
    core, clock, sequencer = stack()
    timer = FundingTimer(FundingConfig(enabled=False), core, sequencer, clock)
    assert timer.next_funding_ms is None
    assert timer.current_rate("BTCUSDT") == 0
    clock.advance(10 * INTERVAL_MS)
    assert not timer.due()


@pytest.mark.asyncio
async def test_settlement_makes_longs_pay_shorts_and_starts_the_next_interval() -> None:
    core, clock, sequencer = stack()
    clock.set(60_000 * INTERVAL_MS + 5)
    timer = FundingTimer(FundingConfig(), core, sequencer, clock)
    btc = core.markets["BTCUSDT"].instrument
    async with sequencer.running():
        long_id = await funded_account(sequencer, "long", "10000")
        short_id = await funded_account(sequencer, "short", "10000")
        await set_marks(sequencer, BTCUSDT=600_000)
        qty, price = btc.qty_lots("0.01"), btc.price_ticks("60000")
        await sequencer.submit(
            lambda seq, ts: PlaceOrder(
                seq, ts, short_id, "BTCUSDT", Side.SELL, OrderType.LIMIT, qty, price
            )
        )
        await sequencer.submit(
            lambda seq, ts: PlaceOrder(seq, ts, long_id, "BTCUSDT", Side.BUY, OrderType.MARKET, qty)
        )
        clock.set(60_001 * INTERVAL_MS)
        assert timer.due()
        result = await timer.settle()
    payments = {
        event.account_id: event.amount
        for event in result.events
        if isinstance(event, LedgerEntry) and event.kind is LedgerEntryKind.FUNDING
    }
    # 0.01 BTC at 60,000 is 600 USDT of notional; 0.01% of it is 0.06 USDT.
    assert payments == {long_id: -6_000_000, short_id: 6_000_000}
    assert timer.next_funding_ms == 60_002 * INTERVAL_MS
    assert not timer.due()
    core.check_invariants()
