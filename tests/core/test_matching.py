"""Matching scenarios: what a trader who knows Binance Futures expects to see."""

from __future__ import annotations

import pytest

from exchange.core.codes import RejectCode
from exchange.core.commands import (
    CancelOrder,
    MarkPrice,
    PlaceOrder,
    SetTradingStatus,
    UpdateMark,
)
from exchange.core.enums import (
    CancelReason,
    ExpireReason,
    LiquiditySide,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
)
from exchange.core.events import (
    BookUpdated,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderTriggered,
    PositionChanged,
    TradingStatusChanged,
)
from exchange.core.exchange import Exchange, SequenceError
from exchange.core.numbers import NumberError
from tests.core.builders import BTC, Scenario, first, lots, of_kind, rejection, ticks

MARK = "60000"
BUY, SELL = Side.BUY, Side.SELL


@pytest.fixture
def market() -> Scenario:
    scenario = Scenario()
    scenario.mark(MARK)
    return scenario


# ---------------------------------------------------------------- priority and fills


def test_resting_orders_fill_best_price_first_then_oldest_first(market: Scenario) -> None:
    maker_a, maker_b, taker = market.account("a"), market.account("b"), market.account("t")
    later_at_best = market.limit(maker_b, SELL, "1", "60001")
    worse = market.limit(maker_a, SELL, "1", "60002")
    middle = market.limit(maker_a, SELL, "1", "60001.5")
    earliest_at_best = market.limit(maker_a, SELL, "1", "60000.5")

    events = market.place(taker, BUY, "2.5", "60002")

    maker_fills = [
        (fill.order_id, fill.last_px, fill.last_qty)
        for fill in of_kind(events, OrderFilled)
        if fill.liquidity_side is LiquiditySide.MAKER
    ]
    assert maker_fills == [
        (earliest_at_best, ticks("60000.5"), lots("1")),
        (later_at_best, ticks("60001"), lots("1")),
        (middle, ticks("60001.5"), lots("0.5")),
    ]
    assert market.exchange.orders[worse].filled_qty == 0
    assert market.position(taker) == lots("2.5")
    assert market.position(maker_a) + market.position(maker_b) == -lots("2.5")


def test_same_price_orders_fill_in_arrival_order(market: Scenario) -> None:
    makers = [market.account(f"m{i}") for i in range(3)]
    taker = market.account("t")
    ids = [market.limit(maker, BUY, "1", "59990") for maker in makers]

    events = market.place(taker, SELL, "2", "59990", time_in_force=TimeInForce.IOC)

    filled = [f.order_id for f in of_kind(events, OrderFilled) if f.account_id != taker]
    assert filled == ids[:2]
    assert market.book()[0] == [(ticks("59990"), lots("1"))]


def test_fill_reports_price_quantity_leaves_and_both_sides(market: Scenario) -> None:
    maker, taker = market.account("m"), market.account("t")
    resting = market.limit(maker, SELL, "3", "60010")

    events = market.place(taker, BUY, "1", "60010")

    maker_fill, taker_fill = of_kind(events, OrderFilled)
    assert (maker_fill.order_id, maker_fill.liquidity_side) == (resting, LiquiditySide.MAKER)
    assert maker_fill.trade_id == taker_fill.trade_id
    assert (maker_fill.last_px, maker_fill.last_qty, maker_fill.leaves_qty) == (
        ticks("60010"),
        lots("1"),
        lots("2"),
    )
    assert taker_fill.leaves_qty == 0
    # 60010 x 1 BTC = 60,010 USDT: maker 0.02% = 12.002, taker 0.05% = 30.005.
    assert maker_fill.fee == 12_002_000_00
    assert taker_fill.fee == 30_005_000_00
    positions = {p.account_id: p.qty for p in of_kind(events, PositionChanged)}
    assert positions == {maker: -lots("1"), taker: lots("1")}


