"""A per-connection token bucket, read against the injected clock."""

from __future__ import annotations

from exchange.api.errors import ApiError, LimitCode

FLOOD_STRIKES = 1_000
"""Rate-limited requests in a row after which a connection is closed as a flood."""


class RateLimiter:
    """Allow `rate_per_s` requests a second on average, in bursts of up to one second's worth."""

    def __init__(self, rate_per_s: int, now_ms: int) -> None:
        self.rate_per_s = rate_per_s
        self._capacity = float(rate_per_s)
        self._tokens = float(rate_per_s)
        self._last_ms = now_ms
        self.strikes = 0

    def take(self, now_ms: int) -> None:
        """Spend one token or raise ApiError(RATE_LIMITED) saying when to come back."""
        elapsed = max(0, now_ms - self._last_ms)
        self._last_ms = max(self._last_ms, now_ms)
        self._tokens = min(self._capacity, self._tokens + elapsed * self.rate_per_s / 1000)
        if self._tokens >= 1:
            self._tokens -= 1
            self.strikes = 0
            return
        self.strikes += 1
        retry_after_ms = int((1 - self._tokens) * 1000 / self.rate_per_s) + 1
        raise ApiError(
            LimitCode.RATE_LIMITED,
            f"rate limit of {self.rate_per_s} requests/s exceeded",
            {"retry_after_ms": retry_after_ms, "limit_per_s": self.rate_per_s},
        )

    @property
    def flooding(self) -> bool:
        return self.strikes >= FLOOD_STRIKES
