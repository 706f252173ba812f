"""JSON-RPC 2.0 framing: one text frame in, a request or an error out; responses as text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from exchange.api.errors import ApiError, RpcCode

RequestId = str | int


@dataclass(frozen=True, slots=True)
class Request:
    id: RequestId
    method: str
    params: dict[str, Any]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(text: str | bytes) -> Any:
    # JSON numbers become Decimal, so 0.1 stays exact and 1e400 is not silently infinity.
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


def parse_request(text: str | bytes) -> Request:
    """Parse one frame into a request, or raise ApiError (with the id in `request_id`)."""
    try:
        message = _decode(text)
    except (ValueError, RecursionError) as error:
        raise ApiError(RpcCode.PARSE_ERROR, f"parse error: {str(error)[:200]}") from None
    if isinstance(message, list):
        raise ApiError(RpcCode.INVALID_REQUEST, "batch requests are not supported")
    if not isinstance(message, dict):
        raise ApiError(RpcCode.INVALID_REQUEST, "a request must be a JSON object")
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        raise ApiError(
            RpcCode.INVALID_REQUEST, "id must be a string or an integer", {"field": "id"}
        )
    problem = _shape_error(message)
    if problem is not None:
        raise RequestError(request_id, problem)
    params = message.get("params", {})
    return Request(request_id, message["method"], params)


def _shape_error(message: dict[str, Any]) -> ApiError | None:
    if message.get("jsonrpc") != "2.0":
        return ApiError(RpcCode.INVALID_REQUEST, 'jsonrpc must be "2.0"', {"field": "jsonrpc"})
    method = message.get("method")
    if not isinstance(method, str) or not method:
        return ApiError(RpcCode.INVALID_REQUEST, "method must be a string", {"field": "method"})
    params = message.get("params", {})
    if not isinstance(params, dict):
        return ApiError(RpcCode.INVALID_PARAMS, "params must be an object", {"field": "params"})
    extra = set(message) - {"jsonrpc", "id", "method", "params"}
    if extra:
        field = sorted(extra)[0]
        return ApiError(RpcCode.INVALID_REQUEST, f"unknown member {field!r}", {"field": field})
    return None


class RequestError(ApiError):
    """An ApiError raised once the request's id is known, so the reply can carry it."""

    def __init__(self, request_id: RequestId, error: ApiError) -> None:
        super().__init__(error.code, error.message, error.data)
        self.request_id = request_id


def dumps(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def result_message(request_id: RequestId, result: Any) -> str:
    return dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def error_message(request_id: RequestId | None, error: ApiError) -> str:
    return dumps({"jsonrpc": "2.0", "id": request_id, "error": error.to_json()})


def stream_message(channel: str, seq: int, data_json: str) -> str:
    """Build a stream notification around data already serialised once for every reader."""
    return (
        '{"jsonrpc":"2.0","method":"stream","params":{"channel":'
        f'{json.dumps(channel)},"seq":{seq},"data":{data_json}}}}}'
    )
