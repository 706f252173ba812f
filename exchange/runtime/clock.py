"""Clocks: the only place the runtime reads the time, so tests can hold it still."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in Unix milliseconds."""

    def now_ms(self) -> int: ...


class SystemClock:
    """The machine's clock."""

    def now_ms(self) -> int:
        """Return the current Unix time in milliseconds."""
        return time.time_ns() // 1_000_000


class ClockError(ValueError):
    """A test tried to move a manual clock backwards."""


class ManualClock:
    """A clock that moves only when told to, and never backwards (for tests)."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        """Return the clock's current time in milliseconds."""
        return self._now

    def advance(self, ms: int) -> int:
        """Move the clock forward by ms milliseconds and return the new time."""
        if ms < 0:
            raise ClockError(f"cannot move the clock back by {-ms} ms")
        self._now += ms
        return self._now

    def set(self, now_ms: int) -> None:
        """Move the clock to now_ms, which must not be in its past."""
        if now_ms < self._now:
            raise ClockError(f"cannot move the clock back from {self._now} to {now_ms}")
        self._now = now_ms
