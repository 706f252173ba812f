"""API keys, request signatures and the operator token.

A key's secret is never stored. Each secret is derived when the key is made and whenever a
login is checked: secret = hex HMAC-SHA256(master key, "paperex-api-secret:" + api_key), with
a 32-byte master key from `secrets`. With a data directory the master key and the key ->
account map are stored there (`on_issue` is called, and must have stored the key, before
`issue` returns it), so keys survive a restart. The server must know the secret to check an
HMAC signature, so a one-way hash cannot be kept; this derivation keeps nothing per key but
the account it belongs to, and anyone who reads the key table learns no secret from it.
Signatures and the admin token are compared with `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exchange.api.errors import ApiError, AuthCode

LOGIN_WINDOW_MS = 30_000
"""How far a login timestamp may be from the server's clock, either way."""

_SECRET_CONTEXT = b"paperex-api-secret:"
_MASTER_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class Credentials:
    account_id: int
    api_key: str
    api_secret: str


def login_signature(api_secret: str, timestamp: int, api_key: str) -> str:
    """Return hex HMAC-SHA256(api_secret, f"{timestamp}.{api_key}"): what auth.login expects."""
    payload = f"{timestamp}.{api_key}".encode()
    return hmac.new(api_secret.encode(), payload, hashlib.sha256).hexdigest()


class KeyStore:
    """API keys and the accounts they belong to; secrets are derived, never stored."""

    def __init__(
        self,
        master_key: bytes | None = None,
        *,
        accounts: Mapping[str, int] | None = None,
        on_issue: Callable[[str, int], None] | None = None,
    ) -> None:
        self._master_key = master_key or secrets.token_bytes(_MASTER_KEY_BYTES)
        self._accounts: dict[str, int] = dict(accounts or {})
        self._on_issue = on_issue

    def issue(self, account_id: int) -> Credentials:
        """Make a new random API key for an account and return it with its secret."""
        api_key = secrets.token_hex(16)
        if self._on_issue is not None:
            self._on_issue(api_key, account_id)
        self._accounts[api_key] = account_id
        return Credentials(account_id, api_key, self._secret(api_key))

    def accounts(self) -> dict[str, int]:
        """Return a copy of the key -> account map (for snapshots)."""
        return dict(self._accounts)

    def credentials_for(self, account_id: int) -> Credentials | None:
        """Return the first key issued for an account, with its secret, if it has one."""
        for api_key, owner in self._accounts.items():
            if owner == account_id:
                return Credentials(account_id, api_key, self._secret(api_key))
        return None

    def _secret(self, api_key: str) -> str:
        return hmac.new(
            self._master_key, _SECRET_CONTEXT + api_key.encode(), hashlib.sha256
        ).hexdigest()

    def account_of(self, api_key: str) -> int | None:
        """Return the account an API key belongs to, or None for an unknown key."""
        return self._accounts.get(api_key)

    def payload_signature_valid(self, api_key: str, payload: bytes, signature: str) -> bool:
        """Return whether signature is hex HMAC-SHA256(the key's secret, payload).

        Binance-style request signing. An unknown key is checked against its derived secret
        all the same, so the answer takes as long; callers refuse unknown keys separately.
        """
        secret = self._secret(api_key)
        expected = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), signature.lower().encode())

    def verify(self, api_key: str, timestamp: int, signature: str, now_ms: int) -> int:
        """Return the account id of a valid login, or raise ApiError."""
        if abs(now_ms - timestamp) > LOGIN_WINDOW_MS:
            raise ApiError(
                AuthCode.TIMESTAMP_OUT_OF_WINDOW,
                f"timestamp must be within {LOGIN_WINDOW_MS // 1000} s of the server time",
                {"field": "timestamp", "server_time": now_ms},
            )
        account_id = self._accounts.get(api_key)
        # Unknown keys are checked against a throwaway secret so both failures take as long.
        secret = self._secret(api_key)
        expected = login_signature(secret, timestamp, api_key)
        valid = hmac.compare_digest(expected.encode(), signature.lower().encode())
        if account_id is None or not valid:
            raise ApiError(AuthCode.INVALID_CREDENTIALS, "invalid api key or signature")
        return account_id


def check_admin_token(configured: str | None, given: str) -> None:
    """Raise ApiError unless an operator token is configured and given exactly."""
    if not configured or not hmac.compare_digest(configured.encode(), given.encode()):
        raise ApiError(AuthCode.INVALID_ADMIN_TOKEN, "invalid admin token")
