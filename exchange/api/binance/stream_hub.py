"""The gateway's sequencer listener: who listens to which Binance stream, and what they get.

Like the native publisher it runs synchronously after each command and only enqueues on each
socket's fan-out Connection. Trades, aggregate trades and liquidations are never conflated.
Marks, tickers and partial books are conflated per stream (a slow reader gets the latest).
Diff depth is never lost: while a socket's previous diff still waits unsent, the new one is
merged into it (U of the first, u of the last, pu of the first, the later size per level), so
U/u/pu stay continuous; if the outbox is full the socket is closed and the client resyncs.

Klines are pushed on each trade in the open candle (conflated per candle) and once more, never
conflated, with x true when the interval ends: at the first command after its end, or by
`close_klines_on_time` when the market is quiet, so a client learns a candle closed without
waiting for the next trade.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from exchange.api.binance import ws_market, ws_user
from exchange.api.binance.klines import Kline
from exchange.api.binance.stream_names import Stream, StreamKind
from exchange.api.context import ApiContext
from exchange.api.jsonrpc import dumps
from exchange.core.commands import Command
from exchange.core.enums import LiquiditySide
from exchange.core.events import BookUpdated, Event, Liquidated, MarkUpdated, OrderFilled
from exchange.core.instruments import Instrument
from exchange.runtime.fanout import CLOSE_TRY_AGAIN_LATER, Connection

log = structlog.get_logger("paperex.binance.streams")

MAX_STREAMS = 1024
"""Streams one socket may hold, as on Binance."""

KLINE_CHECK_MS = 250
"""How often a quiet market's open candles are checked for their end (Binance pushes klines
every 250 ms), so a close is late by at most this much even if the clock is not the system's."""


class _PendingDepth:
    """A diff depth event still waiting in one socket's outbox, kept so it can be merged."""

    __slots__ = ("asks", "bids", "final_id", "first_id", "previous_id", "ts")

    def __init__(self, event: BookUpdated, ts: int) -> None:
        self.first_id = event.update_id
        self.final_id = event.update_id
        self.previous_id = event.update_id - 1
        self.bids = dict(event.bids)
        self.asks = dict(event.asks)
        self.ts = ts

    def merge(self, event: BookUpdated, ts: int) -> None:
        assert event.update_id == self.final_id + 1, "book updates arrive in order"
        self.final_id = event.update_id
        self.bids.update(event.bids)
        self.asks.update(event.asks)
        self.ts = ts

    def render(self, instrument: Instrument) -> dict[str, Any]:
        bids = sorted(self.bids.items(), reverse=True)
        asks = sorted(self.asks.items())
        return ws_market.depth_update(
            instrument, self.ts, self.first_id, self.final_id, self.previous_id, bids, asks
        )


class StreamSocket:
    """One client socket: its outbox, its framing and the streams it holds."""

    def __init__(self, connection: Connection, *, combined: bool) -> None:
        self.connection = connection
        self.combined = combined
        self.streams: dict[str, Stream] = {}
        self.pending_depth: dict[str, _PendingDepth] = {}
        self.account_id: int | None = None

    def frame(self, name: str, payload_json: str) -> str:
        if self.combined:
            return f'{{"stream":{dumps(name)},"data":{payload_json}}}'
        return payload_json


class _Frames:
    """One payload rendered once, framed raw or combined on demand."""

    __slots__ = ("_combined", "name", "payload_json")

    def __init__(self, name: str, payload: Any) -> None:
        self.name = name
        self.payload_json = dumps(payload)
        self._combined: str | None = None

    def for_socket(self, socket: StreamSocket) -> str:
        if not socket.combined:
            return self.payload_json
        if self._combined is None:
            self._combined = socket.frame(self.name, self.payload_json)
        return self._combined


