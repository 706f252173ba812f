"""Binance request signing: API key, HMAC-SHA256 over the exact parameters, recvWindow.

REST signs the raw query string followed by the raw form body (no separator), each without
its `signature` parameter: what Binance signs ("totalParams"), with the key in a header.
The WebSocket API signs `key=value` pairs of every parameter but `signature`, sorted by key
and joined with `&`, the key itself among them as `apiKey`. The secret is the native API's,
so one key pair serves every protocol.
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
    return api_key, account_of(keys, api_key)


def account_of(keys: KeyStore, api_key: str) -> int:
    """Return the account of an API key, or raise -2014/-2015."""
    if not _API_KEY.fullmatch(api_key):
        raise errors.bad_api_key_format()
    account_id = keys.account_of(api_key)
    if account_id is None:
        raise errors.rejected_api_key()
    return account_id


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
    """Return the account and parameters of a signed REST request, or the Binance error."""
    api_key, account_id = account_for_key(keys, headers)
    signed_query, query_signature = _unsigned(query)
    signed_body, body_signature = _unsigned(body)
    params = Params(parse(signed_query, signed_body))
    payload = signed_query + signed_body
    _check(keys, api_key, params, payload, query_signature or body_signature, now_ms)
    return account_id, params


def verify_params(keys: KeyStore, values: Mapping[str, str], now_ms: int) -> tuple[int, Params]:
    """Return the account and parameters of a signed WebSocket API request, or the error."""
    api_key = values.get("apiKey")
    if not api_key:
        raise errors.mandatory("apiKey")
    account_id = account_of(keys, api_key)
    signature = values.get("signature")
    signed = {name: value for name, value in values.items() if name != "signature"}
    payload = "&".join(f"{name}={signed[name]}" for name in sorted(signed))
    params = Params(signed)
    _check(keys, api_key, params, payload, signature, now_ms)
    return account_id, params


def _check(
    keys: KeyStore,
    api_key: str,
    params: Params,
    payload: str,
    signature: str | None,
    now_ms: int,
) -> None:
    """Check a request's signature and timestamp in Binance's order of errors."""
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
    if not keys.payload_signature_valid(api_key, payload.encode(), signature):
        raise errors.bad_signature()
    if timestamp >= now_ms + AHEAD_TOLERANCE_MS:
        raise errors.ahead_of_server(AHEAD_TOLERANCE_MS)
    if now_ms - timestamp > recv_window:
        raise errors.outside_recv_window()
