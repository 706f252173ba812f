"""What the exchange keeps per symbol besides the book's orders."""

from __future__ import annotations

from mypy_extensions import mypyc_attr

from exchange.core.book import OrderBook
from exchange.core.enums import TriggerBy
from exchange.core.instruments import Instrument
from exchange.core.numbers import RATE_SCALE, ceil_div
from exchange.core.pickling import Picklable
from exchange.core.triggers import TriggerIndex


@mypyc_attr(serializable=True)  # see Picklable
class Market(Picklable):
    """Everything the exchange keeps per symbol."""

    __slots__ = (
        "_band",
        "_band_reference",
        "book",
        "halted",
        "index_price",
        "instrument",
        "last_price",
        "mark_price",
        "triggers",
    )

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.book = OrderBook(instrument.symbol)
        self.triggers = TriggerIndex()
        self.index_price: int | None = None
        self.mark_price: int | None = None
        self.last_price: int | None = None
        self._band_reference: int | None = None
        self._band = (0, 0)
        # A halted market takes cancels, marks and liquidations, but no new trading.
        self.halted = False

    def reference_price(self) -> int | None:
        """Return the price that bounds orders: the mark, or before any mark the last trade."""
        return self.mark_price if self.mark_price is not None else self.last_price

    def price_band(self) -> tuple[int, int] | None:
        """Return the lowest and highest price (ticks) an order may name now, if bounded.

        Binance's PERCENT_PRICE: within price_band_rate of the reference price, both sides.
        """
        reference = self.mark_price if self.mark_price is not None else self.last_price
        if reference is None:
            return None
        if reference != self._band_reference:
            rate = self.instrument.price_band_rate
            low = ceil_div(reference * (RATE_SCALE - rate), RATE_SCALE)
            high = reference * (RATE_SCALE + rate) // RATE_SCALE
            self._band = (max(low, 1), high)
            self._band_reference = reference
        return self._band

    def watched_price(self, trigger_by: TriggerBy) -> int | None:
        return self.mark_price if trigger_by is TriggerBy.MARK else self.last_price
