"""The asyncio client: one WebSocket, requests matched to replies by id, streams, reconnects.

    async with Client("ws://127.0.0.1:8765/ws", api_key, api_secret) as client:
        order = await client.market_order("BTCUSDT", "buy", "0.01")
        async for update in client.subscribe("trades.BTCUSDT"):
            print(update.data.price)

One reader task per connection reads every frame: replies resolve the request waiting on
their id, notifications go to the subscriptions of their channel. When the connection drops
(the server restarts, closes a slow reader, the network fails) the requests in flight fail
with ConnectionLostError and the client reconnects with backoff, logs in again, takes the
operator role again and subscribes to every channel still wanted; requests made meanwhile
wait for the new connection, within their timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from clients.paperex_client.book import Applied, LocalBook
from clients.paperex_client.errors import (
    ClientClosedError,
    ConnectionLostError,
    PaperexError,
    ProtocolError,
)
from clients.paperex_client.models import (
    Account,
    AccountEquity,
    Book,
    ExchangeState,
    Fill,
    Instrument,
    LedgerRow,
    MarginMode,
    NewAccount,
    Order,
    OrderType,
    PositionSettings,
    RiskReport,
    ServerTime,
    Side,
    StreamUpdate,
    Ticker,
    TimeInForce,
    Trade,
    TriggerBy,
    WalletBalance,
    decode,
    decode_list,
    stream_data,
)

log = logging.getLogger("paperex_client")

T = TypeVar("T")
Number = Decimal | str | int
"""A price, quantity or amount to send: sent as a decimal string, never through float."""

TIMESTAMP_OUT_OF_WINDOW = 5003
FATAL_ON_RECONNECT = frozenset({5002, 5005})
"""Invalid credentials or admin token: retrying cannot help, so the client gives up."""


def login_signature(api_secret: str, timestamp: int, api_key: str) -> str:
    """Return hex HMAC-SHA256(api_secret, f"{timestamp}.{api_key}"), as auth.login expects."""
    message = f"{timestamp}.{api_key}".encode()
    return hmac.new(api_secret.encode(), message, hashlib.sha256).hexdigest()


def wire_number(value: Number) -> str | int:
    """Return a number as the wire wants it: a Decimal as plain decimal text, never 1E+3."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("pass prices and quantities as Decimal or str, not float")
    return value


READ_ONLY_METHODS = frozenset(
    {"order.get", "order.open", "account.get", "account.fills", "account.ledger"}
)


def _is_read_only(method: str) -> bool:
    return method.startswith("public.") or method in READ_ONLY_METHODS


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between reconnect attempts: `initial`, times `factor` each time, up to `maximum`."""

    initial: float = 0.05
    maximum: float = 5.0
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        """Yield the delay before each attempt, forever."""
        delay = self.initial
        while True:
            yield delay
            delay = min(self.maximum, delay * self.factor)


# ---------------------------------------------------------------------------------------------
# Subscriptions
# ---------------------------------------------------------------------------------------------


class _End:
    """Put on a subscription's queue to end its iteration, with an error if it failed."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class Subscription:
    """Notifications of one or more channels, as an async iterator of StreamUpdate.

    Use it directly (`async for update in client.subscribe(...)` subscribes on the first
    step) or as `async with` to unsubscribe on exit. Each subscription has its own queue; when
    it is full (the consumer is slower than the stream) the oldest update is dropped and
    counted in `dropped`, and the seq gap shows it to the consumer.
    """

    def __init__(self, client: Client, channels: tuple[str, ...], queue_size: int) -> None:
        if not channels:
            raise ValueError("subscribe to at least one channel")
        self.client = client
        self.channels = channels
        self.dropped = 0
        self.new_channels: tuple[str, ...] = ()
        self._queue: asyncio.Queue[StreamUpdate | _End] = asyncio.Queue(maxsize=queue_size)
        self._started = False
        self._ended = False

    async def start(self) -> Self:
        """Subscribe, if not done yet; the server's book snapshot is queued when this returns."""
        if not self._started:
            self._started = True
            try:
                self.new_channels = await self.client._add_subscription(self)
            except BaseException:
                self._end(None)
                raise
        return self

    async def close(self) -> None:
        """Stop receiving; unsubscribe from channels no other subscription of the client holds."""
        if self._ended:
            return
        self._ended = True
        if self._started:
            await self.client._remove_subscription(self)
        self._end(None)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamUpdate:
        if not self._started:
            await self.start()
        item = await self._queue.get()
        if isinstance(item, _End):
            # Leave the marker for any other reader of this subscription.
            self._queue.put_nowait(item)
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    async def next(self, timeout: float | None = None) -> StreamUpdate:
        """Return the next update, waiting at most `timeout` seconds (None: the client's)."""
        wait = self.client.timeout if timeout is None else timeout
        return await asyncio.wait_for(self.__anext__(), wait)

    def _deliver(self, update: StreamUpdate) -> None:
        if self._ended:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(update)

    def _end(self, error: BaseException | None) -> None:
        self._ended = True
        while self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(_End(error))


