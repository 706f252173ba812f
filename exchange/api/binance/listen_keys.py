"""User-data stream keys: which account a listenKey opens, and until when.

REST issues, extends and closes them (`POST/PUT/DELETE /fapi/v1/listenKey`); the user stream
asks `account_for(listen_key, now_ms)` when a client connects and again to notice expiry.
Like Binance, an account has at most one key: issuing again returns the live key and extends
it. Keys live in memory only; after a restart clients ask for a new one, as they must on
Binance after 60 minutes without a keepalive.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from aiohttp import web

LISTEN_KEY_TTL_MS = 60 * 60 * 1000


@dataclass(slots=True)
class _Entry:
    account_id: int
    expires_ms: int


class ListenKeys:
    """Live listen keys by key and by account."""

    def __init__(self, ttl_ms: int = LISTEN_KEY_TTL_MS) -> None:
        self.ttl_ms = ttl_ms
        self._keys: dict[str, _Entry] = {}
        self._by_account: dict[int, str] = {}

    def issue(self, account_id: int, now_ms: int) -> str:
        """Return the account's live key extended, or a new one."""
        key = self.keepalive(account_id, now_ms)
        if key is not None:
            return key
        key = secrets.token_hex(32)
        self._keys[key] = _Entry(account_id, now_ms + self.ttl_ms)
        self._by_account[account_id] = key
        return key

    def keepalive(self, account_id: int, now_ms: int) -> str | None:
        """Extend the account's live key by the TTL from now; None if it has none."""
        key = self._by_account.get(account_id)
        if key is None:
            return None
        entry = self._keys[key]
        if entry.expires_ms <= now_ms:
            self.close(account_id)
            return None
        entry.expires_ms = now_ms + self.ttl_ms
        return key

    def close(self, account_id: int) -> str | None:
        """Forget the account's key; return it, or None if it had none."""
        key = self._by_account.pop(account_id, None)
        if key is not None:
            del self._keys[key]
        return key

    def account_for(self, listen_key: str, now_ms: int) -> int | None:
        """Return the account a live key belongs to; None if unknown, closed or expired."""
        entry = self._keys.get(listen_key)
        if entry is None or entry.expires_ms <= now_ms:
            return None
        return entry.account_id

    def expires_ms(self, listen_key: str) -> int | None:
        entry = self._keys.get(listen_key)
        return None if entry is None else entry.expires_ms


LISTEN_KEYS = web.AppKey("binance_listen_keys", ListenKeys)


def listen_keys(app: web.Application) -> ListenKeys:
    """Return the app's listen keys, making the registry on first use."""
    registry = app.get(LISTEN_KEYS)
    if registry is None:
        registry = app[LISTEN_KEYS] = ListenKeys()
    return registry
