"""LocalBook without a server: snapshots, deltas, stale updates and every kind of gap."""

from __future__ import annotations

from decimal import Decimal

import pytest

from clients.paperex_client import Applied, Book, BookUpdate, Level, LocalBook, StreamUpdate

SYMBOL = "BTCUSDT"


def level(price: str, qty: str) -> Level:
    return Level(Decimal(price), Decimal(qty))


def snapshot(update_id: int, seq: int = 1, connection: int = 1) -> StreamUpdate:
    data = BookUpdate(
        "snapshot",
        SYMBOL,
        update_id,
        (level("59990.0", "1.000"), level("59980.0", "2.000")),
        (level("60010.0", "1.500"),),
    )
    return StreamUpdate(f"book.{SYMBOL}", seq, connection, data)


def delta(
    update_id: int,
    seq: int,
    bids: tuple[Level, ...] = (),
    asks: tuple[Level, ...] = (),
    connection: int = 1,
) -> StreamUpdate:
    data = BookUpdate("delta", SYMBOL, update_id, bids, asks)
    return StreamUpdate(f"book.{SYMBOL}", seq, connection, data)


def test_a_snapshot_then_deltas_change_add_and_remove_levels() -> None:
    book = LocalBook(SYMBOL)

    assert book.apply(snapshot(10)) is Applied.APPLIED
    assert book.apply(delta(11, 2, bids=(level("59990.0", "0.000"),))) is Applied.APPLIED
    assert book.apply(delta(12, 3, asks=(level("60005.0", "0.300"),))) is Applied.APPLIED
    assert book.apply(delta(13, 4, bids=(level("59985.0", "0.700"),))) is Applied.APPLIED

    assert book.update_id == 13
    assert book.bids() == [level("59985.0", "0.700"), level("59980.0", "2.000")]
    assert book.asks() == [level("60005.0", "0.300"), level("60010.0", "1.500")]
    assert book.best_bid() == level("59985.0", "0.700")
    assert book.mid() == Decimal("59995.0")
    assert book.snapshot(depth=1) == Book(
        SYMBOL, 13, (level("59985.0", "0.700"),), (level("60005.0", "0.300"),)
    )


def test_deltas_before_any_snapshot_are_a_gap() -> None:
    book = LocalBook(SYMBOL)

    assert book.apply(delta(5, 1)) is Applied.GAP
    assert not book.synced


def test_a_missing_update_id_is_a_gap_until_reset() -> None:
    book = LocalBook(SYMBOL)
    book.apply(snapshot(10))

    assert book.apply(delta(12, 2)) is Applied.GAP
    assert not book.synced
    assert book.apply(delta(13, 3)) is Applied.GAP

    book.reset(Book(SYMBOL, 13, (level("59000.0", "1.000"),), ()))
    assert book.apply(delta(13, 4)) is Applied.SKIPPED
    assert book.apply(delta(14, 5, asks=(level("61000.0", "1.000"),))) is Applied.APPLIED
    assert book.synced
    assert book.snapshot() == Book(
        SYMBOL, 14, (level("59000.0", "1.000"),), (level("61000.0", "1.000"),)
    )


def test_a_seq_gap_is_a_gap_even_when_update_ids_follow() -> None:
    book = LocalBook(SYMBOL)
    book.apply(snapshot(10))

    assert book.apply(delta(11, 3)) is Applied.GAP


def test_deltas_already_in_a_fetched_snapshot_are_skipped() -> None:
    book = LocalBook(SYMBOL)
    book.reset(Book(SYMBOL, 20, (), ()))

    assert book.apply(delta(19, 7)) is Applied.SKIPPED
    assert book.apply(delta(20, 8)) is Applied.SKIPPED
    assert book.apply(delta(21, 9, bids=(level("1.0", "1.000"),))) is Applied.APPLIED
    assert book.update_id == 21


def test_a_new_connection_starts_over_from_its_snapshot() -> None:
    book = LocalBook(SYMBOL)
    book.apply(snapshot(10))
    book.apply(delta(11, 2))

    assert book.apply(snapshot(30, seq=1, connection=2)) is Applied.APPLIED
    assert book.apply(delta(31, 2, connection=2)) is Applied.APPLIED
    assert book.apply(delta(32, 4, connection=2)) is Applied.GAP


def test_a_delta_on_a_new_connection_without_its_snapshot_is_a_gap() -> None:
    book = LocalBook(SYMBOL)
    book.apply(snapshot(10))

    assert book.apply(delta(11, 3, connection=2)) is Applied.GAP


def test_another_symbols_snapshot_is_refused() -> None:
    with pytest.raises(ValueError, match="ETHUSDT"):
        LocalBook(SYMBOL).reset(Book("ETHUSDT", 1, (), ()))
