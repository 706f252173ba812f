"""A taker's hold, sized once when matching ends, equals the hold sized after every fill.

`Exchange._match` sizes a taker's hold again after its last fill only, when that gives the
same result; `PerFillHolds` sizes it after every partial fill, as the core used to. Both run the
same random streams (the book properties' and the margin ledger's, where holds bind and
positions flip) and must agree on every event and on the state hash, which covers every
order's hold and every account's order margin, after every command. Two scenarios show why
the core still sizes after every fill before any mark and when a taker trades with itself.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.core.commands import (
    Command,
    CreateAccount,
    Deposit,
    MarkPrice,
    PlaceOrder,
    UpdateMark,
)
from exchange.core.enums import OrderType, SelfTradePrevention, Side
from exchange.core.events import Event
from exchange.core.exchange import Exchange
from tests.core import test_ledger_properties as ledger_streams
from tests.core import test_properties as book_streams
from tests.core.builders import BTC, Scenario, lots, ticks

# The reference subclasses Exchange, which a compiled Exchange does not allow.
pytestmark = pytest.mark.interpreted_only


class PerFillHolds(Exchange):
    """The reference: a taker's hold is sized again after each of its partial fills."""

    size_taker_hold_once = False


def apply_to_both(exchange: Exchange, reference: Exchange, command: Command) -> None:
    assert exchange.apply(command) == reference.apply(command)
    assert exchange.state_hash() == reference.state_hash()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(book_streams.actions, min_size=1, max_size=150))
def test_book_streams_give_the_same_holds(actions: list[book_streams.Action]) -> None:
    exchange, reference = Exchange([BTC]), PerFillHolds([BTC])
    seq = 0
    for name in range(1, book_streams.ACCOUNTS + 1):
        for setup in (
            CreateAccount(seq + 1, seq + 1, f"account-{name}"),
            Deposit(seq + 2, seq + 2, name, 10**16),
        ):
            apply_to_both(exchange, reference, setup)
        seq += 2
    for action in actions:
        # Until the stream's first mark, holds are valued at the last trade.
        seq += 1
        command = book_streams.to_command(exchange, action, seq)
        if command is not None:
            apply_to_both(exchange, reference, command)


class TwinDriver(ledger_streams.Driver):
    """The margin ledger's driver, sending every command to the reference as well."""

    def __init__(self) -> None:
        super().__init__()
        self.reference = PerFillHolds([BTC])

    def run(self, make: type[Command], *fields: object, **named: object) -> list[Event]:
        events = super().run(make, *fields, **named)
        assert self.reference.apply(self.commands[-1]) == events
        assert self.reference.state_hash() == self.exchange.state_hash()
        return events


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(ledger_streams.actions, min_size=10, max_size=120))
def test_margin_streams_give_the_same_holds(actions: list[ledger_streams.Action]) -> None:
    driver = TwinDriver()
    driver.start()
    for action in actions:
        driver.act(action)


@pytest.mark.parametrize("prevention", [SelfTradePrevention.EXPIRE_MAKER, SelfTradePrevention.NONE])
def test_a_taker_that_rests_after_crossing_levels_holds_as_if_sized_after_each_fill(
    prevention: SelfTradePrevention,
) -> None:
    # A short trader buys through three ask levels with another buy open: the fills first
    # close the short, then open a long, and the rest of the order stays in the book. On the
    # way it meets its own ask, which it expires (the hold is sized once, at the end) or
    # trades with (sized after every fill).
    def run(scenario: Scenario) -> None:
        maker = scenario.account("maker", deposit="10000000")
        trader = scenario.account("trader", deposit="100000")
        scenario.mark("50000")
        scenario.limit(maker, Side.BUY, "0.300", "50000")
        scenario.place(trader, Side.SELL, "0.300")  # short 0.3 against the maker's bid
        scenario.limit(trader, Side.BUY, "0.100", "49000")  # another buy, closing first
        scenario.limit(trader, Side.SELL, "0.100", "50020")
        for price in ("50010", "50020", "50030"):
            scenario.limit(maker, Side.SELL, "0.200", price)
        scenario.limit(trader, Side.BUY, "1.000", "50030", self_trade_prevention=prevention)

    scenario, reference = Scenario(), Scenario()
    reference.exchange = PerFillHolds([BTC])
    run(scenario)
    run(reference)
    assert scenario.exchange.state_hash() == reference.exchange.state_hash()
    taker = scenario.exchange.open_orders(2)[-1]
    assert taker.price == ticks("50030")
    assert 0 < taker.filled_qty < taker.qty
    assert taker.hold > 0


