"""Binance USD-M's WebSocket API on /ws-fapi/v1: REST's requests over one socket.

A request is `{"id": ..., "method": "order.place", "params": {...}}`; the answer is
`{"id", "status": 200, "result", "rateLimits"}` or `{"id", "status": 4xx, "error": {"code",
"msg"}, "rateLimits"}`, with the REST endpoint's result and Binance error codes. A signed
request carries `apiKey`, `timestamp` and `signature` among its params (see
`signing.verify_params`); market data methods need no signature, and the listen-key methods
(`userDataStream.*`) only `apiKey`. Each method is the REST handler of the same endpoint, so
both paths send the same core commands and answer the same errors.

Requests are pipelined but keep their order: each runs as its own task and waits its turn.
A placement only waits until the request before it has sent its command (placements reach
the sequencer before their first await, so a burst of them fills its batches); any other
request waits until the one before it has finished, so a cancel by client id finds the order
placed just before it and a balance shows the orders sent before it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from exchange.api.binance import errors, rest_account, rest_algo, rest_public, rest_signed, signing
from exchange.api.binance.handlers import AccountHandler, PublicHandler
from exchange.api.binance.listen_keys import listen_keys
from exchange.api.binance.params import Params, field_text
from exchange.api.context import ApiContext
from exchange.api.errors import ApiError
from exchange.api.jsonrpc import dumps
from exchange.api.ratelimit import RateLimiter
from exchange.api.ws import API_CONTEXT, close_connection, open_connection
from exchange.runtime.sequencer import SequencerStoppedError

log = structlog.get_logger("paperex.binance")

PATH = "/ws-fapi/v1"
RECEIVE_LIMIT = 64 * 1024
MAX_IN_FLIGHT = 64
"""Requests one connection may have in progress at once; reading waits beyond that."""
CLOSE_POLICY_VIOLATION = 1008

MINUTE_MS = 60_000
TEN_SECONDS_MS = 10_000
REQUEST_WEIGHT_LIMIT = 2_400
ORDERS_PER_TEN_SECONDS = 300
ORDERS_PER_MINUTE = 1_200


# ---------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Method:
    """One WebSocket API method: the REST handler it runs and Binance's request weight.

    `counts_as_order` puts it against Binance's order-rate figures; `places` says it only
    sends a new order (see the module on turns); `listen_key` names a listen-key action,
    which takes the API key only, as on REST.
    """

    weight: int
    public: PublicHandler | None = None
    signed: AccountHandler | None = None
    counts_as_order: bool = False
    places: bool = False
    listen_key: str | None = None


def _signed(
    handler: AccountHandler, weight: int, *, counts_as_order: bool = False, places: bool = False
) -> Method:
    return Method(weight, signed=handler, counts_as_order=counts_as_order or places, places=places)


# Binance's request weights; placing weighs nothing but counts against the order limits.
METHODS: dict[str, Method] = {
    "ping": Method(1, public=rest_public.ping),
    "time": Method(1, public=rest_public.server_time),
    "depth": Method(5, public=rest_public.depth),
    "ticker.price": Method(1, public=rest_public.ticker_price),
    "ticker.book": Method(2, public=rest_public.book_ticker),
    "order.place": _signed(rest_signed.new_order, 0, places=True),
    "order.modify": _signed(rest_signed.modify_order, 1, counts_as_order=True),
    "order.cancel": _signed(rest_signed.cancel_order, 1),
    "order.status": _signed(rest_signed.query_order, 1),
    "algoOrder.place": _signed(rest_algo.new_algo_order, 0, places=True),
    "algoOrder.cancel": _signed(rest_algo.cancel_algo_order, 1),
    "account.status": _signed(rest_account.account_v2, 5),
    "v2/account.status": _signed(rest_account.account_v3, 5),
    "account.balance": _signed(rest_account.balance, 5),
    "v2/account.balance": _signed(rest_account.balance, 5),
    "account.position": _signed(rest_account.position_risk_v2, 5),
    "v2/account.position": _signed(rest_account.position_risk_v3, 5),
    "userDataStream.start": Method(5, listen_key="start"),
    "userDataStream.ping": Method(5, listen_key="keepalive"),
    "userDataStream.stop": Method(5, listen_key="close"),
}
"""The methods served: each runs the REST handler of the endpoint Binance pairs it with."""


# ---------------------------------------------------------------------------------------------
# Rate-limit figures
# ---------------------------------------------------------------------------------------------


class Usage:
    """What one connection spent in the current fixed windows, for the `rateLimits` field."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], tuple[int, int]] = {}

    def spend(self, kind: str, window_ms: int, amount: int, now_ms: int) -> int:
        """Add amount to the window that now falls in and return its total."""
        start = now_ms - now_ms % window_ms
        began, count = self._counts.get((kind, window_ms), (start, 0))
        if began != start:
            count = 0
        count += amount
        self._counts[(kind, window_ms)] = (start, count)
        return count

    def figures(self, method: Method | None, now_ms: int) -> list[dict[str, Any]]:
        weight = method.weight if method is not None else 1
        rows = [_limit("REQUEST_WEIGHT", "MINUTE", 1, REQUEST_WEIGHT_LIMIT, 0)]
        rows[0]["count"] = self.spend("REQUEST_WEIGHT", MINUTE_MS, weight, now_ms)
        if method is not None and method.counts_as_order:
            ten = self.spend("ORDERS", TEN_SECONDS_MS, 1, now_ms)
            minute = self.spend("ORDERS", MINUTE_MS, 1, now_ms)
            rows.append(_limit("ORDERS", "SECOND", 10, ORDERS_PER_TEN_SECONDS, ten))
            rows.append(_limit("ORDERS", "MINUTE", 1, ORDERS_PER_MINUTE, minute))
        return rows


