"""Fan-out: ordered writing, conflated market data, private messages never dropped."""

from __future__ import annotations

import asyncio

import pytest

from exchange.runtime.fanout import CLOSE_TRY_AGAIN_LATER, Connection, text_frame_header

TIMEOUT = 2.0


class FakeSocket:
    """A socket whose reader can be held back; records what was sent and how it closed."""

    def __init__(self, *, reading: bool = True) -> None:
        self.sent: list[str] = []
        self.reading = asyncio.Event()
        if reading:
            self.reading.set()
        self.send_started = asyncio.Event()
        self.closed_with: tuple[int, bytes] | None = None
        self.closed = asyncio.Event()
        self._counts: dict[int, asyncio.Event] = {}

    async def send_str(self, data: str) -> None:
        self.send_started.set()
        await self.reading.wait()
        self.sent.append(data)
        waiter = self._counts.get(len(self.sent))
        if waiter is not None:
            waiter.set()

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.closed_with = (code, message)
        self.closed.set()
        return True

    async def received(self, count: int) -> list[str]:
        """Wait until count messages have been sent, then return them."""
        if len(self.sent) < count:
            waiter = self._counts.setdefault(count, asyncio.Event())
            await asyncio.wait_for(waiter.wait(), TIMEOUT)
        return self.sent


class BrokenSocket(FakeSocket):
    async def send_str(self, data: str) -> None:
        raise ConnectionResetError("peer gone")


@pytest.mark.asyncio
async def test_the_writer_sends_every_message_in_the_order_queued() -> None:
    socket = FakeSocket()
    connection = Connection(socket, name="c1")
    connection.start()
    connection.send_private("response 1")
    connection.send_market("book.BTCUSDT", "book 1")
    connection.send_private("fill 1")
    connection.send_market("trades.BTCUSDT", "trade 1")
    assert await socket.received(4) == ["response 1", "book 1", "fill 1", "trade 1"]
    await connection.close()
    await connection.wait_closed()


@pytest.mark.asyncio
async def test_a_slow_reader_gets_only_the_latest_market_message_per_key() -> None:
    socket = FakeSocket(reading=False)
    connection = Connection(socket)
    connection.start()
    connection.send_private("first")
    # The writer is now stuck sending "first" to a reader that does not read.
    await asyncio.wait_for(socket.send_started.wait(), TIMEOUT)
    for version in range(1, 6):
        connection.send_market("book.BTCUSDT", f"btc book {version}")
        connection.send_market("book.ETHUSDT", f"eth book {version}")
    connection.send_private("fill")
    assert connection.backlog == 3
    socket.reading.set()
    assert await socket.received(4) == ["first", "btc book 5", "eth book 5", "fill"]
    assert connection.conflated == 8
    assert not connection.closed
    await connection.close()


@pytest.mark.asyncio
async def test_private_messages_are_never_dropped_an_overflow_closes_the_connection() -> None:
    socket = FakeSocket(reading=False)
    connection = Connection(socket, limit=3)
    connection.start()
    connection.send_private("in flight")
    await asyncio.wait_for(socket.send_started.wait(), TIMEOUT)
    for n in range(3):
        connection.send_private(f"queued {n}")
    assert not connection.closed
    connection.send_private("one too many")
    assert connection.closed
    await asyncio.wait_for(socket.closed.wait(), TIMEOUT)
    assert socket.closed_with is not None
    code, reason = socket.closed_with
    assert code == CLOSE_TRY_AGAIN_LATER
    assert b"too slow" in reason
    assert connection.close_reason is not None
    # Nothing is queued after the close: the client resyncs from snapshots instead.
    connection.send_private("after close")
    assert connection.backlog == 0


@pytest.mark.asyncio
async def test_market_data_alone_never_closes_a_connection() -> None:
    socket = FakeSocket(reading=False)
    connection = Connection(socket, limit=2)
    connection.start()
    connection.send_private("in flight")
    await asyncio.wait_for(socket.send_started.wait(), TIMEOUT)
    for n in range(10):
        connection.send_market(f"ticker.SYM{n}", f"ticker {n}")
    assert not connection.closed
    assert connection.backlog == 2
    assert connection.dropped == 8
    socket.reading.set()
    assert await socket.received(3) == ["in flight", "ticker 0", "ticker 1"]
    await connection.close()


@pytest.mark.asyncio
async def test_a_lost_peer_ends_the_writer_and_closes_the_connection() -> None:
    connection = Connection(BrokenSocket())
    writer = connection.start()
    connection.send_private("hello")
    await asyncio.wait_for(writer, TIMEOUT)
    assert connection.closed
    assert connection.close_reason == "connection lost"


@pytest.mark.asyncio
async def test_publishing_to_many_connections_never_waits_for_a_slow_one() -> None:
    slow = FakeSocket(reading=False)
    fast = FakeSocket()
    connections = [Connection(slow), Connection(fast)]
    for connection in connections:
        connection.start()
    for n in range(100):
        for connection in connections:
            connection.send_market("book.BTCUSDT", f"book {n}")
            connection.send_private(f"fill {n}")
    # The publisher never yielded, so each book update replaced the waiting one in place.
    received = await fast.received(101)
    assert received == ["book 99"] + [f"fill {n}" for n in range(100)]
    assert slow.sent == []
    assert connections[0].backlog == 100
    for connection in connections:
        await connection.close()
        await connection.wait_closed()


