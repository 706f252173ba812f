"""A real server on a free loopback port and a small raw JSON-RPC client for the tests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from exchange.api.auth import login_signature
from exchange.runtime.clock import Clock
from exchange.runtime.config import Config, load_config
from exchange.server import RUNTIME, build_app

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ADMIN_TOKEN = "test-operator-token"
TIMEOUT = 5.0


def manual_config(**server: Any) -> Config:
    """Return configs/manual.toml with an admin token and a free port, kept in memory only."""
    config = load_config(CONFIGS / "manual.toml")
    settings = {"admin_token": ADMIN_TOKEN, "port": 0, **server}
    return config.model_copy(
        update={
            "server": config.server.model_copy(update=settings),
            "journal": config.journal.model_copy(update={"enabled": False}),
        }
    )


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error['code']}: {error['message']}")
        self.code: int = error["code"]
        self.error = error


class Client:
    """Request/response by id, and every stream notification queued per channel."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self._ids = itertools.count(1)
        self._waiting: dict[object, asyncio.Future[dict[str, Any]]] = {}
        self.unmatched: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.streams: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if data.get("method") == "stream":
                params = data["params"]
                self.stream(params["channel"]).put_nowait(params)
                continue
            future = self._waiting.pop(data.get("id"), None)
            if future is not None and not future.done():
                future.set_result(data)
            else:
                self.unmatched.put_nowait(data)

    def stream(self, channel: str) -> asyncio.Queue[dict[str, Any]]:
        return self.streams.setdefault(channel, asyncio.Queue())

    async def send_raw(self, text: str) -> None:
        await self.socket.send_str(text)

    async def next_unmatched(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.unmatched.get(), TIMEOUT)

    async def request(self, method: str, params: Any = None) -> dict[str, Any]:
        """Send a request and return the whole response (result or error)."""
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.socket.send_str(json.dumps(message))
        return await asyncio.wait_for(future, TIMEOUT)

    async def call(self, method: str, params: Any = None) -> Any:
        """Send a request and return its result, or raise RpcError."""
        response = await self.request(method, params)
        if "error" in response:
            raise RpcError(response["error"])
        return response["result"]

    async def error(self, method: str, params: Any = None) -> dict[str, Any]:
        response = await self.request(method, params)
        assert "error" in response, f"{method} should fail: {response}"
        error: dict[str, Any] = response["error"]
        return error

    async def wait_for(
        self, channel: str, match: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> dict[str, Any]:
        """Return the data of the next notification on a channel that matches."""
        queue = self.stream(channel)
        async with asyncio.timeout(TIMEOUT):
            while True:
                params = await queue.get()
                if match(params["data"]):
                    data: dict[str, Any] = params["data"]
                    return data

    async def close(self) -> None:
        await self.socket.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class Server:
    """The running app, its URL, and helpers to open clients and accounts."""

    def __init__(self, app: web.Application, url: str, session: aiohttp.ClientSession) -> None:
        self.app = app
        self.url = url
        self.session = session
        self.clients: list[Client] = []

    @property
    def clock_ms(self) -> int:
        return self.app[RUNTIME].clock.now_ms()

    async def connect(self) -> Client:
        socket = await self.session.ws_connect(self.url, max_msg_size=8 * 1024 * 1024)
        client = Client(socket)
        self.clients.append(client)
        return client

    async def admin(self) -> Client:
        client = await self.connect()
        await client.call("auth.admin", {"token": ADMIN_TOKEN})
        return client

    async def trader(self, name: str, deposit: str = "100000") -> tuple[Client, int]:
        """Create an account through the operator API, log a new connection in to it."""
        admin = await self.admin()
        keys = await admin.call("admin.create_account", {"name": name, "deposit": deposit})
        client = await self.connect()
        await client.call("auth.login", signed_login(keys, self.clock_ms))
        await client.call("subscribe", {"channels": ["account"]})
        return client, keys["account_id"]


def signed_login(keys: dict[str, Any], timestamp: int) -> dict[str, Any]:
    signature = login_signature(keys["api_secret"], timestamp, keys["api_key"])
    return {"api_key": keys["api_key"], "timestamp": timestamp, "signature": signature}


@contextlib.asynccontextmanager
async def running_server(config: Config, clock: Clock | None = None) -> AsyncIterator[Server]:
    """Start the real app on 127.0.0.1 and a free port; stop it afterwards.

    With `clock`, the server reads time from it (a ManualClock lets a test move time).
    """
    app = build_app(config, clock=clock)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    async with aiohttp.ClientSession() as session:
        server = Server(app, f"http://{host}:{port}/ws", session)
        try:
            yield server
        finally:
            for client in server.clients:
                await client.close()
            await runner.cleanup()


def dec(text: str) -> Decimal:
    return Decimal(text)
