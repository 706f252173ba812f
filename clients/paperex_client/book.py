"""A local copy of one symbol's order book, kept from a snapshot plus deltas.

`LocalBook` does no I/O: it is fed `book.SYMBOL` notifications and says when it has fallen
out of step, and `Client.local_book` (the shell) then fetches `public.book` and resets it.

The rules, from docs/protocol.md: the channel starts with a snapshot; each delta carries
only the changed levels (a zero quantity removes one) and an `update_id` one above the
previous change. A delta at or below the book's update id is already included and is
skipped; one more than one above it means changes were missed (the server conflates book
updates for a slow reader, and the SDK's own queue drops the oldest when full). The stream
`seq` rises by one per notification within a connection, so a seq gap is a second,
independent sign of a missed message.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum

from clients.paperex_client.models import Book, BookUpdate, Level, StreamUpdate


class Applied(Enum):
    """What `LocalBook.apply` did with a notification."""

    APPLIED = "applied"
    """The snapshot or delta changed the book, which is in sync."""
    SKIPPED = "skipped"
    """A delta the book already includes (it came before the snapshot that reset it)."""
    GAP = "gap"
    """Something was missed: the book is out of sync until `reset` with a fresh snapshot."""


class LocalBook:
    """One symbol's book as levels keyed by price, with the update id it reflects."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.update_id = 0
        self.synced = False
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        # The (connection, seq) of the last notification seen, to spot seq gaps.
        self._last: tuple[int, int] | None = None

    # ------------------------------------------------------------------ feeding

    def reset(self, snapshot: Book | BookUpdate) -> None:
        """Replace the whole book with a snapshot (`public.book` or a stream snapshot)."""
        if snapshot.symbol != self.symbol:
            raise ValueError(f"a {snapshot.symbol} snapshot for the {self.symbol} book")
        self._bids = {level.price: level.qty for level in snapshot.bids if level.qty}
        self._asks = {level.price: level.qty for level in snapshot.asks if level.qty}
        self.update_id = snapshot.update_id
        self.synced = True
        # A fetched snapshot is not part of the stream: after it only update ids can tell
        # whether a delta is missing, so the next delta is not checked against the seq.
        self._last = None

    def apply(self, update: StreamUpdate) -> Applied:
        """Apply one `book.SYMBOL` notification and tell whether the book is still in sync."""
        data = update.data
        if not isinstance(data, BookUpdate):
            raise TypeError(f"not a book update: {data!r:.100}")
        position = (update.connection, update.seq)
        if data.type == "snapshot":
            self.reset(data)
            self._last = position
            return Applied.APPLIED
        previous, self._last = self._last, position
        if not self.synced:
            return Applied.GAP
        if data.update_id <= self.update_id:
            return Applied.SKIPPED
        seq_gap = previous is not None and previous != (update.connection, update.seq - 1)
        if seq_gap or data.update_id != self.update_id + 1:
            self.synced = False
            return Applied.GAP
        self._change(self._bids, data.bids)
        self._change(self._asks, data.asks)
        self.update_id = data.update_id
        return Applied.APPLIED

    @staticmethod
    def _change(side: dict[Decimal, Decimal], levels: tuple[Level, ...]) -> None:
        for price, qty in levels:
            if qty:
                side[price] = qty
            else:
                side.pop(price, None)

    # ------------------------------------------------------------------ reading

    def bids(self, depth: int | None = None) -> list[Level]:
        """Return bid levels, highest price first."""
        prices = sorted(self._bids, reverse=True)[:depth]
        return [Level(price, self._bids[price]) for price in prices]

    def asks(self, depth: int | None = None) -> list[Level]:
        """Return ask levels, lowest price first."""
        prices = sorted(self._asks)[:depth]
        return [Level(price, self._asks[price]) for price in prices]

    def best_bid(self) -> Level | None:
        """Return the highest bid, or None when there are no bids."""
        if not self._bids:
            return None
        price = max(self._bids)
        return Level(price, self._bids[price])

    def best_ask(self) -> Level | None:
        """Return the lowest ask, or None when there are no asks."""
        if not self._asks:
            return None
        price = min(self._asks)
        return Level(price, self._asks[price])

    def mid(self) -> Decimal | None:
        """Return the midpoint of the best bid and ask, or None when a side is empty."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        return (bid.price + ask.price) / 2

    def snapshot(self, depth: int | None = None) -> Book:
        """Return the book in the shape `public.book` returns, to compare or to print."""
        return Book(self.symbol, self.update_id, tuple(self.bids(depth)), tuple(self.asks(depth)))
