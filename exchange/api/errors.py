"""Error codes of the native API and the exception that carries one to the client.

JSON-RPC's own codes for malformed requests; the core's RejectCode values (1xxx validation,
2xxx risk, 3xxx matching, 4xxx account) pass through unchanged; 5xxx authentication and
6xxx limits belong to the API. The numbers are public: never renumber, only add.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from exchange.core.codes import RejectCode


class RpcCode(IntEnum):
    """JSON-RPC 2.0 protocol errors."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603


class AuthCode(IntEnum):
    """5xxx: who the connection is and what it may do."""

    NOT_LOGGED_IN = 5001
    INVALID_CREDENTIALS = 5002
    TIMESTAMP_OUT_OF_WINDOW = 5003
    ADMIN_REQUIRED = 5004
    INVALID_ADMIN_TOKEN = 5005
    ALREADY_LOGGED_IN = 5006


class LimitCode(IntEnum):
    """6xxx: how much the connection may ask."""

    RATE_LIMITED = 6001
    MESSAGE_TOO_LARGE = 6002
    TOO_MANY_SUBSCRIPTIONS = 6003


ErrorCode = RpcCode | AuthCode | LimitCode | RejectCode


class ApiError(Exception):
    """A request that ends in an error response; `data` names the field at fault if any."""

    def __init__(self, code: ErrorCode, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": int(self.code), "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(field: str, message: str) -> ApiError:
    return ApiError(RpcCode.INVALID_PARAMS, message, {"field": field})


def rejected(code: RejectCode, reason: str, field: str | None = None) -> ApiError:
    """Return the error for a core rejection, keeping the core's code and reason."""
    data: dict[str, Any] = {"reason": code.name.lower()}
    if field is not None:
        data["field"] = field
    return ApiError(code, reason, data)