def test_a_taker_before_any_mark_is_sized_after_each_fill() -> None:
    # Before any mark a limit buy's open loss is valued at the last trade. Its first fill
    # comes before any trade, so the size after it has no open loss; the second fill, valued
    # at the first trade far below, has a large one. Sized only once at the end, at the last
    # trade, the hold would come out smaller than the smallest of the sizes along the way.
    exchange, reference = Exchange([BTC]), PerFillHolds([BTC])
    commands: list[Command] = [
        CreateAccount(1, 1, "maker"),
        CreateAccount(2, 2, "trader"),
        Deposit(3, 3, 1, 10**17),
        Deposit(4, 4, 2, 10**13),
    ]
    seq = 4
    for price in ("40000", "50030"):
        seq += 1
        commands.append(
            PlaceOrder(
                seq, seq, 1, "BTCUSDT", Side.SELL, OrderType.LIMIT, lots("0.100"), ticks(price)
            )
        )
    seq += 1
    commands.append(
        PlaceOrder(seq, seq, 2, "BTCUSDT", Side.BUY, OrderType.LIMIT, lots("0.500"), ticks("50030"))
    )
    for command in commands:
        apply_to_both(exchange, reference, command)
    taker = exchange.orders[3]
    assert taker.filled_qty == lots("0.200")
    assert taker.hold > 0
    seq += 1
    mark = UpdateMark(seq, seq, (MarkPrice("BTCUSDT", ticks("50000"), ticks("50000")),))
    apply_to_both(exchange, reference, mark)


def test_a_taker_that_trades_with_itself_is_sized_after_each_fill() -> None:
    # At 125x a position must stay under 50,000 USDT of notional (the first bracket), valued
    # at the order's price. The short trader's buy at 52,000 first trades with the maker and
    # is sized smaller; then it trades with its own ask, which shrinks what is left but not
    # the position, so position plus what is left grows past the bracket and sizing it after
    # that fill keeps the hold as it was. Sized only once at the end, the bracket check would
    # fail there and keep the hold from before the first fill instead.
    def run(scenario: Scenario) -> None:
        maker = scenario.account("maker", deposit="10000000")
        trader = scenario.account("trader")
        scenario.set_leverage(trader, 125)
        scenario.mark("50000")
        scenario.limit(maker, Side.BUY, "0.980", "50000")
        scenario.place(trader, Side.SELL, "0.980")  # short 49,000 USDT at 50,000
        scenario.limit(trader, Side.BUY, "0.970", "48000")  # closes all but 0.01 first
        scenario.limit(maker, Side.SELL, "0.015", "50100")
        scenario.limit(trader, Side.SELL, "0.012", "50200")
        scenario.limit(
            trader, Side.BUY, "0.030", "52000", self_trade_prevention=SelfTradePrevention.NONE
        )

    scenario, reference = Scenario(), Scenario()
    reference.exchange = PerFillHolds([BTC])
    run(scenario)
    run(reference)
    assert scenario.exchange.state_hash() == reference.exchange.state_hash()
    taker = scenario.exchange.open_orders(2)[-1]
    assert (taker.price, taker.qty - taker.filled_qty) == (ticks("52000"), lots("0.003"))
    assert taker.hold > 0
