"""The sequencer: stamping, batching with group commit, listeners, and surviving a core bug."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import pytest

from exchange.core.commands import Command, CreateAccount
from exchange.core.events import AccountCreated, Event
from exchange.runtime.clock import ManualClock
from exchange.runtime.sequencer import (
    JournalError,
    MakeCommand,
    Result,
    Sequencer,
    SequencerStoppedError,
)
from tests.runtime.helpers import START_MS, exchange, stack


def account(name: str) -> MakeCommand:
    def make(seq: int, ts: int) -> Command:
        return CreateAccount(seq, ts, name)

    return make


class RecordingJournal:
    """Records each write, and what had been acknowledged or published at that moment."""

    def __init__(self, futures: list[asyncio.Future[Result]], published: list[int]) -> None:
        self.writes: list[list[int]] = []
        self.futures = futures
        self.published = published
        self.done_at_write: list[int] = []
        self.published_at_write: list[int] = []

    def write(self, commands: Sequence[Command]) -> None:
        self.writes.append([command.seq for command in commands])
        self.done_at_write.append(sum(future.done() for future in self.futures))
        self.published_at_write.append(len(self.published))


class FailingJournal:
    def write(self, commands: Sequence[Command]) -> None:
        raise OSError("disk full")


@dataclass(frozen=True, slots=True)
class Unknown:
    """A command the core has no handler for: apply raises after taking its seq."""

    seq: int
    ts: int


@pytest.mark.asyncio
async def test_commands_get_consecutive_seqs_and_the_clock_time() -> None:
    _, clock, sequencer = stack()
    async with sequencer.running():
        first = await sequencer.submit(account("alice"))
        clock.advance(250)
        second = await sequencer.submit(account("bob"))
    assert (first.command.seq, first.command.ts) == (1, START_MS)
    assert (second.command.seq, second.command.ts) == (2, START_MS + 250)
    assert first.events == [AccountCreated(1, 1, "alice")]
    assert second.events == [AccountCreated(2, 2, "bob")]


@pytest.mark.asyncio
async def test_seq_continues_after_the_exchange_last_seq() -> None:
    core, clock, _ = stack()
    core.apply(CreateAccount(41, START_MS, "restored"))
    sequencer = Sequencer(core, clock)
    async with sequencer.running():
        result = await sequencer.submit(account("next"))
    assert result.command.seq == 42


@pytest.mark.asyncio
async def test_ts_never_goes_back_when_the_clock_does() -> None:
    class Jumpy:
        def __init__(self) -> None:
            self.times = [START_MS + 1000, START_MS]

        def now_ms(self) -> int:
            return self.times.pop(0)

    sequencer = Sequencer(exchange(), Jumpy())
    async with sequencer.running():
        first = await sequencer.submit(account("a"))
        second = await sequencer.submit(account("b"))
    assert first.command.ts == START_MS + 1000
    assert second.command.ts == START_MS + 1000


@pytest.mark.asyncio
async def test_one_turn_is_one_batch_journalled_once_before_anything_is_acknowledged() -> None:
    core, clock, _ = stack()
    futures: list[asyncio.Future[Result]] = []
    published: list[int] = []
    journal = RecordingJournal(futures, published)
    sequencer = Sequencer(core, clock, journal=journal)
    sequencer.subscribe(lambda command, events: published.append(command.seq))
    futures.extend(sequencer.enqueue(account(f"trader{n}")) for n in range(5))
    async with sequencer.running():
        results = await asyncio.gather(*futures)
        later = await sequencer.submit(account("later"))
    assert [result.command.seq for result in results] == [1, 2, 3, 4, 5]
    assert journal.writes == [[1, 2, 3, 4, 5], [6]]
    # At each write nothing of that batch had been acknowledged or published yet.
    assert journal.done_at_write == [0, 5]
    assert journal.published_at_write == [0, 5]
    assert published == [1, 2, 3, 4, 5, 6]
    assert later.command.seq == 6


@pytest.mark.asyncio
async def test_concurrent_submitters_are_sequenced_in_arrival_order() -> None:
    _, _, sequencer = stack()
    names = [f"bot{n}" for n in range(20)]
    async with sequencer.running():
        results = await asyncio.gather(*(sequencer.submit(account(name)) for name in names))
    assert [cast(CreateAccount, result.command).name for result in results] == names
    assert [result.command.seq for result in results] == list(range(1, 21))


@pytest.mark.asyncio
async def test_listeners_see_every_command_with_its_events_in_seq_order() -> None:
    _, _, sequencer = stack()
    seen: list[tuple[int, list[Event]]] = []
    sequencer.subscribe(lambda command, events: seen.append((command.seq, events)))
    async with sequencer.running():
        await asyncio.gather(*(sequencer.submit(account(f"a{n}")) for n in range(3)))
    assert seen == [(n, [AccountCreated(n, n, f"a{n - 1}")]) for n in (1, 2, 3)]


@pytest.mark.asyncio
async def test_an_unsubscribed_listener_hears_nothing_more() -> None:
    _, _, sequencer = stack()
    seen: list[int] = []
    unsubscribe = sequencer.subscribe(lambda command, events: seen.append(command.seq))
    async with sequencer.running():
        await sequencer.submit(account("a"))
        unsubscribe()
        await sequencer.submit(account("b"))
    assert seen == [1]


@pytest.mark.interpreted_only  # compiled apply refuses a non-command before it takes a seq
@pytest.mark.asyncio
async def test_a_core_exception_fails_only_its_own_command_and_the_loop_goes_on() -> None:
    core, clock, _ = stack()
    futures: list[asyncio.Future[Result]] = []
    journal = RecordingJournal(futures, [])
    sequencer = Sequencer(core, clock, journal=journal)
    async with sequencer.running():
        before = sequencer.enqueue(account("before"))
        broken = sequencer.enqueue(lambda seq, ts: cast(Command, Unknown(seq, ts)))
        after = sequencer.enqueue(account("after"))
        with pytest.raises(KeyError):
            await broken
        assert (await before).command.seq == 1
        assert (await after).command.seq == 3
        assert (await sequencer.submit(account("later"))).command.seq == 4
    # The broken command took seq 2, so it is journalled: replay reproduces the same state.
    assert journal.writes == [[1, 2, 3], [4]]


@pytest.mark.asyncio
async def test_a_failing_command_builder_takes_no_seq() -> None:
    _, _, sequencer = stack()

    def broken(seq: int, ts: int) -> Command:
        raise ValueError("cannot build")

    async with sequencer.running():
        with pytest.raises(ValueError, match="cannot build"):
            await sequencer.submit(broken)
        result = await sequencer.submit(account("next"))
    assert result.command.seq == 1


@pytest.mark.asyncio
async def test_a_listener_error_does_not_stop_publishing() -> None:
    _, _, sequencer = stack()
    seen: list[int] = []

    def broken(command: Command, events: list[Event]) -> None:
        raise RuntimeError("listener bug")

    sequencer.subscribe(broken)
    sequencer.subscribe(lambda command, events: seen.append(command.seq))
    async with sequencer.running():
        result = await sequencer.submit(account("a"))
    assert result.command.seq == 1
    assert seen == [1]


@pytest.mark.asyncio
async def test_a_cancelled_submission_is_never_sequenced() -> None:
    _, _, sequencer = stack()
    cancelled = sequencer.enqueue(account("gone"))
    cancelled.cancel()
    async with sequencer.running():
        result = await sequencer.submit(account("kept"))
    assert result.command.seq == 1


@pytest.mark.asyncio
async def test_stop_applies_what_is_queued_then_refuses_more() -> None:
    _, _, sequencer = stack()
    sequencer.start()
    queued = [sequencer.enqueue(account(f"a{n}")) for n in range(3)]
    await sequencer.stop()
    assert [future.result().command.seq for future in queued] == [1, 2, 3]
    assert not sequencer.is_running
    with pytest.raises(SequencerStoppedError):
        await sequencer.submit(account("late"))


@pytest.mark.asyncio
async def test_a_journal_failure_acknowledges_nothing_and_stops_the_sequencer() -> None:
    core = exchange()
    sequencer = Sequencer(core, ManualClock(START_MS), journal=FailingJournal())
    sequencer.start()
    with pytest.raises(JournalError):
        await sequencer.submit(account("a"))
    # Nothing of the batch was applied: the state is still what the (empty) journal says.
    assert core.last_seq == 0
    assert core.state_hash() == exchange().state_hash()
    await sequencer.stop()
    assert not sequencer.is_running
    with pytest.raises(SequencerStoppedError):
        sequencer.enqueue(account("b"))
