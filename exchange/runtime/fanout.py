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

A connection writes either through the sink's `send_str`, one message per await, or, given a
`FrameSink` (`websocket_frames(socket, request)` for aiohttp), as ready-made WebSocket text
frames. In that mode a connection with something queued is flushed once per event-loop turn,
by one callback for all connections: everything queued then goes out in one transport write.
So a command that notifies a thousand subscribers costs a thousand writes, not a thousand
task switches and writes, and replies pipelined on one connection share a system call. The
writer task takes over only while the peer's transport is paused (it reads slowly): it
waits for the transport to drain while the outbox fills, conflates and, past its limit,
closes the connection, exactly as in the send_str mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

log = structlog.get_logger("paperex.fanout")

DEFAULT_LIMIT = 4096
"""Messages an outbox holds before a connection counts as too slow."""

CLOSE_TRY_AGAIN_LATER = 1013
"""WebSocket close code for a client that fell too far behind (RFC 6455 registry)."""


class MessageSink(Protocol):
    """What a connection writes to: an aiohttp WebSocketResponse fits."""

    async def send_str(self, data: str) -> None: ...

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool: ...


class FrameSink(Protocol):
    """Where a connection writes whole WebSocket frames, bypassing send_str."""

    def write(self, data: bytes) -> bool:
        """Write frames; return True when the writer should wait for `drain` before more.

        Raise ConnectionError when the socket is closing or gone.
        """
        ...

    def drain(self) -> Awaitable[None]:
        """Wait until the transport takes more data (the peer is reading again)."""
        ...


Message = str | bytes
"""A serialised message: text, or its UTF-8 bytes (what the fast paths build)."""


class _Entry:
    """A queued market message: its key, and the message (replaced while it waits)."""

    __slots__ = ("key", "message")

    def __init__(self, key: str, message: Message) -> None:
        self.key = key
        self.message = message


# ---------------------------------------------------------------------- WebSocket frames

WRITE_CHUNK_BYTES = 64 * 1024
"""Frames gathered into one transport write before flow control is checked again."""

_TEXT_FIN = 0x81
_SHORT_HEADERS = [bytes((_TEXT_FIN, length)) for length in range(126)]
_MEDIUM_HEADER = struct.Struct("!BBH")
_LONG_HEADER = struct.Struct("!BBQ")


def text_frame_header(length: int) -> bytes:
    """Return the header of a final, unmasked, uncompressed text frame (RFC 6455 5.2)."""
    if length < 126:
        return _SHORT_HEADERS[length]
    if length < 65536:
        return _MEDIUM_HEADER.pack(_TEXT_FIN, 126, length)
    return _LONG_HEADER.pack(_TEXT_FIN, 127, length)


class WebSocketFrames:
    """A FrameSink over an aiohttp WebSocketResponse and its request's transport.

    Frames go straight to the transport, after the socket's own frames (pings, pongs, the
    close frame) in the order written, since both are written from the event loop's thread.
    Once the socket has started closing nothing more is written, as send_str refuses to.
    """

    __slots__ = ("_drain", "_paused", "_socket", "_transport")

    def __init__(self, socket: Any, transport: Any, protocol: Any, writer: Any) -> None:
        self._socket = socket
        self._transport = transport
        self._drain: Callable[[], Awaitable[None]] = writer.drain
        # aiohttp's protocol knows when the transport is over its high-water mark and has
        # paused writing; that is when send_frame would wait for drain, and so does this.
        self._paused: Callable[[], bool] = (
            (lambda: bool(protocol.writing_paused))
            if hasattr(protocol, "writing_paused")
            else (lambda: bool(transport.get_write_buffer_size()))
        )

    def write(self, data: bytes) -> bool:
        transport = self._transport
        if self._socket.closed or transport.is_closing():
            raise ConnectionResetError("the WebSocket is closing")
        transport.write(data)
        return self._paused()

    def drain(self) -> Awaitable[None]:
        return self._drain()


def websocket_frames(socket: Any, request: Any) -> FrameSink | None:
    """Return a FrameSink for a prepared, uncompressed aiohttp WebSocketResponse, else None.

    `request.transport`, `request.protocol` and `request.writer` (aiohttp's public request
    attributes) give the socket's transport and its flow control; without them the
    connection uses send_str.
    """
    transport = getattr(request, "transport", None)
    protocol = getattr(request, "protocol", None)
    writer = getattr(request, "writer", None)
    if transport is None or writer is None or getattr(socket, "compress", None):
        return None
    return WebSocketFrames(socket, transport, protocol, writer)


