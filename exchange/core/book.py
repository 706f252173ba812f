"""The limit order book of one symbol: price levels in price-time priority."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from typing import Final

from mypy_extensions import mypyc_attr

from exchange.core.enums import Side
from exchange.core.events import BookUpdated, build_book_updated
from exchange.core.orders import Order
from exchange.core.pickling import Picklable

# Final: the mypyc build reads these from C statics rather than the module's dict.
_insort: Final = insort
_bisect_left: Final = bisect_left


@mypyc_attr(serializable=True)  # see Picklable
class PriceLevel(Picklable):
    """Resting orders at one price; dict order is time priority."""

    __slots__ = ("orders", "price", "size")

    def __init__(self, price: int) -> None:
        self.price = price
        self.size = 0
        self.orders: dict[int, Order] = {}

    def first(self) -> Order:
        return next(iter(self.orders.values()))


@mypyc_attr(serializable=True)  # see Picklable
class BookSide(Picklable):
    """One side of the book. Prices are kept ascending; the best end depends on the side."""

    __slots__ = ("best", "changed", "is_bid", "levels", "prices", "side")

    def __init__(self, side: Side) -> None:
        self.side = side
        self.is_bid = side is Side.BUY
        self.levels: dict[int, PriceLevel] = {}
        # Ascending. A plain list with bisect beats a SortedList at book sizes (a few
        # thousand levels at most): the shifting is one memmove in C, the search is in C too.
        self.prices: list[int] = []
        # The best price, kept on every level change: the matching loop reads it per fill.
        self.best: int | None = None
        # Prices touched by the current command; flushed into one BookUpdated.
        self.changed: set[int] = set()

    def __setstate__(self, state: object) -> None:
        # Snapshots pickled before the price index became a plain list hold a SortedList
        # there; either way the restored side gets a list.
        super().__setstate__(state)
        self.prices = list(self.prices)

    def best_price(self) -> int | None:
        return self.best

    def best_level(self) -> PriceLevel | None:
        best = self.best
        return None if best is None else self.levels[best]

    def add(self, order: Order) -> None:
        """Append an order at the back of its price level."""
        price = order.price
        assert price is not None
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = PriceLevel(price)
            _insort(self.prices, price)
            best = self.best
            if best is None or (price > best if self.is_bid else price < best):
                self.best = price
        level.orders[order.order_id] = order
        level.size += order.qty - order.filled_qty
        order.resting = True
        self.changed.add(price)

    def remove(self, order: Order) -> None:
        """Take an order out of the book, with whatever it has left."""
        price = order.price
        assert price is not None
        level = self.levels[price]
        del level.orders[order.order_id]
        level.size -= order.qty - order.filled_qty
        order.resting = False
        if not level.orders:
            del self.levels[price]
            prices = self.prices
            del prices[_bisect_left(prices, price)]
            if price == self.best:
                self.best = (prices[-1] if self.is_bid else prices[0]) if prices else None
        self.changed.add(price)

    def reduce(self, order: Order, qty: int) -> None:
        """Account for qty of a resting order leaving the book (a fill or a size cut)."""
        price = order.price
        assert price is not None
        self.levels[price].size -= qty
        self.changed.add(price)

    def levels_from_best(self, limit: int | None = None) -> Iterator[PriceLevel]:
        """Yield levels best first, stopping past limit (a price a taker will still accept)."""
        prices = self.prices
        levels = self.levels
        if self.is_bid:
            stop = 0 if limit is None else bisect_left(prices, limit)
            for index in range(len(prices) - 1, stop - 1, -1):
                yield levels[prices[index]]
        else:
            stop = len(prices) if limit is None else bisect_right(prices, limit)
            for index in range(stop):
                yield levels[prices[index]]

    def depth(self, count: int | None = None) -> list[tuple[int, int]]:
        """Return (price, size) pairs best first."""
        result: list[tuple[int, int]] = []
        for level in self.levels_from_best():
            if count is not None and len(result) >= count:
                break
            result.append((level.price, level.size))
        return result

    def take_changes(self) -> tuple[tuple[int, int], ...]:
        changed = self.changed
        if not changed:
            return ()
        levels = self.levels
        if len(changed) == 1:
            price = changed.pop()
            level = levels.get(price)
            return ((price, 0 if level is None else level.size),)
        changes = tuple(
            (price, levels[price].size if price in levels else 0)
            for price in sorted(changed, reverse=self.is_bid)
        )
        changed.clear()
        return changes


@mypyc_attr(serializable=True)  # see Picklable
class OrderBook(Picklable):
    """Both sides of one symbol's book, and its update id for snapshot/delta sync."""

    __slots__ = ("asks", "bids", "symbol", "update_id")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = BookSide(Side.BUY)
        self.asks = BookSide(Side.SELL)
        self.update_id = 0

    def side(self, side: Side) -> BookSide:
        return self.bids if side is Side.BUY else self.asks

    def opposite(self, side: Side) -> BookSide:
        return self.asks if side is Side.BUY else self.bids

    def crosses(self, side: Side, price: int | None) -> bool:
        """Tell whether a taker on side at limit price would trade now (None: any price)."""
        best = (self.asks if side is Side.BUY else self.bids).best
        if best is None:
            return False
        if price is None:
            return True
        return best <= price if side is Side.BUY else best >= price

    def take_update(self, seq: int) -> BookUpdated | None:
        """Return the command's level changes as one event, bumping the update id once."""
        bids, asks = self.bids, self.asks
        if not bids.changed:
            if not asks.changed:
                return None
            bid_changes: tuple[tuple[int, int], ...] = ()
            ask_changes = asks.take_changes()
        else:
            bid_changes = bids.take_changes()
            ask_changes = asks.take_changes() if asks.changed else ()
        update_id = self.update_id = self.update_id + 1
        return build_book_updated(seq, self.symbol, update_id, bid_changes, ask_changes)

    def state(self) -> tuple[object, ...]:
        """Return the book as nested tuples, for hashing."""
        return (
            self.symbol,
            self.update_id,
            tuple(
                (level.price, level.size, tuple(level.orders))
                for level in self.bids.levels_from_best()
            ),
            tuple(
                (level.price, level.size, tuple(level.orders))
                for level in self.asks.levels_from_best()
            ),
        )
