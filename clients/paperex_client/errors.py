"""What the SDK raises: the server's error replies, a lost connection, a garbled message."""

from __future__ import annotations

from typing import Any


class PaperexError(Exception):
    """An error reply from the server: its stable code, message and optional data.

    `data` is the reply's `data` object when there is one: `field` names the parameter at
    fault, `reason` the core rejection's name, `retry_after_ms` a rate limit's wait.
    """

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    @property
    def field(self) -> str | None:
        """Return the parameter the server blamed, if it named one."""
        if self.data is None:
            return None
        field = self.data.get("field")
        return field if isinstance(field, str) else None


class ConnectionLostError(ConnectionError):
    """The connection closed before a request's reply arrived; its outcome is unknown.

    An order placed this way may or may not exist: give orders a `client_order_id` and look
    them up with `Client.get_order(client_order_id=...)` after the client reconnects.
    """


class ClientClosedError(ConnectionError):
    """The client was closed, or gave up reconnecting, so it cannot send any more."""


class ProtocolError(Exception):
    """A message from the server that does not have the documented shape."""
