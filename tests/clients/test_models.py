"""Wire JSON to typed results: decimals stay exact, new fields are ignored, bad shapes fail."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from clients.paperex_client import (
    Book,
    Fill,
    Level,
    MarginCall,
    Order,
    ProtocolError,
    Rejection,
    Ticker,
    UnknownEvent,
    login_signature,
)
from clients.paperex_client.client import wire_number
from clients.paperex_client.models import account_event, decode, stream_data
from exchange.api.auth import login_signature as server_signature

ORDER: dict[str, Any] = {
    "order_id": 57,
    "client_order_id": None,
    "symbol": "BTCUSDT",
    "side": "buy",
    "type": "market",
    "status": "filled",
    "qty": "0.002",
    "price": None,
    "trigger_price": None,
    "trigger_by": "last",
    "time_in_force": "gtc",
    "reduce_only": False,
    "close_position": False,
    "filled_qty": "0.002",
    "avg_price": "60006.000000",
    "fee": "0.06000600",
    "reason": None,
    "liquidation": False,
    "created_ts": 1732530000000,
    "updated_ts": 1732530000000,
}


def test_decimal_strings_become_exact_decimals() -> None:
    order = decode(Order, ORDER)

    assert order.avg_price == Decimal("60006")
    assert isinstance(order.fee, Decimal)
    assert order.fee == Decimal("0.060006")
    assert order.price is None
    assert order.created_ts == 1732530000000


def test_fields_the_sdk_does_not_know_are_ignored() -> None:
    order = decode(Order, {**ORDER, "new_field_from_a_later_server": 1})

    assert order.order_id == 57


@pytest.mark.parametrize(
    ("field", "value"),
    [("qty", 0.002), ("qty", "abc"), ("qty", None), ("order_id", "57"), ("reduce_only", 0)],
)
def test_values_of_the_wrong_shape_are_protocol_errors(field: str, value: Any) -> None:
    with pytest.raises(ProtocolError, match=field):
        decode(Order, {**ORDER, field: value})


def test_a_missing_field_is_a_protocol_error() -> None:
    data = dict(ORDER)
    del data["status"]

    with pytest.raises(ProtocolError, match="status"):
        decode(Order, data)


def test_book_levels_are_price_and_quantity_pairs() -> None:
    book = decode(
        Book,
        {"symbol": "BTCUSDT", "update_id": 3, "bids": [["59994.0", "0.157"]], "asks": []},
    )

    assert book.bids == (Level(Decimal("59994.0"), Decimal("0.157")),)
    assert book.bids[0].price == Decimal("59994")


def test_channels_carry_their_own_types() -> None:
    ticker: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "mark_price": "60000.0",
        "index_price": "60000.0",
        "last_price": None,
        "best_bid": None,
        "best_bid_qty": None,
        "best_ask": None,
        "best_ask_qty": None,
        "funding_rate": "0.00010000",
        "next_funding_time": None,
        "open_interest": "0.000",
        "halted": False,
    }

    parsed = stream_data("ticker.BTCUSDT", ticker)

    assert isinstance(parsed, Ticker)
    assert parsed.funding_rate == Decimal("0.0001")


def test_account_events_are_typed_by_their_event_name() -> None:
    fill = {
        "event": "fill",
        "order_id": 1,
        "trade_id": 2,
        "symbol": "BTCUSDT",
        "side": "sell",
        "last_px": "60000.0",
        "last_qty": "0.001",
        "leaves_qty": "0.000",
        "liquidity_side": "maker",
        "fee": "0.01200000",
        "realized_pnl": "0.00000000",
        "ts": 5,
    }
    call = {
        "event": "margin_call",
        "symbol": None,
        "margin_ratio": "0.81",
        "margin_balance": "100.00000000",
        "maintenance_margin": "81.00000000",
    }
    refused = {"event": "rejected", "code": 2001, "reason": "insufficient margin"}

    assert isinstance(account_event(fill), Fill)
    assert account_event(call) == MarginCall(None, Decimal("0.81"), Decimal("100"), Decimal("81"))
    assert account_event(refused) == Rejection("rejected", 2001, "insufficient margin")
    assert account_event({"event": "future_thing", "x": 1}) == UnknownEvent(
        "future_thing", {"event": "future_thing", "x": 1}
    )


def test_numbers_are_sent_as_plain_decimal_text() -> None:
    assert wire_number(Decimal("1E+3")) == "1000"
    assert wire_number(Decimal("0.0010")) == "0.0010"
    assert wire_number("0.5") == "0.5"
    with pytest.raises(TypeError):
        wire_number(0.5)  # type: ignore[arg-type]


def test_the_login_signature_is_the_one_the_server_checks() -> None:
    assert login_signature("secret", 1732530000000, "key") == server_signature(
        "secret", 1732530000000, "key"
    )
