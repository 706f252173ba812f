"""The order as the core keeps it, and the table of legal status transitions."""

from __future__ import annotations

from typing import Final

from mypy_extensions import mypyc_attr

from exchange.core.enums import (
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerBy,
)
from exchange.core.integrity import TransitionError
from exchange.core.pickling import Picklable

_OPEN = (OrderStatus.NEW, OrderStatus.TRIGGERED, OrderStatus.PARTIALLY_FILLED)
_ENDS = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED)
# Final: the mypyc build reads it from a C static rather than the module's dict.
_NEW: Final = OrderStatus.NEW

TRANSITIONS: dict[OrderStatus | None, frozenset[OrderStatus]] = {
    # None is "not yet an order": a place command is either accepted or rejected.
    None: frozenset({OrderStatus.NEW, OrderStatus.REJECTED}),
    # An amend keeps the status, so every open status may move to itself.
    OrderStatus.NEW: frozenset({*_OPEN, *_ENDS}),
    OrderStatus.TRIGGERED: frozenset({OrderStatus.TRIGGERED, OrderStatus.PARTIALLY_FILLED, *_ENDS}),
    OrderStatus.PARTIALLY_FILLED: frozenset({OrderStatus.PARTIALLY_FILLED, *_ENDS}),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}


def check_transition(current: OrderStatus | None, new: OrderStatus) -> None:
    """Raise TransitionError unless the table allows current -> new."""
    if new not in TRANSITIONS[current]:
        raise TransitionError(f"order status {current} cannot become {new}")


@mypyc_attr(serializable=True)  # see Picklable
class Order(Picklable):
    """A live order. Mutable inside the core only; the outside world sees events."""

    __slots__ = (
        "account_id",
        "client_order_id",
        "close_position",
        "counted",
        "filled_cost",
        "filled_qty",
        "hold",
        "liquidation",
        "order_id",
        "order_type",
        "price",
        "qty",
        "reduce_only",
        "resting",
        "self_trade_prevention",
        "side",
        "status",
        "symbol",
        "time_in_force",
        "trigger_by",
        "trigger_price",
        "waiting",
    )

    def __init__(
        self,
        order_id: int,
        account_id: int,
        symbol: str,
        side: Side,
        order_type: OrderType,
        qty: int,
        price: int | None,
        trigger_price: int | None,
        trigger_by: TriggerBy,
        time_in_force: TimeInForce,
        reduce_only: bool,
        close_position: bool,
        client_order_id: str | None,
        self_trade_prevention: SelfTradePrevention,
    ) -> None:
        self.order_id = order_id
        self.account_id = account_id
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.qty = qty
        self.price = price
        self.trigger_price = trigger_price
        self.trigger_by = trigger_by
        self.time_in_force = time_in_force
        self.reduce_only = reduce_only
        self.close_position = close_position
        self.client_order_id = client_order_id
        self.self_trade_prevention = self_trade_prevention
        self.status = _NEW
        self.filled_qty = 0
        self.filled_cost = 0
        # Atoms of the wallet this order holds back while open (the pre-trade risk hold).
        self.hold = 0
        # A liquidation order pays no trading fee: the clearance fee replaces it.
        self.liquidation = False
        # The lots of this order in its position's open-order totals (see Ledger.track_order).
        self.counted = 0
        # Where an open order is: resting in the book, or waiting in the trigger index.
        self.resting = False
        self.waiting = False

    @property
    def leaves_qty(self) -> int:
        return self.qty - self.filled_qty

    def move_to(self, status: OrderStatus) -> None:
        """Change status through the transition table."""
        if status not in TRANSITIONS[self.status]:
            check_transition(self.status, status)  # raises, with the message
        self.status = status

    def state(self) -> tuple[object, ...]:
        """Return every field as a tuple, for hashing and comparison."""
        return (
            self.order_id,
            self.account_id,
            self.symbol,
            self.side.value,
            self.order_type.value,
            self.qty,
            self.price,
            self.trigger_price,
            self.trigger_by.value,
            self.time_in_force.value,
            self.reduce_only,
            self.close_position,
            self.client_order_id,
            self.self_trade_prevention.value,
            self.status.value,
            self.filled_qty,
            self.filled_cost,
            self.hold,
            self.counted,
            self.liquidation,
            self.resting,
            self.waiting,
        )
