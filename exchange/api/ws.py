"""The /ws endpoint: read frames, dispatch requests, reply through the connection's outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Final

import structlog
from aiohttp import WSMsgType, web

from exchange.api import (  # noqa: F401 - importing the method modules registers them
    methods_account,
    methods_admin,
    methods_public,
    methods_session,
    methods_trading,
)
from exchange.api.context import ApiContext
from exchange.api.errors import ApiError, LimitCode, RpcCode
from exchange.api.jsonrpc import RequestError, encode_error, encode_result, parse_request
from exchange.api.ratelimit import RateLimiter
from exchange.api.registry import METHODS, check_access, parse_params
from exchange.api.session import Session
from exchange.runtime.fanout import Connection, websocket_frames
from exchange.runtime.feed import FeedError
from exchange.runtime.sequencer import SequencerStoppedError

log = structlog.get_logger("paperex.api")

RECEIVE_LIMIT = 4 * 1024 * 1024
"""Frames up to this size are read and answered with an error if over the message limit;
larger ones make aiohttp close the connection (1009)."""

CLOSE_POLICY_VIOLATION = 1008

MAX_IN_FLIGHT = 64
"""Requests one connection may have in progress at once; reading waits beyond that."""

API_CONTEXT = web.AppKey("api_context", ApiContext)
CONNECTIONS = web.AppKey("connections", set[Connection])


async def dispatch(context: ApiContext, session: Session, text: str) -> None:
    """Answer one frame: a result or an error, never an exception."""
    limited: ApiError | None = None
    try:
        session.limiter.take(context.clock.now_ms())
    except ApiError as error:
        limited = error
    limit = context.max_message_bytes
    if len(text) > limit // 4 and len(text.encode()) > limit:
        too_large = ApiError(
            LimitCode.MESSAGE_TOO_LARGE,
            f"messages are limited to {limit} bytes",
            {"max_bytes": limit},
        )
        session.reply(encode_error(None, limited or too_large))
        return
    request_id = None
    try:
        request = parse_request(text)
        request_id = request.id
        if limited is not None:
            raise limited
        method = METHODS.get(request.method)
        if method is None:
            raise ApiError(
                RpcCode.METHOD_NOT_FOUND,
                f"unknown method {request.method[:64]!r}",
                {"method": request.method[:64]},
            )
        check_access(method, session)
        params = parse_params(method, request.params)
        result = await method.handler(context, session, params)
        session.reply(encode_result(request.id, result))
    except RequestError as error:
        session.reply(encode_error(error.request_id, limited or error))
    except ApiError as error:
        session.reply(encode_error(request_id, error))
    except FeedError as error:
        session.reply(encode_error(request_id, ApiError(RpcCode.INVALID_PARAMS, str(error))))
    except SequencerStoppedError:
        stopped = ApiError(RpcCode.INTERNAL_ERROR, "the exchange is shutting down")
        session.reply(encode_error(request_id, stopped))
    except Exception:
        log.exception("request_failed", request_id=request_id)
        internal = ApiError(RpcCode.INTERNAL_ERROR, "internal error")
        session.reply(encode_error(request_id, internal))


class InFlight:
    """The requests of one connection in progress, each run without a task of its own.

    Requests are pipelined, so a connection with many orders in flight fills the
    sequencer's batches. A request's coroutine starts at once, in arrival order, and runs
    until it waits (every handler reaches the sequencer before its first await, so one
    connection's commands keep their order); when the future it waits for is done, it goes
    on from that future's callback. That is what an asyncio Task does, without the task:
    no task object, registration or scheduling per request, which is a good part of what a
    small request costs. Handlers only await futures (the sequencer's, the feed's); a bare
    yield (asyncio.sleep(0)) is resumed on the next turn of the loop.

    At most `limit` requests are in progress; the reader waits for room beyond that.
    """

    __slots__ = ("_drained", "_loop", "_room", "count", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._loop = asyncio.get_running_loop()
        self._room: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None

    @property
    def full(self) -> bool:
        return self.count >= self.limit

    async def room(self) -> None:
        """Wait until fewer than `limit` requests are in progress."""
        while self.count >= self.limit:
            self._room = self._loop.create_future()
            await self._room

    async def drained(self) -> None:
        """Wait until every request started has finished."""
        while self.count:
            self._drained = self._loop.create_future()
            await self._drained

    def start(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a request's coroutine until it first waits (or ends)."""
        self.count += 1
        _Running(self, coroutine).step()

    def _finished(self) -> None:
        self.count -= 1
        room = self._room
        if room is not None and self.count < self.limit:
            self._room = None
            if not room.done():
                room.set_result(None)
        drained = self._drained
        if drained is not None and not self.count:
            self._drained = None
            if not drained.done():
                drained.set_result(None)


_FINISHED: Final = object()
"""What `next` returns for a request's coroutine that has ended."""


class _Running:
    """One request in progress: it steps its coroutine, each time from the callback of the
    future the coroutine last awaited."""

    __slots__ = ("requests", "steps")

    def __init__(self, requests: InFlight, coroutine: Coroutine[Any, Any, None]) -> None:
        self.requests = requests
        self.steps = coroutine.__await__()

    def step(self, _: object = None) -> None:
        try:
            # next with a default, not send: an ended coroutine then returns _FINISHED where
            # send raises StopIteration, which compiled code records a traceback for.
            awaited: Any = next(self.steps, _FINISHED)
        except asyncio.CancelledError:
            self.requests._finished()
            return
        except BaseException:
            # dispatch answers every error itself: this is a bug, logged as a task would.
            log.exception("request_crashed")
            self.requests._finished()
            return
        if awaited is _FINISHED:
            self.requests._finished()
        elif awaited is None:
            self.requests._loop.call_soon(self.step)
        elif getattr(awaited, "_asyncio_future_blocking", False):
            # The protocol between an awaited asyncio future and the task driving it.
            awaited._asyncio_future_blocking = False
            awaited.add_done_callback(self.step)
        else:
            self.steps.close()
            log.error("request_yielded", value=repr(awaited)[:100])
            self.requests._finished()


async def open_connection(
    request: web.Request, name: str, receive_limit: int
) -> tuple[web.WebSocketResponse, Connection]:
    """Accept a WebSocket and start its outbox, registered so shutdown can close it."""
    socket = web.WebSocketResponse(max_msg_size=receive_limit, compress=False, heartbeat=30)
    await socket.prepare(request)
    # Messages go out as ready-made frames, all that is queued in one write.
    connection = Connection(socket, name=name, frames=websocket_frames(socket, request))
    connection.start()
    request.app[CONNECTIONS].add(connection)
    return socket, connection


async def close_connection(request: web.Request, connection: Connection) -> None:
    """Unregister a connection, close it and wait until its outbox is done."""
    request.app[CONNECTIONS].discard(connection)
    await connection.close()
    await connection.wait_closed()


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    """Serve one WebSocket connection until either side closes it."""
    context = request.app[API_CONTEXT]
    socket, connection = await open_connection(request, str(request.remote), RECEIVE_LIMIT)
    session = Session(connection, RateLimiter(context.rate_limit_per_s, context.clock.now_ms()))
    requests = InFlight(MAX_IN_FLIGHT)
    try:
        async for message in socket:
            if message.type is WSMsgType.TEXT:
                text = message.data
            elif message.type is WSMsgType.BINARY:
                text = message.data.decode("utf-8", "replace")
            else:
                break
            if requests.full:
                await requests.room()
            requests.start(dispatch(context, session, text))
            if connection.closed:
                break
            if session.limiter.flooding:
                await connection.close(
                    "flood: too many requests over the rate limit", CLOSE_POLICY_VIOLATION
                )
                break
    finally:
        await requests.drained()
        context.streams.drop(session)
        await close_connection(request, connection)
    return socket
