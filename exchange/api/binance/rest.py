"""REST under /fapi (and the few /sapi paths ccxt asks for)."""

from __future__ import annotations

from aiohttp import web


def register(app: web.Application) -> None:
    """Add the REST routes."""