def test_a_limit_order_that_crosses_trades_then_rests_the_rest(market: Scenario) -> None:
    maker, taker = market.account("m"), market.account("t")
    market.limit(maker, SELL, "1", "60010")

    events = market.place(taker, BUY, "3", "60020")

    assert sum(f.last_qty for f in of_kind(events, OrderFilled) if f.account_id == taker) == lots(
        "1"
    )
    assert market.book() == ([(ticks("60020"), lots("2"))], [])


def test_every_book_change_bumps_the_update_id_once_and_lists_changed_levels(
    market: Scenario,
) -> None:
    maker, taker = market.account("m"), market.account("t")
    market.limit(maker, SELL, "1", "60010")
    market.limit(maker, SELL, "1", "60020")
    before = market.exchange.markets["BTCUSDT"].book.update_id

    events = market.place(taker, BUY, "1.5", "60020")

    (update,) = of_kind(events, BookUpdated)
    assert update.update_id == before + 1
    assert update.asks == ((ticks("60010"), 0), (ticks("60020"), lots("0.5")))
    assert update.bids == ()


# ---------------------------------------------------------------- market orders and the band


def test_market_order_walks_the_book_but_not_past_the_price_band(market: Scenario) -> None:
    maker, taker = market.account("m"), market.account("t")
    market.limit(maker, SELL, "1", "60100")
    market.limit(maker, SELL, "1", "62999.9")
    market.mark("63000")  # move the band up so the far ask can be placed
    market.limit(maker, SELL, "1", "66000")
    market.mark(MARK)  # band now 57,000 .. 63,000

    events = market.place(taker, BUY, "3")

    assert [f.last_px for f in of_kind(events, OrderFilled) if f.account_id == taker] == [
        ticks("60100"),
        ticks("62999.9"),
    ]
    assert first(events, OrderExpired).reason is ExpireReason.PRICE_BAND
    assert market.position(taker) == lots("2")


def test_market_order_into_an_empty_book_expires(market: Scenario) -> None:
    taker = market.account("t")
    events = market.place(taker, SELL, "1")
    assert first(events, OrderExpired).reason is ExpireReason.TIME_IN_FORCE
    assert market.exchange.orders == {}


def test_limit_price_outside_the_band_around_mark_is_rejected(market: Scenario) -> None:
    trader = market.account()
    assert rejection(market.place(trader, BUY, "1", "63000.1")) is RejectCode.PRICE_OUTSIDE_BAND
    assert rejection(market.place(trader, SELL, "1", "56999.9")) is RejectCode.PRICE_OUTSIDE_BAND
    market.limit(trader, BUY, "1", "57000")
    market.limit(trader, SELL, "1", "63000")


# ---------------------------------------------------------------- time in force


def test_ioc_fills_what_it_can_and_expires_the_rest(market: Scenario) -> None:
    maker, taker = market.account("m"), market.account("t")
    market.limit(maker, SELL, "1", "60010")

    events = market.place(taker, BUY, "2", "60010", time_in_force=TimeInForce.IOC)

    assert first(events, OrderExpired).reason is ExpireReason.TIME_IN_FORCE
    assert market.position(taker) == lots("1")
    assert market.book() == ([], [])


def test_fok_that_cannot_fill_completely_trades_nothing(market: Scenario) -> None:
    maker, taker = market.account("m"), market.account("t")
    market.limit(maker, SELL, "1", "60010")
    market.limit(maker, SELL, "1", "60030")

    events = market.place(taker, BUY, "2", "60020", time_in_force=TimeInForce.FOK)

    assert of_kind(events, OrderFilled) == []
    assert first(events, OrderExpired).reason is ExpireReason.TIME_IN_FORCE
    assert market.book()[1] == [(ticks("60010"), lots("1")), (ticks("60030"), lots("1"))]

    events = market.place(taker, BUY, "2", "60030", time_in_force=TimeInForce.FOK)
    assert market.position(taker) == lots("2")


