"""A small Binance REST client for the gateway tests: raw HTTP, signed like Binance asks."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import urlencode

from tests.e2e.harness import Server


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
