"""What the API needs from the rest of the server, and the market figures it reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from exchange.api.auth import KeyStore
from exchange.api.errors import rejected
from exchange.api.history import History
from exchange.core.codes import RejectCode
from exchange.core.commands import Command
from exchange.core.events import Event
from exchange.core.exchange import Exchange
from exchange.core.instruments import Instrument
from exchange.core.market import Market
from exchange.core.numbers import format_rate

if TYPE_CHECKING:
    from exchange.api.streams import Publisher


class Clock(Protocol):
    def now_ms(self) -> int: ...


class Submitted(Protocol):
    @property
    def command(self) -> Command: ...

    @property
    def events(self) -> list[Event]: ...


class Submitter(Protocol):
    """The sequencer as the API uses it: every state change goes through submit."""

    def submit(self, make: Callable[[int, int], Command]) -> Awaitable[Submitted]: ...

    def enqueue(self, make: Callable[[int, int], Command]) -> Awaitable[Submitted]:
        """Queue a command now and return what `submit` would await (one coroutine less)."""
        ...


class Feed(Protocol):
    """The operator's handles on the index (return values may be awaitable)."""

    def set_index(self, symbol: str, price_ticks: int) -> Any: ...

    def shock(self, symbol: str, pct: Any, duration_s: Any) -> Any: ...


class FundingInfo(Protocol):
    def current_rate(self, symbol: str) -> int: ...

    @property
    def next_funding_ms(self) -> int | None: ...

    # The configured settings, which the Binance gateway's fundingInfo shows.
    @property
    def cap(self) -> int: ...

    @property
    def interval_ms(self) -> int: ...


@dataclass(slots=True)
class ApiContext:
    """Everything a method handler may use, built once by the composition root."""

    exchange: Exchange
    sequencer: Submitter
    clock: Clock
    keys: KeyStore
    history: History
    feed: Feed | None = None
    funding: FundingInfo | None = None
    admin_token: str | None = None
    rate_limit_per_s: int = 200
    max_message_bytes: int = 65_536
    publisher: Publisher | None = None

    @property
    def streams(self) -> Publisher:
        assert self.publisher is not None, "the publisher is wired by build_app"
        return self.publisher

    def market(self, symbol: str, field: str = "symbol") -> Market:
        market = self.exchange.markets.get(symbol)
        if market is None:
            raise rejected(RejectCode.UNKNOWN_SYMBOL, f"unknown symbol {symbol}", field)
        return market

    def instrument(self, symbol: str) -> Instrument:
        return self.exchange.markets[symbol].instrument

    @property
    def instruments(self) -> dict[str, Instrument]:
        return {symbol: m.instrument for symbol, m in self.exchange.markets.items()}

    def open_interest(self, symbol: str) -> int:
        """Return the lots held long in a symbol (equal to the lots held short)."""
        positions = self.exchange.ledger.open_positions[symbol]
        return sum(p.qty for p in positions.values() if p.qty > 0)

    def ticker(self, symbol: str) -> dict[str, Any]:
        market = self.exchange.markets[symbol]
        instrument = market.instrument
        bids = market.book.bids.depth(1)
        asks = market.book.asks.depth(1)
        funding = self.funding
        rate = funding.current_rate(symbol) if funding is not None else 0
        return {
            "symbol": symbol,
            "mark_price": _price(instrument, market.mark_price),
            "index_price": _price(instrument, market.index_price),
            "last_price": _price(instrument, market.last_price),
            "best_bid": _price(instrument, bids[0][0]) if bids else None,
            "best_bid_qty": instrument.qty_text(bids[0][1]) if bids else None,
            "best_ask": _price(instrument, asks[0][0]) if asks else None,
            "best_ask_qty": instrument.qty_text(asks[0][1]) if asks else None,
            "funding_rate": format_rate(rate),
            "next_funding_time": funding.next_funding_ms if funding is not None else None,
            "open_interest": instrument.qty_text(self.open_interest(symbol)),
            "halted": market.halted,
        }


def _price(instrument: Instrument, ticks: int | None) -> str | None:
    return None if ticks is None else instrument.price_text(ticks)