def test_post_only_that_would_take_is_rejected_and_one_that_would_not_rests(
    market: Scenario,
) -> None:
    maker, trader = market.account("m"), market.account("t")
    market.limit(maker, SELL, "1", "60010")

    events = market.place(trader, BUY, "1", "60010", time_in_force=TimeInForce.POST_ONLY)
    assert rejection(events) is RejectCode.POST_ONLY_WOULD_TAKE

    market.limit(trader, BUY, "1", "60009.9", TimeInForce.POST_ONLY)
    assert market.book()[0] == [(ticks("60009.9"), lots("1"))]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("0.0005", RejectCode.QTY_OFF_LOT),
        ("-1", RejectCode.INVALID_QUANTITY),
        ("0", RejectCode.INVALID_QUANTITY),
        ("NaN", RejectCode.INVALID_NUMBER),
        ("Infinity", RejectCode.INVALID_NUMBER),
        ("1e400", RejectCode.INVALID_NUMBER),
        ("abc", RejectCode.INVALID_NUMBER),
    ],
)
def test_quantity_text_off_the_lot_is_rejected_never_rounded(text: str, code: RejectCode) -> None:
    with pytest.raises(NumberError) as caught:
        BTC.qty_lots(text)
    assert caught.value.code is code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("60000.05", RejectCode.PRICE_OFF_TICK),
        ("0", RejectCode.INVALID_PRICE),
        ("-60000", RejectCode.INVALID_PRICE),
        ("6e4", None),
        (" 60000.10 ", None),
    ],
)
def test_price_text_off_the_tick_is_rejected_never_rounded(
    text: str, code: RejectCode | None
) -> None:
    if code is None:
        assert BTC.price_ticks(text) == BTC.price_ticks("60000") + (1 if "10" in text else 0)
        return
    with pytest.raises(NumberError) as caught:
        BTC.price_ticks(text)
    assert caught.value.code is code


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"qty": 0}, RejectCode.INVALID_QUANTITY),
        ({"qty": -5}, RejectCode.INVALID_QUANTITY),
        ({"qty": 1_000_001}, RejectCode.QTY_ABOVE_MAXIMUM),
        ({"price": None}, RejectCode.PRICE_REQUIRED),
        ({"price": -1}, RejectCode.INVALID_PRICE),
        ({"trigger_price": 600_000}, RejectCode.TRIGGER_PRICE_NOT_ALLOWED),
        ({"symbol": "DOGEUSDT"}, RejectCode.UNKNOWN_SYMBOL),
        ({"account_id": 999}, RejectCode.UNKNOWN_ACCOUNT),
        ({"client_order_id": "x" * 37}, RejectCode.INVALID_CLIENT_ORDER_ID),
        ({"client_order_id": "bad id"}, RejectCode.INVALID_CLIENT_ORDER_ID),
        ({"close_position": True}, RejectCode.CLOSE_POSITION_NOT_ALLOWED),
        ({"qty": 1, "price": 10_000}, RejectCode.PRICE_OUTSIDE_BAND),
    ],
)
def test_malformed_orders_are_rejected_with_a_stable_code(
    market: Scenario, options: dict[str, object], code: RejectCode
) -> None:
    trader = market.account()
    fields: dict[str, object] = {
        "account_id": trader,
        "symbol": "BTCUSDT",
        "side": BUY,
        "order_type": OrderType.LIMIT,
        "qty": lots("1"),
        "price": ticks("59000"),
    }
    fields.update(options)
    before = market.exchange.state_hash()
    events = market.apply(PlaceOrder(*market.next(), **fields))  # type: ignore[arg-type]
    (event,) = events
    assert isinstance(event, OrderRejected)
    assert event.code is code
    assert event.reason
    # A rejection changes nothing but the sequence counters.
    assert market.exchange.orders == {}
    assert market.exchange.state_hash() != before


