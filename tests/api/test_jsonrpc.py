"""Framing: every malformed frame becomes the right JSON-RPC error, never an exception."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from exchange.api.errors import ApiError
from exchange.api.jsonrpc import (
    RequestError,
    dumps,
    encode,
    parse_request,
    stream_bytes,
    stream_message,
    stream_prefix,
    stream_tail,
)


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


@pytest.mark.parametrize(
    "text",
    [
        '{"jsonrpc":"2.0","id":1,"method":"m","params":{"qty":"0.002","n":12}}',
        '{"jsonrpc":"2.0","id":1,"method":"m","params":{"qty":0.002,"big":123456789012345678901}}',
        '{"jsonrpc":"2.0","id":"\\ud800","method":"m"}',
        '{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":' + "[" * 40 + "]" * 40 + "}}",
        '{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1e400}}',
    ],
)
def test_the_fast_reader_reads_what_json_reads(text: str) -> None:
    # orjson reads the common case; anything it reads differently is read again by json.
    request = parse_request(text)
    message = json.loads(text, parse_float=Decimal)
    assert (request.id, request.method, request.params) == (
        message["id"],
        message["method"],
        message.get("params", {}),
    )


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "id": 1, "result": {"a": "é\u2028\x00\x7f", "b": None, "c": [True]}},
        {"jsonrpc": "2.0", "id": "x", "error": {"code": -32602, "data": {"field": "qty"}}},
        {"n": 2**70, "keys": {1: "int keys"}},
    ],
)
def test_encode_writes_what_dumps_writes(message: dict[str, object]) -> None:
    assert encode(message) == dumps(message).encode()


def test_a_stream_message_from_prefix_and_tail_equals_the_text_one() -> None:
    built = stream_bytes(stream_prefix("trades.BTCUSDT"), 12, stream_tail(b'{"x":"\xc3\xa9"}'))
    assert built == stream_message("trades.BTCUSDT", 12, '{"x":"é"}').encode()
