"""Conditional orders waiting for their trigger, indexed so a price move finds them fast."""

from __future__ import annotations

from mypy_extensions import mypyc_attr
from sortedcontainers import SortedList

from exchange.core.enums import OrderType, Side, TriggerBy
from exchange.core.orders import Order
from exchange.core.pickling import Picklable


def fires_on_rise(order_type: OrderType, side: Side) -> bool:
    """Tell whether the order fires when the price rises to its trigger (else when it falls).

    Binance semantics: a buy stop and a sell take-profit fire at price >= trigger;
    a sell stop and a buy take-profit fire at price <= trigger.
    """
    return order_type.is_stop == (side is Side.BUY)


def would_fire(order_type: OrderType, side: Side, trigger_price: int, price: int) -> bool:
    """Tell whether a watched price has reached a conditional order's trigger."""
    if fires_on_rise(order_type, side):
        return price >= trigger_price
    return price <= trigger_price


@mypyc_attr(serializable=True)  # see Picklable
class TriggerIndex(Picklable):
    """Waiting conditional orders of one symbol, by the price they watch and direction."""

    __slots__ = ("_falling", "_rising", "count")

    def __init__(self) -> None:
        # (trigger price, order id): rising lists fire from the low end, falling from the high.
        self._rising = {by: SortedList() for by in TriggerBy}
        self._falling = {by: SortedList() for by in TriggerBy}
        # Orders waiting: every trade checks the index, and most books have none waiting.
        self.count = 0

    def __setstate__(self, state: object) -> None:
        # Snapshots pickled before the count was kept lack it; it is recounted either way.
        super().__setstate__(state)
        self.count = len(self)

    def add(self, order: Order) -> None:
        self._list(order).add((order.trigger_price, order.order_id))
        order.waiting = True
        self.count += 1

    def remove(self, order: Order) -> None:
        self._list(order).remove((order.trigger_price, order.order_id))
        order.waiting = False
        self.count -= 1

    def pop_fired(self, trigger_by: TriggerBy, price: int) -> list[int]:
        """Remove and return the ids of orders whose trigger the price has reached.

        The caller must clear each order's `waiting` flag: the index holds ids, not orders.
        """
        fired: list[int] = []
        if not self.count:
            return fired
        rising = self._rising[trigger_by]
        while rising and rising[0][0] <= price:
            fired.append(rising.pop(0)[1])
        falling = self._falling[trigger_by]
        while falling and falling[-1][0] >= price:
            fired.append(falling.pop()[1])
        self.count -= len(fired)
        return fired

    def __len__(self) -> int:
        return sum(len(entries) for entries in (*self._rising.values(), *self._falling.values()))

    def state(self) -> tuple[object, ...]:
        return tuple(
            (by.value, tuple(self._rising[by]), tuple(self._falling[by])) for by in TriggerBy
        )

    def _list(self, order: Order) -> SortedList:
        lists = self._rising if fires_on_rise(order.order_type, order.side) else self._falling
        return lists[order.trigger_by]
