"""The assembled runtime: start from a config, a market to trade on, a clean stop."""

from __future__ import annotations

import pytest

from exchange.core.ledger import INSURANCE_FUND_ID
from exchange.core.numbers import ATOMS_PER_UNIT
from exchange.runtime.clock import ManualClock
from exchange.runtime.config import load_config
from exchange.runtime.runtime import build_runtime
from tests.runtime.helpers import CONFIGS, START_MS, until


@pytest.mark.asyncio
async def test_the_manual_config_starts_a_quoted_market_with_a_funded_demo_account() -> None:
    runtime = build_runtime(load_config(CONFIGS / "manual.toml"), clock=ManualClock(START_MS))
    core = runtime.exchange
    async with runtime.running():
        demo = runtime.demo_accounts["demo"]
        assert core.ledger.accounts[demo].wallet == 10_000 * ATOMS_PER_UNIT
        assert core.ledger.accounts[INSURANCE_FUND_ID].wallet == 1_000_000 * ATOMS_PER_UNIT
        assert core.markets["BTCUSDT"].index_price == 600_000
        assert core.markets["BTCUSDT"].mark_price == 600_000
        assert runtime.house_account_id is not None
        assert runtime.noise_taker is None
        assert runtime.funding.next_funding_ms is None

        def quoted() -> bool:
            return all(
                len(core.open_orders(runtime.house_account_id or 0, symbol)) == 10
                for symbol in ("BTCUSDT", "ETHUSDT")
            )

        await until(runtime.sequencer, quoted)
    assert not runtime.sequencer.is_running
    core.check_invariants()


@pytest.mark.asyncio
async def test_the_default_config_starts_with_its_seed_and_every_agent() -> None:
    config = load_config(CONFIGS / "default.toml")
    runtime = build_runtime(config, clock=ManualClock(START_MS))
    async with runtime.running():
        assert runtime.feed.seed == config.feed.seed
        assert runtime.market_maker is not None
        assert runtime.noise_taker is not None
        assert runtime.funding.next_funding_ms is not None
        assert runtime.exchange.markets["ETHUSDT"].index_price == 320_000
    runtime.exchange.check_invariants()
