"""Framing: every malformed frame becomes the right JSON-RPC error, never an exception."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from exchange.api.errors import ApiError
from exchange.api.jsonrpc import RequestError, parse_request, stream_message


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{", -32700),
        ("NaN", -32700),
        ("[" * 100_000, -32700),
        ("[]", -32600),
        ("null", -32600),
        ('{"jsonrpc": "2.0", "method": "m"}', -32600),
        ('{"jsonrpc": "2.0", "id": true, "method": "m"}', -32600),
        ('{"jsonrpc": "2.0", "id": 1.5, "method": "m"}', -32600),
    ],
)
def test_malformed_frames_are_refused(text: str, code: int) -> None:
    with pytest.raises(ApiError) as raised:
        parse_request(text)
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("message", "code", "field"),
    [
        ({"id": 7, "method": "m"}, -32600, "jsonrpc"),
        ({"jsonrpc": "2.0", "id": 7, "method": 3}, -32600, "method"),
        ({"jsonrpc": "2.0", "id": 7, "method": "m", "params": [1]}, -32602, "params"),
        ({"jsonrpc": "2.0", "id": 7, "method": "m", "other": 1}, -32600, "other"),
    ],
)
def test_errors_after_the_id_keep_it(message: dict[str, object], code: int, field: str) -> None:
    with pytest.raises(RequestError) as raised:
        parse_request(json.dumps(message))
    assert (raised.value.request_id, raised.value.code) == (7, code)
    assert raised.value.data == {"field": field}


def test_numbers_are_read_exactly() -> None:
    request = parse_request('{"jsonrpc":"2.0","id":"a","method":"m","params":{"q":0.1,"b":1e400}}')
    assert request.params == {"q": Decimal("0.1"), "b": Decimal("1e400")}


def test_stream_message_is_valid_json() -> None:
    text = stream_message("book.BTCUSDT", 3, '{"x":1}')
    assert json.loads(text) == {
        "jsonrpc": "2.0",
        "method": "stream",
        "params": {"channel": "book.BTCUSDT", "seq": 3, "data": {"x": 1}},
    }