@pytest.mark.asyncio
async def test_close_sends_the_reason_and_stops_the_writer() -> None:
    socket = FakeSocket()
    connection = Connection(socket)
    writer = connection.start()
    await connection.close("server shutting down", code=1001)
    await asyncio.wait_for(writer, TIMEOUT)
    assert socket.closed_with == (1001, b"server shutting down")
    assert connection.close_reason == "server shutting down"


# ---------------------------------------------------------------------- frames mode


class FakeFrames:
    """A transport taking whole WebSocket frames; it can report a backlog and hold drain."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.backlog = False
        self.drained = asyncio.Event()
        self.drained.set()
        self.drain_started = asyncio.Event()
        self.broken = False
        self.written = asyncio.Event()

    def write(self, data: bytes) -> bool:
        if self.broken:
            raise ConnectionResetError("peer gone")
        self.writes.append(data)
        self.written.set()
        return self.backlog

    async def drain(self) -> None:
        self.drain_started.set()
        await self.drained.wait()

    def messages(self) -> list[str]:
        """Decode every frame written (server frames: final, unmasked text)."""
        data = b"".join(self.writes)
        messages = []
        while data:
            assert data[0] == 0x81
            length, start = data[1], 2
            if length == 126:
                length, start = int.from_bytes(data[2:4], "big"), 4
            elif length == 127:
                length, start = int.from_bytes(data[2:10], "big"), 10
            messages.append(data[start : start + length].decode())
            data = data[start + length :]
        return messages

    async def received(self, count: int) -> list[str]:
        async with asyncio.timeout(TIMEOUT):
            while len(self.messages()) < count:
                self.written.clear()
                await self.written.wait()
        return self.messages()


@pytest.mark.asyncio
async def test_frames_carry_every_message_in_order_and_share_one_write_per_turn() -> None:
    frames = FakeFrames()
    connection = Connection(FakeSocket(), frames=frames)
    connection.start()
    connection.send_private("response 1")
    connection.send_market("book.BTCUSDT", b"book 1")
    connection.send_private("fill é")
    connection.send_market("trades.BTCUSDT", "x" * 70_000)
    messages = await frames.received(4)
    assert messages == ["response 1", "book 1", "fill é", "x" * 70_000]
    # Queued in one turn: the flusher wrote them together (the long one in its own chunk).
    assert len(frames.writes) == 1
    assert connection.sent == 4
    await connection.close()
    await connection.wait_closed()


@pytest.mark.asyncio
async def test_frames_a_paused_transport_conflates_and_then_overflows() -> None:
    frames = FakeFrames()
    socket = FakeSocket()
    connection = Connection(socket, limit=3, frames=frames)
    connection.start()
    frames.backlog = True
    frames.drained.clear()
    connection.send_private("first")
    # The write leaves a backlog: the writer task now waits for the transport to drain.
    await asyncio.wait_for(frames.drain_started.wait(), TIMEOUT)
    for version in range(1, 6):
        connection.send_market("book.BTCUSDT", f"book {version}")
    connection.send_private("fill")
    assert connection.backlog == 2
    assert connection.conflated == 4
    frames.backlog = False
    frames.drained.set()
    assert await frames.received(3) == ["first", "book 5", "fill"]
    # Paused again, private messages past the limit close the connection.
    frames.backlog = True
    frames.drained.clear()
    frames.drain_started.clear()
    connection.send_private("second")
    await asyncio.wait_for(frames.drain_started.wait(), TIMEOUT)
    for n in range(4):
        connection.send_private(f"queued {n}")
    assert connection.closed
    await asyncio.wait_for(socket.closed.wait(), TIMEOUT)
    assert socket.closed_with is not None
    assert socket.closed_with[0] == CLOSE_TRY_AGAIN_LATER
    await connection.wait_closed()


@pytest.mark.asyncio
async def test_frames_a_lost_peer_closes_the_connection() -> None:
    frames = FakeFrames()
    frames.broken = True
    connection = Connection(FakeSocket(), frames=frames)
    writer = connection.start()
    connection.send_private("hello")
    await asyncio.wait_for(writer, TIMEOUT)
    assert connection.closed
    assert connection.close_reason == "connection lost"


@pytest.mark.asyncio
async def test_frames_nothing_is_written_after_close() -> None:
    frames = FakeFrames()
    connection = Connection(FakeSocket(), frames=frames)
    writer = connection.start()
    connection.send_private("queued, then dropped by the close")
    await connection.close("bye")
    # The flush queued by send_private ran before the writer task ended, and wrote nothing.
    await asyncio.wait_for(writer, TIMEOUT)
    assert frames.writes == []


def test_text_frame_headers_follow_rfc_6455() -> None:
    assert text_frame_header(5) == b"\x81\x05"
    assert text_frame_header(125) == b"\x81\x7d"
    assert text_frame_header(126) == b"\x81\x7e\x00\x7e"
    assert text_frame_header(65535) == b"\x81\x7e\xff\xff"
    assert text_frame_header(65536) == b"\x81\x7f" + (65536).to_bytes(8, "big")
