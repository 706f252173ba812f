"""A real server per test (the e2e harness), and SDK clients logged in to fresh accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio

from clients.paperex_client import AdminClient, Client
from tests.e2e.harness import ADMIN_TOKEN, Server, manual_config, running_server

TIMEOUT = 5.0

Trader = Callable[[str], Awaitable[Client]]


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    async with running_server(manual_config()) as running:
        yield running


def ws_url(server: Server) -> str:
    return server.url.replace("http://", "ws://", 1)


@pytest_asyncio.fixture
async def admin(server: Server) -> AsyncIterator[AdminClient]:
    async with AdminClient(ws_url(server), ADMIN_TOKEN, timeout=TIMEOUT) as client:
        yield client


@pytest_asyncio.fixture
async def trader(server: Server, admin: AdminClient) -> AsyncIterator[Trader]:
    """Return a factory of SDK clients, each logged in to a new account with 100,000 USDT."""
    opened: list[Client] = []

    async def open_trader(name: str) -> Client:
        keys = await admin.create_account(name, "100000")
        client = Client(ws_url(server), keys.api_key, keys.api_secret, timeout=TIMEOUT)
        await client.connect()
        opened.append(client)
        return client

    yield open_trader
    for client in opened:
        await client.close()
