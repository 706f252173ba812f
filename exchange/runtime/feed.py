"""The mark-price feed: an index per symbol, the mark derived from it, UpdateMark each tick.

Index sources (config `feed.kind`):

- synthetic: geometric Brownian motion with jumps, one seeded `random.Random`, so a seed
  gives the same path every run. Floats live only inside this process; what leaves it is
  rounded to whole ticks.
- replay: a CSV of `timestamp_ms,price` per symbol, played `speed` times faster than
  recorded, holding the last price at the end.
- manual: the index moves only when an operator sets or shocks it.

Operators can set or shock the index of any source; a shock with a duration moves the index
along a straight line to its target, after which the source carries on from there.

Mark (DESIGN.md section 4), unless `mark = "index"`:

    price1 = index * (1 + funding rate * time to next funding / interval)
    price2 = index + moving average of (mid - index)
    mark   = median(price1, price2, last trade), clamped to index * (1 +/- mark_band)

Everything the feed sends is integer ticks; the core never sees a float.
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import math
import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Protocol

import structlog

from exchange.core.commands import MarkPrice, UpdateMark
from exchange.core.exchange import Exchange
from exchange.core.instruments import Instrument
from exchange.core.numbers import RATE_SCALE, parse_decimal, rate
from exchange.runtime.clock import Clock
from exchange.runtime.config import FeedConfig
from exchange.runtime.funding import FundingTimer, clamp, divide_rounded
from exchange.runtime.sequencer import Result, Sequencer

log = structlog.get_logger("paperex.feed")

MS_PER_YEAR = 365 * 24 * 3600 * 1000


class FeedError(ValueError):
    """A feed that cannot start, or an operator command it cannot carry out."""


def round_to_ticks(price: Decimal, tick_size: Decimal) -> int:
    """Return a price as the nearest whole number of ticks (half to even), at least one."""
    ticks = int((price / tick_size).to_integral_value(rounding=ROUND_HALF_EVEN))
    return max(ticks, 1)


# ---------------------------------------------------------------------- index sources


class IndexSource(Protocol):
    """Where the index comes from; `step` runs once per feed tick."""

    def step(self, now_ms: int) -> None: ...

    def price(self, symbol: str) -> int | None: ...

    def set(self, symbol: str, ticks: int) -> None: ...

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: Mapping[str, Any]) -> None: ...


class ManualSource:
    """An index that stays where an operator put it."""

    def __init__(self, start: Mapping[str, int]) -> None:
        self._prices: dict[str, int] = dict(start)

    def step(self, now_ms: int) -> None:
        """Leave the index where it is."""

    def price(self, symbol: str) -> int | None:
        """Return the symbol's index in ticks, if set."""
        return self._prices.get(symbol)

    def set(self, symbol: str, ticks: int) -> None:
        """Put the index at ticks."""
        self._prices[symbol] = ticks

    def state(self) -> dict[str, Any]:
        """Return the source's state as JSON-ready data."""
        return {"prices": dict(self._prices)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Return to a state taken with `state`."""
        self._prices = {symbol: int(ticks) for symbol, ticks in state["prices"].items()}


@dataclass(slots=True)
class SyntheticSymbol:
    """How one symbol's synthetic index moves."""

    tick_size: Decimal
    start_price: Decimal
    volatility: float
    jump_probability: float
    jump_size: float


class SyntheticSource:
    """Geometric Brownian motion with jumps, drawn from one seeded generator."""

    def __init__(self, seed: int, symbols: Mapping[str, SyntheticSymbol], interval_ms: int) -> None:
        self._rng = random.Random(seed)
        self._symbols = dict(sorted(symbols.items()))
        self._dt = interval_ms / MS_PER_YEAR
        self._levels = {symbol: float(spec.start_price) for symbol, spec in self._symbols.items()}

    def step(self, now_ms: int) -> None:
        """Move every symbol one interval along its path, in symbol order."""
        rng = self._rng
        dt = self._dt
        for symbol, spec in self._symbols.items():
            sigma = spec.volatility
            # The -sigma^2/2 drift keeps the expected price flat (a martingale).
            log_return = -0.5 * sigma * sigma * dt + sigma * math.sqrt(dt) * rng.gauss(0.0, 1.0)
            if spec.jump_probability and rng.random() < spec.jump_probability:
                log_return += rng.gauss(0.0, spec.jump_size)
            self._levels[symbol] *= math.exp(log_return)

    def price(self, symbol: str) -> int | None:
        """Return the symbol's index rounded to whole ticks."""
        level = self._levels.get(symbol)
        if level is None:
            return None
        return max(round(level / float(self._symbols[symbol].tick_size)), 1)

    def set(self, symbol: str, ticks: int) -> None:
        """Continue the path from ticks."""
        self._levels[symbol] = float(ticks * self._symbols[symbol].tick_size)

    def state(self) -> dict[str, Any]:
        """Return the generator and the levels as JSON-ready data."""
        version, internal, gauss_next = self._rng.getstate()
        return {
            "rng": [version, list(internal), gauss_next],
            "levels": {symbol: level.hex() for symbol, level in self._levels.items()},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Return to a state taken with `state`; the path then continues identically."""
        version, internal, gauss_next = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss_next))
        self._levels = {symbol: float.fromhex(text) for symbol, text in state["levels"].items()}


def read_replay_csv(path: Path, tick_size: Decimal) -> list[tuple[int, int]]:
    """Read `timestamp_ms,price` rows, sorted by time, prices rounded to the tick.

    A first row that is not numeric is a header; blank lines and lines starting with # are
    skipped.
    """
    rows: list[tuple[int, int]] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                    continue
                try:
                    timestamp = int(row[0])
                    price = parse_decimal(row[1].strip(), "price")
                except (ValueError, IndexError):
                    if number == 1 and not rows:
                        continue
                    raise FeedError(f"{path}:{number}: expected timestamp_ms,price") from None
                if price <= 0:
                    raise FeedError(f"{path}:{number}: price must be positive")
                rows.append((timestamp, round_to_ticks(price, tick_size)))
    except OSError as error:
        raise FeedError(f"{path}: cannot read: {error.strerror}") from None
    if not rows:
        raise FeedError(f"{path}: no prices")
    rows.sort(key=lambda item: item[0])
    return rows


class ReplaySource:
    """Recorded prices played back against the clock, optionally faster."""

    def __init__(self, rows: Mapping[str, list[tuple[int, int]]], speed: Decimal) -> None:
        self._rows = dict(rows)
        self._times = {symbol: [row[0] for row in series] for symbol, series in rows.items()}
        self._speed = speed
        self._started_ms: int | None = None
        self._position: dict[str, int] = dict.fromkeys(rows, 0)
        # Operators' moves persist as a ratio to the recording.
        self._scale: dict[str, tuple[int, int]] = {}
        self._finished: set[str] = set()

    def step(self, now_ms: int) -> None:
        """Advance each symbol to the last recorded price at or before replay time."""
        if self._started_ms is None:
            self._started_ms = now_ms
        elapsed = int((now_ms - self._started_ms) * self._speed)
        for symbol, times in self._times.items():
            replay_ms = times[0] + elapsed
            self._position[symbol] = max(bisect.bisect_right(times, replay_ms) - 1, 0)
            if replay_ms >= times[-1] and symbol not in self._finished:
                self._finished.add(symbol)
                log.info("replay_finished", symbol=symbol)

    def _recorded(self, symbol: str) -> int:
        return self._rows[symbol][self._position[symbol]][1]

    def price(self, symbol: str) -> int | None:
        """Return the replayed index, scaled by any operator move."""
        if symbol not in self._rows:
            return None
        recorded = self._recorded(symbol)
        numerator, denominator = self._scale.get(symbol, (1, 1))
        return max(divide_rounded(recorded * numerator, denominator), 1)

    def set(self, symbol: str, ticks: int) -> None:
        """Shift the rest of the replay so that it continues from ticks."""
        self._scale[symbol] = (ticks, self._recorded(symbol))

    def state(self) -> dict[str, Any]:
        """Return the replay position as JSON-ready data."""
        return {
            "started_ms": self._started_ms,
            "position": dict(self._position),
            "scale": {symbol: list(pair) for symbol, pair in self._scale.items()},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Return to a state taken with `state`."""
        self._started_ms = state["started_ms"]
        self._position = {symbol: int(value) for symbol, value in state["position"].items()}
        self._scale = {symbol: (int(a), int(b)) for symbol, (a, b) in state["scale"].items()}


# ---------------------------------------------------------------------- the feed


@dataclass(slots=True)
class _Ramp:
    start: int
    target: int
    start_ms: int
    end_ms: int


class Feed:
    """Publish index and mark prices through the sequencer, every tick and on command."""

    def __init__(
        self,
        config: FeedConfig,
        exchange: Exchange,
        sequencer: Sequencer,
        clock: Clock,
        *,
        funding: FundingTimer | None = None,
    ) -> None:
        self.config = config
        self.exchange = exchange
        self.sequencer = sequencer
        self.clock = clock
        self.funding = funding
        self.symbols = sorted(exchange.markets)
        self.instruments: dict[str, Instrument] = {
            symbol: exchange.markets[symbol].instrument for symbol in self.symbols
        }
        self.seed = (
            config.seed if config.seed is not None else random.SystemRandom().getrandbits(32)
        )
        self.mark_band = rate(config.mark_band, "mark_band")
        window = max(config.basis_window_s * 1000 // config.interval_ms, 1)
        # (mid - index) samples in half ticks, so a mid between two ticks stays exact.
        self._basis: dict[str, deque[int]] = {s: deque(maxlen=window) for s in self.symbols}
        self._ramps: dict[str, _Ramp] = {}
        self._published: dict[str, tuple[int, int]] = {}
        self.source = self._build_source()
        log.info("feed_created", kind=config.kind, seed=self.seed, mark=config.mark)

    def _build_source(self) -> IndexSource:
        config = self.config
        settings = config.symbols
        if config.kind == "synthetic":
            specs = {}
            for symbol in self.symbols:
                spec = settings.get(symbol)
                if spec is None or spec.start_price is None:
                    raise FeedError(f"{symbol}: a synthetic feed needs a start_price")
                specs[symbol] = SyntheticSymbol(
                    tick_size=self.instruments[symbol].tick_size,
                    start_price=spec.start_price,
                    volatility=float(spec.volatility),
                    jump_probability=float(spec.jump_probability),
                    jump_size=float(spec.jump_size),
                )
            return SyntheticSource(self.seed, specs, config.interval_ms)
        if config.kind == "replay":
            rows = {}
            for symbol in self.symbols:
                spec = settings.get(symbol)
                if spec is None or spec.replay_file is None:
                    raise FeedError(f"{symbol}: a replay feed needs a replay_file")
                rows[symbol] = read_replay_csv(spec.replay_file, self.instruments[symbol].tick_size)
            return ReplaySource(rows, config.speed)
        start = {
            symbol: round_to_ticks(spec.start_price, self.instruments[symbol].tick_size)
            for symbol, spec in settings.items()
            if spec.start_price is not None and symbol in self.instruments
        }
        return ManualSource(start)

    # ------------------------------------------------------------------ prices

    def index(self, symbol: str) -> int | None:
        """Return the symbol's current index in ticks (None before it has one)."""
        ramp = self._ramps.get(symbol)
        if ramp is not None:
            now = self.clock.now_ms()
            if now >= ramp.end_ms:
                return ramp.target
            progress = now - ramp.start_ms
            span = ramp.end_ms - ramp.start_ms
            return ramp.start + divide_rounded((ramp.target - ramp.start) * progress, span)
        return self.source.price(symbol)

    def mark(self, symbol: str) -> int | None:
        """Return the mark the feed would publish now, in ticks."""
        index = self.index(symbol)
        if index is None:
            return None
        if self.config.mark == "index":
            return index
        price1 = index
        funding = self.funding
        if funding is not None and funding.enabled and funding.next_funding_ms is not None:
            remaining = max(funding.next_funding_ms - self.clock.now_ms(), 0)
            price1 = index + divide_rounded(
                index * funding.current_rate(symbol) * remaining,
                RATE_SCALE * funding.interval_ms,
            )
        samples = self._basis[symbol]
        price2 = index + (divide_rounded(sum(samples), 2 * len(samples)) if samples else 0)
        last = self.exchange.markets[symbol].last_price
        price3 = index if last is None else last
        mark = sorted((price1, price2, price3))[1]
        band = index * self.mark_band // RATE_SCALE
        return clamp(mark, max(index - band, 1), index + band)

    def _sample(self) -> None:
        for symbol in self.symbols:
            index = self.index(symbol)
            if index is None:
                continue
            book = self.exchange.markets[symbol].book
            best_bid, best_ask = book.bids.best, book.asks.best
            if best_bid is not None and best_ask is not None:
                self._basis[symbol].append(best_bid + best_ask - 2 * index)
            if self.funding is not None:
                self.funding.sample(symbol, index, best_bid, best_ask)

    # ------------------------------------------------------------------ publishing

    def publish(
        self, symbols: Iterable[str] | None = None, *, force: bool = False
    ) -> asyncio.Future[Result] | None:
        """Queue an UpdateMark for the symbols whose index or mark changed (or all, forced).

        Return the future of its result, or None when there is nothing to send.
        """
        prices: list[MarkPrice] = []
        for symbol in self.symbols if symbols is None else sorted(symbols):
            index = self.index(symbol)
            mark = self.mark(symbol)
            if index is None or mark is None:
                continue
            if not force and self._published.get(symbol) == (index, mark):
                continue
            self._published[symbol] = (index, mark)
            prices.append(MarkPrice(symbol, index, mark))
        if not prices:
            return None
        update = tuple(prices)
        return self.sequencer.enqueue(lambda seq, ts: UpdateMark(seq, ts, update))

    async def tick(self) -> Result | None:
        """Move the index one interval, sample the book, and publish what changed."""
        now = self.clock.now_ms()
        self.source.step(now)
        for symbol, ramp in list(self._ramps.items()):
            if now >= ramp.end_ms:
                del self._ramps[symbol]
                self.source.set(symbol, ramp.target)
        self._sample()
        future = self.publish()
        return None if future is None else await future

    async def run(self) -> None:
        """Tick every interval until cancelled."""
        interval = self.config.interval_ms / 1000
        log.info("feed_started", kind=self.config.kind, seed=self.seed)
        while True:
            await self.tick()
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ operators

    def _check_symbol(self, symbol: str) -> None:
        if symbol not in self.instruments:
            raise FeedError(f"unknown symbol {symbol}")

    def set_index(self, symbol: str, price_ticks: int) -> asyncio.Future[Result]:
        """Put the index at price_ticks now and queue the UpdateMark.

        The returned future resolves once the mark is applied (await it for the events);
        the command is queued before this returns either way.
        """
        self._check_symbol(symbol)
        if price_ticks <= 0:
            raise FeedError("the index must be positive")
        self._ramps.pop(symbol, None)
        self.source.set(symbol, price_ticks)
        log.info("index_set", symbol=symbol, index=price_ticks)
        future = self.publish([symbol], force=True)
        assert future is not None
        return future

    def shock(
        self, symbol: str, pct: Decimal | str | int, duration_s: Decimal | str | int | None = None
    ) -> asyncio.Future[Result]:
        """Move the index by pct percent (-10 is a 10% fall), at once or over duration_s.

        Returns the future of the first UpdateMark; a ramp goes on moving the index on each
        tick until duration_s has passed.
        """
        self._check_symbol(symbol)
        change = parse_decimal(pct, "pct") if not isinstance(pct, Decimal) else pct
        if not change.is_finite() or change <= -100:
            raise FeedError("pct must be above -100")
        current = self.index(symbol)
        if current is None:
            raise FeedError(f"{symbol} has no index to shock yet")
        target = round_to_ticks(Decimal(current) * (100 + change) / 100, Decimal(1))
        duration_ms = 0
        if duration_s is not None:
            seconds = duration_s if isinstance(duration_s, Decimal) else parse_decimal(duration_s)
            if not seconds.is_finite() or seconds < 0:
                raise FeedError("duration_s must not be negative")
            duration_ms = int(seconds * 1000)
        log.info("index_shock", symbol=symbol, pct=str(change), index=current, target=target)
        if duration_ms == 0:
            return self.set_index(symbol, target)
        now = self.clock.now_ms()
        self._ramps[symbol] = _Ramp(current, target, now, now + duration_ms)
        future = self.publish([symbol], force=True)
        assert future is not None
        return future

    # ------------------------------------------------------------------ snapshots

    def state(self) -> dict[str, Any]:
        """Return everything needed to continue the feed identically, as JSON-ready data."""
        return {
            "kind": self.config.kind,
            "seed": self.seed,
            "source": self.source.state(),
            "basis": {symbol: list(samples) for symbol, samples in self._basis.items()},
            "ramps": {
                symbol: [ramp.start, ramp.target, ramp.start_ms, ramp.end_ms]
                for symbol, ramp in self._ramps.items()
            },
            "published": {symbol: list(pair) for symbol, pair in self._published.items()},
        }

    def follow(self, exchange: Exchange) -> None:
        """Continue from the index the exchange last applied (after replaying a journal).

        A snapshot holds the feed as it was at the snapshot; marks journalled after it
        moved the index on, and the path continues from there rather than jumping back.
        """
        if self.config.kind == "replay":
            return
        for symbol in self.symbols:
            index = exchange.markets[symbol].index_price
            if index is not None and index != self.source.price(symbol):
                self.source.set(symbol, index)
        self._ramps.clear()
        self._published.clear()

    def restore(self, state: Mapping[str, Any]) -> None:
        """Return to a state taken with `state` from a feed of the same config."""
        if state["kind"] != self.config.kind:
            raise FeedError(f"a {state['kind']} feed state cannot restore a {self.config.kind}")
        self.seed = int(state["seed"])
        self.source.restore(state["source"])
        for symbol, samples in state["basis"].items():
            self._basis[symbol].clear()
            self._basis[symbol].extend(int(value) for value in samples)
        self._ramps = {symbol: _Ramp(*values) for symbol, values in state["ramps"].items()}
        self._published = {
            symbol: (int(index), int(mark)) for symbol, (index, mark) in state["published"].items()
        }