class _Flusher:
    """Write every connection that has frames queued, once per event-loop turn."""

    __slots__ = ("_loop", "_pending", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[Connection] = []
        self._scheduled = False

    def add(self, connection: Connection) -> None:
        self._pending.append(connection)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        for connection in pending:
            try:
                connection._flush()
            except Exception as error:
                # A bug must not leave the other connections unflushed: drop this one.
                log.exception("flush_failed", connection=connection.name)
                connection._lost(error)


_FLUSHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = (
    weakref.WeakKeyDictionary()
)


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    flusher = _FLUSHERS.get(loop)
    if flusher is None:
        flusher = _FLUSHERS[loop] = _Flusher(loop)
    return flusher


class Connection:
    """One client's outbox and the task that writes it to the socket."""

    def __init__(
        self,
        sink: MessageSink,
        *,
        limit: int = DEFAULT_LIMIT,
        name: str = "",
        frames: FrameSink | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be positive")
        self.sink = sink
        self.frames = frames
        self.limit = limit
        self.name = name
        self.close_reason: str | None = None
        self.sent = 0
        self.conflated = 0
        self.dropped = 0
        # Private messages are queued as they are; market messages in an _Entry, so that a
        # newer one can replace the message while it waits.
        self._outbox: deque[Message | _Entry] = deque()
        self._waiting_market: dict[str, _Entry] = {}
        # The idle writer waits on a bare future: cheaper to wake than an asyncio.Event.
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._sending = False
        # Frames mode: the loop's flusher writes while the transport keeps up; while it does
        # not (draining), the writer task does.
        self._flusher: _Flusher | None = None
        self._flush_queued = False
        self._draining = False
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

    def send_private(self, message: Message) -> None:
        """Queue a message that must arrive; close the connection if the outbox is full."""
        if self._closed:
            return
        if len(self._outbox) >= self.limit:
            self._overflow()
            return
        self._outbox.append(message)
        self._wake()

    def market_waiting(self, channel_key: str) -> bool:
        """Tell whether a market message for this key is still queued, unsent."""
        return channel_key in self._waiting_market

    def send_market(self, channel_key: str, message: Message) -> None:
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
        self._wake()

    def _wake(self) -> None:
        flusher = self._flusher
        if flusher is None:
            self._wake_writer()
        elif not self._flush_queued and not self._draining:
            self._flush_queued = True
            flusher.add(self)

    def _wake_writer(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ writer task

    def start(self) -> asyncio.Task[None]:
        """Start the writer task and return it."""
        if self._writer is not None:
            raise RuntimeError("the connection's writer was started already")
        loop = asyncio.get_running_loop()
        if self.frames is None:
            self._writer = loop.create_task(self._write(), name=f"writer {self.name}")
        else:
            self._flusher = _flusher(loop)
            self._writer = loop.create_task(self._drain_frames(), name=f"writer {self.name}")
            if self._outbox:
                self._wake()
        return self._writer

    async def close(self, reason: str = "closed", code: int = 1000) -> None:
        """Stop writing, drop what waits, and close the socket with a reason."""
        if self._closed:
            return
        self._closed = True
        self.close_reason = reason
        self._outbox.clear()
        self._waiting_market.clear()
        self._wake_writer()
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
        self._wake_writer()
        self._closer = asyncio.get_running_loop().create_task(self._close_sink(reason))

    async def _close_sink(self, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.sink.close(code=CLOSE_TRY_AGAIN_LATER, message=reason.encode()[:123])
        self._cancel_stuck_writer()

    async def _idle(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        await waiter

    def _pop(self) -> Message:
        item = self._outbox.popleft()
        if type(item) is _Entry:
            del self._waiting_market[item.key]
            return item.message
        return item  # type: ignore[return-value]

    async def _write(self) -> None:
        outbox = self._outbox
        send = self.sink.send_str
        try:
            while not self._closed:
                if not outbox:
                    await self._idle()
                    continue
                message = self._pop()
                self._sending = True
                await send(message if isinstance(message, str) else message.decode())
                self._sending = False
                self.sent += 1
        except (ConnectionError, RuntimeError) as error:
            self._lost(error)

    # ------------------------------------------------------------------ frames mode

    def _flush(self) -> None:
        """Write what is queued (the flusher calls this once per turn it was woken for)."""
        self._flush_queued = False
        if self._closed or self._draining:
            return
        try:
            backlog = self._write_queued()
        except (ConnectionError, RuntimeError) as error:
            self._lost(error)
            return
        if backlog:
            # The peer is not keeping up: the writer task waits for the transport to drain,
            # and until then messages queue (and conflate) in the outbox.
            self._draining = True
            self._wake_writer()

    def _write_queued(self) -> bool:
        """Write queued messages as frames; return True to wait for drain before more."""
        frames = self.frames
        assert frames is not None
        outbox = self._outbox
        waiting_market = self._waiting_market
        header = text_frame_header
        while outbox:
            parts: list[bytes] = []
            size = count = 0
            while outbox and size < WRITE_CHUNK_BYTES:
                item = outbox.popleft()
                if type(item) is _Entry:
                    del waiting_market[item.key]
                    message = item.message
                else:
                    message = item  # type: ignore[assignment]
                data = message.encode() if isinstance(message, str) else message
                length = len(data)
                parts.append(header(length))
                parts.append(data)
                size += length
                count += 1
            backlog = frames.write(b"".join(parts))
            self.sent += count
            if backlog:
                return True
        return False

    async def _drain_frames(self) -> None:
        frames = self.frames
        assert frames is not None
        try:
            while not self._closed:
                if not self._draining:
                    await self._idle()
                    continue
                self._sending = True
                await frames.drain()
                self._sending = False
                if self._closed or not self._write_queued():
                    self._draining = False
        except (ConnectionError, RuntimeError) as error:
            self._lost(error)

    def _lost(self, error: Exception) -> None:
        # The peer went away mid-send; aiohttp raises ConnectionResetError or, on a
        # closing socket, RuntimeError.
        self._log.info("connection_lost", error=str(error))
        self._closed = True
        self.close_reason = self.close_reason or "connection lost"
        self._outbox.clear()
        self._waiting_market.clear()
        self._draining = False
        self._wake_writer()
