"""Snapshots: the whole state at one seq, so a restart replays only the journal after it.

A snapshot file `snapshot-<seq>.snap` in the data directory is one JSON header line and a
pickle:

    {"format": 1, "seq": ..., "ts": ..., "state_hash": ..., "payload_sha256": ..., ...}\\n
    pickle({"exchange": Exchange, "runtime": {...}})

`runtime` holds what lives outside the core but must survive a restart: the feed's state, the
funding timer's, the API keys and the API's read models (finished orders, fills). Files are
written atomically: a temporary file, fsync, rename, fsync of the directory. A file is only
used if its payload matches the header's SHA-256 and the unpickled exchange has the seq and
`state_hash` the header records, so a damaged snapshot is skipped for an older one (the
journal is the source of truth; snapshots only save replay time).

While the server runs, a snapshot is written by a forked child process (`write_forked`), the
way Redis saves: the child has the memory of the moment of the fork, copy-on-write, and
pickles it while the event loop goes on. Pickling in the loop paused it for as long as the
pickle took, 40 ms for the read models of a few thousand orders, and longer as state grows;
a fork costs a few milliseconds. Where there is no fork (Windows), the runtime pickles in
the loop and writes on a thread.

Snapshots are pickles: load them only from a data directory you trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from exchange.core.exchange import Exchange

log = structlog.get_logger("paperex.snapshot")

FORMAT_VERSION = 1
_NAME = re.compile(r"^snapshot-(\d{12,})\.snap$")


class SnapshotError(ValueError):
    """A snapshot file that cannot be used."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A snapshot file's header."""

    path: Path
    seq: int
    ts: int
    state_hash: str


@dataclass(frozen=True, slots=True)
class PreparedSnapshot:
    """A snapshot serialised in memory, ready to be written."""

    info: SnapshotInfo
    header: bytes
    payload: bytes


@dataclass(slots=True)
class Snapshot:
    """A loaded, checked snapshot."""

    info: SnapshotInfo
    exchange: Exchange
    runtime: dict[str, Any]


