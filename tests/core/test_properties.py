"""Properties of the book over random command streams (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.core.commands import (
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    MarkPrice,
    PlaceOrder,
    UpdateMark,
)
from exchange.core.enums import (
    LiquiditySide,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
)
from exchange.core.events import (
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderTriggered,
)
from exchange.core.exchange import Exchange
from exchange.core.orders import check_transition
from tests.core.builders import BTC

CENTER = 600_000  # 60,000.0 in ticks of 0.1
ACCOUNTS = 4

sides = st.sampled_from([Side.BUY, Side.SELL])
accounts = st.integers(1, ACCOUNTS)
quantities = st.integers(1, 6)
offsets = st.integers(-15, 15)
# Few prices, so orders queue behind each other and time priority is exercised.
near = st.integers(-4, 4)


@dataclass(frozen=True)
class Limit:
    account: int
    side: Side
    offset: int
    qty: int
    time_in_force: TimeInForce
    reduce_only: bool
    prevention: SelfTradePrevention


@dataclass(frozen=True)
class Market:
    account: int
    side: Side
    qty: int
    reduce_only: bool


@dataclass(frozen=True)
class Conditional:
    account: int
    side: Side
    order_type: OrderType
    offset: int
    trigger: int
    qty: int
    trigger_by: TriggerBy
    close_position: bool


@dataclass(frozen=True)
class Cancel:
    pick: int


@dataclass(frozen=True)
class CancelAll:
    account: int


@dataclass(frozen=True)
class Amend:
    pick: int
    qty_change: int
    price_change: int


@dataclass(frozen=True)
class Mark:
    offset: int


Action = Limit | Market | Conditional | Cancel | CancelAll | Amend | Mark

rarely = st.integers(0, 6).map(lambda n: n == 0)
limits = st.builds(
    Limit,
    accounts,
    sides,
    near,
    quantities,
    st.sampled_from(list(TimeInForce)),
    rarely,
    st.sampled_from(list(SelfTradePrevention)),
)
# Limits come up most often so books grow deep enough for priority to matter.
actions: st.SearchStrategy[Action] = st.one_of(
    limits,
    limits,
    limits,
    limits,
    limits,
    st.builds(
        Limit,
        accounts,
        sides,
        offsets,
        quantities,
        st.sampled_from(list(TimeInForce)),
        rarely,
        st.sampled_from(list(SelfTradePrevention)),
    ),
    st.builds(Market, accounts, sides, st.integers(1, 12), rarely),
    st.builds(
        Conditional,
        accounts,
        sides,
        st.sampled_from([t for t in OrderType if t.is_conditional]),
        offsets,
        offsets,
        quantities,
        st.sampled_from(list(TriggerBy)),
        rarely,
    ),
    st.builds(Cancel, st.integers(0, 50)),
    st.builds(CancelAll, accounts),
    st.builds(Amend, st.integers(0, 50), st.integers(-2, 2), st.integers(-3, 3)),
    st.builds(Mark, offsets),
)


@dataclass
class Observer:
    """An independent record of what the events say about every order."""

    status: dict[int, OrderStatus] = field(default_factory=dict)
    qty: dict[int, int] = field(default_factory=dict)
    filled: dict[int, int] = field(default_factory=dict)
    queued_at: dict[int, int] = field(default_factory=dict)

    def see(self, events: list[Event]) -> None:
        takers: dict[int, list[tuple[int, int]]] = {}
        for event in events:
            if isinstance(event, OrderAccepted):
                self.move(event.order_id, OrderStatus.NEW)
                self.qty[event.order_id] = event.qty
                self.filled[event.order_id] = 0
                self.queued_at[event.order_id] = event.seq
            elif isinstance(event, OrderRejected):
                check_transition(None, OrderStatus.REJECTED)
            elif isinstance(event, OrderTriggered):
                self.move(event.order_id, OrderStatus.TRIGGERED)
                self.qty[event.order_id] = event.qty
                self.queued_at[event.order_id] = event.seq
            elif isinstance(event, OrderFilled):
                self.filled[event.order_id] += event.last_qty
                leaves = self.qty[event.order_id] - self.filled[event.order_id]
                assert event.last_qty > 0
                assert event.leaves_qty == leaves >= 0
                self.move(
                    event.order_id,
                    OrderStatus.FILLED if leaves == 0 else OrderStatus.PARTIALLY_FILLED,
                )
                if event.liquidity_side is LiquiditySide.MAKER:
                    last_maker = (event.last_px, self.queued_at[event.order_id])
                else:
                    takers.setdefault(event.order_id, []).append(last_maker)
            elif isinstance(event, OrderAmended):
                self.move(event.order_id, self.status[event.order_id])
                self.qty[event.order_id] = event.qty
                assert event.leaves_qty == event.qty - self.filled[event.order_id] > 0
                if not event.priority_kept:
                    self.queued_at[event.order_id] = event.seq
            elif isinstance(event, OrderCanceled):
                self.move(event.order_id, OrderStatus.CANCELED)
            elif isinstance(event, OrderExpired):
                self.move(event.order_id, OrderStatus.EXPIRED)
        for taker_id, makers in takers.items():
            # Price-time priority: one taker meets better prices first, and at one price
            # the order that queued first.
            is_buy = self.side_of(taker_id, events) is Side.BUY
            keys = [(price if is_buy else -price, queued) for price, queued in makers]
            assert keys == sorted(keys), f"taker {taker_id} met makers out of priority"

    def move(self, order_id: int, status: OrderStatus) -> None:
        check_transition(self.status.get(order_id), status)
        self.status[order_id] = status

    @staticmethod
    def side_of(order_id: int, events: list[Event]) -> Side:
        for event in events:
            if isinstance(event, OrderFilled) and event.order_id == order_id:
                return event.side
        raise AssertionError("no fill")


def build(actions_list: list[Action]) -> tuple[list[Command], list[list[Event]]]:
    """Turn abstract actions into commands against a live exchange, checking as we go."""
    exchange = Exchange([BTC])
    observer = Observer()
    commands: list[Command] = []
    event_log: list[list[Event]] = []
    seq = 0

    def run(command: Command) -> None:
        events = exchange.apply(command)
        commands.append(command)
        event_log.append(events)
        observer.see(events)
        exchange.check_invariants()
        for order in exchange.orders.values():
            assert order.filled_qty + (order.qty - order.filled_qty) == order.qty
            assert observer.filled[order.order_id] == order.filled_qty

    for name in range(1, ACCOUNTS + 1):
        seq += 1
        run(CreateAccount(seq, seq, f"account-{name}"))
        seq += 1
        run(Deposit(seq, seq, name, 10**16))
    seq += 1
    run(UpdateMark(seq, seq, (MarkPrice("BTCUSDT", CENTER, CENTER),)))
    for action in actions_list:
        seq += 1
        command = to_command(exchange, action, seq)
        if command is not None:
            run(command)
    return commands, event_log


def to_command(exchange: Exchange, action: Action, seq: int) -> Command | None:
    """Make a command from an action, picking targets among the orders open right now."""
    open_orders = sorted(exchange.orders)
    if isinstance(action, Limit):
        return PlaceOrder(
            seq,
            seq,
            action.account,
            "BTCUSDT",
            action.side,
            OrderType.LIMIT,
            action.qty,
            CENTER + action.offset * 10,
            time_in_force=action.time_in_force,
            reduce_only=action.reduce_only,
            self_trade_prevention=action.prevention,
        )
    if isinstance(action, Market):
        return PlaceOrder(
            seq,
            seq,
            action.account,
            "BTCUSDT",
            action.side,
            OrderType.MARKET,
            action.qty,
            reduce_only=action.reduce_only,
        )
    if isinstance(action, Conditional):
        has_price = action.order_type.has_limit_price
        close = action.close_position and not has_price
        return PlaceOrder(
            seq,
            seq,
            action.account,
            "BTCUSDT",
            action.side,
            action.order_type,
            0 if close else action.qty,
            CENTER + action.offset * 10 if has_price else None,
            CENTER + action.trigger * 10,
            trigger_by=action.trigger_by,
            close_position=close,
        )
    if isinstance(action, CancelAll):
        return CancelAllOrders(seq, seq, action.account)
    if isinstance(action, Mark):
        price = CENTER + action.offset * 10
        return UpdateMark(seq, seq, (MarkPrice("BTCUSDT", price, price),))
    if not open_orders:
        return None
    order = exchange.orders[open_orders[action.pick % len(open_orders)]]
    if isinstance(action, Cancel):
        return CancelOrder(seq, seq, order.account_id, order_id=order.order_id)
    return AmendOrder(
        seq,
        seq,
        order.account_id,
        order_id=order.order_id,
        qty=max(order.qty + action.qty_change, 1),
        price=(order.price or CENTER) + action.price_change * 10,
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(actions, min_size=1, max_size=150))
def test_random_streams_keep_every_book_property_and_replay_exactly(
    actions_list: list[Action],
) -> None:
    commands, event_log = build(actions_list)

    replayed = Exchange([BTC])
    replayed_events = [replayed.apply(command) for command in commands]
    original = Exchange([BTC])
    for command in commands:
        original.apply(command)

    assert replayed_events == event_log
    assert replayed.state_hash() == original.state_hash()


def test_state_hash_tells_different_histories_apart() -> None:
    order = Limit(1, Side.BUY, 0, 1, TimeInForce.GTC, False, SelfTradePrevention.NONE)
    first, _ = build([order])
    second, _ = build([Limit(1, Side.BUY, 1, 1, TimeInForce.GTC, False, SelfTradePrevention.NONE)])
    one, two = Exchange([BTC]), Exchange([BTC])
    for command in first:
        one.apply(command)
    for command in second:
        two.apply(command)
    assert one.state_hash() != two.state_hash()
