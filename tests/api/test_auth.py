"""Keys, signatures, the operator token and the rate limiter."""

from __future__ import annotations

import pytest

from exchange.api.auth import KeyStore, check_admin_token, login_signature
from exchange.api.errors import ApiError
from exchange.api.ratelimit import RateLimiter

NOW = 1_700_000_000_000


def test_a_signed_login_names_the_account() -> None:
    keys = KeyStore(b"k" * 32)
    credentials = keys.issue(7)
    signature = login_signature(credentials.api_secret, NOW, credentials.api_key)
    assert keys.verify(credentials.api_key, NOW, signature, NOW + 29_000) == 7
    assert keys.verify(credentials.api_key, NOW, signature.upper(), NOW) == 7


def test_secrets_are_derived_not_stored() -> None:
    keys = KeyStore(b"k" * 32)
    credentials = keys.issue(1)
    assert credentials.api_secret not in repr(vars(keys) if hasattr(keys, "__dict__") else keys)
    other = KeyStore(b"x" * 32).issue(1)
    assert other.api_secret != credentials.api_secret
    assert len(credentials.api_secret) == 64


@pytest.mark.parametrize(
    ("key", "timestamp", "now", "code"),
    [
        ("good", NOW, NOW + 30_001, 5003),
        ("good", NOW + 40_000, NOW, 5003),
        ("unknown", NOW, NOW, 5002),
    ],
)
def test_bad_logins(key: str, timestamp: int, now: int, code: int) -> None:
    keys = KeyStore(b"k" * 32)
    credentials = keys.issue(1)
    api_key = credentials.api_key if key == "good" else "f" * 32
    signature = login_signature(credentials.api_secret, timestamp, api_key)
    with pytest.raises(ApiError) as raised:
        keys.verify(api_key, timestamp, signature, now)
    assert raised.value.code == code


def test_admin_token_must_be_configured_and_equal() -> None:
    check_admin_token("s3cret", "s3cret")
    for configured, given in ((None, "x"), ("", ""), ("s3cret", "s3creT")):
        with pytest.raises(ApiError) as raised:
            check_admin_token(configured, given)
        assert raised.value.code == 5005


def test_rate_limiter_refills_with_time() -> None:
    limiter = RateLimiter(10, NOW)
    for _ in range(10):
        limiter.take(NOW)
    with pytest.raises(ApiError) as raised:
        limiter.take(NOW)
    assert raised.value.code == 6001
    assert raised.value.data == {"retry_after_ms": 101, "limit_per_s": 10}
    limiter.take(NOW + 100)
    assert limiter.strikes == 0