class BookFeed:
    """A LocalBook kept in sync from the `book.SYMBOL` channel, resynced on any gap.

    Pull it: `async for book in feed` yields the LocalBook after each change, and
    `await feed.sync_to(update_id)` reads until the book has reached an update id; or run
    `feed.run()` in a task and read `feed.book` whenever needed. Use one consumer at a time.
    A gap in update ids or stream seqs (updates conflated by the server for a slow reader,
    or dropped from a full queue) makes it fetch a fresh `public.book`; `resyncs` counts them.
    """

    def __init__(self, client: Client, symbol: str, queue_size: int) -> None:
        self.client = client
        self.symbol = symbol
        self.book = LocalBook(symbol)
        self.resyncs = 0
        self.subscription = Subscription(client, (f"book.{symbol}",), queue_size)

    async def start(self) -> Self:
        """Subscribe and bring the book in sync."""
        await self.subscription.start()
        if not self.subscription.new_channels:
            # Another subscription of this client holds the channel: no snapshot will come.
            await self._resync()
        while not self.book.synced:
            await self.__anext__()
        return self

    async def close(self) -> None:
        """Stop following the book."""
        await self.subscription.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> LocalBook:
        while True:
            update = await self.subscription.__anext__()
            outcome = self.book.apply(update)
            if outcome is Applied.GAP:
                await self._resync()
                return self.book
            if outcome is Applied.APPLIED:
                return self.book

    async def sync_to(self, update_id: int, timeout: float | None = None) -> LocalBook:
        """Read updates until the book reflects `update_id` (e.g. a `public.book`'s)."""
        wait = self.client.timeout if timeout is None else timeout
        async with asyncio.timeout(wait):
            while not self.book.synced or self.book.update_id < update_id:
                await self.__anext__()
        return self.book

    async def run(self) -> None:
        """Keep the book in sync until the feed is closed."""
        async for _ in self:
            pass

    async def _resync(self) -> None:
        snapshot = await self.client.book(self.symbol)
        self.book.reset(snapshot)
        self.resyncs += 1
        log.info("book_resync", extra={"symbol": self.symbol, "update_id": snapshot.update_id})


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


