"""Small Binance clients for the gateway tests: raw HTTP and raw WebSocket API frames, signed
like Binance asks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from typing import Any
from urllib.parse import urlencode

import aiohttp

from tests.e2e.harness import TIMEOUT, Server


def base_url(server: Server) -> str:
    return server.url.removesuffix("/ws")


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class Rest:
    """Public and signed requests answering (HTTP status, JSON body)."""

    def __init__(self, server: Server, api_key: str = "", api_secret: str = "") -> None:
        self.server = server
        self.base = base_url(server)
        self.api_key = api_key
        self.api_secret = api_secret

    async def public(self, path: str, **params: Any) -> tuple[int, Any]:
        url = f"{self.base}{path}"
        async with self.server.session.get(url, params=params) as response:
            return response.status, await response.json()

    async def signed(
        self, method: str, path: str, *, timestamp: int | None = None, **params: Any
    ) -> tuple[int, Any]:
        return await self.send(method, path, params, timestamp)

    async def send(
        self, method: str, path: str, params: dict[str, Any], timestamp: int | None = None
    ) -> tuple[int, Any]:
        """Send a signed request: in the query for GET/DELETE, in the form body otherwise."""
        fields = {k: _text(v) for k, v in params.items()}
        fields["timestamp"] = str(self.server.clock_ms if timestamp is None else timestamp)
        payload = urlencode(fields)
        signed = f"{payload}&signature={sign(self.api_secret, payload)}"
        headers = {"X-MBX-APIKEY": self.api_key}
        url = f"{self.base}{path}"
        if method in ("GET", "DELETE"):
            request = self.server.session.request(method, f"{url}?{signed}", headers=headers)
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            request = self.server.session.request(method, url, data=signed, headers=headers)
        async with request as response:
            return response.status, await response.json()

    async def keyed(self, method: str, path: str) -> tuple[int, Any]:
        headers = {"X-MBX-APIKEY": self.api_key}
        async with self.server.session.request(
            method, f"{self.base}{path}", headers=headers
        ) as response:
            return response.status, await response.json()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def trader(server: Server, name: str, deposit: str = "100000") -> Rest:
    """Create an account through the operator API and return a client with its keys."""
    admin = await server.admin()
    keys = await admin.call("admin.create_account", {"name": name, "deposit": deposit})
    return Rest(server, keys["api_key"], keys["api_secret"])


class WsApi:
    """One connection to the WebSocket API on /ws-fapi/v1; one request at a time."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, rest: Rest) -> None:
        self.socket = socket
        self.rest = rest
        self._ids = itertools.count(1)

    async def send_text(self, text: str) -> dict[str, Any]:
        """Send a raw frame and return the next answer."""
        await self.socket.send_str(text)
        return await self.receive()

    async def public(self, method: str, **params: Any) -> dict[str, Any]:
        request_id = f"req-{next(self._ids)}"
        message = {"id": request_id, "method": method, "params": params}
        answer = await self.send_text(json.dumps(message))
        assert answer["id"] == request_id
        return answer

    def frame(self, method: str, *, timestamp: int | None = None, **params: Any) -> str:
        """Return a request signed over its sorted parameters, `apiKey` among them."""
        fields = {"apiKey": self.rest.api_key, **params}
        fields["timestamp"] = self.rest.server.clock_ms if timestamp is None else timestamp
        payload = "&".join(f"{k}={_text(fields[k])}" for k in sorted(fields))
        fields["signature"] = sign(self.rest.api_secret, payload)
        request_id = f"req-{next(self._ids)}"
        return json.dumps({"id": request_id, "method": method, "params": fields})

    async def signed(
        self, method: str, *, timestamp: int | None = None, **params: Any
    ) -> dict[str, Any]:
        text = self.frame(method, timestamp=timestamp, **params)
        answer = await self.send_text(text)
        assert answer["id"] == json.loads(text)["id"]
        return answer

    async def receive(self) -> dict[str, Any]:
        message = await asyncio.wait_for(self.socket.receive(), TIMEOUT)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        answer: dict[str, Any] = json.loads(message.data)
        return answer

    async def close(self) -> None:
        await self.socket.close()


async def ws_api(rest: Rest) -> WsApi:
    socket = await rest.server.session.ws_connect(
        f"{rest.base.replace('http', 'ws', 1)}/ws-fapi/v1"
    )
    return WsApi(socket, rest)
