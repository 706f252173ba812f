"""Builders for runtime tests: the shipped instruments, configs in code, a waiting helper."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from exchange.core.commands import Command, CreateAccount, Deposit, MarkPrice, UpdateMark
from exchange.core.events import AccountCreated, Event
from exchange.core.exchange import Exchange
from exchange.core.numbers import atoms
from exchange.runtime.clock import ManualClock
from exchange.runtime.config import Config, loads_config
from exchange.runtime.sequencer import Sequencer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
START_MS = 1_700_000_000_000


def config(text: str = "") -> Config:
    """Return a config read from TOML text, with the shipped instruments."""
    return loads_config(text, CONFIGS)


def manual_config(extra: str = "") -> Config:
    """Return a manual-feed config: BTC at 60,000 and ETH at 3,000, mark = index."""
    return config(
        """
        [feed]
        kind = "manual"
        mark = "index"
        [feed.symbols.BTCUSDT]
        start_price = "60000"
        [feed.symbols.ETHUSDT]
        start_price = "3000"
        """
        + extra
    )


def exchange(cfg: Config | None = None) -> Exchange:
    """Return an empty exchange with the shipped BTCUSDT and ETHUSDT."""
    cfg = cfg if cfg is not None else manual_config()
    return Exchange(cfg.instruments.values())


def stack(
    cfg: Config | None = None, start_ms: int = START_MS
) -> tuple[Exchange, ManualClock, Sequencer]:
    """Return an exchange, a manual clock at start_ms and a (not started) sequencer."""
    core = exchange(cfg)
    clock = ManualClock(start_ms)
    return core, clock, Sequencer(core, clock)


async def until(sequencer: Sequencer, predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait until predicate holds after some applied command; fail after timeout seconds."""
    if predicate():
        return
    reached = asyncio.Event()

    def listener(command: Command, events: list[Event]) -> None:
        if predicate():
            reached.set()

    unsubscribe = sequencer.subscribe(listener)
    try:
        await asyncio.wait_for(reached.wait(), timeout)
    finally:
        unsubscribe()


async def funded_account(sequencer: Sequencer, name: str, deposit: str) -> int:
    """Create an account with a deposit in USDT and return its id."""
    result = await sequencer.submit(lambda seq, ts: CreateAccount(seq, ts, name))
    (created,) = [event for event in result.events if isinstance(event, AccountCreated)]
    amount = atoms(deposit)
    await sequencer.submit(lambda seq, ts: Deposit(seq, ts, created.account_id, amount))
    return created.account_id


async def set_marks(sequencer: Sequencer, **marks: int) -> None:
    """Publish index = mark for each symbol given, in ticks."""
    prices = tuple(MarkPrice(symbol, price, price) for symbol, price in marks.items())
    await sequencer.submit(lambda seq, ts: UpdateMark(seq, ts, prices))
