"""Helpers for the Binance stream tests: raw stream sockets, a server on a held clock, and the
real ccxt.pro client pointed at paperex."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import ccxt.pro as ccxtpro

from tests.binance.rest_support import base_url
from tests.e2e.harness import TIMEOUT, Server

T = TypeVar("T")


class StreamClient:
    """A Binance stream socket whose messages are read in order, with a timeout."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket

    async def next(self) -> Any:
        async with asyncio.timeout(TIMEOUT):
            message = await self.socket.receive()
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)

    async def next_matching(self, match: Callable[[Any], bool]) -> Any:
        async with asyncio.timeout(TIMEOUT):
            while True:
                data = await self.next()
                if match(data):
                    return data

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send_str(json.dumps(message))

    async def close(self) -> None:
        await self.socket.close()


async def connect_stream(server: Server, path: str) -> StreamClient:
    """Open a stream socket on a path such as `/ws/btcusdt@trade`."""
    return StreamClient(await server.session.ws_connect(base_url(server) + path))


# ---------------------------------------------------------------------------------------------
# ccxt.pro
# ---------------------------------------------------------------------------------------------


def ccxt_urls(server: Server) -> dict[str, Any]:
    """Return binanceusdm's REST and WebSocket URLs pointed at a paperex server.

    ccxt.pro builds `<ws>/public/ws/<n>`, `<ws>/market/ws/<n>` and
    `<ws>/private/ws?listenKey=<key>` from the `linear` entry, which must end in `/ws`.
    """
    base = base_url(server)
    rest = {
        key: f"{base}{path}"
        for key, path in {
            "fapiPublic": "/fapi/v1",
            "fapiPublicV2": "/fapi/v2",
            "fapiPublicV3": "/fapi/v3",
            "fapiPrivate": "/fapi/v1",
            "fapiPrivateV2": "/fapi/v2",
            "fapiPrivateV3": "/fapi/v3",
            "fapiData": "/futures/data",
            "sapi": "/sapi/v1",
            "sapiV2": "/sapi/v2",
            "sapiV3": "/sapi/v3",
            "sapiV4": "/sapi/v4",
            "public": "/api/v3",
            "private": "/api/v3",
            "v1": "/api/v1",
        }.items()
    }
    stream_base = "ws" + base.removeprefix("http")
    return {**rest, "ws": {"linear": f"{stream_base}/ws"}}


def ccxt_pro_client(server: Server, keys: dict[str, Any] | None = None) -> Any:
    """Return a ccxt.pro binanceusdm client on a paperex server, with an account's keys."""
    settings: dict[str, Any] = {"enableRateLimit": False, "options": {"fetchCurrencies": False}}
    if keys is not None:
        settings |= {"apiKey": keys["api_key"], "secret": keys["api_secret"]}
    client = ccxtpro.binanceusdm(settings)
    client.urls["api"] = ccxt_urls(server)
    # ccxt waits this long on close for TLS connections to shut down; loopback has no TLS.
    client.timeout_on_exit = 0
    return client


async def watch_until(
    watch: Callable[[], Awaitable[T]],
    match: Callable[[T], bool],
    current: Callable[[], T | None] = lambda: None,
) -> T:
    """Await a ccxt.pro watch call again and again until its answer matches, with a timeout.

    A watch call answers the next message only: `current` reads the client's cache first, as
    the message awaited may have arrived already.
    """
    async with asyncio.timeout(TIMEOUT):
        while True:
            value = current()
            if value is not None and match(value):
                return value
            value = await watch()
            if match(value):
                return value