class SnapshotStore:
    """Snapshot files in one directory: write atomically, list, load the newest valid one."""

    def __init__(self, directory: Path | str, *, keep: int = 3) -> None:
        self.directory = Path(directory)
        self.keep = max(keep, 1)

    def path_for(self, seq: int) -> Path:
        return self.directory / f"snapshot-{seq:012d}.snap"

    def write(self, exchange: Exchange, runtime: Mapping[str, Any]) -> SnapshotInfo:
        """Write the exchange and the runtime's state at exchange.last_seq; prune old files."""
        return self.commit(self.prepare(exchange, runtime))

    def prepare(self, exchange: Exchange, runtime: Mapping[str, Any]) -> PreparedSnapshot:
        """Serialise the state now (it may change right after); `commit` writes it later."""
        payload = pickle.dumps(
            {"exchange": exchange, "runtime": dict(runtime)}, protocol=pickle.HIGHEST_PROTOCOL
        )
        seq = exchange.last_seq
        info = SnapshotInfo(self.path_for(seq), seq, exchange.last_ts, exchange.state_hash())
        header = {
            "format": FORMAT_VERSION,
            "seq": seq,
            "ts": info.ts,
            "state_hash": info.state_hash,
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
            "payload_bytes": len(payload),
        }
        return PreparedSnapshot(info, json.dumps(header).encode() + b"\n", payload)

    def commit(self, prepared: PreparedSnapshot) -> SnapshotInfo:
        """Write a prepared snapshot atomically (safe to run in a worker thread)."""
        info = self._store(prepared)
        log.info(
            "snapshot_written",
            seq=info.seq,
            state_hash=info.state_hash,
            bytes=len(prepared.payload),
        )
        return info

    def write_forked(
        self, exchange: Exchange, runtime: Callable[[], Mapping[str, Any]]
    ) -> int | None:
        """Fork a child that writes a snapshot of this moment; return its pid (see `finish`).

        Return None where the platform cannot fork. The state is the parent's at the fork,
        whatever the parent does after; `runtime` is called in the child.
        """
        if not hasattr(os, "fork"):
            return None
        with warnings.catch_warnings():
            # Python 3.12 warns of fork in a process with threads: the child touches no lock
            # another thread could hold (no logging, no SQLite), so that deadlock cannot be.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid:
            return pid
        code = 1
        try:
            # The parent's handlers write to the parent's wake-up pipe: the child has none.
            signal.set_wakeup_fd(-1)
            for number in (signal.SIGINT, signal.SIGTERM):
                signal.signal(number, signal.SIG_DFL)
            self._store(self.prepare(exchange, runtime()))
            code = 0
        except BaseException:
            traceback.print_exc(file=sys.stderr)
        finally:
            os._exit(code)

    def finish(self, pid: int, seq: int) -> SnapshotInfo:
        """Wait for the child of `write_forked` forked at seq; return what it wrote.

        It blocks until the child exits: call it from a thread. Raise SnapshotError if the
        child failed.
        """
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise SnapshotError(f"the snapshot process {pid} failed (exit status {code})")
        info, header = read_header(self.path_for(seq))
        log.info(
            "snapshot_written",
            seq=info.seq,
            state_hash=info.state_hash,
            bytes=header.get("payload_bytes"),
            process=pid,
        )
        return info

    def _store(self, prepared: PreparedSnapshot) -> SnapshotInfo:
        info = prepared.info
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = info.path.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            handle.write(prepared.header)
            handle.write(prepared.payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, info.path)
        _fsync_directory(self.directory)
        self._prune()
        return info

    def _prune(self) -> None:
        for info in self.list()[: -self.keep]:
            info.path.unlink(missing_ok=True)
        for leftover in self.directory.glob("snapshot-*.tmp"):
            leftover.unlink(missing_ok=True)

    def list(self) -> list[SnapshotInfo]:
        """Return the snapshot files whose header reads, oldest first (payloads unchecked)."""
        found = []
        if not self.directory.is_dir():
            return []
        for path in self.directory.iterdir():
            if _NAME.match(path.name) is None:
                continue
            try:
                found.append(read_header(path)[0])
            except SnapshotError as error:
                log.warning("snapshot_unreadable", path=str(path), reason=str(error))
        return sorted(found, key=lambda info: info.seq)

    def load_newest(self, *, at_most_seq: int | None = None) -> Snapshot | None:
        """Return the newest snapshot that checks out (at or below at_most_seq), or None."""
        for info in reversed(self.list()):
            if at_most_seq is not None and info.seq > at_most_seq:
                log.warning(
                    "snapshot_ahead_of_journal",
                    path=str(info.path),
                    seq=info.seq,
                    journal_seq=at_most_seq,
                )
                continue
            try:
                return load(info.path)
            except SnapshotError as error:
                log.warning("snapshot_skipped", path=str(info.path), reason=str(error))
        return None


def read_header(path: Path) -> tuple[SnapshotInfo, dict[str, Any]]:
    """Return a snapshot file's header, or raise SnapshotError."""
    try:
        with path.open("rb") as handle:
            line = handle.readline(4096)
        header = json.loads(line)
        if header["format"] != FORMAT_VERSION:
            raise SnapshotError(f"unknown format {header['format']!r}")
        info = SnapshotInfo(path, int(header["seq"]), int(header["ts"]), str(header["state_hash"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SnapshotError(f"{path}: bad header: {error}") from None
    return info, header


def load(path: Path) -> Snapshot:
    """Read and check one snapshot file, or raise SnapshotError."""
    info, header = read_header(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SnapshotError(f"{path}: cannot read: {error.strerror}") from None
    payload = data[data.index(b"\n") + 1 :]
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise SnapshotError(f"{path}: payload checksum mismatch")
    try:
        content = pickle.loads(payload)
        exchange = content["exchange"]
        runtime = content["runtime"]
    except Exception as error:
        raise SnapshotError(f"{path}: cannot unpickle: {error}") from None
    if not isinstance(exchange, Exchange) or not isinstance(runtime, dict):
        raise SnapshotError(f"{path}: not a paperex snapshot")
    if exchange.last_seq != info.seq:
        raise SnapshotError(f"{path}: holds seq {exchange.last_seq}, header says {info.seq}")
    actual = exchange.state_hash()
    if actual != info.state_hash:
        raise SnapshotError(f"{path}: state hash {actual} differs from recorded {info.state_hash}")
    return Snapshot(info, exchange, runtime)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
