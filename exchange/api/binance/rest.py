"""REST under /fapi (and the few /sapi paths ccxt asks for).

Public market data lives in `rest_public`, orders and trades in `rest_signed`, conditional
orders in Binance's algo shape in `rest_algo`, account, positions and listen keys in
`rest_account`; `handlers` reads parameters, checks signatures and answers Binance's
errors.
"""

from __future__ import annotations

from aiohttp import web

from exchange.api.binance import rest_account, rest_algo, rest_public, rest_signed
from exchange.api.binance.listen_keys import listen_keys


def register(app: web.Application) -> None:
    """Add the REST routes and the listen-key registry the user stream reads."""
    listen_keys(app)
    rest_public.register(app)
    rest_signed.register(app)
    rest_account.register(app)
    rest_algo.register(app)