def _limit(kind: str, interval: str, number: int, limit: int, count: int) -> dict[str, Any]:
    return {
        "rateLimitType": kind,
        "interval": interval,
        "intervalNum": number,
        "limit": limit,
        "count": count,
    }


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


class RequestError(Exception):
    """A frame that is not a request Binance would run: answered with id null if unknown."""

    def __init__(self, request_id: Any, error: errors.BinanceError) -> None:
        super().__init__(error.msg)
        self.request_id = request_id
        self.error = error


def _malformed(msg: str) -> errors.BinanceError:
    # Binance answers a request it cannot read with -1000 and HTTP status 400.
    return errors.BinanceError(-1000, msg)


def _parse(text: str) -> tuple[Any, str, dict[str, str]]:
    """Return a frame's id, method and parameters as text, or raise RequestError."""
    try:
        # A number keeps the text it was sent as: that text is what the client signed.
        message = json.loads(text, parse_float=str)
    except ValueError:
        raise RequestError(None, _malformed("Invalid JSON request.")) from None
    if not isinstance(message, dict):
        raise RequestError(None, _malformed("Invalid request: expected a JSON object."))
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str | None):
        raise RequestError(None, _malformed("Invalid 'id' in JSON request."))
    method = message.get("method")
    if not isinstance(method, str):
        raise RequestError(request_id, _malformed("Invalid 'method' in JSON request."))
    params = message.get("params", {})
    if not isinstance(params, dict):
        raise RequestError(
            request_id, _malformed("Invalid 'params' in JSON request; expected an object.")
        )
    # A JSON null is a parameter not sent.
    values = {str(name): field_text(value) for name, value in params.items() if value is not None}
    return request_id, method, values


class Turn:
    """Where one request stands, for the request after it to wait on."""

    def __init__(self) -> None:
        # Set once its command, if it sends one, is with the sequencer.
        self.submitted = asyncio.Event()
        self.finished = asyncio.Event()

    def done(self) -> None:
        self.submitted.set()
        self.finished.set()


@dataclass(frozen=True, slots=True)
class Client:
    """One connection's rate-limit figures and token bucket, and the server's listen keys."""

    usage: Usage
    limiter: RateLimiter
    listen_keys: dict[str, AccountHandler]