def test_min_notional_is_enforced_except_for_reduce_only(market: Scenario) -> None:
    small = Scenario()
    trader = small.account()
    small.mark("1000")
    # 0.001 BTC at 1,000 is 1 USDT, under the 5 USDT minimum.
    assert rejection(small.place(trader, BUY, "0.001", "1000")) is (
        RejectCode.NOTIONAL_BELOW_MINIMUM
    )
    maker = small.account("maker")
    small.limit(maker, SELL, "0.01", "1000")
    small.place(trader, BUY, "0.01", "1000")
    # Closing a small remainder must always be possible.
    small.limit(trader, SELL, "0.001", "1000", reduce_only=True)


def test_too_many_open_orders_per_symbol_is_rejected(market: Scenario) -> None:
    trader = market.account()
    for index in range(BTC.max_open_orders):
        market.limit(trader, BUY, "0.001", str(59000 + index))
    assert rejection(market.place(trader, BUY, "0.001", "58000")) is RejectCode.TOO_MANY_OPEN_ORDERS


def test_commands_must_arrive_in_sequence() -> None:
    exchange = Exchange([BTC])
    exchange.apply(UpdateMark(5, 100, (MarkPrice("BTCUSDT", 1, 1),)))
    with pytest.raises(SequenceError):
        exchange.apply(UpdateMark(5, 100, (MarkPrice("BTCUSDT", 1, 1),)))
    with pytest.raises(SequenceError):
        exchange.apply(UpdateMark(6, 99, (MarkPrice("BTCUSDT", 1, 1),)))


# ---------------------------------------------------------------- cancel, amend, client ids


def test_cancel_removes_the_order_and_only_the_owner_may_cancel(market: Scenario) -> None:
    owner, stranger = market.account("owner"), market.account("stranger")
    order_id = market.limit(owner, BUY, "1", "59990")

    assert rejection(market.cancel(stranger, order_id)) is RejectCode.UNKNOWN_ORDER
    events = market.cancel(owner, order_id)

    assert first(events, OrderCanceled).reason is CancelReason.USER
    assert market.book() == ([], [])
    assert rejection(market.cancel(owner, order_id)) is RejectCode.UNKNOWN_ORDER


def test_cancel_all_cancels_one_symbol_or_everything_of_one_account(market: Scenario) -> None:
    trader, other = market.account("t"), market.account("o")
    mine = [market.limit(trader, BUY, "1", p) for p in ("59990", "59980")]
    theirs = market.limit(other, BUY, "1", "59970")
    stop = first(
        market.place(trader, BUY, "1", order_type=OrderType.STOP_MARKET, trigger="61000"),
        OrderAccepted,
    ).order_id

    events = market.cancel_all(trader, "BTCUSDT")

    canceled = [e.order_id for e in of_kind(events, OrderCanceled)]
    assert canceled == [*mine, stop]
    assert {e.reason for e in of_kind(events, OrderCanceled)} == {CancelReason.CANCEL_ALL}
    assert [o.order_id for o in market.exchange.open_orders(other)] == [theirs]
    assert market.exchange.open_orders(trader) == []


def test_amend_down_keeps_priority_and_price_change_loses_it(market: Scenario) -> None:
    first_maker, second_maker, taker = (market.account(n) for n in ("a", "b", "t"))
    a = market.limit(first_maker, SELL, "2", "60010")
    b = market.limit(second_maker, SELL, "1", "60010")

    kept = first(market.amend(first_maker, a, qty="1"), OrderAmended)
    assert kept.priority_kept
    fills = of_kind(market.place(taker, BUY, "1", "60010"), OrderFilled)
    assert fills[0].order_id == a

    c = market.limit(first_maker, SELL, "1", "60010")
    assert not first(market.amend(second_maker, b, qty="2"), OrderAmended).priority_kept
    fills = of_kind(market.place(taker, BUY, "1", "60010"), OrderFilled)
    assert fills[0].order_id == c


