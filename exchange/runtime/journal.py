"""The journal: every sequenced command, in SQLite (WAL), written before it is acknowledged.

    journal = SqliteJournal(data_dir / "journal.sqlite")    # synchronous="NORMAL" by default
    journal.write(batch)                                      # one transaction per batch
    for command in journal.read(after_seq=snapshot_seq): ...

One row per command: seq, ts, kind (the class name), the JSON body from `codec.encode`, and a
CRC-32 over the four. The sequencer calls `write` once per event-loop turn with the whole
batch (group commit), before any result of the batch is acknowledged or published. A batch is
one multi-row INSERT, which SQLite runs as a transaction of its own (a very large batch: a few
of them between BEGIN and COMMIT); the rows are the ones one INSERT per command would store.

Durability, by `synchronous` (SQLite's PRAGMA, in WAL mode):

- "NORMAL" (default): a commit is in the operating system's hands when `write` returns. It
  survives the process being killed at any moment (kill -9, a crash, an OOM kill); a power
  cut or kernel panic may lose the last transactions (never corrupt the earlier ones).
- "FULL": every commit is fsynced to the WAL. It also survives a power cut, at the price of
  one fsync per batch.

Reading checks every record: its checksum, its JSON, its decoding and that seqs follow one
another without a gap. A bad LAST record is what a crash in mid-write leaves behind, so it is
dropped with a warning (`dropped_tail` says which); anything else (a bad record followed by
good ones, a gap) raises `JournalCorruptError`, because replaying past it would build a state
that never existed.

Checkpoints (copying the WAL back into the database file, and syncing it) run on a thread of
their own with its own connection, a few times a second while commands are written: in the
committing thread a checkpoint of SQLite's default 1,000 pages stalls the event loop for tens
of milliseconds, which was most of a request's worst-case latency. Those checkpoints never
wait for the writer, so under a steady stream of commits they keep up without ever finding
the WAL idle, and SQLite only starts it afresh after a checkpoint that caught up; that is
left to SQLite's own automatic checkpoint, at `LOOP_CHECKPOINT_PAGES` instead of 1,000, in
the committing thread, which by then finds next to nothing left to copy.

Next to the commands the journal keeps what the runtime adds outside the core: the API keys
issued (`api_keys`, with the seq they were issued after) and a small `meta` table (the master
key secrets are derived from, the core settings the journal was started with).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import structlog
from mypy_extensions import mypyc_attr

from exchange.core.commands import CancelOrder, Command, PlaceOrder
from exchange.runtime.codec import CodecError, decode, encode

log = structlog.get_logger("paperex.journal")

Synchronous = Literal["NORMAL", "FULL"]

FORMAT_VERSION = "1"

CHECKPOINT_INTERVAL_S = 0.1
"""Least time between two background checkpoints."""

LOOP_CHECKPOINT_PAGES = 4_000
"""WAL pages (4 KiB each) past which a commit checkpoints by itself (and the WAL restarts)."""

INSERT_CHUNK = 500
"""Rows per INSERT statement (5 bound values each, far below SQLite's limit of 32,766); a
larger batch is several statements in one transaction."""

_INSERT_SQL: dict[int, str] = {}


def _insert_sql(count: int) -> str:
    sql = _INSERT_SQL.get(count)
    if sql is None:
        values = ",".join(["(?,?,?,?,?)"] * count)
        sql = _INSERT_SQL[count] = (
            f"INSERT INTO commands (seq, ts, kind, body, checksum) VALUES {values}"
        )
    return sql


_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    seq INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    checksum INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    api_key TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    checksum INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@mypyc_attr(native_class=False)  # mypyc cannot compile a RuntimeError subclass
class JournalCorruptError(RuntimeError):
    """The journal is damaged somewhere other than its last record: it cannot be replayed."""


_json_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def _dumps(data: dict[str, Any]) -> str:
    """Serialise a command body as json would (ASCII, compact); see `_encoded_body`."""
    return _encoded_body(data)[0]


def checksum(seq: int, ts: int, kind: str, body: str) -> int:
    """Return the CRC-32 stored with a record."""
    return zlib.crc32(f"{seq}\x1f{ts}\x1f{kind}\x1f{body}".encode())


def _encoded_body(data: dict[str, Any]) -> tuple[str, bytes]:
    """Serialise a command body as json would (ASCII, compact); return the text and its bytes.

    orjson writes the same compact JSON as json for ints, strings, booleans and None, except
    that it keeps non-ASCII characters and DEL where json (ensure_ascii) escapes them; such a
    body, or one orjson cannot write (an integer past 64 bits), is written by json.
    """
    try:
        body = orjson.dumps(data)
    except TypeError:
        text = _json_dumps(data)
        return text, text.encode()
    # 0x7F, not b"\x7f": bytes tests an int without first failing to read a bytes as one.
    if body.isascii() and 0x7F not in body:
        return body.decode(), body
    text = _json_dumps(data)
    return text, text.encode()


def _place_order_data(command: PlaceOrder) -> dict[str, Any]:
    """Return `codec.encode(command)` (tests hold the two equal, field for field)."""
    # An enum member's _value_ is its .value without the descriptor's cost.
    prevention = command.self_trade_prevention
    return {
        "type": "PlaceOrder",
        "seq": command.seq,
        "ts": command.ts,
        "account_id": command.account_id,
        "symbol": command.symbol,
        "side": command.side._value_,
        "order_type": command.order_type._value_,
        "qty": command.qty,
        "price": command.price,
        "trigger_price": command.trigger_price,
        "trigger_by": command.trigger_by._value_,
        "time_in_force": command.time_in_force._value_,
        "reduce_only": command.reduce_only,
        "close_position": command.close_position,
        "client_order_id": command.client_order_id,
        "self_trade_prevention": None if prevention is None else prevention._value_,
    }


def _cancel_order_data(command: CancelOrder) -> dict[str, Any]:
    """Return `codec.encode(command)`."""
    return {
        "type": "CancelOrder",
        "seq": command.seq,
        "ts": command.ts,
        "account_id": command.account_id,
        "order_id": command.order_id,
        "client_order_id": command.client_order_id,
    }


def _record_checksum(seq: int, ts: int, kind: str, body: bytes) -> int:
    # `checksum` over the body's bytes as they are: a CRC-32 goes on from where the record's
    # head left it, so the body is not copied and encoded a second time.
    return zlib.crc32(body, zlib.crc32(f"{seq}\x1f{ts}\x1f{kind}\x1f".encode()))


@dataclass(frozen=True, slots=True)
class Record:
    """One checked journal row and the command it holds."""

    seq: int
    ts: int
    kind: str
    body: dict[str, Any]
    command: Command


class _Checkpointer:
    """Checkpoint a WAL database from a daemon thread, when poked, at most every interval."""

    def __init__(self, path: Path, synchronous: Synchronous) -> None:
        self._path = path
        self._synchronous = synchronous
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._worker = threading.Thread(
            target=self._run, name=f"checkpoints {path.name}", daemon=True
        )
        self._worker.start()

    def poke(self) -> None:
        """Ask for a checkpoint soon (new commits are in the WAL)."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the checkpoint under way, if any, and end the thread."""
        self._stopping.set()
        self._wake.set()
        self._worker.join()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self._path, isolation_level=None)
        except sqlite3.Error as error:
            log.warning("checkpointer_failed", path=str(self._path), error=str(error))
            return
        try:
            # The checkpoint syncs as the journal's own connection would.
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            while True:
                self._wake.wait()
                if self._stopping.is_set():
                    break
                self._wake.clear()
                try:
                    # PASSIVE never waits for the writer: it copies what is committed.
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:
                    log.warning("checkpoint_failed", path=str(self._path), error=str(error))
                if self._stopping.wait(CHECKPOINT_INTERVAL_S):
                    break
        finally:
            db.close()


