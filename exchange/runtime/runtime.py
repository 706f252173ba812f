"""The runtime assembled from a config: exchange, sequencer, feed, funding and agents.

`build_runtime(config)` wires the parts; `Runtime.start()` opens the system accounts,
publishes the first marks, and starts the background tasks; `Runtime.stop()` ends them and
then the sequencer. The server's composition root adds the API on top.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from exchange.core.commands import Deposit
from exchange.core.exchange import Exchange
from exchange.core.ledger import INSURANCE_FUND_ID
from exchange.core.numbers import atoms, rate
from exchange.runtime.agents import MarketMaker, NoiseTaker, open_account
from exchange.runtime.clock import Clock, SystemClock
from exchange.runtime.config import Config
from exchange.runtime.feed import Feed
from exchange.runtime.funding import FundingTimer
from exchange.runtime.sequencer import Journal, Sequencer

log = structlog.get_logger("paperex.runtime")

HOUSE_ACCOUNT_NAME = "house"
NOISE_ACCOUNT_NAME = "noise"


def build_exchange(config: Config) -> Exchange:
    """Create the core exchange with the config's instruments and settings."""
    return Exchange(
        config.instruments.values(),
        margin_call_ratio=rate(config.exchange.margin_call_ratio, "margin_call_ratio"),
        default_self_trade_prevention=config.exchange.self_trade_prevention,
    )


@dataclass(slots=True)
class Runtime:
    """Everything that runs the exchange, wired together; see `build_runtime`."""

    config: Config
    clock: Clock
    exchange: Exchange
    sequencer: Sequencer
    funding: FundingTimer
    feed: Feed
    house_account_id: int | None = None
    noise_account_id: int | None = None
    demo_accounts: dict[str, int] = field(default_factory=dict)
    market_maker: MarketMaker | None = None
    noise_taker: NoiseTaker | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        """Start the sequencer, fund the system accounts, publish marks, start the tasks.

        Demo accounts from the config are opened with their deposits; their ids are in
        `demo_accounts` by name (the API gives them keys).
        """
        config = self.config
        self.sequencer.start()
        insurance = atoms(config.insurance_fund_deposit, "insurance_fund_deposit")
        if insurance:
            await self.sequencer.submit(
                lambda seq, ts: Deposit(seq, ts, INSURANCE_FUND_ID, insurance)
            )
        first_marks = self.feed.publish(force=True)
        if first_marks is not None:
            await first_marks
        agents = config.agents
        if agents.market_maker.enabled:
            house = atoms(config.house_deposit, "house_deposit")
            self.house_account_id = await open_account(self.sequencer, HOUSE_ACCOUNT_NAME, house)
            self.market_maker = MarketMaker(
                agents.market_maker, self.sequencer, self.exchange, self.house_account_id
            )
        if agents.noise_taker.enabled:
            deposit = atoms(agents.noise_taker.deposit, "noise_taker.deposit")
            self.noise_account_id = await open_account(self.sequencer, NOISE_ACCOUNT_NAME, deposit)
            self.noise_taker = NoiseTaker(
                agents.noise_taker,
                self.sequencer,
                self.exchange,
                self.noise_account_id,
                seed=self.feed.seed + 1,
            )
        for demo in config.demo_accounts:
            self.demo_accounts[demo.name] = await open_account(
                self.sequencer, demo.name, atoms(demo.deposit, "deposit")
            )
        self._spawn(self.feed.run(), "feed")
        if config.funding.enabled:
            self._spawn(self.funding.run(), "funding")
        if self.market_maker is not None:
            self._spawn(self.market_maker.run(), "market_maker")
        if self.noise_taker is not None:
            self._spawn(self.noise_taker.run(), "noise_taker")
        log.info(
            "runtime_started",
            seed=self.feed.seed,
            feed=config.feed.kind,
            symbols=sorted(self.exchange.markets),
            seq=self.sequencer.last_seq,
        )

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        task.add_done_callback(_report_crash)
        self.tasks.append(task)

    async def stop(self) -> None:
        """Cancel the background tasks, then apply what is queued and stop the sequencer."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        if self.market_maker is not None:
            self.market_maker.close()
        await self.sequencer.stop()
        log.info("runtime_stopped", seq=self.sequencer.last_seq)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        """Run for the duration of the block."""
        await self.start()
        try:
            yield self
        finally:
            await self.stop()


def _report_crash(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("task_crashed", task=task.get_name(), exc_info=error)


def build_runtime(
    config: Config, *, clock: Clock | None = None, journal: Journal | None = None
) -> Runtime:
    """Wire an exchange, its sequencer, the funding timer and the feed from a config."""
    clock = clock if clock is not None else SystemClock()
    exchange = build_exchange(config)
    sequencer = Sequencer(exchange, clock, journal=journal)
    funding = FundingTimer(config.funding, exchange, sequencer, clock)
    feed = Feed(config.feed, exchange, sequencer, clock, funding=funding)
    return Runtime(config, clock, exchange, sequencer, funding, feed)
