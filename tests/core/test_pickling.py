"""An exchange survives pickling, as in the runtime's snapshots, and trades on the same after.

Snapshots written before the book kept its price index in a plain list (it held a
SortedList) and before the trigger index counted its orders must load too.
"""

from __future__ import annotations

import pickle

import pytest
from sortedcontainers import SortedList

from exchange.core.enums import OrderType, Side
from exchange.core.exchange import Exchange
from tests.core.builders import Scenario, ticks

MARK = "50000"


def scenario_with_book_and_trigger() -> tuple[Scenario, int, int]:
    scenario = Scenario()
    maker = scenario.account("maker")
    taker = scenario.account("taker")
    scenario.mark(MARK)
    for step in range(5):
        scenario.limit(maker, Side.BUY, "0.010", f"{49_990 - step * 10}")
        scenario.limit(maker, Side.SELL, "0.010", f"{50_010 + step * 10}")
    # A stop that a taker's trade through the asks will fire.
    scenario.place(taker, Side.BUY, "0.005", order_type=OrderType.STOP_MARKET, trigger="50020")
    return scenario, maker, taker


def continue_trading(scenario: Scenario, exchange: Exchange, taker: int) -> str:
    scenario.exchange = exchange
    scenario.place(taker, Side.BUY, "0.030")
    scenario.place(taker, Side.SELL, "0.015")
    scenario.limit(taker, Side.SELL, "0.004", "50005")
    return exchange.state_hash()


def old_style(exchange: Exchange) -> Exchange:
    """Return the exchange as a snapshot from before the list and the count would hold it."""
    copy: Exchange = pickle.loads(pickle.dumps(exchange))
    for market in copy.markets.values():
        for side in (market.book.bids, market.book.asks):
            side.prices = SortedList(side.prices)
        del market.triggers.count
    return copy


def test_a_pickled_exchange_has_the_same_state_and_trades_the_same() -> None:
    scenario, _, taker = scenario_with_book_and_trigger()
    restored: Exchange = pickle.loads(
        pickle.dumps(scenario.exchange, protocol=pickle.HIGHEST_PROTOCOL)
    )
    assert restored.state_hash() == scenario.exchange.state_hash()
    restored.check_invariants()
    untouched, _, _ = scenario_with_book_and_trigger()
    expected = continue_trading(untouched, untouched.exchange, taker)
    assert continue_trading(scenario, restored, taker) == expected


@pytest.mark.interpreted_only  # it writes a SortedList where compiled code takes only a list
def test_a_snapshot_from_before_the_plain_price_list_loads_and_trades_the_same() -> None:
    scenario, _, taker = scenario_with_book_and_trigger()
    restored: Exchange = pickle.loads(pickle.dumps(old_style(scenario.exchange)))
    book = restored.markets["BTCUSDT"].book
    assert type(book.bids.prices) is list
    assert book.bids.prices[-1] == ticks("49990")
    assert restored.markets["BTCUSDT"].triggers.count == 1
    restored.check_invariants()
    untouched, _, _ = scenario_with_book_and_trigger()
    expected = continue_trading(untouched, untouched.exchange, taker)
    assert continue_trading(scenario, restored, taker) == expected