def test_amend_to_a_crossing_price_trades_and_post_only_may_not_cross(market: Scenario) -> None:
    maker, trader = market.account("m"), market.account("t")
    market.limit(maker, SELL, "1", "60010")
    bid = market.limit(trader, BUY, "1", "60000")
    post_only = market.limit(trader, BUY, "1", "59990", TimeInForce.POST_ONLY)

    assert rejection(market.amend(trader, post_only, price="60010")) is (
        RejectCode.POST_ONLY_WOULD_TAKE
    )
    events = market.amend(trader, bid, price="60010")
    taker_fill = [f for f in of_kind(events, OrderFilled) if f.account_id == trader]
    assert [(f.order_id, f.liquidity_side) for f in taker_fill] == [(bid, LiquiditySide.TAKER)]
    assert market.position(trader) == lots("1")


def test_amend_needs_a_change_and_must_stay_above_the_filled_qty(market: Scenario) -> None:
    maker, taker = market.account("m"), market.account("t")
    order_id = market.limit(maker, SELL, "2", "60010")
    market.place(taker, BUY, "1", "60010")

    assert rejection(market.amend(maker, order_id, qty="2")) is RejectCode.AMEND_NO_CHANGE
    assert rejection(market.amend(maker, order_id, qty="1")) is RejectCode.INVALID_QUANTITY
    amended = first(market.amend(maker, order_id, qty="1.5"), OrderAmended)
    assert (amended.qty, amended.leaves_qty) == (lots("1.5"), lots("0.5"))


def test_client_order_ids_are_unique_among_open_orders_and_free_again_after(
    market: Scenario,
) -> None:
    trader = market.account()
    order_id = market.limit(trader, BUY, "1", "59990", client_order_id="bot-1")
    duplicate = market.place(trader, BUY, "1", "59980", client_order_id="bot-1")
    assert rejection(duplicate) is RejectCode.DUPLICATE_CLIENT_ORDER_ID

    other = market.account("other")
    market.limit(other, BUY, "1", "59980", client_order_id="bot-1")

    events = market.apply(CancelOrder(*market.next(), trader, client_order_id="bot-1"))
    assert first(events, OrderCanceled).order_id == order_id
    market.limit(trader, BUY, "1", "59990", client_order_id="bot-1")


# ---------------------------------------------------------------- self-trade prevention


@pytest.mark.parametrize(
    ("prevention", "maker_expires", "taker_expires", "trades"),
    [
        (SelfTradePrevention.EXPIRE_MAKER, True, False, True),
        (SelfTradePrevention.EXPIRE_TAKER, False, True, False),
        (SelfTradePrevention.EXPIRE_BOTH, True, True, False),
        (SelfTradePrevention.NONE, False, False, True),
    ],
)
def test_self_trade_prevention_modes(
    market: Scenario,
    prevention: SelfTradePrevention,
    maker_expires: bool,
    taker_expires: bool,
    trades: bool,
) -> None:
    trader, other = market.account("t"), market.account("o")
    own = market.limit(trader, SELL, "1", "60010")
    market.limit(other, SELL, "1", "60020")

    events = market.place(
        trader,
        BUY,
        "1",
        "60020",
        time_in_force=TimeInForce.IOC,
        self_trade_prevention=prevention,
    )

    expired = {e.order_id for e in of_kind(events, OrderExpired)}
    taker_id = first(events, OrderAccepted).order_id
    assert (own in expired) is maker_expires
    assert (taker_id in expired) is taker_expires
    fills = of_kind(events, OrderFilled)
    assert bool(fills) is trades
    if prevention is SelfTradePrevention.NONE:
        assert fills[0].order_id == own  # a wash trade: the position does not change
        assert market.position(trader) == 0


def test_default_self_trade_prevention_expires_the_resting_order(market: Scenario) -> None:
    trader, other = market.account("t"), market.account("o")
    own = market.limit(trader, SELL, "1", "60010")
    market.limit(other, SELL, "1", "60020")

    events = market.place(trader, BUY, "1", "60020")

    assert first(events, OrderExpired).order_id == own
    assert first(events, OrderExpired).reason is ExpireReason.SELF_TRADE_PREVENTION
    assert market.position(trader) == lots("1")