class SqliteJournal:
    """The command journal and its side tables in one SQLite file (WAL mode)."""

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Synchronous = "NORMAL",
        read_only: bool = False,
        checkpoint_thread: bool = True,
    ) -> None:
        """Open (or create) a journal; checkpoint_thread=False leaves checkpoints to SQLite."""
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous
        self.read_only = read_only
        self.checkpoint_thread = checkpoint_thread and not read_only
        self.dropped_tail: int | None = None
        """The seq of a corrupt last record the last `read` dropped, if any."""
        if read_only:
            if not self.path.exists():
                raise FileNotFoundError(f"{self.path}: no journal")
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Every batch size up to a chunk is a statement of its own: keep them prepared.
            self._db = sqlite3.connect(
                self.path, isolation_level=None, cached_statements=INSERT_CHUNK + 32
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            if self.checkpoint_thread:
                self._db.execute(f"PRAGMA wal_autocheckpoint={LOOP_CHECKPOINT_PAGES}")
            self._db.executescript(_SCHEMA)
            if self.meta("format") is None:
                self.set_meta("format", FORMAT_VERSION)
        version = self.meta("format")
        if version not in (None, FORMAT_VERSION):
            raise JournalCorruptError(f"{self.path}: unknown journal format {version!r}")
        row = self._db.execute("SELECT MAX(seq) FROM commands").fetchone()
        self.last_seq: int = row[0] or 0
        """The seq of the last record stored (checked or not)."""
        # Started by the first write, so that a journal opened only to be read has no thread.
        self._checkpointer: _Checkpointer | None = None

    def close(self) -> None:
        """Close the database (a clean close also checkpoints the WAL into the file)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self._db.close()

    def __enter__(self) -> SqliteJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ commands

    def write(self, commands: Sequence[Command]) -> None:
        """Store a batch of consecutive commands in one transaction."""
        if not commands:
            return
        rows = []
        expected = self.last_seq + 1
        for command in commands:
            seq = command.seq
            if seq != expected:
                raise ValueError(f"journal expects seq {expected}, got {seq}")
            # The two commonest commands are encoded here, compiled; `encode` is interpreted.
            if type(command) is PlaceOrder:
                data = _place_order_data(command)
            elif type(command) is CancelOrder:
                data = _cancel_order_data(command)
            else:
                data = encode(command)
            kind = data["type"]
            ts = command.ts
            body, raw = _encoded_body(data)
            rows.append((seq, ts, kind, body, _record_checksum(seq, ts, kind, raw)))
            expected += 1
        db = self._db
        if len(rows) <= INSERT_CHUNK:
            # One statement is one transaction of its own: no BEGIN and COMMIT round trips
            # into SQLite, and one step for the whole batch rather than one per row.
            db.execute(_insert_sql(len(rows)), [value for row in rows for value in row])
        else:
            db.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(rows), INSERT_CHUNK):
                    chunk = rows[start : start + INSERT_CHUNK]
                    db.execute(_insert_sql(len(chunk)), [value for row in chunk for value in row])
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        self.last_seq = expected - 1
        if self._checkpointer is None and self.checkpoint_thread:
            self._checkpointer = _Checkpointer(self.path, self.synchronous)
        if self._checkpointer is not None:
            self._checkpointer.poke()

    def read(self, after_seq: int = 0) -> Iterator[Command]:
        """Yield the commands after after_seq in order; see `records` for the checks."""
        for record in self.records(after_seq):
            yield record.command

    def records(self, after_seq: int = 0) -> Iterator[Record]:
        """Yield checked records after after_seq, dropping only a corrupt last record.

        Raise JournalCorruptError for a corrupt record before the last, or a missing seq.
        """
        self.dropped_tail = None
        tail = self._db.execute("SELECT MAX(seq) FROM commands").fetchone()[0] or 0
        expected = after_seq + 1
        rows = self._db.execute(
            "SELECT seq, ts, kind, body, checksum FROM commands WHERE seq > ? ORDER BY seq",
            (after_seq,),
        )
        for seq, ts, kind, body, stored in rows:
            if seq != expected:
                raise JournalCorruptError(
                    f"{self.path}: seq {expected} is missing (next record is {seq}); "
                    "the journal cannot be replayed past it"
                )
            problem, record = _check(seq, ts, kind, body, stored)
            if record is None:
                if seq == tail:
                    log.warning(
                        "journal_tail_dropped", seq=seq, reason=problem, path=str(self.path)
                    )
                    self.dropped_tail = seq
                    return
                raise JournalCorruptError(
                    f"{self.path}: record seq {seq} is corrupt ({problem}) and is not the last "
                    f"record (the journal goes on to seq {tail}); refusing to replay past it"
                )
            yield record
            expected += 1

    def discard_after(self, seq: int) -> int:
        """Delete the records after seq (a dropped tail, before writing again); return how many."""
        cursor = self._db.execute("DELETE FROM commands WHERE seq > ?", (seq,))
        self.last_seq = min(self.last_seq, seq)
        return cursor.rowcount

    def first_seq(self) -> int | None:
        """Return the lowest seq stored, or None when the journal is empty."""
        row = self._db.execute("SELECT MIN(seq) FROM commands").fetchone()
        return None if row[0] is None else int(row[0])

    # ------------------------------------------------------------------ API keys and meta

    def add_api_key(self, api_key: str, account_id: int, seq: int) -> None:
        """Store an issued API key (committed before this returns)."""
        self._db.execute(
            "INSERT INTO api_keys (api_key, account_id, seq, checksum) VALUES (?, ?, ?, ?)",
            (api_key, account_id, seq, checksum(seq, account_id, "api_key", api_key)),
        )

    def api_keys(self) -> list[tuple[str, int, int]]:
        """Return every stored API key as (api_key, account_id, seq), in the order issued."""
        keys = []
        for api_key, account_id, seq, stored in self._db.execute(
            "SELECT api_key, account_id, seq, checksum FROM api_keys ORDER BY rowid"
        ):
            if checksum(seq, account_id, "api_key", api_key) != stored:
                raise JournalCorruptError(
                    f"{self.path}: the API key issued at seq {seq} is corrupt"
                )
            keys.append((api_key, account_id, seq))
        return keys

    def meta(self, key: str) -> str | None:
        """Return a meta value, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a meta value (committed before this returns)."""
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def _check(seq: Any, ts: Any, kind: Any, body: Any, stored: Any) -> tuple[str, Record | None]:
    if not (isinstance(body, str) and isinstance(kind, str) and isinstance(ts, int)):
        return "a field has the wrong type", None
    if checksum(seq, ts, kind, body) != stored:
        return "checksum mismatch", None
    try:
        data = json.loads(body)
        command = decode(data)
    except (ValueError, CodecError) as error:
        return f"undecodable: {error}", None
    if command.seq != seq or command.ts != ts or type(command).__name__ != kind:
        return "body disagrees with its row", None
    return "", Record(seq, ts, kind, data, command)
