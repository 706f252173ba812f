"""The risk index's thresholds: early by at most a tick, never late."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.core.instruments import Instrument
from exchange.core.margin import maintenance_margin
from exchange.core.numbers import RATE_SCALE
from exchange.core.risk_index import threshold_ticks
from exchange.instrument_config import load_instruments

SHIPPED = load_instruments(Path(__file__).parents[2] / "configs" / "instruments.toml")
BTC = SHIPPED["BTCUSDT"]
CALL_RATIO = 80 * RATE_SCALE // 100


def reached(instrument: Instrument, qty: int, cost: int, base: int, ratio: int, mark: int) -> bool:
    """The exact test the exchange runs: maintenance / margin balance >= ratio."""
    value = instrument.notional(mark, qty)
    notional = abs(value)
    maintenance = maintenance_margin(notional, instrument.bracket_for(notional))
    balance = base + value - cost
    if maintenance <= 0:
        return False
    return balance <= 0 or maintenance * RATE_SCALE >= ratio * balance


positions = st.tuples(
    st.integers(1, 2_000_000).map(lambda lots: lots),  # up to 2,000 BTC, across many tiers
    st.integers(200_000, 1_500_000),  # entry between 20,000 and 150,000
    st.integers(1, 125),  # leverage the margin was sized at
    st.sampled_from([1, -1]),
    st.sampled_from([CALL_RATIO, RATE_SCALE]),
)


@settings(max_examples=500, deadline=None)
@given(positions)
def test_a_threshold_is_exact_to_the_tick_on_the_healthy_side(
    position: tuple[int, int, int, int, int],
) -> None:
    lots, entry, leverage, side, ratio = position
    qty = side * lots
    cost = BTC.notional(entry, qty)
    base = abs(cost) // leverage
    threshold = threshold_ticks(BTC, qty, cost, base, ratio)
    if threshold is None:
        # No positive price: a long never reaches the ratio; a short always has.
        assert reached(BTC, qty, cost, base, ratio, 1) is (qty < 0)
        return
    if qty > 0:
        # Reached at the threshold and below it, not two ticks above: the index wakes a long
        # at mark <= threshold + 1 and sees recovery at mark > threshold - 1.
        assert reached(BTC, qty, cost, base, ratio, threshold)
        assert not reached(BTC, qty, cost, base, ratio, threshold + 2)
        if threshold > 1:
            assert reached(BTC, qty, cost, base, ratio, threshold - 1)
    else:
        assert reached(BTC, qty, cost, base, ratio, threshold)
        assert not reached(BTC, qty, cost, base, ratio, max(1, threshold - 2)) or threshold <= 2
        assert reached(BTC, qty, cost, base, ratio, threshold + 1)
