"""JSON-RPC 2.0 framing: one text frame in, a request or an error out; responses as text.

orjson reads and writes the common case; the standard library's json stays the reference:
a frame orjson refuses or reads with a float in it (a JSON number with a fraction or an
exponent, or an integer past 64 bits) is read again by json with exact Decimals, and a
message orjson cannot write (a Decimal, an integer past 64 bits) is written by json. So
results, errors and their texts are the same as with json alone. `dumps` (text, as the
Binance gateway uses it) is json's; `encode` (bytes) is the fast one. The native API never
puts floats in a message, so the two agree on everything it sends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from exchange.api.errors import ApiError, RpcCode
from exchange.core.records import fast_init

RequestId = str | int


@dataclass(frozen=True, slots=True)
class Request:
    id: RequestId
    method: str
    params: dict[str, Any]

    def __init__(self, id: RequestId, method: str, params: dict[str, Any]) -> None:
        # Native when compiled (interpreted, fast_init replaces it: the class is frozen).
        self.id = id  # type: ignore[misc]
        self.method = method  # type: ignore[misc]
        self.params = params  # type: ignore[misc]


# Set after the class, not as a decorator, which would make mypyc compile it as an ordinary
# Python class.
fast_init(Request)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode_exactly(text: str | bytes) -> Any:
    # JSON numbers become Decimal, so 0.1 stays exact and 1e400 is not silently infinity.
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


def _decode(text: str | bytes) -> Any:
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        # json decides what the error says (or reads what orjson refuses, a lone surrogate).
        return _decode_exactly(text)
    if type(message) is float or (type(message) in (dict, list) and not _plain(message)):
        return _decode_exactly(text)
    return message


_PLAIN_DEPTH = 32
"""Nesting up to which orjson's reading is kept; deeper frames are left to json, whose
recursion limit then decides, as it always did, when nesting is absurd."""


def _plain(value: Any, depth: int = 0) -> bool:
    """Tell whether orjson read a value without floats and without deep nesting."""
    # Recursion bounded by _PLAIN_DEPTH, well inside Python's recursion limit.
    items = value.values() if type(value) is dict else value
    for item in items:
        kind = type(item)
        if kind is float:
            return False
        if (kind is dict or kind is list) and (
            depth >= _PLAIN_DEPTH or not _plain(item, depth + 1)
        ):
            return False
    return True


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
    # A tuple, not A | B: compiled, the union is built anew on every call.
    if isinstance(request_id, bool) or not isinstance(request_id, (str, int)):
        raise ApiError(
            RpcCode.INVALID_REQUEST, "id must be a string or an integer", {"field": "id"}
        )
    problem = _shape_error(message)
    if problem is not None:
        raise RequestError(request_id, problem)
    params = message.get("params", {})
    return Request(request_id, message["method"], params)


_MEMBERS = frozenset(("jsonrpc", "id", "method", "params"))


def _shape_error(message: dict[str, Any]) -> ApiError | None:
    if message.get("jsonrpc") != "2.0":
        return ApiError(RpcCode.INVALID_REQUEST, 'jsonrpc must be "2.0"', {"field": "jsonrpc"})
    method = message.get("method")
    if not isinstance(method, str) or not method:
        return ApiError(RpcCode.INVALID_REQUEST, "method must be a string", {"field": "method"})
    params = message.get("params", {})
    if not isinstance(params, dict):
        return ApiError(RpcCode.INVALID_PARAMS, "params must be an object", {"field": "params"})
    if len(message) > 3 and not _MEMBERS.issuperset(message):
        extra = set(message) - _MEMBERS
        field = sorted(extra)[0]
        return ApiError(RpcCode.INVALID_REQUEST, f"unknown member {field!r}", {"field": field})
    return None


class RequestError(ApiError):
    """An ApiError raised once the request's id is known, so the reply can carry it."""

    def __init__(self, request_id: RequestId, error: ApiError) -> None:
        super().__init__(error.code, error.message, error.data)
        self.request_id = request_id


def dumps(message: Any) -> str:
    """Serialise compactly, as text, with the standard library."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def encode(message: Any) -> bytes:
    """Serialise as `dumps` does, to UTF-8 bytes, with orjson when it can.

    For the native API's messages (no floats) the bytes are those of `dumps(message)`.
    """
    try:
        return orjson.dumps(message)
    except TypeError:
        return dumps(message).encode()


def result_message(request_id: RequestId, result: Any) -> str:
    return dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def error_message(request_id: RequestId | None, error: ApiError) -> str:
    return dumps({"jsonrpc": "2.0", "id": request_id, "error": error.to_json()})


def encode_result(request_id: RequestId, result: Any) -> bytes:
    """Return `result_message` as UTF-8 bytes, built the fast way."""
    return encode({"jsonrpc": "2.0", "id": request_id, "result": result})


def encode_error(request_id: RequestId | None, error: ApiError) -> bytes:
    """Return `error_message` as UTF-8 bytes, built the fast way."""
    return encode({"jsonrpc": "2.0", "id": request_id, "error": error.to_json()})


def stream_message(channel: str, seq: int, data_json: str) -> str:
    """Build a stream notification around data already serialised once for every reader."""
    return (
        '{"jsonrpc":"2.0","method":"stream","params":{"channel":'
        f'{json.dumps(channel)},"seq":{seq},"data":{data_json}}}}}'
    )


# A notification is prefix + seq + tail: the prefix is fixed per channel and the tail per
# update, so serving one update to many readers only formats each reader's seq.
_STREAM_PREFIXES: dict[str, bytes] = {}


def stream_prefix(channel: str) -> bytes:
    """Return the bytes of a notification on channel up to its seq."""
    prefix = _STREAM_PREFIXES.get(channel)
    if prefix is None:
        text = '{"jsonrpc":"2.0","method":"stream","params":{"channel":' + json.dumps(channel)
        prefix = (text + ',"seq":').encode()
        if len(_STREAM_PREFIXES) < 100_000:
            # Channel names are checked before they get here; the bound is only a backstop.
            _STREAM_PREFIXES[channel] = prefix
    return prefix


def stream_tail(data_json: bytes) -> bytes:
    """Return the bytes of a notification after its seq, around serialised data."""
    return b',"data":' + data_json + b"}}"


def stream_bytes(prefix: bytes, seq: int, tail: bytes) -> bytes:
    """Return `stream_message(channel, seq, data)` as bytes from its prefix and tail."""
    return b"%b%d%b" % (prefix, seq, tail)
