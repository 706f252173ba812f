"""Properties of the margin ledger over random streams of every kind of command (hypothesis).

Accounts hold little money and use high leverage while marks swing widely, so holds bind,
margin calls fire and positions are liquidated through the book, the insurance fund and ADL.
After every command `check_invariants` proves conservation, sum(qty) == 0 per symbol, no
negative user wallet and holds equal to what open orders reserve.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from exchange.core.commands import (
    AdjustIsolatedMargin,
    CancelAllOrders,
    Command,
    CreateAccount,
    Deposit,
    FundingRate,
    MarkPrice,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
    SettleFunding,
    UpdateMark,
    Withdraw,
)
from exchange.core.enums import MarginMode, OrderType, Side, TimeInForce
from exchange.core.events import AutoDeleveraged, Event, Liquidated, MarginCall
from exchange.core.exchange import Exchange
from exchange.core.numbers import ATOMS_PER_UNIT
from tests.core.builders import BTC

CENTER = 600_000  # 60,000.0 in ticks
TRADERS = (2, 3, 4, 5)
MAKER = 1
USDT = ATOMS_PER_UNIT


@dataclass(frozen=True)
class Order:
    account: int
    side: Side
    offset: int  # in tenths of a percent of the mark
    qty: int
    market: bool
    reduce_only: bool


@dataclass(frozen=True)
class Quote:
    """The maker refreshes a bid and an ask around the mark."""

    spread: int
    qty: int


@dataclass(frozen=True)
class Money:
    account: int
    amount: int  # whole USDT; negative withdraws


@dataclass(frozen=True)
class Leverage:
    account: int
    leverage: int


@dataclass(frozen=True)
class Mode:
    account: int
    isolated: bool


@dataclass(frozen=True)
class Margin:
    account: int
    amount: int  # whole USDT; negative removes


@dataclass(frozen=True)
class Move:
    percent: int  # tenths of a percent


@dataclass(frozen=True)
class Funding:
    rate: int  # in 1e-4


@dataclass(frozen=True)
class CancelAll:
    account: int


Action = Order | Quote | Money | Leverage | Mode | Margin | Move | Funding | CancelAll

traders = st.sampled_from(TRADERS)
orders = st.builds(
    Order,
    traders,
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(-20, 20),
    st.integers(1, 400),
    st.booleans(),
    st.integers(0, 5).map(lambda n: n == 0),
)
actions: st.SearchStrategy[Action] = st.one_of(
    orders,
    orders,
    orders,
    st.builds(Quote, st.integers(1, 10), st.integers(100, 3_000)),
    st.builds(Quote, st.integers(1, 10), st.integers(100, 3_000)),
    st.builds(Money, st.sampled_from((0, *TRADERS)), st.integers(-2_000, 5_000)),
    st.builds(Leverage, traders, st.integers(1, 125)),
    st.builds(Mode, traders, st.booleans()),
    st.builds(Margin, traders, st.integers(-500, 500)),
    st.builds(Move, st.integers(-40, 40)),
    st.builds(Move, st.integers(-6, 6)),
    st.builds(Move, st.integers(-6, 6)),
    st.builds(Funding, st.integers(-80, 80)),
    st.builds(CancelAll, st.sampled_from((MAKER, *TRADERS))),
)


class Driver:
    """Turn actions into stamped commands against a live exchange."""

    def __init__(self) -> None:
        self.exchange = Exchange([BTC])
        self.commands: list[Command] = []
        self.events: list[list[Event]] = []
        self.seq = 0

    def run(self, make: type[Command], *fields: object, **named: object) -> list[Event]:
        self.seq += 1
        command = make(self.seq, self.seq, *fields, **named)  # type: ignore[arg-type]
        events = self.exchange.apply(command)
        self.commands.append(command)
        self.events.append(events)
        self.exchange.check_invariants()
        return events

    def mark(self) -> int:
        price = self.exchange.markets["BTCUSDT"].mark_price
        assert price is not None
        return price

    def start(self) -> None:
        self.run(CreateAccount, "maker")
        self.run(Deposit, MAKER, 100_000_000 * USDT)
        for account in TRADERS:
            self.run(CreateAccount, f"trader-{account}")
            self.run(Deposit, account, 2_000 * USDT)
        self.run(UpdateMark, (MarkPrice("BTCUSDT", CENTER, CENTER),))

    def act(self, action: Action) -> None:
        mark = self.mark()
        if isinstance(action, Order):
            price = None if action.market else mark + mark * action.offset // 1000
            self.run(
                PlaceOrder,
                action.account,
                "BTCUSDT",
                action.side,
                OrderType.MARKET if action.market else OrderType.LIMIT,
                action.qty,
                price,
                reduce_only=action.reduce_only,
            )
        elif isinstance(action, Quote):
            self.run(CancelAllOrders, MAKER, "BTCUSDT")
            step = mark * action.spread // 1000
            for side, price in ((Side.BUY, mark - step), (Side.SELL, mark + step)):
                self.run(
                    PlaceOrder,
                    MAKER,
                    "BTCUSDT",
                    side,
                    OrderType.LIMIT,
                    action.qty,
                    price,
                    time_in_force=TimeInForce.GTC,
                )
        elif isinstance(action, Money):
            if action.amount >= 0:
                self.run(Deposit, action.account, action.amount * USDT)
            else:
                self.run(Withdraw, action.account, -action.amount * USDT)
        elif isinstance(action, Leverage):
            self.run(SetLeverage, action.account, "BTCUSDT", action.leverage)
        elif isinstance(action, Mode):
            mode = MarginMode.ISOLATED if action.isolated else MarginMode.CROSS
            self.run(SetMarginMode, action.account, "BTCUSDT", mode)
        elif isinstance(action, Margin):
            self.run(AdjustIsolatedMargin, action.account, "BTCUSDT", action.amount * USDT)
        elif isinstance(action, Move):
            price = max(1, mark + mark * action.percent // 1000)
            self.run(UpdateMark, (MarkPrice("BTCUSDT", price, price),))
        elif isinstance(action, Funding):
            self.run(SettleFunding, (FundingRate("BTCUSDT", action.rate * 10_000),))
        else:
            self.run(CancelAllOrders, action.account, None)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(actions, min_size=30, max_size=150))
# Found by hypothesis: an isolated long whose liquidation the book, an insolvent fund and
# ADL (no other shorts) could not take, because only the fund held the other side.
@example(
    [
        Move(0),
        *[Quote(1, 100)] * 4,
        Mode(5, True),
        *[Move(0)] * 10,
        *[Quote(1, 100)] * 2,
        Quote(5, 100),
        Money(0, 0),
        Leverage(5, 100),
        Order(5, Side.SELL, -5, 1, False, False),
        Move(1),
        Quote(1, 100),
        Move(15),
        Quote(1, 100),
        Order(5, Side.BUY, 0, 1, False, False),
        Move(-7),
        Quote(4, 100),
        Move(0),
    ]
)
def test_money_is_conserved_through_trading_funding_and_liquidation(
    actions_list: list[Action],
) -> None:
    driver = Driver()
    driver.start()
    for action in actions_list:
        driver.act(action)
    for kind in (Liquidated, AutoDeleveraged, MarginCall):
        if any(isinstance(event, kind) for events in driver.events for event in events):
            event(f"saw {kind.__name__}")

    # Nothing is held once every order is gone.
    for account in (MAKER, *TRADERS):
        driver.run(CancelAllOrders, account, None)
    ledger = driver.exchange.ledger
    assert all(account.order_margin == 0 for account in ledger.accounts.values())
    assert driver.exchange.orders == {}

    # The same commands give the same events and the same state.
    replayed = Exchange([BTC])
    assert [replayed.apply(command) for command in driver.commands] == driver.events
    assert replayed.state_hash() == driver.exchange.state_hash()

    # The risk index wakes exactly the positions a scan of all of them acts on.
    scanned = Exchange([BTC], index_risk=False)
    assert [scanned.apply(command) for command in driver.commands] == driver.events


def test_the_random_streams_do_reach_liquidation_and_adl() -> None:
    """Guard the generator: a fixed crash must liquidate through every stage."""
    driver = Driver()
    driver.start()
    for account in TRADERS:
        driver.act(Leverage(account, 100))
    driver.act(Quote(1, 3_000))
    for account in TRADERS:
        driver.act(Order(account, Side.BUY, 1, 300, market=False, reduce_only=False))
    driver.act(CancelAll(MAKER))  # no bids left and an empty fund: ADL must take it
    kinds: set[type] = set()
    for _ in range(6):
        driver.act(Move(-30))
        kinds.update(type(event) for event in driver.events[-1])
    assert Liquidated in kinds
    assert AutoDeleveraged in kinds
