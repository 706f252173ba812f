"""The data directory: the journal, the snapshots, and what ties them to one exchange.

    data/
      journal.sqlite (+ -wal, -shm)   every command, the API keys, meta (see journal.py)
      snapshots/snapshot-<seq>.snap    the whole state every N commands or T seconds
      paperex.lock                     held by the server using the directory

The journal's meta table records the core settings it was started with (the instruments
file's text, the margin-call ratio, the self-trade prevention default), so `paperex replay`
rebuilds the exchange from the directory alone, and a server started with other settings
refuses the directory instead of replaying it into a different exchange.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from exchange.core.commands import Command
from exchange.core.exchange import Exchange
from exchange.core.numbers import rate
from exchange.instrument_config import InstrumentConfigError, loads_instruments
from exchange.runtime.codec import decode, encode
from exchange.runtime.config import Config, JournalConfig
from exchange.runtime.journal import SqliteJournal, Synchronous
from exchange.runtime.snapshot import SnapshotStore

JOURNAL_FILE = "journal.sqlite"
SNAPSHOT_DIR = "snapshots"
LOCK_FILE = "paperex.lock"
EXPORT_FORMAT = "paperex-journal"

_MASTER_KEY = "master_key"
_CORE = "core"


class StorageError(RuntimeError):
    """The data directory cannot be used: start-up stops with this message."""


# ---------------------------------------------------------------------- core settings


def core_settings(config: Config) -> dict[str, Any]:
    """Return what the core is built from, as JSON data."""
    try:
        text = config.instruments_file.read_text(encoding="utf-8")
        same = loads_instruments(text) == config.instruments
    except (OSError, InstrumentConfigError):
        same = False
    if not same:
        raise StorageError(
            f"{config.instruments_file}: does not hold the instruments the config was loaded with"
        )
    return {
        "instruments_toml": text,
        "margin_call_ratio": str(config.exchange.margin_call_ratio),
        "self_trade_prevention": config.exchange.self_trade_prevention.value,
    }


def exchange_from_settings(settings: dict[str, Any]) -> Exchange:
    """Return an empty exchange built from `core_settings` data."""
    from exchange.core.enums import SelfTradePrevention

    instruments = loads_instruments(settings["instruments_toml"])
    return Exchange(
        instruments.values(),
        margin_call_ratio=rate(settings["margin_call_ratio"], "margin_call_ratio"),
        default_self_trade_prevention=SelfTradePrevention(settings["self_trade_prevention"]),
    )


def _same_core(stored: dict[str, Any], current: dict[str, Any]) -> bool:
    if stored.keys() != current.keys():
        return False
    try:
        instruments_equal = loads_instruments(stored["instruments_toml"]) == loads_instruments(
            current["instruments_toml"]
        )
    except InstrumentConfigError:
        return False
    return instruments_equal and all(
        stored[key] == current[key] for key in stored if key != "instruments_toml"
    )


# ---------------------------------------------------------------------- the directory


class DataDir:
    """An opened, locked data directory: its journal, snapshots and master key."""

    def __init__(self, path: Path, journal: SqliteJournal, lock: IO[str], keep: int) -> None:
        self.path = path
        self.journal = journal
        self.snapshots = SnapshotStore(path / SNAPSHOT_DIR, keep=keep)
        self._lock = lock

    @classmethod
    def open(cls, path: Path | str, config: Config) -> DataDir:
        """Lock the directory, open its journal and check it belongs to this exchange."""
        path = Path(path)
        settings: JournalConfig = config.journal
        try:
            path.mkdir(parents=True, exist_ok=True)
            lock = (path / LOCK_FILE).open("a+", encoding="utf-8")
        except OSError as error:
            raise StorageError(f"{path}: cannot use the data directory: {error.strerror}") from None
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise StorageError(
                f"{path}: another paperex server is using this data directory"
            ) from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            synchronous: Synchronous = "FULL" if settings.synchronous == "full" else "NORMAL"
            journal = SqliteJournal(path / JOURNAL_FILE, synchronous=synchronous)
            current = core_settings(config)
            stored = journal.meta(_CORE)
            if stored is None:
                if journal.last_seq:
                    raise StorageError(f"{path}: the journal has commands but no core settings")
                journal.set_meta(_CORE, json.dumps(current))
            elif not _same_core(json.loads(stored), current):
                raise StorageError(
                    f"{path}: this data directory was started with other instruments or exchange "
                    "settings; start with the config it was made with, or use another --data-dir"
                )
            if journal.meta(_MASTER_KEY) is None:
                journal.set_meta(_MASTER_KEY, secrets.token_hex(32))
        except BaseException:
            lock.close()
            raise
        return cls(path, journal, lock, settings.snapshots_kept)

    @property
    def master_key(self) -> bytes:
        """Return the key API secrets are derived from (made on the directory's first use)."""
        value = self.journal.meta(_MASTER_KEY)
        assert value is not None
        return bytes.fromhex(value)

    def api_keys(self) -> dict[str, int]:
        """Return every API key issued in this directory, with its account."""
        return {api_key: account_id for api_key, account_id, _ in self.journal.api_keys()}

    def close(self) -> None:
        """Close the journal and release the lock."""
        self.journal.close()
        self._lock.close()


# ---------------------------------------------------------------------- reading a directory


def open_journal_read_only(path: Path | str) -> tuple[SqliteJournal, dict[str, Any]]:
    """Open a data directory's journal for reading (a running server may hold it)."""
    directory = Path(path)
    journal_path = directory / JOURNAL_FILE
    if not journal_path.exists():
        raise StorageError(f"{directory}: no journal ({JOURNAL_FILE}) here")
    journal = SqliteJournal(journal_path, read_only=True)
    stored = journal.meta(_CORE)
    if stored is None:
        journal.close()
        raise StorageError(f"{journal_path}: no core settings recorded")
    return journal, json.loads(stored)


def export_lines(journal: SqliteJournal, settings: dict[str, Any]) -> Iterator[str]:
    """Yield the journal as JSON lines: a header with the core settings, then each command."""
    yield json.dumps({"format": EXPORT_FORMAT, "version": 1, "core": settings})
    for record in journal.records():
        yield json.dumps(record.body, separators=(",", ":"))


def read_export(lines: Iterator[str] | list[str]) -> tuple[dict[str, Any], list[Command]]:
    """Return the core settings and commands of an exported journal."""
    iterator = iter(lines)
    header = json.loads(next(iterator))
    if header.get("format") != EXPORT_FORMAT:
        raise StorageError("not an exported paperex journal")
    commands = [decode(json.loads(line)) for line in iterator if line.strip()]
    return header["core"], commands


def encode_line(command: Command) -> str:
    """Return one command as an export line."""
    return json.dumps(encode(command), separators=(",", ":"))
