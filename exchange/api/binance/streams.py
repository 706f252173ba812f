"""Market WebSocket streams in Binance's shapes: the routes, the socket loop, live SUBSCRIBE.

- `/ws/<stream>[/<stream>...]`: raw streams, each message is the event object;
- `/stream?streams=a/b`: combined streams, each message is `{"stream": name, "data": event}`;
- `/public/ws`, `/market/ws` (any trailing segment, such as ccxt.pro's connection index, is
  ignored) and `/ws/<index>`: raw, streams added with SUBSCRIBE; `/public/stream`,
  `/market/stream`: the same, combined.

Control messages `{"method": "SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS", "params": [...],
"id": 1}` are answered `{"result": null, "id": 1}` (the list for LIST_SUBSCRIPTIONS).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from exchange.api.binance import ws_user
from exchange.api.binance.listen_keys import listen_keys
from exchange.api.binance.stream_hub import MAX_STREAMS, StreamHub, StreamSocket
from exchange.api.binance.stream_names import Stream, is_market_stream, parse_stream
from exchange.api.jsonrpc import dumps
from exchange.api.ws import API_CONTEXT, close_connection, open_connection
from exchange.runtime.sequencer import Sequencer

STREAM_HUB = web.AppKey("binance_stream_hub", StreamHub)

RECEIVE_LIMIT = 64 * 1024
EXPIRY_CHECK_MS = 60_000

# Binance's error codes for control messages.
UNKNOWN_PROPERTY = 0
INVALID_VALUE = 1
INVALID_REQUEST = 2
INVALID_JSON = 3


class ControlError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def register(app: web.Application) -> None:
    """Add the WebSocket stream routes and hang the hub on the sequencer at startup."""
    app[STREAM_HUB] = StreamHub(app[API_CONTEXT])
    app.cleanup_ctx.append(_listen)
    router = app.router
    router.add_get("/ws/{tail:.+}", handle_ws_path)
    router.add_get("/stream", handle_combined)
    for prefix in ("/public", "/market"):
        router.add_get(f"{prefix}/ws", handle_raw)
        router.add_get(f"{prefix}/ws/{{tail:.*}}", handle_raw)
        router.add_get(f"{prefix}/stream", handle_combined)
        router.add_get(f"{prefix}/stream/{{tail:.*}}", handle_combined)
    router.add_get("/private/ws", handle_private)
    router.add_get("/private/ws/{tail:.*}", handle_private)


async def _listen(app: web.Application) -> AsyncIterator[None]:
    # Added to cleanup_ctx before the server's runtime context, so the hub is subscribed
    # before the first command and unsubscribed after the runtime has stopped.
    sequencer = app[API_CONTEXT].sequencer
    assert isinstance(sequencer, Sequencer), "the server wires the runtime's sequencer"
    hub = app[STREAM_HUB]
    unsubscribe = sequencer.subscribe(hub)
    closer = asyncio.create_task(hub.close_klines_on_time(), name="binance kline closer")
    yield
    closer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await closer
    unsubscribe()


# ---------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------


def _streams(app: web.Application, names: list[str]) -> list[Stream]:
    markets = app[API_CONTEXT].exchange.markets
    streams = []
    for name in names:
        stream = parse_stream(name, markets)
        if stream is None:
            raise web.HTTPBadRequest(text=dumps({"code": -1121, "msg": f"Invalid stream {name}"}))
        streams.append(stream)
    return streams


async def handle_ws_path(request: web.Request) -> web.StreamResponse:
    """Serve `/ws/<streams>`, `/ws/<connection index>`, or a listen key's user stream."""
    tail = request.match_info["tail"]
    names = [part for part in tail.split("/") if part]
    if names and all(is_market_stream(name) for name in names):
        return await serve(request, _streams(request.app, names), combined=False)
    if len(names) <= 1 and (not names or names[0].isdigit()):
        return await serve(request, [], combined=False)
    if len(names) == 1:
        return await serve_user(request, names[0])
    raise web.HTTPBadRequest(text=dumps({"code": -1121, "msg": "Invalid stream or listen key"}))


async def handle_private(request: web.Request) -> web.StreamResponse:
    """Serve `/private/ws?listenKey=...` (any trailing segment ignored)."""
    return await serve_user(request, request.query.get("listenKey", ""))


async def serve_user(request: web.Request, listen_key: str) -> web.StreamResponse:
    context = request.app[API_CONTEXT]
    account_id = listen_keys(request.app).account_for(listen_key, context.clock.now_ms())
    if account_id is None:
        raise web.HTTPBadRequest(
            text=dumps({"code": -1125, "msg": "This listenKey does not exist."})
        )
    return await serve(request, [], combined=False, user=(listen_key, account_id))


