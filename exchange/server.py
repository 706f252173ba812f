"""The composition root: config in, a runnable aiohttp application out.

    app = build_app(config)          # exchange, sequencer, feed, funding, agents, the API
    web.run_app(app)                 # or an AppRunner, as `paperex serve` does

The runtime starts and stops with the app (`cleanup_ctx`); open WebSockets are closed on
shutdown. Nothing else in the server builds or wires objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from exchange.api.auth import Credentials, KeyStore
from exchange.api.context import ApiContext
from exchange.api.history import History
from exchange.api.streams import Publisher
from exchange.api.ws import API_CONTEXT, CONNECTIONS, handle_ws
from exchange.runtime.clock import Clock
from exchange.runtime.config import Config
from exchange.runtime.runtime import Runtime, build_runtime

log = structlog.get_logger("paperex.server")

RUNTIME = web.AppKey("runtime", Runtime)
DEMO_CREDENTIALS = web.AppKey("demo_credentials", dict[str, Credentials])
CLOSE_GOING_AWAY = 1001


def build_app(config: Config, *, clock: Clock | None = None) -> web.Application:
    """Wire the exchange, its runtime and the native API at /ws into an application."""
    runtime = build_runtime(config, clock=clock)
    context = ApiContext(
        exchange=runtime.exchange,
        sequencer=runtime.sequencer,
        clock=runtime.clock,
        keys=KeyStore(),
        history=History(sorted(runtime.exchange.markets)),
        feed=runtime.feed,
        funding=runtime.funding,
        admin_token=config.server.admin_token,
        rate_limit_per_s=config.server.rate_limit_per_s,
        max_message_bytes=config.server.max_message_bytes,
    )
    context.publisher = Publisher(context)
    # Subscribed before the runtime starts, so history sees every command from the first.
    runtime.sequencer.subscribe(context.publisher)

    app = web.Application()
    app[RUNTIME] = runtime
    app[API_CONTEXT] = context
    app[CONNECTIONS] = set()
    app[DEMO_CREDENTIALS] = {}
    app.router.add_get("/ws", handle_ws)
    app.cleanup_ctx.append(_run_runtime)
    app.on_shutdown.append(_close_connections)
    return app


async def _run_runtime(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    context = app[API_CONTEXT]
    await runtime.start()
    for name, account_id in runtime.demo_accounts.items():
        app[DEMO_CREDENTIALS][name] = context.keys.issue(account_id)
    log.info("server_started", seq=runtime.sequencer.last_seq, demo=sorted(runtime.demo_accounts))
    yield
    await runtime.stop()


async def _close_connections(app: web.Application) -> None:
    connections = app[CONNECTIONS]
    for connection in list(connections):
        await connection.close("server shutting down", CLOSE_GOING_AWAY)


def describe(app: web.Application) -> dict[str, Any]:
    """Return what a person starting the server needs: the demo accounts' keys."""
    return {
        name: {
            "account_id": credentials.account_id,
            "api_key": credentials.api_key,
            "api_secret": credentials.api_secret,
        }
        for name, credentials in app[DEMO_CREDENTIALS].items()
    }
