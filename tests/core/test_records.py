"""The hot-path builders make the same frozen events as calling the classes."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import FrozenInstanceError, dataclass

import pytest

from exchange.core.enums import LiquiditySide, Side
from exchange.core.events import (
    BookUpdated,
    OrderFilled,
    build_book_updated,
    build_order_filled,
)
from exchange.core.records import builder, fast_init

FILL_FIELDS = (7, 11, 3, "BTCUSDT", Side.BUY, 5, 500_000, 2, 0, LiquiditySide.TAKER, 40, -12)


def test_a_built_event_is_an_ordinary_instance_of_its_class() -> None:
    built = build_order_filled(*FILL_FIELDS)
    called = OrderFilled(*FILL_FIELDS)
    assert type(built) is OrderFilled
    assert built == called
    assert hash(built) == hash(called)
    assert repr(built) == repr(called)
    assert dataclasses.astuple(built) == FILL_FIELDS


def test_a_built_event_stays_frozen() -> None:
    built = build_order_filled(*FILL_FIELDS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.fee = 0  # type: ignore[misc]


def test_a_built_event_copies_pickles_and_replaces_like_any_other() -> None:
    built = build_book_updated(3, "BTCUSDT", 9, ((500_000, 4),), ())
    assert pickle.loads(pickle.dumps(built)) == built
    assert copy.deepcopy(built) == built
    assert dataclasses.replace(built, update_id=10) == BookUpdated(
        3, "BTCUSDT", 10, ((500_000, 4),), ()
    )


def test_builder_takes_keywords_like_the_class() -> None:
    built = build_book_updated(seq=3, symbol="BTCUSDT", update_id=9, bids=(), asks=((1, 2),))
    assert built == BookUpdated(3, "BTCUSDT", 9, (), ((1, 2),))


def test_builder_refuses_classes_it_cannot_build_exactly() -> None:
    @dataclass(frozen=True)
    class Unslotted:
        value: int

    @dataclass(frozen=True, slots=True)
    class WithDefault:
        value: int = 0

    with pytest.raises(TypeError):
        builder(Unslotted)
    with pytest.raises(TypeError):
        builder(WithDefault)


def test_fast_init_keeps_defaults_and_frozenness() -> None:
    @fast_init
    @dataclass(frozen=True, slots=True)
    class Defaults:
        value: int
        label: str | None = None

    assert Defaults(1) == Defaults(1, None)
    assert Defaults(2, label="x").label == "x"
    with pytest.raises(FrozenInstanceError):
        Defaults(1).value = 3  # type: ignore[misc]


def test_fast_init_refuses_an_unslotted_dataclass() -> None:
    @dataclass(frozen=True)
    class Unslotted:
        value: int = 0

    with pytest.raises(TypeError):
        fast_init(Unslotted)
