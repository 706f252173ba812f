"""The sequencer: the one task that owns the exchange.

Every state change goes through `submit`. The sequencer stamps the command with the next seq
and a never-decreasing ts, journals it, applies it, and hands the outcome to its listeners
(publishers). Commands are taken in batches: the sequencer stamps what is queued, writes the
batch to the journal in one call, and only once it is stored applies it, tells listeners and
wakes submitters. So the exchange's state never runs ahead of its journal: nothing is applied,
acknowledged, published or readable before it is durable, and durability costs one write per
event-loop turn rather than one per command.

The write stays on the event loop's thread. On a thread of its own it freed the loop of only
SQLite's part (about a third of a write; encoding the batch needs the GIL either way), and the
hand-over to the thread and back added more to each request's latency than that saved.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog
from mypy_extensions import mypyc_attr

from exchange.core.commands import Command
from exchange.core.events import Event
from exchange.core.exchange import Exchange
from exchange.runtime.clock import Clock

log = structlog.get_logger("paperex.sequencer")

MakeCommand = Callable[[int, int], Command]
"""Build a command from its (seq, ts); called by the sequencer just before it is applied."""

Listener = Callable[[Command, list[Event]], None]
"""Told of each applied command and its events, in seq order; it must only enqueue."""


class Result:
    """A sequenced command and the events it caused."""

    __slots__ = ("command", "events")

    # A plain class, not a dataclass: compiled, its __init__ is a native constructor, where a
    # dataclass's generated one costs about a microsecond per command.
    def __init__(self, command: Command, events: list[Event]) -> None:
        self.command = command
        self.events = events

    def __repr__(self) -> str:
        return f"Result(command={self.command!r}, events={self.events!r})"


class Journal(Protocol):
    """Durable storage for sequenced commands (written before results are acknowledged)."""

    def write(self, commands: Sequence[Command]) -> None: ...


@mypyc_attr(native_class=False)  # mypyc cannot compile a RuntimeError subclass
class SequencerStoppedError(RuntimeError):
    """The sequencer is not accepting commands any more."""


@mypyc_attr(native_class=False)  # mypyc cannot compile a RuntimeError subclass
class JournalError(RuntimeError):
    """The journal could not store a batch; its commands were neither applied nor acknowledged."""


class _Pending:
    __slots__ = ("future", "make")

    def __init__(self, make: MakeCommand, future: asyncio.Future[Result]) -> None:
        self.make = make
        self.future = future


class Sequencer:
    """Own the exchange: stamp, journal, apply and publish commands one at a time."""

    def __init__(
        self,
        exchange: Exchange,
        clock: Clock,
        *,
        journal: Journal | None = None,
        max_batch: int = 4096,
    ) -> None:
        self.exchange = exchange
        self.clock = clock
        self.journal = journal
        self.max_batch = max_batch
        self._pending: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._listeners: list[Listener] = []
        self._batch_hooks: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        # The seq and ts of the last command stamped, which the journal holds: ahead of the
        # exchange's after an apply that failed before taking its seq, so the seq is not reused.
        self._stamped_seq = exchange.last_seq
        self._stamped_ts = exchange.last_ts
        # The loop it runs on, kept: asyncio.get_running_loop() costs a getpid() system call.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._failed = False

    # ------------------------------------------------------------------ submitting

    @property
    def last_seq(self) -> int:
        """Return the seq of the last applied command."""
        return self.exchange.last_seq

    def enqueue(self, make: MakeCommand) -> asyncio.Future[Result]:
        """Queue a command now and return the future of its result.

        Unlike `submit`, the command takes its place in the queue before this returns, so
        commands enqueued one after another are sequenced in that order.
        """
        if self._stopping or self._failed:
            raise SequencerStoppedError("the sequencer has stopped")
        future: asyncio.Future[Result] = (self._loop or asyncio.get_running_loop()).create_future()
        self._pending.append(_Pending(make, future))
        self._wakeup.set()
        return future

    def enqueue_many(self, makes: Sequence[MakeCommand]) -> list[asyncio.Future[Result]]:
        """Queue several commands so that they get consecutive seqs, in the order given."""
        return [self.enqueue(make) for make in makes]

    async def submit(self, make: MakeCommand) -> Result:
        """Sequence one command and return it with its events once it is journalled."""
        return await self.enqueue(make)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call listener after every applied command; return a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def on_batch(self, hook: Callable[[], None]) -> None:
        """Call hook after each batch is journalled and published (snapshots hang here)."""
        self._batch_hooks.append(hook)

    def replay(self, command: Command) -> list[Event] | None:
        """Apply an already-journalled command as the sequencer would, and tell listeners.

        Used on start, before `start`, to rebuild state from the journal through the same
        apply path; nothing is journalled again. Return the events, or None if apply raised
        (logged, as when the command was first applied).
        """
        if self._task is not None:
            raise RuntimeError("replay only before the sequencer starts")
        try:
            events = self.exchange.apply(command)
        except Exception:
            if self.exchange.last_seq != command.seq:
                raise
            log.exception("apply_failed", seq=command.seq, command=type(command).__name__)
            return None
        for listener in self._listeners:
            try:
                listener(command, events)
            except Exception:
                log.exception("listener_failed", seq=command.seq)
        return events

    # ------------------------------------------------------------------ running

    @property
    def is_running(self) -> bool:
        """Return whether the sequencer task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the sequencer task on the running loop."""
        if self._task is not None:
            raise RuntimeError("the sequencer was started already")
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="sequencer")

    async def stop(self) -> None:
        """Apply what is already queued, then stop; later submits raise SequencerStoppedError."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._fail_pending(SequencerStoppedError("the sequencer has stopped"))

    def running(self) -> contextlib.AbstractAsyncContextManager[Sequencer]:
        """Run the sequencer for the duration of the block."""
        return _RunningBlock(self)

    async def _run(self) -> None:
        log.info("sequencer_started", last_seq=self.exchange.last_seq)
        while True:
            if not self._pending:
                if self._stopping:
                    break
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            try:
                self._process_batch()
            except JournalError:
                # The journal cannot take more, so nothing more can be promised.
                self._failed = True
                self._fail_pending(SequencerStoppedError("the journal failed"))
                break
            # Let submitters and I/O run between batches even under a constant stream.
            await asyncio.sleep(0)
        log.info("sequencer_stopped", last_seq=self.exchange.last_seq)

    # ------------------------------------------------------------------ one batch

    def _process_batch(self) -> None:
        batch = self._stamp_batch()
        if not batch:
            return
        if self.journal is not None:
            commands = [command for _, command in batch]
            try:
                self.journal.write(commands)
            except Exception as error:
                # Nothing of the batch was applied: the exchange is still what its journal says.
                log.exception("journal_write_failed", first_seq=commands[0].seq)
                for item, _ in batch:
                    if not item.future.done():
                        item.future.set_exception(JournalError(str(error)))
                raise JournalError(str(error)) from error
        self._apply_batch(batch)

    def _stamp_batch(self) -> list[tuple[_Pending, Command]]:
        """Take what is queued (up to max_batch) and build its commands with their seq and ts."""
        exchange = self.exchange
        pending = self._pending
        count = min(len(pending), self.max_batch)
        seq = max(self._stamped_seq, exchange.last_seq)
        # One clock read per batch: a batch is one instant of the exchange's time.
        ts = max(self._stamped_ts, exchange.last_ts, self.clock.now_ms())
        batch: list[tuple[_Pending, Command]] = []
        for _ in range(count):
            item = pending.popleft()
            if item.future.done():
                # Cancelled before its turn: it is never sequenced.
                continue
            try:
                command = item.make(seq + 1, ts)
            except Exception as error:
                item.future.set_exception(error)
                continue
            seq += 1
            batch.append((item, command))
        self._stamped_seq = seq
        self._stamped_ts = ts
        return batch

    def _apply_batch(self, batch: list[tuple[_Pending, Command]]) -> None:
        """Apply a journalled batch, then tell listeners and submitters, in seq order."""
        exchange = self.exchange
        outcomes: list[list[Event] | BaseException] = []
        for _, command in batch:
            outcome: list[Event] | BaseException
            try:
                outcome = exchange.apply(command)
            except Exception as error:
                # Journalled all the same: replay fails it the same way and reaches the same state.
                log.exception("apply_failed", seq=command.seq, command=type(command).__name__)
                outcome = error
            outcomes.append(outcome)
        listeners = self._listeners
        for (item, command), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not item.future.done():
                    item.future.set_exception(outcome)
                continue
            for listener in listeners:
                try:
                    listener(command, outcome)
                except Exception:
                    log.exception("listener_failed", seq=command.seq)
            if not item.future.done():
                item.future.set_result(Result(command, outcome))
        for hook in self._batch_hooks:
            try:
                hook()
            except Exception:
                log.exception("batch_hook_failed", seq=exchange.last_seq)

    def _fail_pending(self, error: Exception) -> None:
        while self._pending:
            item = self._pending.popleft()
            if not item.future.done():
                item.future.set_exception(error)


class _RunningBlock:
    """`Sequencer.running`: a class, since mypyc compiles no async generators."""

    def __init__(self, sequencer: Sequencer) -> None:
        self.sequencer = sequencer

    async def __aenter__(self) -> Sequencer:
        self.sequencer.start()
        return self.sequencer

    async def __aexit__(self, *exc_info: object) -> None:
        await self.sequencer.stop()