class StreamHub:
    """Subscriptions by stream name, and the sequencer listener that feeds them."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context
        self.sockets: dict[str, set[StreamSocket]] = {}
        self.names: dict[tuple[StreamKind, str | None], set[str]] = {}
        self.streams: dict[str, Stream] = {}
        self.accounts: dict[int, set[StreamSocket]] = {}
        self.klines: dict[str, Kline] = {}
        """Open candles by kline stream name; only those with trades."""
        self._kline_opened = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, socket: StreamSocket, stream: Stream) -> None:
        """Add a stream to a socket; a partial book, ticker or open candle is sent at once."""
        if stream.name in socket.streams:
            return
        if stream.kind is StreamKind.KLINE:
            # A stale candle closes before the newcomer sees the current one.
            self._close_klines(self.context.clock.now_ms())
        socket.streams[stream.name] = stream
        self.streams[stream.name] = stream
        self.sockets.setdefault(stream.name, set()).add(socket)
        self.names.setdefault((stream.kind, stream.symbol), set()).add(stream.name)
        initial = self._current(stream, self.context.clock.now_ms())
        if initial is not None:
            socket.connection.send_market(stream.name, socket.frame(stream.name, dumps(initial)))

    def unsubscribe(self, socket: StreamSocket, name: str) -> None:
        stream = socket.streams.pop(name, None)
        if stream is None:
            return
        socket.pending_depth.pop(name, None)
        sockets = self.sockets.get(name)
        if sockets is None:
            return
        sockets.discard(socket)
        if not sockets:
            del self.sockets[name]
            del self.streams[name]
            self.klines.pop(name, None)
            names = self.names.get((stream.kind, stream.symbol))
            if names is not None:
                names.discard(name)

    def drop(self, socket: StreamSocket) -> None:
        for name in list(socket.streams):
            self.unsubscribe(socket, name)
        self.unlisten(socket)

    def unlisten(self, socket: StreamSocket) -> None:
        """Stop a socket's user data stream."""
        account_id, socket.account_id = socket.account_id, None
        if account_id is None:
            return
        sockets = self.accounts.get(account_id)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self.accounts[account_id]

    def listen(self, socket: StreamSocket, account_id: int) -> None:
        """Send an account's user data stream to a socket."""
        socket.account_id = account_id
        self.accounts.setdefault(account_id, set()).add(socket)

    def _current(self, stream: Stream, ts: int) -> Any:
        """Return a state stream's present value, for a new subscriber; None for event streams."""
        context, symbol = self.context, stream.symbol
        kind = stream.kind
        if kind is StreamKind.ALL_MARK_PRICES:
            return self._all_marks(ts)
        if symbol is None:
            return None
        if kind is StreamKind.PARTIAL_DEPTH:
            return ws_market.partial_depth(context, symbol, stream.levels, ts)
        if kind is StreamKind.BOOK_TICKER:
            return ws_market.book_ticker(context, symbol, ts)
        if kind is StreamKind.MARK_PRICE:
            if context.exchange.markets[symbol].mark_price is None:
                return None
            return ws_market.mark_price(context, symbol, ts)
        if kind is StreamKind.TICKER:
            return ws_market.tickers(context, symbol, ts)[0]
        if kind is StreamKind.MINI_TICKER:
            return ws_market.tickers(context, symbol, ts)[1]
        if kind is StreamKind.KLINE:
            kline = self.klines.get(stream.name)
            if kline is None:
                trades = context.history.trades[symbol]
                kline = Kline.from_history(symbol, stream.interval, ts, trades)
                if not kline.count:
                    return None
                self._open_kline(stream.name, kline)
            return kline.render(context.instrument(symbol), ts, closed=False)
        return None

    def _all_marks(self, ts: int) -> list[dict[str, Any]]:
        markets = self.context.exchange.markets
        return [
            ws_market.mark_price(self.context, symbol, ts)
            for symbol in sorted(markets)
            if markets[symbol].mark_price is not None
        ]

    # ------------------------------------------------------------------ publishing

    def __call__(self, command: Command, events: list[Event]) -> None:
        if self.accounts:
            self._user(command, events)
        if not self.sockets:
            return
        ts = command.ts
        if self.klines:
            self._close_klines(ts)
        books: set[str] = set()
        marks: set[str] = set()
        takers: dict[str, list[OrderFilled]] = {}
        for event in events:
            if isinstance(event, BookUpdated):
                books.add(event.symbol)
                self._diff_depth(event, ts)
            elif isinstance(event, OrderFilled):
                if event.liquidity_side is LiquiditySide.TAKER:
                    takers.setdefault(event.symbol, []).append(event)
            elif isinstance(event, MarkUpdated):
                marks.add(event.symbol)
            elif isinstance(event, Liquidated):
                self._force_order(event, ts)
        for symbol, fills in takers.items():
            self._trades(symbol, fills, ts)
            self._klines(symbol, fills, ts)
        for symbol in books:
            self._state(StreamKind.BOOK_TICKER, symbol, ts)
            self._state(StreamKind.PARTIAL_DEPTH, symbol, ts)
        for symbol in marks:
            self._state(StreamKind.MARK_PRICE, symbol, ts)
        if marks and self.names.get((StreamKind.ALL_MARK_PRICES, None)):
            self._state(StreamKind.ALL_MARK_PRICES, None, ts)

    def _subscribed(self, kind: StreamKind, symbol: str | None) -> list[str]:
        names = self.names.get((kind, symbol))
        return [name for name in names if name in self.sockets] if names else []

    def _send(self, name: str, payload: Any, *, conflate: bool, key: str | None = None) -> None:
        """Send a payload to a stream's sockets; conflated ones replace a waiting one by key."""
        frames = _Frames(name, payload)
        for socket in self.sockets.get(name, ()):
            if conflate:
                socket.connection.send_market(key or name, frames.for_socket(socket))
            else:
                socket.connection.send_private(frames.for_socket(socket))

    def _state(self, kind: StreamKind, symbol: str | None, ts: int) -> None:
        for name in self._subscribed(kind, symbol):
            payload = self._current(self.streams[name], ts)
            if payload is not None:
                self._send(name, payload, conflate=True)

    def _trades(self, symbol: str, fills: list[OrderFilled], ts: int) -> None:
        context = self.context
        instrument = context.instrument(symbol)
        trade_names = self._subscribed(StreamKind.TRADE, symbol)
        for fill in fills if trade_names else ():
            view = context.history.orders.get(fill.order_id)
            liquidation = view is not None and view.liquidation
            payload = ws_market.trade(instrument, fill, ts, liquidation)
            for name in trade_names:
                self._send(name, payload, conflate=False)
        agg_names = self._subscribed(StreamKind.AGG_TRADE, symbol)
        for group in ws_market.aggregate(fills) if agg_names else ():
            payload = ws_market.agg_trade(instrument, group, ts)
            for name in agg_names:
                self._send(name, payload, conflate=False)
        ticker_names = self._subscribed(StreamKind.TICKER, symbol)
        mini_names = self._subscribed(StreamKind.MINI_TICKER, symbol)
        if ticker_names or mini_names:
            full, mini = ws_market.tickers(context, symbol, ts)
            for name in ticker_names:
                self._send(name, full, conflate=True)
            for name in mini_names:
                self._send(name, mini, conflate=True)

    # ------------------------------------------------------------------ klines

    def _open_kline(self, name: str, kline: Kline) -> None:
        self.klines[name] = kline
        self._kline_opened.set()

    def _klines(self, symbol: str, fills: list[OrderFilled], ts: int) -> None:
        names = self._subscribed(StreamKind.KLINE, symbol)
        if not names:
            return
        instrument = self.context.instrument(symbol)
        for name in names:
            kline = self.klines.get(name)
            if kline is None:
                kline = Kline(symbol, self.streams[name].interval, ts)
                self._open_kline(name, kline)
            for fill in fills:
                kline.add(fill.trade_id, fill.last_px, fill.last_qty, fill.side)
            # Keyed by candle, so an update waiting unsent is never replaced by the next
            # candle's, which would hide the close sent in between.
            payload = kline.render(instrument, ts, closed=False)
            self._send(name, payload, conflate=True, key=f"{name}@{kline.open_ms}")

    def _close_klines(self, now: int) -> None:
        """Send the final state (x true) of every open candle whose interval ended before now."""
        for name, kline in list(self.klines.items()):
            if now <= kline.close_ms:
                continue
            del self.klines[name]
            payload = kline.render(self.context.instrument(kline.symbol), now, closed=True)
            self._send(name, payload, conflate=False)

    async def close_klines_on_time(self) -> None:
        """Close candles as their intervals end, also when no command comes; run until cancelled."""
        clock = self.context.clock
        while True:
            if not self.klines:
                self._kline_opened.clear()
                await self._kline_opened.wait()
                continue
            now = clock.now_ms()
            self._close_klines(now)
            due_ms = min((k.close_ms + 1 - now for k in self.klines.values()), default=0)
            await asyncio.sleep(min(max(due_ms, 1), KLINE_CHECK_MS) / 1000)

    # ------------------------------------------------------------------ liquidations

    def _force_order(self, event: Liquidated, ts: int) -> None:
        names = self._subscribed(StreamKind.FORCE_ORDER, event.symbol)
        if not names:
            return
        instrument = self.context.instrument(event.symbol)
        view = self.context.history.orders.get(event.order_id)
        payload = ws_market.force_order(instrument, event, view, ts)
        for name in names:
            self._send(name, payload, conflate=False)

    def _diff_depth(self, event: BookUpdated, ts: int) -> None:
        names = self._subscribed(StreamKind.DIFF_DEPTH, event.symbol)
        if not names:
            return
        instrument = self.context.instrument(event.symbol)
        fresh: _Frames | None = None
        for name in names:
            for socket in list(self.sockets.get(name, ())):
                connection = socket.connection
                pending = socket.pending_depth.get(name)
                if pending is not None and connection.market_waiting(name):
                    pending.merge(event, ts)
                    payload_json = dumps(pending.render(instrument))
                    connection.send_market(name, socket.frame(name, payload_json))
                    continue
                socket.pending_depth[name] = _PendingDepth(event, ts)
                if fresh is None or fresh.name != name:
                    fresh = _Frames(
                        name,
                        ws_market.depth_update(
                            instrument,
                            ts,
                            event.update_id,
                            event.update_id,
                            event.update_id - 1,
                            event.bids,
                            event.asks,
                        ),
                    )
                connection.send_market(name, fresh.for_socket(socket))
                if not connection.closed and not connection.market_waiting(name):
                    # The outbox was full and the diff is lost: the chain is broken.
                    self._close(socket, "too slow: a depth update could not be queued")

    def _user(self, command: Command, events: list[Event]) -> None:
        rendered = ws_user.render_command(self.context, command, events, set(self.accounts))
        for account_id, payloads in rendered.items():
            messages = [dumps(payload) for payload in payloads]
            for socket in self.accounts.get(account_id, ()):
                for message in messages:
                    socket.connection.send_private(message)

    def _close(self, socket: StreamSocket, reason: str) -> None:
        log.warning("binance_stream_closed", reason=reason)
        self.drop(socket)
        task = asyncio.get_running_loop().create_task(
            socket.connection.close(reason, CLOSE_TRY_AGAIN_LATER)
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
