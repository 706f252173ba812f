"""Fan-out: one bounded outbox and one writer task per connection.

Publishers only enqueue (`send_private`, `send_market`); each connection's writer task sends
its messages in order, so one slow client never holds up the others and nothing awaits a
send in a loop over clients.

- Private messages (responses, account events) are never dropped. If a client reads so
  slowly that its outbox fills, the connection is closed with a reason; the client
  reconnects and resyncs from snapshots.
- Market messages carry a key (a channel such as "book.BTCUSDT"). While a message for a key
  is still waiting, a newer one replaces it in place: a slow reader gets only the latest
  state per key, and market data alone never closes a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Protocol

import structlog

log = structlog.get_logger("paperex.fanout")

DEFAULT_LIMIT = 4096
"""Messages an outbox holds before a connection counts as too slow."""

CLOSE_TRY_AGAIN_LATER = 1013
"""WebSocket close code for a client that fell too far behind (RFC 6455 registry)."""


class MessageSink(Protocol):
    """What a connection writes to: an aiohttp WebSocketResponse fits."""

    async def send_str(self, data: str) -> None: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool: ...


class _Entry:
    __slots__ = ("key", "message")

    def __init__(self, key: str | None, message: str) -> None:
        self.key = key
        self.message = message


class Connection:
    """One client's outbox and the task that writes it to the socket."""

    def __init__(self, sink: MessageSink, *, limit: int = DEFAULT_LIMIT, name: str = "") -> None:
        if limit < 1:
            raise ValueError("limit must be positive")
        self.sink = sink
        self.limit = limit
        self.name = name
        self.close_reason: str | None = None
        self.sent = 0
        self.conflated = 0
        self.dropped = 0
        self._outbox: deque[_Entry] = deque()
        self._waiting_market: dict[str, _Entry] = {}
        self._ready = asyncio.Event()
        self._closed = False
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._sending = False
        self._log = log.bind(connection=name)

    # ------------------------------------------------------------------ publishing side

    @property
    def closed(self) -> bool:
        """Return whether the connection is closed or closing."""
        return self._closed

    @property
    def backlog(self) -> int:
        """Return how many messages wait to be sent."""
        return len(self._outbox)

    def send_private(self, message: str) -> None:
        """Queue a message that must arrive; close the connection if the outbox is full."""
        if self._closed:
            return
        if len(self._outbox) >= self.limit:
            self._overflow()
            return
        self._outbox.append(_Entry(None, message))
        self._ready.set()

    def market_waiting(self, channel_key: str) -> bool:
        """Tell whether a market message for this key is still queued, unsent."""
        return channel_key in self._waiting_market

    def send_market(self, channel_key: str, message: str) -> None:
        """Queue market data, replacing a message for the same key that still waits."""
        if self._closed:
            return
        waiting = self._waiting_market.get(channel_key)
        if waiting is not None:
            waiting.message = message
            self.conflated += 1
            return
        if len(self._outbox) >= self.limit:
            # The outbox is full of private messages and other keys: this update is lost,
            # and the channel's seq gap tells the client to resync.
            self.dropped += 1
            return
        entry = _Entry(channel_key, message)
        self._waiting_market[channel_key] = entry
        self._outbox.append(entry)
        self._ready.set()

    # ------------------------------------------------------------------ writer task

    def start(self) -> asyncio.Task[None]:
        """Start the writer task and return it."""
        if self._writer is not None:
            raise RuntimeError("the connection's writer was started already")
        self._writer = asyncio.get_running_loop().create_task(
            self._write(), name=f"writer {self.name}"
        )
        return self._writer

    async def close(self, reason: str = "closed", code: int = 1000) -> None:
        """Stop writing, drop what waits, and close the socket with a reason."""
        if self._closed:
            return
        self._closed = True
        self.close_reason = reason
        self._outbox.clear()
        self._waiting_market.clear()
        self._ready.set()
        with contextlib.suppress(Exception):
            await self.sink.close(code=code, message=reason.encode()[:123])
        self._cancel_stuck_writer()

    async def wait_closed(self) -> None:
        """Wait until the writer task has finished."""
        for task in (self._closer, self._writer):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(task)

    def _cancel_stuck_writer(self) -> None:
        # A writer stuck sending to a peer that stopped reading must not outlive the close;
        # an idle one ends by itself.
        if self._sending and self._writer is not None and not self._writer.done():
            self._writer.cancel()

    def _overflow(self) -> None:
        reason = f"too slow: more than {self.limit} messages waiting"
        self._log.warning("connection_overflow", backlog=len(self._outbox))
        # Mark closed at once so nothing else is queued; the socket closes in a task
        # because publishers never await.
        self._closed = True
        self.close_reason = reason
        self._outbox.clear()
        self._waiting_market.clear()
        self._ready.set()
        self._closer = asyncio.get_running_loop().create_task(self._close_sink(reason))

    async def _close_sink(self, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.sink.close(code=CLOSE_TRY_AGAIN_LATER, message=reason.encode()[:123])
        self._cancel_stuck_writer()

    async def _write(self) -> None:
        outbox = self._outbox
        waiting_market = self._waiting_market
        send = self.sink.send_str
        try:
            while not self._closed:
                if not outbox:
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                entry = outbox.popleft()
                if entry.key is not None:
                    del waiting_market[entry.key]
                self._sending = True
                await send(entry.message)
                self._sending = False
                self.sent += 1
        except (ConnectionError, RuntimeError) as error:
            # The peer went away mid-send; aiohttp raises ConnectionResetError or, on a
            # closing socket, RuntimeError.
            self._log.info("connection_lost", error=str(error))
            self._closed = True
            self.close_reason = self.close_reason or "connection lost"
            outbox.clear()
            waiting_market.clear()