async def handle_combined(request: web.Request) -> web.StreamResponse:
    names = [name for name in request.query.get("streams", "").split("/") if name]
    return await serve(request, _streams(request.app, names), combined=True)


async def handle_raw(request: web.Request) -> web.StreamResponse:
    names = [name for name in request.query.get("streams", "").split("/") if name]
    return await serve(request, _streams(request.app, names), combined=False)


# ---------------------------------------------------------------------------------------------
# The socket
# ---------------------------------------------------------------------------------------------


async def serve(
    request: web.Request,
    streams: list[Stream],
    *,
    combined: bool,
    user: tuple[str, int] | None = None,
) -> web.WebSocketResponse:
    """Serve one stream socket until either side closes it.

    With `user` (listen key, account id) it carries that account's user data stream until
    the key expires or is closed, then says listenKeyExpired.
    """
    hub = request.app[STREAM_HUB]
    ws, connection = await open_connection(request, f"binance {request.remote}", RECEIVE_LIMIT)
    socket = StreamSocket(connection, combined=combined)
    watcher: asyncio.Task[None] | None = None
    if user is not None:
        hub.listen(socket, user[1])
        watcher = asyncio.create_task(_expire(request.app, socket, user[0]))
    try:
        for stream in streams[:MAX_STREAMS]:
            hub.subscribe(socket, stream)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                text = message.data
            elif message.type is WSMsgType.BINARY:
                text = message.data.decode("utf-8", "replace")
            else:
                break
            reply = control(hub, socket, text)
            if reply is not None:
                connection.send_private(reply)
            if connection.closed:
                break
    finally:
        if watcher is not None:
            watcher.cancel()
        hub.drop(socket)
        await close_connection(request, connection)
    return ws


async def _expire(app: web.Application, socket: StreamSocket, listen_key: str) -> None:
    """Stop a user stream once its listen key is no longer live, saying listenKeyExpired.

    The socket stays open, as on Binance: its market streams go on, and the client asks for
    a new key and opens a new user stream.
    """
    keys = listen_keys(app)
    clock = app[API_CONTEXT].clock
    while True:
        now = clock.now_ms()
        expires = keys.expires_ms(listen_key)
        if expires is None or expires <= now or keys.account_for(listen_key, now) is None:
            break
        # Keepalives move the expiry; look again at least every minute.
        await asyncio.sleep(min(expires - now, EXPIRY_CHECK_MS) / 1000)
    app[STREAM_HUB].unlisten(socket)
    socket.connection.send_private(dumps(ws_user.listen_key_expired(listen_key, clock.now_ms())))


def control(hub: StreamHub, socket: StreamSocket, text: str) -> str | None:
    """Return the reply to a control message, or None if it was queued already.

    A SUBSCRIBE's reply is queued before the first data of the streams it adds.
    """
    request_id: Any = None
    try:
        try:
            message = json.loads(text)
        except ValueError as error:
            raise ControlError(INVALID_JSON, f"Invalid JSON: {error}") from None
        if not isinstance(message, dict):
            raise ControlError(INVALID_REQUEST, "Invalid request: not an object")
        request_id = message.get("id")
        if request_id is not None and (
            isinstance(request_id, bool) or not isinstance(request_id, int | str)
        ):
            raise ControlError(INVALID_VALUE, "Invalid value type: 'id' must be an int or string")
        method = message.get("method")
        params = message.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return dumps({"result": sorted(socket.streams), "id": request_id})
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            raise ControlError(INVALID_REQUEST, f"Invalid request: unknown method {method!r:.40}")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise ControlError(
                INVALID_VALUE, "Invalid value type: 'params' must be a list of strings"
            )
        if method == "UNSUBSCRIBE":
            for name in params:
                hub.unsubscribe(socket, name)
            return dumps({"result": None, "id": request_id})
        markets = hub.context.exchange.markets
        streams = [parse_stream(name, markets) for name in params]
        unknown = [name for name, stream in zip(params, streams, strict=True) if stream is None]
        if unknown:
            raise ControlError(INVALID_REQUEST, f"Invalid request: unknown stream {unknown[0]:.64}")
        if len(socket.streams.keys() | set(params)) > MAX_STREAMS:
            raise ControlError(INVALID_REQUEST, f"Invalid request: over {MAX_STREAMS} streams")
    except ControlError as error:
        return dumps({"error": {"code": error.code, "msg": str(error)}, "id": request_id})
    socket.connection.send_private(dumps({"result": None, "id": request_id}))
    for stream in streams:
        assert stream is not None
        hub.subscribe(socket, stream)
    return None