# ---------------------------------------------------------------- reduce-only and close-position


def test_reduce_only_cannot_open_or_grow_a_position(market: Scenario) -> None:
    trader, maker = market.account("t"), market.account("m")
    assert rejection(market.place(trader, SELL, "1", "60010", reduce_only=True)) is (
        RejectCode.REDUCE_ONLY_REJECTED
    )
    market.limit(maker, SELL, "1", "60010")
    market.place(trader, BUY, "1", "60010")
    assert rejection(market.place(trader, BUY, "1", "60000", reduce_only=True)) is (
        RejectCode.REDUCE_ONLY_REJECTED
    )


def test_reduce_only_is_cut_to_the_position_at_fill_time(market: Scenario) -> None:
    trader, maker = market.account("t"), market.account("m")
    market.limit(maker, SELL, "1", "60010")
    market.place(trader, BUY, "1", "60010")
    # Two reduce-only sells of 1 each against a long of 1: only one lot may trade.
    first_exit = market.limit(trader, SELL, "1", "60050", reduce_only=True)
    second_exit = market.limit(trader, SELL, "1", "60060", reduce_only=True)

    events = market.place(maker, BUY, "2", "60060")

    fills = [f for f in of_kind(events, OrderFilled) if f.account_id == trader]
    assert [(f.order_id, f.last_qty) for f in fills] == [(first_exit, lots("1"))]
    expired = first(events, OrderExpired)
    assert (expired.order_id, expired.reason) == (second_exit, ExpireReason.REDUCE_ONLY)
    assert market.position(trader) == 0


def test_close_position_stop_closes_whatever_the_position_is_when_it_fires(
    market: Scenario,
) -> None:
    trader, maker = market.account("t"), market.account("m")
    market.limit(maker, SELL, "2", "60010")
    market.place(trader, BUY, "2", "60010")
    stop = first(
        market.place(
            trader, SELL, "", order_type=OrderType.STOP_MARKET, trigger="59500", close_position=True
        ),
        OrderAccepted,
    ).order_id
    market.limit(maker, BUY, "5", "59400")

    # The trader trims the long to 1.5 with a trade at 59,400, which fires the stop.
    events = market.place(trader, SELL, "0.5", "59400")

    triggered = first(events, OrderTriggered)
    assert (triggered.order_id, triggered.qty) == (stop, lots("1.5"))
    assert market.position(trader) == 0
    assert stop not in market.exchange.orders


def test_close_position_stop_with_no_position_left_expires(market: Scenario) -> None:
    trader, maker = market.account("t"), market.account("m")
    market.place(
        trader,
        SELL,
        "",
        order_type=OrderType.STOP_MARKET,
        trigger="59500",
        trigger_by=TriggerBy.MARK,
        close_position=True,
    )
    events = market.mark("59400")
    assert first(events, OrderExpired).reason is ExpireReason.NO_POSITION
    assert market.exchange.open_orders(trader) == []
    assert maker


# ---------------------------------------------------------------- conditional orders


def test_stop_market_on_last_price_enters_the_book_when_a_trade_reaches_it(
    market: Scenario,
) -> None:
    maker, taker, stopper = market.account("m"), market.account("t"), market.account("s")
    market.limit(maker, SELL, "1", "60050")
    market.limit(maker, SELL, "1", "60100")
    stop = first(
        market.place(stopper, BUY, "1", order_type=OrderType.STOP_MARKET, trigger="60050"),
        OrderAccepted,
    ).order_id

    events = market.place(taker, BUY, "1", "60050")

    triggered = first(events, OrderTriggered)
    assert triggered.order_id == stop
    stop_fill = [f for f in of_kind(events, OrderFilled) if f.order_id == stop]
    assert [(f.last_px, f.leaves_qty) for f in stop_fill] == [(ticks("60100"), 0)]