class Client:
    """A connection to a paperex server's native API, logged in when given keys.

    `url` is the WebSocket endpoint (`ws://127.0.0.1:8765/ws`). With `api_key` and
    `api_secret` the client logs in on every connection. `timeout` bounds each request,
    including any wait for a reconnect. `reconnect=False` ends streams and fails requests
    with ClientClosedError once the connection drops.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        timeout: float = 10.0,
        reconnect: bool = True,
        backoff: Backoff | None = None,
        queue_size: int = 10_000,
        heartbeat: float | None = 20.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if (api_key is None) != (api_secret is None):
            raise ValueError("give both api_key and api_secret, or neither")
        self.url = url
        self.api_key = api_key
        self.api_secret = api_secret
        self.timeout = timeout
        self.reconnect = reconnect
        self.backoff = backoff or Backoff()
        self.queue_size = queue_size
        self.heartbeat = heartbeat
        self.account_id: int | None = None
        self.connection = 0
        """How many connections the client has opened; 2 and up are reconnects."""
        self._session = session
        self._own_session = session is None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._connected = asyncio.Event()
        self._opening = False
        self._closing = False
        self._failure: BaseException | None = None
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._clock_offset_ms = 0

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """Tell whether a connection is open and its login and subscriptions are done."""
        return self._connected.is_set() and self._failure is None

    async def connect(self) -> None:
        """Connect and log in; errors of this first attempt are raised, not retried."""
        if self._closing:
            raise ClientClosedError("the client is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            await self._open()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connection, stop reconnecting and end every subscription."""
        if self._closing:
            return
        self._closing = True
        reconnector = self._reconnector
        if reconnector is not None and reconnector is not asyncio.current_task():
            reconnector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconnector
        socket = self._socket
        if socket is not None:
            await socket.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._fail_pending(ClientClosedError("the client is closed"))
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription._end(None)
        self._subscriptions.clear()
        self._connected.set()
        if self._own_session and self._session is not None:
            await self._session.close()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the client is connected, logged in and resubscribed."""
        wait = self.timeout if timeout is None else timeout
        async with asyncio.timeout(wait):
            await self._ready()

    async def _ready(self) -> None:
        while True:
            if self._failure is not None:
                raise self._failure
            if self._closing:
                raise ClientClosedError("the client is closed")
            if self._connected.is_set() and self._socket is not None:
                return
            await self._connected.wait()

    async def _open(self) -> None:
        assert self._session is not None
        self._opening = True
        try:
            socket = await self._session.ws_connect(
                self.url, heartbeat=self.heartbeat, max_msg_size=8 * 1024 * 1024
            )
            self._socket = socket
            self.connection += 1
            self._reader = asyncio.get_running_loop().create_task(
                self._read(socket, self.connection), name=f"paperex reader {self.connection}"
            )
            try:
                await self._handshake()
            except BaseException:
                # Forget the socket first, so its reader does not start a reconnect of its own.
                self._socket = None
                await socket.close()
                raise
        finally:
            self._opening = False
        self._connected.set()
        log.info("connected", extra={"url": self.url, "connection": self.connection})

    async def _handshake(self) -> None:
        """Log in, take any extra role, and subscribe again to every channel still wanted."""
        if self.api_key is not None:
            await self._login()
        channels = sorted(self._subscriptions)
        if channels:
            await self._request("subscribe", {"channels": channels}, handshake=True)

    async def _login(self) -> None:
        assert self.api_key is not None
        assert self.api_secret is not None
        for attempt in range(2):
            timestamp = int(time.time() * 1000) + self._clock_offset_ms
            params = {
                "api_key": self.api_key,
                "timestamp": timestamp,
                "signature": login_signature(self.api_secret, timestamp, self.api_key),
            }
            try:
                result = await self._request("auth.login", params, handshake=True)
            except PaperexError as error:
                server_time = (error.data or {}).get("server_time")
                if error.code != TIMESTAMP_OUT_OF_WINDOW or attempt or server_time is None:
                    raise
                # This machine's clock is off: sign with the server's time instead.
                self._clock_offset_ms = int(server_time) - int(time.time() * 1000)
                continue
            self.account_id = int(result["account_id"])
            return

    # ------------------------------------------------------------------ reading

    async def _read(self, socket: aiohttp.ClientWebSocketResponse, connection: int) -> None:
        try:
            async for message in socket:
                if message.type is aiohttp.WSMsgType.TEXT:
                    self._on_text(message.data, connection)
                elif message.type is aiohttp.WSMsgType.BINARY:
                    self._on_text(message.data.decode(), connection)
                else:
                    break
        except Exception:
            log.exception("reader_failed")
        finally:
            self._on_lost(socket)

    def _on_text(self, text: str, connection: int) -> None:
        try:
            # JSON numbers as Decimal: nothing the server sends is ever read through float.
            message = json.loads(text, parse_float=Decimal)
        except ValueError:
            log.warning("unreadable_message", extra={"message": text[:200]})
            return
        if not isinstance(message, dict):
            log.warning("unexpected_message", extra={"message": text[:200]})
            return
        if message.get("method") == "stream":
            self._on_stream(message.get("params"), connection)
            return
        request_id = message.get("id")
        future = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if future is None:
            # An error with a null id: the server could not read a frame far enough.
            log.warning("unmatched_reply", extra={"message": text[:200]})
            return
        if future.done():
            return
        error = message.get("error")
        if isinstance(error, dict):
            code, text = int(error.get("code", 0)), str(error.get("message"))
            future.set_exception(PaperexError(code, text, error.get("data")))
        else:
            future.set_result(message.get("result"))

    def _on_stream(self, params: Any, connection: int) -> None:
        if not isinstance(params, dict):
            return
        channel = params.get("channel")
        subscriptions = self._subscriptions.get(channel) if isinstance(channel, str) else None
        if not subscriptions or not isinstance(channel, str):
            return
        try:
            data = stream_data(channel, params.get("data"))
        except ProtocolError:
            log.exception("bad_stream_data", extra={"channel": channel})
            return
        update = StreamUpdate(channel, int(params.get("seq", 0)), connection, data)
        for subscription in subscriptions:
            subscription._deliver(update)

    def _on_lost(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        if socket is not self._socket:
            return
        self._socket = None
        self._connected.clear()
        self._fail_pending(ConnectionLostError("the connection to the server was lost"))
        if self._closing or self._opening:
            return
        if not self.reconnect:
            self._give_up(ClientClosedError("the connection was lost and reconnect is off"))
            return
        if self._reconnector is None or self._reconnector.done():
            log.warning("connection_lost", extra={"connection": self.connection})
            self._reconnector = asyncio.get_running_loop().create_task(
                self._reconnect(), name="paperex reconnect"
            )

    async def _reconnect(self) -> None:
        for delay in self.backoff.delays():
            if self._closing:
                return
            await asyncio.sleep(delay)
            try:
                await self._open()
                return
            except PaperexError as error:
                if error.code in FATAL_ON_RECONNECT:
                    self._give_up(error)
                    return
                log.warning("reconnect_refused", extra={"code": error.code})
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                # ConnectionLostError is an OSError: a connection lost mid-handshake.
                log.info("reconnect_failed", extra={"error": repr(error)})

    def _give_up(self, error: BaseException) -> None:
        log.error("client_gave_up", extra={"error": repr(error)})
        self._failure = error
        self._fail_pending(error)
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription._end(error)
        # Wake every request waiting for a connection, so it raises the failure.
        self._connected.set()

    def _fail_pending(self, error: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    # ------------------------------------------------------------------ requests

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send any request and return its raw JSON result, or raise PaperexError.

        A read-only request lost with its connection is sent again once the client has
        reconnected; anything that changes state raises ConnectionLostError instead, since
        it may or may not have been carried out.
        """
        async with asyncio.timeout(self.timeout):
            while True:
                await self._ready()
                try:
                    return await self._request(method, params)
                except ConnectionLostError:
                    if not self.reconnect or not _is_read_only(method):
                        raise

    async def _request(
        self, method: str, params: dict[str, Any] | None, *, handshake: bool = False
    ) -> Any:
        socket = self._socket
        if socket is None:
            raise ConnectionLostError("not connected")
        request_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params:
            message["params"] = {k: v for k, v in params.items() if v is not None}
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await socket.send_str(json.dumps(message, separators=(",", ":"), default=_json_default))
        except (ConnectionError, RuntimeError) as error:
            self._pending.pop(request_id, None)
            # The reader may not have seen the close yet; without this a retry would find
            # the same dead socket again.
            self._on_lost(socket)
            raise ConnectionLostError(f"could not send {method}: {error}") from error
        try:
            if handshake:
                async with asyncio.timeout(self.timeout):
                    return await future
            return await future
        finally:
            self._pending.pop(request_id, None)

    async def _typed(self, cls: type[T], method: str, params: dict[str, Any] | None = None) -> T:
        return decode(cls, await self.call(method, params))

    async def _typed_list(
        self, cls: type[T], method: str, params: dict[str, Any] | None = None
    ) -> list[T]:
        return decode_list(cls, await self.call(method, params))

    # ------------------------------------------------------------------ streams

    def subscribe(self, *channels: str, queue_size: int | None = None) -> Subscription:
        """Return a subscription to channels: `book.SYMBOL`, `trades.SYMBOL`, `ticker.SYMBOL`,
        `liquidations.SYMBOL`, `account`. It subscribes when started or first iterated."""
        return Subscription(self, channels, queue_size or self.queue_size)

    def local_book(self, symbol: str, *, queue_size: int | None = None) -> BookFeed:
        """Return a feed keeping a LocalBook of a symbol in sync; start it with `async with`."""
        return BookFeed(self, symbol, queue_size or self.queue_size)

    async def _add_subscription(self, subscription: Subscription) -> tuple[str, ...]:
        new = tuple(c for c in dict.fromkeys(subscription.channels) if c not in self._subscriptions)
        for channel in subscription.channels:
            self._subscriptions.setdefault(channel, []).append(subscription)
        if not new:
            return new
        try:
            await self.call("subscribe", {"channels": list(new)})
        except BaseException:
            self._detach(subscription)
            raise
        return new

    async def _remove_subscription(self, subscription: Subscription) -> None:
        unused = self._detach(subscription)
        if unused and self.connected:
            with contextlib.suppress(PaperexError, ConnectionError, TimeoutError):
                await self.call("unsubscribe", {"channels": unused})

    def _detach(self, subscription: Subscription) -> list[str]:
        unused = []
        for channel in dict.fromkeys(subscription.channels):
            holders = self._subscriptions.get(channel, [])
            with contextlib.suppress(ValueError):
                holders.remove(subscription)
            if not holders:
                self._subscriptions.pop(channel, None)
                unused.append(channel)
        return unused

    # ------------------------------------------------------------------ public

    async def time(self) -> ServerTime:
        """Return the server's clock (Unix ms) and the last command seq."""
        return await self._typed(ServerTime, "public.time")

    async def instruments(self) -> list[Instrument]:
        """Return every instrument's ticks, lots, limits, fees and margin brackets."""
        return await self._typed_list(Instrument, "public.instruments")

    async def book(self, symbol: str, depth: int | None = None) -> Book:
        """Return a snapshot of a symbol's book, levels best first, with its update id."""
        return await self._typed(Book, "public.book", {"symbol": symbol, "depth": depth})

    async def ticker(self, symbol: str) -> Ticker:
        """Return a symbol's mark, index, last, best bid and ask, funding and open interest."""
        return await self._typed(Ticker, "public.ticker", {"symbol": symbol})

    async def trades(self, symbol: str, limit: int | None = None) -> list[Trade]:
        """Return a symbol's recent trades, newest first."""
        return await self._typed_list(Trade, "public.trades", {"symbol": symbol, "limit": limit})

    async def liquidation_price(self, scenario: dict[str, Any]) -> RiskReport:
        """Run the liquidation calculator on a scenario (the `paperex liq --scenario` JSON)."""
        return await self._typed(RiskReport, "public.liquidation_price", scenario)

    # ------------------------------------------------------------------ orders

    async def place_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        qty: Number | None = None,
        *,
        price: Number | None = None,
        trigger_price: Number | None = None,
        trigger_by: TriggerBy | None = None,
        time_in_force: TimeInForce | None = None,
        reduce_only: bool | None = None,
        close_position: bool | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        """Place an order and return it after matching; a refusal raises PaperexError."""
        params: dict[str, Any] = {
            "symbol": symbol,
            "side": side,
            "type": order_type,
            "qty": None if qty is None else wire_number(qty),
            "price": None if price is None else wire_number(price),
            "trigger_price": None if trigger_price is None else wire_number(trigger_price),
            "trigger_by": trigger_by,
            "time_in_force": time_in_force,
            "reduce_only": reduce_only,
            "close_position": close_position,
            "client_order_id": client_order_id,
        }
        return await self._typed(Order, "order.place", params)

    async def market_order(
        self, symbol: str, side: Side, qty: Number, *, reduce_only: bool | None = None
    ) -> Order:
        """Buy or sell at the market; return the order, filled or expired."""
        return await self.place_order(symbol, side, "market", qty, reduce_only=reduce_only)

    async def limit_order(
        self,
        symbol: str,
        side: Side,
        qty: Number,
        price: Number,
        *,
        time_in_force: TimeInForce | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        """Place a limit order (GTC unless told otherwise) and return it after matching."""
        return await self.place_order(
            symbol,
            side,
            "limit",
            qty,
            price=price,
            time_in_force=time_in_force,
            client_order_id=client_order_id,
        )

    async def cancel_order(
        self, order_id: int | None = None, *, client_order_id: str | None = None
    ) -> Order:
        """Cancel an open order by id or client order id and return it."""
        params = {"order_id": order_id, "client_order_id": client_order_id}
        return await self._typed(Order, "order.cancel", params)

    async def cancel_all(self, symbol: str | None = None) -> list[int]:
        """Cancel every open order (of one symbol, if given); return the canceled ids."""
        result = await self.call("order.cancel_all", {"symbol": symbol})
        return [int(order_id) for order_id in result["canceled"]]

    async def amend_order(
        self,
        order_id: int | None = None,
        *,
        client_order_id: str | None = None,
        qty: Number | None = None,
        price: Number | None = None,
    ) -> Order:
        """Change an open order's quantity, price or both, and return it."""
        params = {
            "order_id": order_id,
            "client_order_id": client_order_id,
            "qty": None if qty is None else wire_number(qty),
            "price": None if price is None else wire_number(price),
        }
        return await self._typed(Order, "order.amend", params)

    async def get_order(
        self, order_id: int | None = None, *, client_order_id: str | None = None
    ) -> Order:
        """Return an open order, or one of the last 1,000 finished ones."""
        params = {"order_id": order_id, "client_order_id": client_order_id}
        return await self._typed(Order, "order.get", params)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Return the open orders (of one symbol, if given), oldest first."""
        return await self._typed_list(Order, "order.open", {"symbol": symbol})

    # ------------------------------------------------------------------ account, positions

    async def account(self) -> Account:
        """Return the balances, cross figures and every position with its risk figures."""
        return await self._typed(Account, "account.get")

    async def fills(self, symbol: str | None = None, limit: int | None = None) -> list[Fill]:
        """Return the account's fills, newest first."""
        return await self._typed_list(Fill, "account.fills", {"symbol": symbol, "limit": limit})

    async def ledger(self, symbol: str | None = None, limit: int | None = None) -> list[LedgerRow]:
        """Return the account's ledger rows (deposits, fees, PnL, funding...), newest first."""
        params = {"symbol": symbol, "limit": limit}
        return await self._typed_list(LedgerRow, "account.ledger", params)

    async def set_leverage(self, symbol: str, leverage: int) -> PositionSettings:
        """Set a symbol's leverage (1-125, within the position's bracket)."""
        params = {"symbol": symbol, "leverage": leverage}
        return await self._typed(PositionSettings, "position.set_leverage", params)

    async def set_margin_mode(self, symbol: str, margin_mode: MarginMode) -> PositionSettings:
        """Set a symbol's margin mode, cross or isolated (no position or orders open)."""
        params = {"symbol": symbol, "margin_mode": margin_mode}
        return await self._typed(PositionSettings, "position.set_margin_mode", params)

    async def adjust_margin(self, symbol: str, amount: Number) -> PositionSettings:
        """Add margin to an isolated position, or remove it with a negative amount."""
        params = {"symbol": symbol, "amount": wire_number(amount)}
        return await self._typed(PositionSettings, "position.adjust_margin", params)


class AdminClient(Client):
    """A client that takes the operator role (`auth.admin`) on every connection."""

    def __init__(self, url: str, admin_token: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.admin_token = admin_token

    async def _handshake(self) -> None:
        await self._request("auth.admin", {"token": self.admin_token}, handshake=True)
        await super()._handshake()

    async def create_account(self, name: str, deposit: Number | None = None) -> NewAccount:
        """Open an account, fund it, and return its API key and secret."""
        params = {"name": name, "deposit": None if deposit is None else wire_number(deposit)}
        return await self._typed(NewAccount, "admin.create_account", params)

    async def deposit(self, account_id: int, amount: Number) -> WalletBalance:
        """Credit an account's wallet."""
        params = {"account_id": account_id, "amount": wire_number(amount)}
        return await self._typed(WalletBalance, "admin.deposit", params)

    async def withdraw(self, account_id: int, amount: Number) -> WalletBalance:
        """Debit an account's wallet (at most what it can withdraw)."""
        params = {"account_id": account_id, "amount": wire_number(amount)}
        return await self._typed(WalletBalance, "admin.withdraw", params)

    async def set_index(self, symbol: str, price: Number) -> Ticker:
        """Move a symbol's index (and so its mark) and return the ticker after it."""
        params = {"symbol": symbol, "price": wire_number(price)}
        return await self._typed(Ticker, "admin.set_index", params)

    async def shock(self, symbol: str, pct: Number, duration_s: Number | None = None) -> Ticker:
        """Move the index by pct percent (-10 is a 10% fall), at once or over duration_s."""
        params = {
            "symbol": symbol,
            "pct": wire_number(pct),
            "duration_s": None if duration_s is None else wire_number(duration_s),
        }
        return await self._typed(Ticker, "admin.shock", params)

    async def halt(self, symbol: str | None = None) -> dict[str, bool]:
        """Stop new orders on a symbol (all when None); return every symbol's halt flag."""
        result = await self.call("admin.halt", {"symbol": symbol})
        return {str(s): bool(h) for s, h in result["halted"].items()}

    async def resume(self, symbol: str | None = None) -> dict[str, bool]:
        """Allow new orders again on a symbol (all when None)."""
        result = await self.call("admin.resume", {"symbol": symbol})
        return {str(s): bool(h) for s, h in result["halted"].items()}

    async def state(self) -> ExchangeState:
        """Return the exchange's seq, state hash, pools, open interest and health checks."""
        return await self._typed(ExchangeState, "admin.state")

    async def accounts(self) -> list[AccountEquity]:
        """Return every account's wallet and equity, highest equity first."""
        return await self._typed_list(AccountEquity, "admin.accounts")