async def _run(context: ApiContext, client: Client, method: Method, values: dict[str, str]) -> Any:
    if method.public is not None:
        return await method.public(context, Params(values))
    if method.listen_key is not None:
        api_key = values.get("apiKey")
        if not api_key:
            raise errors.mandatory("apiKey")
        account_id = signing.account_of(context.keys, api_key)
        return await client.listen_keys[method.listen_key](context, account_id, Params(values))
    assert method.signed is not None
    account_id, params = signing.verify_params(context.keys, values, context.clock.now_ms())
    return await method.signed(context, account_id, params)


async def answer(
    context: ApiContext, client: Client, text: str, turn: Turn, previous: Turn | None
) -> str:
    """Return the answer to one frame: a result or a Binance error, never an exception.

    Wait for the previous request as the module says, and let the next one go when done.
    """
    try:
        return await _answer(context, client, text, turn, previous)
    finally:
        turn.done()


async def _answer(
    context: ApiContext, client: Client, text: str, turn: Turn, previous: Turn | None
) -> str:
    limiter = client.limiter
    request_id: Any = None
    method: Method | None = None
    values: dict[str, str] = {}
    now = context.clock.now_ms()
    # Every frame spends a token, readable or not, so garbage cannot flood either.
    try:
        limiter.take(now)
        limited = False
    except ApiError:
        limited = True
    try:
        request_id, name, values = _parse(text)
        if limited:
            raise RequestError(request_id, too_many_requests(limiter.rate_per_s))
        method = METHODS.get(name)
        if method is None:
            raise RequestError(request_id, _malformed(f"Unknown method '{name[:64]}'."))
        if previous is not None:
            waited = previous.submitted if method.places else previous.finished
            await waited.wait()
        if method.places:
            # The placement submits before it first yields: the next may go once it does.
            turn.submitted.set()
        result = await _run(context, client, method, values)
        body: dict[str, Any] = {"id": request_id, "status": 200, "result": result}
    except RequestError as error:
        body = _error(error.request_id, error.error)
    except errors.BinanceError as error:
        body = _error(request_id, error)
    except ApiError as error:
        # A shared converter refused a value: answer the core code's Binance equivalent.
        body = _error(request_id, errors.from_api_error(error))
    except SequencerStoppedError:
        body = _error(request_id, errors.unknown_error())
    except Exception:
        log.exception("binance_ws_api_request_failed", request_id=request_id)
        body = _error(request_id, errors.unknown_error())
    # Binance leaves the figures out when asked to with returnRateLimits=false.
    figures = client.usage.figures(method, now)
    if values.get("returnRateLimits", "true").lower() != "false":
        body["rateLimits"] = figures
    return dumps(body)


def too_many_requests(rate_per_s: int) -> errors.BinanceError:
    return errors.BinanceError(
        -1003, f"Too many requests; current limit is {rate_per_s} requests per second.", 429
    )


def _error(request_id: Any, error: errors.BinanceError) -> dict[str, Any]:
    return {"id": request_id, "status": error.status, "error": error.body()}


# ---------------------------------------------------------------------------------------------
# The socket
# ---------------------------------------------------------------------------------------------


async def handle(request: web.Request) -> web.WebSocketResponse:
    """Serve one WebSocket API connection until either side closes it."""
    context = request.app[API_CONTEXT]
    name = f"binance ws-api {request.remote}"
    socket, connection = await open_connection(request, name, RECEIVE_LIMIT)
    limiter = RateLimiter(context.rate_limit_per_s, context.clock.now_ms())
    client = Client(Usage(), limiter, rest_account.listen_key_handlers(listen_keys(request.app)))
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    in_flight: set[asyncio.Task[None]] = set()
    previous: Turn | None = None

    async def reply(text: str, turn: Turn, before: Turn | None) -> None:
        try:
            connection.send_private(await answer(context, client, text, turn, before))
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
            turn = Turn()
            task = asyncio.create_task(reply(text, turn, previous))
            previous = turn
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            if connection.closed:
                break
            if limiter.flooding:
                await connection.close(
                    "flood: too many requests over the rate limit", CLOSE_POLICY_VIOLATION
                )
                break
    finally:
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
        await close_connection(request, connection)
    return socket


def register(app: web.Application) -> None:
    """Add the WebSocket API route."""
    app.router.add_get(PATH, handle)
