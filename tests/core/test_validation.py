"""The quick accept of plain orders answers exactly as checking every rule would.

`check_new_order` accepts a plain limit or market order after a short pass over the rules it
can break and sends everything else through `check_every_rule`. If the two ever drifted, an
order the rules refuse could reach the book; so both judge the same orders, from sizes and
prices near every limit (the lot minimum, the price band, the minimum notional) to plain
valid ones, on live margin-ledger states.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.core.commands import PlaceOrder
from exchange.core.enums import OrderType, Side, TimeInForce
from exchange.core.validation import check_every_rule, check_new_order
from tests.core import test_ledger_properties as ledger_streams

SYMBOL = "BTCUSDT"

candidates = st.builds(
    lambda account, side, market, qty, offset, time_in_force, reduce_only, client_id: (
        account,
        side,
        market,
        qty,
        offset,
        time_in_force,
        reduce_only,
        client_id,
    ),
    st.sampled_from((ledger_streams.MAKER, *ledger_streams.TRADERS)),
    st.sampled_from((Side.BUY, Side.SELL)),
    st.booleans(),
    # Lots: zero, the minimum, around the minimum notional, and far above the maximum.
    st.one_of(st.integers(-2, 3), st.integers(1, 400), st.integers(10**6, 10**9)),
    # Tenths of a percent from the mark: inside the band and well outside it.
    st.one_of(st.integers(-20, 20), st.integers(-999, 2_000)),
    st.sampled_from((TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY)),
    st.booleans(),
    st.sampled_from((None, "bot-1", "")),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(ledger_streams.actions, max_size=60),
    st.lists(candidates, min_size=1, max_size=30),
)
def test_the_quick_accept_agrees_with_every_rule(
    actions: list[ledger_streams.Action],
    orders: list[tuple[int, Side, bool, int, int, TimeInForce, bool, str | None]],
) -> None:
    driver = ledger_streams.Driver()
    driver.start()
    for action in actions:
        driver.act(action)
    exchange = driver.exchange
    market = exchange.markets[SYMBOL]
    mark = driver.mark()
    for account_id, side, is_market, qty, offset, time_in_force, reduce_only, client_id in orders:
        price = None if is_market else mark + mark * offset // 1000
        command = PlaceOrder(
            driver.seq + 1,
            driver.seq + 1,
            account_id,
            SYMBOL,
            side,
            OrderType.MARKET if is_market else OrderType.LIMIT,
            qty,
            price,
            time_in_force=time_in_force,
            reduce_only=reduce_only,
            client_order_id=client_id,
        )
        account = exchange.ledger.accounts[account_id]
        assert check_new_order(command, account, market, exchange.ledger) == check_every_rule(
            command, account, market, exchange.ledger
        )
