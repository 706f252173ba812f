"""The journal, snapshots and recovery: what a restart finds, and what it refuses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exchange.cli import main
from exchange.core.commands import (
    Command,
    CreateAccount,
    Deposit,
    MarkPrice,
    PlaceOrder,
    UpdateMark,
)
from exchange.core.enums import OrderType, Side
from exchange.core.events import Event
from exchange.core.exchange import Exchange
from exchange.core.ledger import INSURANCE_FUND_ID
from exchange.core.numbers import ATOMS_PER_UNIT
from exchange.runtime import journal as journal_module
from exchange.runtime.clock import ManualClock
from exchange.runtime.codec import encode_generic
from exchange.runtime.config import Config, load_config
from exchange.runtime.journal import JournalCorruptError, SqliteJournal
from exchange.runtime.runtime import Runtime, build_runtime
from exchange.runtime.snapshot import SnapshotError, SnapshotStore, load
from exchange.runtime.storage import (
    JOURNAL_FILE,
    SNAPSHOT_DIR,
    DataDir,
    StorageError,
    exchange_from_settings,
    export_lines,
    open_journal_read_only,
    read_export,
)
from tests.runtime.helpers import CONFIGS, START_MS, exchange, funded_account, until

BTC_PRICE = 600_000  # ticks of 0.1


def marks(seq: int, ts: int, price: int = BTC_PRICE) -> UpdateMark:
    return UpdateMark(seq, ts, (MarkPrice("BTCUSDT", price, price),))


def commands(count: int) -> list[Command]:
    """A small, valid history: an account, a deposit, marks, then resting orders."""
    history: list[Command] = [
        CreateAccount(1, START_MS, "alice"),
        Deposit(2, START_MS, 1, 10_000 * ATOMS_PER_UNIT),
        marks(3, START_MS),
    ]
    seq = 4
    while len(history) < count:
        history.append(
            PlaceOrder(seq, START_MS + seq, 1, "BTCUSDT", Side.BUY, OrderType.LIMIT, 1, 590_000)
        )
        seq += 1
    return history[:count]


def applied(history: list[Command]) -> Exchange:
    core = exchange()
    for command in history:
        core.apply(command)
    return core


@pytest.fixture(autouse=True)
def _close_journals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every journal a test opened, as a server's clean stop would."""
    opened: list[SqliteJournal] = []
    original = SqliteJournal.__init__

    def tracking_init(self: SqliteJournal, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(SqliteJournal, "__init__", tracking_init)
    yield
    for journal in opened:
        journal.close()


def corrupt(db_path: Path, seq: int) -> None:
    """Cut a record's body in half, as a torn write would leave it."""
    with contextlib.closing(sqlite3.connect(db_path)) as db, db:
        db.execute(
            "UPDATE commands SET body = substr(body, 1, length(body) / 2) WHERE seq = ?", (seq,)
        )


# ---------------------------------------------------------------------- the journal alone


def test_a_batch_is_one_transaction_and_reads_back_in_order(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite")
    history = commands(10)
    journal.write(history[:4])
    journal.write(history[4:])
    assert journal.last_seq == 10
    journal.close()
    reopened = SqliteJournal(tmp_path / "j.sqlite", synchronous="FULL")
    assert list(reopened.read()) == history
    assert list(reopened.read(after_seq=7)) == history[7:]
    assert reopened.dropped_tail is None


def test_the_database_is_in_wal_mode_with_the_chosen_synchronous_level(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite", synchronous="FULL")
    assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with pytest.raises(ValueError, match="NORMAL or FULL"):
        SqliteJournal(tmp_path / "k.sqlite", synchronous="OFF")  # type: ignore[arg-type]


def test_a_write_out_of_sequence_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite")
    history = commands(5)
    journal.write(history[:2])
    with pytest.raises(ValueError, match="expects seq 3"):
        journal.write([history[3]])
    assert list(journal.read()) == history[:2]


def test_a_corrupt_last_record_is_dropped_with_its_seq_noted(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = SqliteJournal(path)
    history = commands(6)
    journal.write(history)
    corrupt(path, 6)
    assert list(journal.read()) == history[:5]
    assert journal.dropped_tail == 6
    assert journal.discard_after(5) == 1
    journal.write([history[5]])
    assert list(journal.read()) == history


@pytest.mark.parametrize("bad_seq", [1, 3, 5])
def test_a_corrupt_record_before_the_last_stops_the_read(tmp_path: Path, bad_seq: int) -> None:
    path = tmp_path / "j.sqlite"
    journal = SqliteJournal(path)
    journal.write(commands(6))
    corrupt(path, bad_seq)
    with pytest.raises(JournalCorruptError, match=f"seq {bad_seq} is corrupt"):
        list(journal.read())


def test_a_missing_seq_stops_the_read(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = SqliteJournal(path)
    journal.write(commands(6))
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("DELETE FROM commands WHERE seq = 4")
    with pytest.raises(JournalCorruptError, match="seq 4 is missing"):
        list(journal.read())


def test_a_torn_wal_loses_only_the_last_transaction(tmp_path: Path) -> None:
    """Cut bytes off the WAL, as a crash in mid-write does: SQLite drops that commit."""
    path = tmp_path / "j.sqlite"
    # No checkpoint may copy the WAL into the file meanwhile, from this thread or another.
    journal = SqliteJournal(path, checkpoint_thread=False)
    journal._db.execute("PRAGMA wal_autocheckpoint=0")
    history = commands(8)
    for command in history:
        journal.write([command])
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(path, copy / "j.sqlite")
    wal = Path(f"{path}-wal")
    data = wal.read_bytes()
    (copy / "j.sqlite-wal").write_bytes(data[:-100])
    journal.close()
    recovered = SqliteJournal(copy / "j.sqlite")
    assert list(recovered.read()) == history[:7]


def test_api_keys_and_meta_are_kept_next_to_the_commands(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite")
    journal.add_api_key("k1", 3, 10)
    journal.add_api_key("k2", 4, 12)
    journal.set_meta("x", "1")
    journal.set_meta("x", "2")
    journal.close()
    reopened = SqliteJournal(tmp_path / "j.sqlite")
    assert reopened.api_keys() == [("k1", 3, 10), ("k2", 4, 12)]
    assert reopened.meta("x") == "2"


# ---------------------------------------------------------------------- snapshots


def test_a_pickled_exchange_has_the_same_state_hash_and_carries_on_identically(
    tmp_path: Path,
) -> None:
    history = commands(12)
    core = applied(history[:8])
    store = SnapshotStore(tmp_path)
    info = store.write(core, {"feed": {"x": 1}})
    snapshot = load(info.path)
    assert snapshot.exchange.state_hash() == core.state_hash() == info.state_hash
    assert snapshot.runtime == {"feed": {"x": 1}}
    for command in history[8:]:
        assert snapshot.exchange.apply(command) == core.apply(command)
    assert snapshot.exchange.state_hash() == core.state_hash()


def test_a_damaged_snapshot_is_skipped_for_an_older_one(tmp_path: Path) -> None:
    history = commands(10)
    store = SnapshotStore(tmp_path, keep=5)
    store.write(applied(history[:5]), {})
    newest = store.write(applied(history), {})
    data = bytearray(newest.path.read_bytes())
    data[-10] ^= 0xFF
    newest.path.write_bytes(bytes(data))
    loaded = store.load_newest()
    assert loaded is not None
    assert loaded.info.seq == 5
    assert store.load_newest(at_most_seq=4) is None


def test_only_the_newest_snapshots_are_kept(tmp_path: Path) -> None:
    history = commands(6)
    store = SnapshotStore(tmp_path, keep=2)
    for count in (3, 4, 5, 6):
        store.write(applied(history[:count]), {})
    assert [info.seq for info in store.list()] == [5, 6]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the forked writer needs fork")
def test_a_forked_snapshot_holds_the_state_at_the_fork_whatever_follows(tmp_path: Path) -> None:
    history = commands(8)
    core = applied(history[:5])
    at_fork = core.state_hash()
    store = SnapshotStore(tmp_path)
    pid = store.write_forked(core, lambda: {"orders": [order.seq for order in history[:5]]})
    assert pid is not None
    assert pid != os.getpid()
    # The parent goes on at once; the child writes the moment of the fork.
    for command in history[5:]:
        core.apply(command)
    info = store.finish(pid, 5)
    assert (info.seq, info.state_hash) == (5, at_fork)
    snapshot = load(info.path)
    assert snapshot.exchange.state_hash() == at_fork
    assert snapshot.runtime == {"orders": [1, 2, 3, 4, 5]}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the forked writer needs fork")
def test_a_failed_snapshot_child_is_reported_and_leaves_no_file(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)

    def broken() -> dict[str, Any]:
        raise RuntimeError("provider bug")

    pid = store.write_forked(applied(commands(4)), broken)
    assert pid is not None
    with pytest.raises(SnapshotError, match="failed"):
        store.finish(pid, 4)
    assert store.list() == []


# ---------------------------------------------------------------------- the durable runtime


def manual(tmp_path: Path, **journal: object) -> Config:
    config = load_config(CONFIGS / "manual.toml")
    return config.model_copy(
        update={
            "server": config.server.model_copy(update={"data_dir": tmp_path / "data"}),
            "journal": config.journal.model_copy(update=journal),
        }
    )


def durable(config: Config, clock: ManualClock | None = None) -> Runtime:
    return build_runtime(
        config, clock=clock or ManualClock(START_MS), data_dir=config.server.data_dir
    )


async def crash(runtime: Runtime) -> None:
    """Stop without the clean-stop snapshot, as if the process had died after its last write."""
    for task in runtime.tasks:
        task.cancel()
    for task in runtime.tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if runtime.market_maker is not None:
        runtime.market_maker.close()
    await runtime.sequencer.stop()
    await runtime.flush_snapshots()
    assert runtime.storage is not None
    runtime.storage.close()
    runtime.storage = None


async def trade(runtime: Runtime) -> int:
    """Open a funded account, buy 0.002 BTC from the house, return the account id."""
    sequencer = runtime.sequencer
    house = runtime.house_account_id or 0

    def quoted() -> bool:
        return len(runtime.exchange.open_orders(house, "BTCUSDT")) == 10

    await until(sequencer, quoted)
    account = await funded_account(sequencer, "bob", "5000")
    await sequencer.submit(
        lambda seq, ts: PlaceOrder(seq, ts, account, "BTCUSDT", Side.BUY, OrderType.MARKET, 2)
    )
    await sequencer.submit(
        lambda seq, ts: PlaceOrder(
            seq, ts, account, "BTCUSDT", Side.BUY, OrderType.LIMIT, 3, 590_000
        )
    )
    return account


@pytest.mark.asyncio
async def test_a_restart_finds_everything_and_opens_nothing_again(tmp_path: Path) -> None:
    config = manual(tmp_path)
    first = durable(config)
    await first.start()
    account = await trade(first)
    seq, state_hash = first.exchange.last_seq, first.exchange.state_hash()
    accounts = len(first.exchange.ledger.accounts)
    house, demo = first.house_account_id, first.demo_accounts["demo"]
    await crash(first)

    second = durable(config)
    await second.start()
    try:
        assert second.recovery is not None
        assert second.recovery.seq == seq
        assert second.recovery.state_hash == state_hash
        assert second.recovery.snapshot_seq == 0
        assert second.house_account_id == house
        assert second.demo_accounts["demo"] == demo
        ledger = second.exchange.ledger
        assert len(ledger.accounts) == accounts
        assert ledger.accounts[INSURANCE_FUND_ID].wallet == 1_000_000 * ATOMS_PER_UNIT
        assert ledger.accounts[account].positions["BTCUSDT"].qty == 2
        assert len(second.exchange.open_orders(account, "BTCUSDT")) == 1
    finally:
        await second.stop()
    second.exchange.check_invariants()
    assert second.exchange.ledger.conservation_gap() == 0


@pytest.mark.asyncio
async def test_a_truncated_last_record_drops_only_that_command_on_recovery(
    tmp_path: Path,
) -> None:
    config = manual(tmp_path)
    first = durable(config)
    await first.start()
    await trade(first)
    await crash(first)
    journal_path = tmp_path / "data" / JOURNAL_FILE
    journal = SqliteJournal(journal_path)
    history = list(journal.read())
    journal.close()
    last = history[-1]
    assert isinstance(last, PlaceOrder)
    assert last.order_type is OrderType.LIMIT
    corrupt(journal_path, last.seq)

    second = durable(config)
    await second.start()
    try:
        assert second.recovery is not None
        assert second.recovery.dropped_tail == last.seq
        assert second.recovery.seq == last.seq - 1
        assert second.recovery.state_hash == applied(history[:-1]).state_hash()
        # The seq of the dropped command is taken again by the next one.
        assert second.exchange.last_seq > last.seq - 1
    finally:
        await second.stop()
    reread = SqliteJournal(journal_path)
    assert reread.dropped_tail is None
    assert [c.seq for c in reread.read()] == list(range(1, reread.last_seq + 1))
    assert list(reread.read())[: last.seq - 1] == history[:-1]


@pytest.mark.asyncio
async def test_corruption_before_the_tail_stops_start_up_with_a_clear_message(
    tmp_path: Path,
) -> None:
    config = manual(tmp_path)
    first = durable(config)
    await first.start()
    await trade(first)
    await crash(first)
    corrupt(tmp_path / "data" / JOURNAL_FILE, 3)
    second = durable(config)
    with pytest.raises(JournalCorruptError, match="seq 3 is corrupt"):
        await second.start()
    assert second.storage is not None
    second.storage.close()


@pytest.mark.asyncio
async def test_snapshots_are_taken_every_n_commands_and_start_up_replays_after_the_newest(
    tmp_path: Path,
) -> None:
    config = manual(tmp_path, snapshot_every_commands=7)
    first = durable(config)
    await first.start()
    await trade(first)
    seq, state_hash = first.exchange.last_seq, first.exchange.state_hash()
    await crash(first)
    infos = SnapshotStore(tmp_path / "data" / SNAPSHOT_DIR).list()
    assert infos
    assert infos[-1].seq <= seq

    second = durable(config)
    assert second.snapshot is not None
    assert second.snapshot.info.seq == infos[-1].seq
    await second.start()
    try:
        assert second.recovery is not None
        assert second.recovery.snapshot_seq == infos[-1].seq
        assert second.recovery.replayed == seq - infos[-1].seq
        assert second.recovery.state_hash == state_hash
    finally:
        await second.stop()
    # A clean stop leaves a snapshot at the last seq: the next start replays nothing.
    third = durable(config)
    await third.start()
    try:
        assert third.recovery is not None
        assert third.recovery.replayed == 0
    finally:
        await third.stop()


@pytest.mark.asyncio
async def test_a_synthetic_feed_continues_from_where_it_was(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "default.toml")
    config = config.model_copy(
        update={
            "server": config.server.model_copy(update={"data_dir": tmp_path / "data"}),
            "agents": config.agents.model_copy(
                update={
                    "noise_taker": config.agents.noise_taker.model_copy(update={"enabled": False})
                }
            ),
        }
    )
    clock = ManualClock(START_MS)
    first = durable(config, clock)
    await first.start()
    for _ in range(20):
        clock.advance(1000)
        await first.feed.tick()
    index = first.exchange.markets["BTCUSDT"].index_price
    assert index != 600_000
    await first.stop()
    second = durable(config, clock)
    await second.start()
    try:
        assert second.feed.index("BTCUSDT") == index
        assert second.exchange.markets["BTCUSDT"].index_price == index
    finally:
        await second.stop()


def test_a_second_server_cannot_open_the_same_data_directory(tmp_path: Path) -> None:
    config = manual(tmp_path)
    first = DataDir.open(tmp_path / "data", config)
    with pytest.raises(StorageError, match="another paperex server"):
        DataDir.open(tmp_path / "data", config)
    first.close()
    DataDir.open(tmp_path / "data", config).close()


def test_other_core_settings_refuse_the_directory(tmp_path: Path) -> None:
    config = manual(tmp_path)
    DataDir.open(tmp_path / "data", config).close()
    changed = config.model_copy(
        update={"exchange": config.exchange.model_copy(update={"margin_call_ratio": "0.9"})}
    )
    with pytest.raises(StorageError, match="other instruments or exchange settings"):
        DataDir.open(tmp_path / "data", changed)


# ---------------------------------------------------------------------- export and replay


@pytest.mark.asyncio
async def test_an_exported_journal_replays_to_the_same_state_hash_and_events(
    tmp_path: Path,
) -> None:
    config = manual(tmp_path)
    runtime = durable(config)
    seen: list[tuple[Command, list[Event]]] = []
    runtime.sequencer.subscribe(lambda command, events: seen.append((command, events)))
    await runtime.start()
    await trade(runtime)
    await runtime.stop()
    journal, settings = open_journal_read_only(tmp_path / "data")
    lines = list(export_lines(journal, settings))
    journal.close()
    exported_settings, exported = read_export(lines)
    assert exported == [command for command, _ in seen]
    core = exchange_from_settings(exported_settings)
    replayed = [core.apply(command) for command in exported]
    assert replayed == [events for _, events in seen]
    assert core.state_hash() == runtime.exchange.state_hash()


@pytest.mark.asyncio
async def test_the_replay_and_export_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = manual(tmp_path, snapshot_every_commands=5, snapshots_kept=100)
    runtime = durable(config)
    await runtime.start()
    await trade(runtime)
    await runtime.stop()
    data = str(tmp_path / "data")
    capsys.readouterr()

    assert main(["replay", "--data-dir", data, "--verify"]) == 0
    out = capsys.readouterr().out
    assert f"seq {runtime.exchange.last_seq}\n" in out
    assert f"state_hash {runtime.exchange.state_hash()}\n" in out
    assert out.count(": ok ") == len(SnapshotStore(tmp_path / "data" / SNAPSHOT_DIR).list())
    assert "MISMATCH" not in out

    assert main(["replay", "--data-dir", data, "--until-seq", "3"]) == 0
    assert "seq 3\n" in capsys.readouterr().out

    out_file = tmp_path / "run.jsonl"
    assert main(["export", "--data-dir", data, "--out", str(out_file)]) == 0
    lines = out_file.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "paperex-journal"
    assert len(lines) == runtime.exchange.last_seq + 1

    assert main(["replay", "--data-dir", str(tmp_path / "nowhere")]) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"type": "PlaceOrder", "seq": 1, "client_order_id": None, "reduce_only": False},
        {"type": "CreateAccount", "name": 'José \u2028 \x00 \x7f "quoted" \\'},
        {"type": "Deposit", "amount": 2**70},
    ],
)
def test_bodies_are_written_as_json_writes_them(body: dict[str, object]) -> None:
    # orjson writes the common body; its bytes must be json's (ensure_ascii, compact).
    expected = json.dumps(body, separators=(",", ":"))
    assert journal_module._dumps(body) == expected
    assert journal_module._encoded_body(body) == (expected, expected.encode())
    # The checksum written from the bytes is the one records are read back with.
    assert journal_module._record_checksum(7, 1_000, "Deposit", expected.encode()) == (
        journal_module.checksum(7, 1_000, "Deposit", expected)
    )


def test_checkpoints_run_on_a_thread_of_their_own_until_the_journal_closes(
    tmp_path: Path,
) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite")
    history = commands(6)
    journal.write(history[:3])
    journal.write(history[3:])
    checkpointer = journal._checkpointer
    assert checkpointer is not None
    assert checkpointer._worker is not threading.current_thread()
    journal.close()
    assert not checkpointer._worker.is_alive()
    assert list(SqliteJournal(tmp_path / "j.sqlite").read()) == history
    assert SqliteJournal(tmp_path / "j.sqlite", read_only=True)._checkpointer is None


@pytest.mark.parametrize("count", [1, 7, journal_module.INSERT_CHUNK * 2 + 3])
def test_a_batch_is_stored_as_the_rows_every_journal_so_far_holds(
    tmp_path: Path, count: int
) -> None:
    # Multi-row INSERTs and the per-class encoders must store exactly the rows one INSERT per
    # command with the field-by-field encoder stored, so older journals and newer ones agree.
    history = commands(count)
    with SqliteJournal(tmp_path / "j.sqlite") as journal:
        journal.write(history[:1])
        journal.write(history[1:])
    with contextlib.closing(sqlite3.connect(tmp_path / "j.sqlite")) as db:
        rows = db.execute("SELECT seq, ts, kind, body, checksum FROM commands ORDER BY seq")
        stored = rows.fetchall()
    expected = []
    for command in history:
        kind = type(command).__name__
        body = json.dumps(encode_generic(command), separators=(",", ":"))
        expected.append(
            (
                command.seq,
                command.ts,
                kind,
                body,
                journal_module.checksum(command.seq, command.ts, kind, body),
            )
        )
    assert stored == expected
    with SqliteJournal(tmp_path / "j.sqlite", read_only=True) as reopened:
        assert list(reopened.read()) == history
