"""Market and user-data WebSocket streams in Binance's shapes."""

from __future__ import annotations

from aiohttp import web


def register(app: web.Application) -> None:
    """Add the WebSocket stream routes."""
