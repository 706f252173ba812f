"""Binance request signing: API key header, HMAC-SHA256 over the exact parameters, recvWindow.

The signed payload is the raw query string followed by the raw form body (no separator),
each without its `signature` parameter: what Binance signs ("totalParams"). The secret is
the native API's, so one key pair serves both protocols.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from exchange.api.auth import KeyStore
from exchange.api.binance import errors
from exchange.api.binance.params import Params, parse

API_KEY_HEADER = "X-MBX-APIKEY"
DEFAULT_RECV_WINDOW_MS = 5_000
MAX_RECV_WINDOW_MS = 60_000
AHEAD_TOLERANCE_MS = 1_000
"""How far a request's timestamp may run ahead of the server's clock, as on Binance."""

_API_KEY = re.compile(r"[A-Za-z0-9]{1,128}")


def account_for_key(keys: KeyStore, headers: Mapping[str, str]) -> tuple[str, int]:
    """Return the API key of the request's header and its account, or raise -2014/-2015."""
    api_key = headers.get(API_KEY_HEADER, "")
    if not _API_KEY.fullmatch(api_key):
        raise errors.bad_api_key_format()
    account_id = keys.account_of(api_key)
    if account_id is None:
        raise errors.rejected_api_key()
    return api_key, account_id


def _unsigned(encoded: str) -> tuple[str, str | None]:
    """Split an url-encoded string into the text without `signature` and the signature."""
    kept: list[str] = []
    signature: str | None = None
    for part in encoded.split("&") if encoded else []:
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def verify(
    keys: KeyStore, headers: Mapping[str, str], query: str, body: str, now_ms: int
) -> tuple[int, Params]:
    """Return the account and parameters of a signed request, or raise the Binance error."""
    api_key, account_id = account_for_key(keys, headers)
    signed_query, query_signature = _unsigned(query)
    signed_body, body_signature = _unsigned(body)
    signature = query_signature or body_signature
    params = Params(parse(signed_query, signed_body))
    if not signature:
        raise errors.mandatory("signature")
    timestamp = params.integer("timestamp")
    if timestamp is None:
        raise errors.mandatory("timestamp")
    recv_window = params.integer("recvWindow")
    if recv_window is None:
        recv_window = DEFAULT_RECV_WINDOW_MS
    if not 0 < recv_window <= MAX_RECV_WINDOW_MS:
        raise errors.bad_recv_window()
    payload = (signed_query + signed_body).encode()
    if not keys.payload_signature_valid(api_key, payload, signature):
        raise errors.bad_signature()
    if timestamp >= now_ms + AHEAD_TOLERANCE_MS:
        raise errors.ahead_of_server(AHEAD_TOLERANCE_MS)
    if now_ms - timestamp > recv_window:
        raise errors.outside_recv_window()
    return account_id, params
