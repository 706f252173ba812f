"""The command codec: every command survives JSON exactly, and bad records are refused."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.core.commands import (
    CancelOrder,
    Command,
    FundingRate,
    MarkPrice,
    PlaceOrder,
    SettleFunding,
    UpdateMark,
)
from exchange.core.enums import OrderType, SelfTradePrevention, Side, TimeInForce, TriggerBy
from exchange.runtime import journal
from exchange.runtime.codec import COMMAND_TYPES, CodecError, decode, encode, encode_generic


def _command_strategy(kind: type[Any]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(kind)
    fields = {field.name: st.from_type(hints[field.name]) for field in dataclasses.fields(kind)}
    return st.builds(kind, **fields)


ANY_COMMAND = st.one_of(*(_command_strategy(kind) for kind in COMMAND_TYPES.values()))


def test_every_command_type_is_covered() -> None:
    assert set(COMMAND_TYPES) == {kind.__name__ for kind in typing.get_args(Command)}
    assert len(COMMAND_TYPES) == 13


# Hypothesis reads the field types from the annotations, which mypyc replaces.
@pytest.mark.interpreted_only
@given(ANY_COMMAND)
def test_every_command_round_trips_through_json_text(command: Command) -> None:
    text = json.dumps(encode(command))
    decoded = decode(json.loads(text))
    assert decoded == command
    assert type(decoded) is type(command)
    assert encode(decoded) == encode(command)


# Hypothesis reads the field types from the annotations, which mypyc replaces.
@pytest.mark.interpreted_only
@given(ANY_COMMAND)
def test_the_per_class_encoders_write_what_the_field_by_field_encoder_writes(
    command: Command,
) -> None:
    # Journals written before the per-class encoders must read back the same records.
    data = encode(command)
    assert data == encode_generic(command)
    assert list(data) == list(encode_generic(command))
    assert json.dumps(data) == json.dumps(encode_generic(command))


# Hypothesis reads the field types from the annotations, which mypyc replaces.
@pytest.mark.interpreted_only
@given(st.one_of(_command_strategy(PlaceOrder), _command_strategy(CancelOrder)))
def test_the_journal_encodes_its_commonest_commands_as_the_codec_does(command: Command) -> None:
    # The journal writes PlaceOrder and CancelOrder with compiled encoders of its own: a field
    # added to either class must be added there too, or this fails.
    fast = journal._place_order_data if type(command) is PlaceOrder else journal._cancel_order_data
    data = fast(command)  # type: ignore[arg-type]
    assert data == encode_generic(command)
    assert list(data) == list(encode_generic(command))


def test_the_journal_encoders_agree_with_the_codec_in_either_kind_of_code() -> None:
    place = PlaceOrder(
        7, 1_700_000_000_000, 3, "ETHUSDT", Side.SELL, OrderType.STOP_LIMIT, 5, 30_000,
        29_900, TriggerBy.MARK, TimeInForce.IOC, True, False, "bot-1",
        SelfTradePrevention.EXPIRE_MAKER,
    )  # fmt: skip
    for command in (
        place,
        PlaceOrder(8, 1_700_000_000_001, 3, "BTCUSDT", Side.BUY, OrderType.MARKET, 2),
        CancelOrder(9, 1_700_000_000_002, 3, 41),
        CancelOrder(10, 1_700_000_000_003, 3, None, "bot-1"),
    ):
        fast = (
            journal._place_order_data(command)
            if isinstance(command, PlaceOrder)
            else journal._cancel_order_data(command)
        )
        assert list(fast.items()) == list(encode(command).items())


@pytest.mark.interpreted_only  # compiled commands refuse a wrong type when they are made
@pytest.mark.parametrize("value", [1.5, b"BTCUSDT", object()])
def test_a_value_of_a_type_the_codec_cannot_write_is_refused_by_either_encoder(
    value: object,
) -> None:
    order = PlaceOrder(7, 1_000, 3, "BTCUSDT", Side.SELL, OrderType.LIMIT, 5, 600_000)
    for field in ("qty", "price", "symbol", "side"):
        broken = dataclasses.replace(order, **cast(dict[str, Any], {field: value}))
        with pytest.raises(CodecError):
            encode(broken)
        with pytest.raises(CodecError):
            encode_generic(broken)


def test_a_place_order_is_encoded_field_by_field_with_enums_by_value() -> None:
    order = PlaceOrder(7, 1_000, 3, "BTCUSDT", Side.SELL, OrderType.STOP_LIMIT, 5, 600_000, 590_000)
    data = encode(order)
    assert data["type"] == "PlaceOrder"
    assert data["side"] == -1
    assert data["order_type"] == "stop_limit"
    assert data["trigger_by"] == TriggerBy.LAST.value
    assert data["time_in_force"] == TimeInForce.GTC.value
    assert data["self_trade_prevention"] is None


def test_nested_prices_and_rates_are_objects_in_a_list() -> None:
    update = UpdateMark(1, 2, (MarkPrice("BTCUSDT", 10, 11), MarkPrice("ETHUSDT", 3, 4)))
    assert encode(update)["prices"][1] == {"symbol": "ETHUSDT", "index_price": 3, "mark_price": 4}
    funding = SettleFunding(3, 4, (FundingRate("BTCUSDT", -5),))
    assert decode(encode(funding)) == funding


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "Nope"}, "unknown command type"),
        ({"seq": "7"}, "expected int"),
        ({"seq": True}, "expected int"),
        ({"side": 2}, "not a Side"),
        ({"side": True}, "not a Side"),
        ({"extra": 1}, "unknown field"),
        ({"price": 1.5}, "expected int"),
    ],
)
def test_inexact_records_are_refused(change: dict[str, Any], message: str) -> None:
    data = encode(PlaceOrder(1, 2, 3, "BTCUSDT", Side.BUY, OrderType.LIMIT, 1, 100))
    data.update(change)
    with pytest.raises(CodecError, match=message):
        decode(data)


def test_a_missing_field_is_refused() -> None:
    data = encode(UpdateMark(1, 2, (MarkPrice("BTCUSDT", 10, 11),)))
    del data["prices"][0]["mark_price"]
    with pytest.raises(CodecError, match="missing field 'mark_price'"):
        decode(data)
