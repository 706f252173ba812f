"""Wrap REST handlers: read parameters, check keys and signatures, answer Binance's errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from exchange.api.binance import errors, signing
from exchange.api.binance.params import Params, parse
from exchange.api.context import ApiContext
from exchange.api.errors import ApiError
from exchange.api.ws import API_CONTEXT

log = structlog.get_logger("paperex.binance")

PublicHandler = Callable[[ApiContext, Params], Awaitable[Any]]
AccountHandler = Callable[[ApiContext, int, Params], Awaitable[Any]]
WebHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _answer(request: web.Request, call: Callable[[], Awaitable[Any]]) -> web.Response:
    try:
        return web.json_response(await call())
    except errors.BinanceError as error:
        return web.json_response(error.body(), status=error.status)
    except ApiError as error:
        # A shared converter refused a value: answer the core code's Binance equivalent.
        translated = errors.from_api_error(error)
        return web.json_response(translated.body(), status=translated.status)
    except Exception:
        log.exception("binance_request_failed", path=request.path)
        failure = errors.unknown_error()
        return web.json_response(failure.body(), status=failure.status)


async def _body(request: web.Request) -> str:
    if request.method in ("POST", "PUT", "DELETE") and request.can_read_body:
        return await request.text()
    return ""


def public(handler: PublicHandler) -> WebHandler:
    """Serve a public endpoint: parameters from the query string (and a form body)."""

    async def serve(request: web.Request) -> web.StreamResponse:
        context = request.app[API_CONTEXT]

        async def call() -> Any:
            body = await _body(request)
            params = Params(parse(request.rel_url.raw_query_string, body))
            return await handler(context, params)

        return await _answer(request, call)

    return serve


def signed(handler: AccountHandler) -> WebHandler:
    """Serve a signed endpoint: API key, signature and timestamp checked first."""

    async def serve(request: web.Request) -> web.StreamResponse:
        context = request.app[API_CONTEXT]

        async def call() -> Any:
            body = await _body(request)
            account_id, params = signing.verify(
                context.keys,
                request.headers,
                request.rel_url.raw_query_string,
                body,
                context.clock.now_ms(),
            )
            return await handler(context, account_id, params)

        return await _answer(request, call)

    return serve


def keyed(handler: AccountHandler) -> WebHandler:
    """Serve an endpoint that takes the API key header only (the listenKey family)."""

    async def serve(request: web.Request) -> web.StreamResponse:
        context = request.app[API_CONTEXT]

        async def call() -> Any:
            body = await _body(request)
            _, account_id = signing.account_for_key(context.keys, request.headers)
            params = Params(parse(request.rel_url.raw_query_string, body))
            return await handler(context, account_id, params)

        return await _answer(request, call)

    return serve
