"""The composition root: config in, a runnable aiohttp application out.

    app = build_app(config)          # exchange, sequencer, feed, funding, agents, the API
    web.run_app(app)                 # or an AppRunner, as `paperex serve` does

The runtime starts and stops with the app (`cleanup_ctx`); open WebSockets are closed on
shutdown. Nothing else in the server builds or wires objects.

With `journal.enabled` (the default) the state lives in `server.data_dir`: the runtime
loads the newest snapshot, the API's key store and read models come back from it and the
journal, and the runtime replays the journal (through the publisher, so history is rebuilt)
before the first request is served.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from exchange.api import binance
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
    """Wire the exchange, its runtime and the native API at /ws into an application.

    Raise StorageError if the data directory cannot be used.
    """
    data_dir = config.server.data_dir if config.journal.enabled else None
    runtime = build_runtime(config, clock=clock, data_dir=data_dir)
    storage = runtime.storage
    restored = runtime.restored
    keys = KeyStore()
    if storage is not None:
        journal = storage.journal
        accounts = {**restored.get("keys", {}), **storage.api_keys()}

        def record_key(api_key: str, account_id: int) -> None:
            journal.add_api_key(api_key, account_id, runtime.exchange.last_seq)

        keys = KeyStore(storage.master_key, accounts=accounts, on_issue=record_key)
    history = restored.get("history")
    if not isinstance(history, History):
        history = History(sorted(runtime.exchange.markets))
    context = ApiContext(
        exchange=runtime.exchange,
        sequencer=runtime.sequencer,
        clock=runtime.clock,
        keys=keys,
        history=history,
        feed=runtime.feed,
        funding=runtime.funding,
        admin_token=config.server.admin_token,
        rate_limit_per_s=config.server.rate_limit_per_s,
        max_message_bytes=config.server.max_message_bytes,
    )
    context.publisher = Publisher(context)
    # Subscribed before the runtime starts, so history sees every command from the first
    # (and every command replayed from the journal on a restart).
    runtime.sequencer.subscribe(context.publisher)
    runtime.snapshot_providers.update(keys=keys.accounts, history=lambda: context.history)

    app = web.Application()
    app[RUNTIME] = runtime
    app[API_CONTEXT] = context
    app[CONNECTIONS] = set()
    app[DEMO_CREDENTIALS] = {}
    app.router.add_get("/ws", handle_ws)
    binance.register(app)
    app.cleanup_ctx.append(_run_runtime)
    app.on_shutdown.append(_close_connections)
    return app


async def _run_runtime(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    context = app[API_CONTEXT]
    await runtime.start()
    for name, account_id in runtime.demo_accounts.items():
        # A restart finds the demo account's key in the data directory: same key, same secret.
        credentials = context.keys.credentials_for(account_id)
        if credentials is None:
            credentials = context.keys.issue(account_id)
        app[DEMO_CREDENTIALS][name] = credentials
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
