"""The /ws endpoint: read frames, dispatch requests, reply through the connection's outbox."""

from __future__ import annotations

import asyncio

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
from exchange.api.jsonrpc import RequestError, error_message, parse_request, result_message
from exchange.api.ratelimit import RateLimiter
from exchange.api.registry import METHODS, check_access, parse_params
from exchange.api.session import Session
from exchange.runtime.fanout import Connection
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
        session.reply(error_message(None, limited or too_large))
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
        session.reply(result_message(request.id, result))
    except RequestError as error:
        session.reply(error_message(error.request_id, limited or error))
    except ApiError as error:
        session.reply(error_message(request_id, error))
    except FeedError as error:
        session.reply(error_message(request_id, ApiError(RpcCode.INVALID_PARAMS, str(error))))
    except SequencerStoppedError:
        stopped = ApiError(RpcCode.INTERNAL_ERROR, "the exchange is shutting down")
        session.reply(error_message(request_id, stopped))
    except Exception:
        log.exception("request_failed", request_id=request_id)
        internal = ApiError(RpcCode.INTERNAL_ERROR, "internal error")
        session.reply(error_message(request_id, internal))


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    """Serve one WebSocket connection until either side closes it."""
    context = request.app[API_CONTEXT]
    socket = web.WebSocketResponse(max_msg_size=RECEIVE_LIMIT, compress=False, heartbeat=30)
    await socket.prepare(request)
    connection = Connection(socket, name=str(request.remote))
    connection.start()
    connections = request.app[CONNECTIONS]
    connections.add(connection)
    session = Session(connection, RateLimiter(context.rate_limit_per_s, context.clock.now_ms()))
    # Requests are pipelined: each runs as its own task, so a connection with many orders in
    # flight fills the sequencer's batches. Tasks start in arrival order and every handler
    # reaches the sequencer before its first await, so one connection's commands keep their
    # order. The semaphore bounds what one connection can have in progress.
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    in_flight: set[asyncio.Task[None]] = set()

    async def answer(text: str) -> None:
        try:
            await dispatch(context, session, text)
        finally:
            slots.release()

    try:
        async for message in socket:
            if message.type is WSMsgType.TEXT:
                text = message.data
            elif message.type is WSMsgType.BINARY:
                text = message.data.decode("utf-8", "replace")
            else:
                break
            await slots.acquire()
            task = asyncio.create_task(answer(text))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            if connection.closed:
                break
            if session.limiter.flooding:
                await connection.close(
                    "flood: too many requests over the rate limit", CLOSE_POLICY_VIOLATION
                )
                break
    finally:
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
        connections.discard(connection)
        context.streams.drop(session)
        await connection.close()
        await connection.wait_closed()
    return socket