def test_stop_on_mark_ignores_trades_and_fires_on_the_mark(market: Scenario) -> None:
    maker, taker, stopper = market.account("m"), market.account("t"), market.account("s")
    market.limit(maker, SELL, "1", "60010")
    market.place(stopper, BUY, "1", "60010")
    market.limit(maker, BUY, "3", "59000")
    stop = first(
        market.place(
            stopper,
            SELL,
            "1",
            order_type=OrderType.STOP_MARKET,
            trigger="59500",
            trigger_by=TriggerBy.MARK,
            reduce_only=True,
        ),
        OrderAccepted,
    ).order_id
    market.place(taker, SELL, "1", "59000")  # the last trade falls past the trigger...
    assert stop in market.exchange.orders  # ...but the stop watches the mark

    events = market.mark("59400")

    assert first(events, OrderTriggered).order_id == stop
    assert [f.last_px for f in of_kind(events, OrderFilled) if f.order_id == stop] == [
        ticks("59000")
    ]
    assert market.position(stopper) == 0


def test_take_profit_limit_triggers_and_rests_as_a_limit_order(market: Scenario) -> None:
    trader = market.account("t")
    tp = first(
        market.place(
            trader,
            SELL,
            "1",
            "61000",
            order_type=OrderType.TAKE_PROFIT_LIMIT,
            trigger="60500",
            trigger_by=TriggerBy.MARK,
        ),
        OrderAccepted,
    ).order_id

    events = market.mark("60600")

    assert first(events, OrderTriggered).order_id == tp
    assert market.book()[1] == [(ticks("61000"), lots("1"))]
    # A triggered limit order can now be amended like any resting order.
    assert first(market.amend(trader, tp, price="61100"), OrderAmended).price == ticks("61100")


def test_conditional_order_that_would_fire_at_once_is_rejected(market: Scenario) -> None:
    trader = market.account()
    events = market.place(
        trader,
        BUY,
        "1",
        order_type=OrderType.STOP_MARKET,
        trigger="59000",
        trigger_by=TriggerBy.MARK,
    )
    assert rejection(events) is RejectCode.WOULD_IMMEDIATELY_TRIGGER


def test_stops_that_fire_together_enter_the_book_in_sequence_order(market: Scenario) -> None:
    maker, traders = market.account("m"), [market.account(f"s{i}") for i in range(3)]
    market.limit(maker, SELL, "10", "60100")
    stops = [
        first(
            market.place(
                trader,
                BUY,
                "1",
                order_type=OrderType.STOP_MARKET,
                trigger=price,
                trigger_by=TriggerBy.MARK,
            ),
            OrderAccepted,
        ).order_id
        for trader, price in zip(traders, ("60030", "60010", "60020"), strict=True)
    ]

    events = market.mark("60050")

    assert [e.order_id for e in of_kind(events, OrderTriggered)] == stops
    taker_fills = [f.order_id for f in of_kind(events, OrderFilled) if f.account_id != maker]
    assert taker_fills == stops


# ---------------------------------------------------------------- halts


def test_a_halted_symbol_takes_cancels_but_no_new_trading(market: Scenario) -> None:
    trader = market.account()
    resting = market.limit(trader, BUY, "1", "59990")

    events = market.apply(SetTradingStatus(*market.next(), "BTCUSDT", True))

    assert events == [TradingStatusChanged(market.seq, "BTCUSDT", True)]
    assert rejection(market.place(trader, BUY, "1", "59980")) is RejectCode.SYMBOL_HALTED
    assert rejection(market.amend(trader, resting, price="59985")) is RejectCode.SYMBOL_HALTED
    assert first(market.cancel(trader, resting), OrderCanceled).order_id == resting

    market.apply(SetTradingStatus(*market.next(), None, False))
    market.limit(trader, BUY, "1", "59980")
