"""One WebSocket connection's state: who it is, what it subscribed to, its stream seqs."""

from __future__ import annotations

from typing import Protocol

from exchange.api.jsonrpc import stream_bytes, stream_prefix, stream_tail
from exchange.api.ratelimit import RateLimiter


class Outbox(Protocol):
    """The connection's writer (runtime fan-out): it only enqueues, never awaits.

    A message is text or its UTF-8 bytes.
    """

    def send_private(self, message: str | bytes) -> None: ...

    def send_market(self, channel_key: str, message: str | bytes) -> None: ...

    def market_waiting(self, channel_key: str) -> bool: ...


class Session:
    """A connection as the API sees it: identity, rights, subscriptions, stream seqs."""

    __slots__ = ("account_id", "admin", "channels", "limiter", "outbox")

    def __init__(self, outbox: Outbox, limiter: RateLimiter) -> None:
        self.outbox = outbox
        self.limiter = limiter
        self.account_id: int | None = None
        self.admin = False
        # channel -> seq of the last notification sent on it.
        self.channels: dict[str, int] = {}

    def reply(self, message: str | bytes) -> None:
        self.outbox.send_private(message)

    def push(self, channel: str, data_json: str, *, conflate: bool = False) -> None:
        """Send a notification on a subscribed channel with its next seq."""
        self.push_tail(channel, stream_tail(data_json.encode()), conflate=conflate)

    def push_tail(self, channel: str, tail: bytes, *, conflate: bool = False) -> None:
        """Send a notification whose data is already in `stream_tail` form (shared by all)."""
        seq = self.channels.get(channel)
        if seq is None:
            return
        seq += 1
        self.channels[channel] = seq
        message = stream_bytes(stream_prefix(channel), seq, tail)
        if conflate:
            self.outbox.send_market(channel, message)
        else:
            self.outbox.send_private(message)
