"""The runtime assembled from a config: exchange, sequencer, feed, funding and agents.

`build_runtime(config)` wires the parts; `Runtime.start()` opens the system accounts,
publishes the first marks, and starts the background tasks; `Runtime.stop()` ends them and
then the sequencer. The server's composition root adds the API on top.

With a data directory (`build_runtime(config, data_dir=...)`) the runtime is durable: it
starts from the newest valid snapshot, `start()` first replays the journal after it through
the sequencer's apply path (listeners see every command again), and only a fresh directory
gets the system accounts and the insurance deposit; a restart finds them in the state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from exchange.core.commands import Deposit, SettleFunding
from exchange.core.exchange import Exchange
from exchange.core.ledger import INSURANCE_FUND_ID
from exchange.core.numbers import atoms, rate
from exchange.runtime.agents import MarketMaker, NoiseTaker, open_account
from exchange.runtime.clock import Clock, SystemClock
from exchange.runtime.config import Config
from exchange.runtime.feed import Feed, FeedError
from exchange.runtime.funding import FundingTimer
from exchange.runtime.sequencer import Journal, Sequencer
from exchange.runtime.snapshot import PreparedSnapshot, Snapshot
from exchange.runtime.storage import DataDir, StorageError

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


@dataclass(frozen=True, slots=True)
class Recovery:
    """What start-up rebuilt from the data directory."""

    snapshot_seq: int
    replayed: int
    dropped_tail: int | None
    seq: int
    state_hash: str


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
    storage: DataDir | None = None
    snapshot: Snapshot | None = None
    """The snapshot the exchange was loaded from, if any (the journal after it is replayed)."""
    snapshot_providers: dict[str, Callable[[], Any]] = field(default_factory=dict)
    """Named parts of the runtime's state written into each snapshot next to the exchange."""
    recovery: Recovery | None = None
    _snapshot_seq: int = 0
    _snapshot_ms: int = 0
    _snapshotting: bool = False
    _fresh: bool = True
    _snapshot_writing: asyncio.Future[Any] | None = None

    @property
    def restored(self) -> dict[str, Any]:
        """Return the runtime state of the snapshot loaded on start (empty without one)."""
        return {} if self.snapshot is None else self.snapshot.runtime

    async def start(self) -> None:
        """Start the sequencer, fund the system accounts, publish marks, start the tasks.

        Demo accounts from the config are opened with their deposits; their ids are in
        `demo_accounts` by name (the API gives them keys). With a data directory, the
        journal is replayed first and accounts already in the state are reused.
        """
        config = self.config
        if self.storage is not None:
            self.recover()
        fresh = self._fresh = self.exchange.last_seq == 0
        self.sequencer.start()
        insurance = atoms(config.insurance_fund_deposit, "insurance_fund_deposit")
        if insurance and fresh:
            await self.sequencer.submit(
                lambda seq, ts: Deposit(seq, ts, INSURANCE_FUND_ID, insurance)
            )
        first_marks = self.feed.publish(force=True)
        if first_marks is not None:
            await first_marks
        agents = config.agents
        if agents.market_maker.enabled:
            house = atoms(config.house_deposit, "house_deposit")
            self.house_account_id = await self._account(HOUSE_ACCOUNT_NAME, house)
            self.market_maker = MarketMaker(
                agents.market_maker, self.sequencer, self.exchange, self.house_account_id
            )
        if agents.noise_taker.enabled:
            deposit = atoms(agents.noise_taker.deposit, "noise_taker.deposit")
            self.noise_account_id = await self._account(NOISE_ACCOUNT_NAME, deposit)
            self.noise_taker = NoiseTaker(
                agents.noise_taker,
                self.sequencer,
                self.exchange,
                self.noise_account_id,
                seed=self.feed.seed + 1,
            )
        for demo in config.demo_accounts:
            self.demo_accounts[demo.name] = await self._account(
                demo.name, atoms(demo.deposit, "deposit")
            )
        if self.storage is not None:
            # Commands replayed since the snapshot count towards the next one.
            self._snapshot_seq = 0 if self.snapshot is None else self.snapshot.info.seq
            self._snapshot_ms = self.clock.now_ms()
            self._snapshotting = True
            self.sequencer.on_batch(self._maybe_snapshot)
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

    async def _account(self, name: str, deposit: int) -> int:
        # A restart finds the system and demo accounts in the replayed state: the first
        # account of that name is the one this runtime opened.
        if not self._fresh:
            for account_id, account in sorted(self.exchange.ledger.accounts.items()):
                if account.name == name and account_id != INSURANCE_FUND_ID:
                    return account_id
        return await open_account(self.sequencer, name, deposit)

    # ------------------------------------------------------------------ durability

    def recover(self) -> Recovery:
        """Replay the journal after the loaded snapshot; drop a corrupt tail; check the state.

        Raise StorageError (or JournalCorruptError) when the state cannot be rebuilt.
        """
        storage = self.storage
        assert storage is not None, "recover needs a data directory"
        journal = storage.journal
        exchange = self.exchange
        start_seq = exchange.last_seq
        if start_seq > journal.last_seq:
            raise StorageError(
                f"{storage.path}: the state is at seq {start_seq} but the journal ends at "
                f"{journal.last_seq}"
            )
        replayed = 0
        last_funding_ts: int | None = None
        for command in journal.read(after_seq=start_seq):
            self.sequencer.replay(command)
            replayed += 1
            if isinstance(command, SettleFunding):
                last_funding_ts = command.ts
        dropped = journal.dropped_tail
        if dropped is not None:
            journal.discard_after(exchange.last_seq)
        if exchange.last_seq != journal.last_seq:
            raise StorageError(
                f"{storage.path}: replay stopped at seq {exchange.last_seq} but the journal "
                f"ends at {journal.last_seq}"
            )
        if last_funding_ts is not None:
            self.funding.settled_at(last_funding_ts)
        self.feed.follow(exchange)
        recovery = Recovery(
            snapshot_seq=start_seq,
            replayed=replayed,
            dropped_tail=dropped,
            seq=exchange.last_seq,
            state_hash=exchange.state_hash(),
        )
        self.recovery = recovery
        log.info(
            "recovered",
            data_dir=str(storage.path),
            snapshot_seq=start_seq,
            replayed=replayed,
            dropped_tail=dropped,
            seq=recovery.seq,
            state_hash=recovery.state_hash,
        )
        return recovery

    def _prepare_snapshot(self) -> PreparedSnapshot:
        storage = self.storage
        assert storage is not None, "snapshots need a data directory"
        prepared = storage.snapshots.prepare(self.exchange, self._runtime_state())
        self._snapshot_seq = self.exchange.last_seq
        self._snapshot_ms = self.clock.now_ms()
        return prepared

    def write_snapshot(self) -> None:
        """Write a snapshot of the exchange and the runtime's state now, in this thread."""
        prepared = self._prepare_snapshot()
        assert self.storage is not None
        self.storage.snapshots.commit(prepared)

    async def flush_snapshots(self) -> None:
        """Wait for a snapshot being written in the background, if any."""
        writing = self._snapshot_writing
        if writing is not None:
            with contextlib.suppress(Exception):
                await writing

    def _maybe_snapshot(self) -> None:
        settings = self.config.journal
        behind = self.exchange.last_seq - self._snapshot_seq
        if behind <= 0 or self._snapshot_writing is not None:
            return
        if (
            behind >= settings.snapshot_every_commands
            or self.clock.now_ms() - self._snapshot_ms >= settings.snapshot_every_s * 1000
        ):
            storage = self.storage
            assert storage is not None
            loop = asyncio.get_running_loop()
            # Consistent with this seq either way: a child forked now pickles this moment
            # while the loop goes on; without fork the loop pickles and a thread writes.
            pid = storage.snapshots.write_forked(self.exchange, self._runtime_state)
            writing: asyncio.Future[Any]
            if pid is not None:
                seq = self.exchange.last_seq
                writing = loop.run_in_executor(None, storage.snapshots.finish, pid, seq)
                self._snapshot_seq = seq
                self._snapshot_ms = self.clock.now_ms()
            else:
                prepared = self._prepare_snapshot()
                writing = loop.run_in_executor(None, storage.snapshots.commit, prepared)
            self._snapshot_writing = writing
            writing.add_done_callback(self._snapshot_written)

    def _runtime_state(self) -> dict[str, Any]:
        return {name: provider() for name, provider in self.snapshot_providers.items()}

    def _snapshot_written(self, writing: asyncio.Future[Any]) -> None:
        self._snapshot_writing = None
        if not writing.cancelled() and writing.exception() is not None:
            log.error("snapshot_failed", exc_info=writing.exception())

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
        if self.storage is not None:
            await self.flush_snapshots()
            try:
                if self._snapshotting and self.exchange.last_seq > self._snapshot_seq:
                    self.write_snapshot()
            finally:
                self.storage.close()
                self.storage = None
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
    config: Config,
    *,
    clock: Clock | None = None,
    journal: Journal | None = None,
    data_dir: Path | None = None,
) -> Runtime:
    """Wire an exchange, its sequencer, the funding timer and the feed from a config.

    With data_dir, open (and lock) the data directory, load its newest valid snapshot and
    journal to it; `Runtime.start()` then replays the rest. Raise StorageError if the
    directory cannot be used.
    """
    clock = clock if clock is not None else SystemClock()
    storage: DataDir | None = None
    snapshot: Snapshot | None = None
    if data_dir is not None:
        storage = DataDir.open(data_dir, config)
        try:
            snapshot = storage.snapshots.load_newest(at_most_seq=storage.journal.last_seq)
        except BaseException:
            storage.close()
            raise
        journal = storage.journal
    exchange = snapshot.exchange if snapshot is not None else build_exchange(config)
    sequencer = Sequencer(exchange, clock, journal=journal)
    funding = FundingTimer(config.funding, exchange, sequencer, clock)
    feed = Feed(config.feed, exchange, sequencer, clock, funding=funding)
    runtime = Runtime(config, clock, exchange, sequencer, funding, feed)
    if storage is not None:
        runtime.storage = storage
        runtime.snapshot = snapshot
        runtime.snapshot_providers.update(feed=feed.state, funding=funding.state)
    if snapshot is not None:
        state = snapshot.runtime
        try:
            feed.restore(state["feed"])
        except (FeedError, KeyError, TypeError, ValueError) as error:
            log.warning("feed_state_not_restored", reason=str(error))
        try:
            funding.restore(state["funding"])
        except (KeyError, TypeError, ValueError) as error:
            log.warning("funding_state_not_restored", reason=str(error))
        log.info("snapshot_loaded", seq=snapshot.info.seq, state_hash=snapshot.info.state_hash)
    return runtime
