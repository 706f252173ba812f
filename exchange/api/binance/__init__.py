"""The Binance USD-M compatible gateway: Binance's paths, fields and errors on the same engine.

No business rule lives here: requests become the same core commands the native API sends,
and events are rendered in Binance's shapes.
"""

from __future__ import annotations

from aiohttp import web

from exchange.api.binance import rest, streams, ws_api


def register(app: web.Application) -> None:
    """Add the gateway's REST, stream and WebSocket API routes to the server's application."""
    rest.register(app)
    streams.register(app)
    ws_api.register(app)
