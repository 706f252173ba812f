"""The event loop the server runs on: uvloop when it is installed, asyncio's own otherwise.

uvloop runs the same asyncio code with its loop, transports and callbacks in C; for the
WebSocket server (many small reads and writes, a future per request) it takes a large share
of the per-message cost away. Nothing in paperex depends on it: the choice "asyncio" (or a
platform without a uvloop wheel) runs the standard loop with identical behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

LoopChoice = Literal["auto", "uvloop", "asyncio"]
LOOP_CHOICES: tuple[LoopChoice, ...] = ("auto", "uvloop", "asyncio")

T = TypeVar("T")


class EventLoopError(RuntimeError):
    """The event loop asked for is not available here."""


def loop_factory(choice: LoopChoice = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return a factory for the chosen loop, or None for asyncio's default one.

    "auto" takes uvloop when it can be imported; "uvloop" insists on it (EventLoopError if
    missing); "asyncio" is the standard library's loop.
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise EventLoopError("uvloop is not installed (pip install uvloop)") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """Return "uvloop" or "asyncio" for a running loop (for start-up lines and benchmarks)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, T], choice: LoopChoice = "auto") -> T:
    """Run a coroutine to completion on a new loop of the chosen kind, like asyncio.run."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
