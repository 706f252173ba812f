"""The funding timer: premium sampling, the funding rate, and settlement every interval.

The premium index of a symbol is the average over the interval of (mid - index) / index,
sampled on every feed tick (the ticks are evenly spaced, so the plain mean is the time
average). The rate, as on Binance:

    rate = clamp(premium + clamp(interest - premium, -0.05%, +0.05%), -cap, +cap)

All rates are integers over RATE_SCALE. At each funding time the timer submits one
`SettleFunding` with every symbol's rate; the core pays notional at mark x rate, longs to
shorts when the rate is positive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog

from exchange.core.commands import FundingRate, SettleFunding
from exchange.core.exchange import Exchange
from exchange.core.numbers import RATE_SCALE, rate
from exchange.runtime.clock import Clock
from exchange.runtime.config import FundingConfig
from exchange.runtime.sequencer import Result, Sequencer

log = structlog.get_logger("paperex.funding")

INTEREST_BAND = rate("0.0005")
"""How far the interest term may pull the rate away from the premium (Binance: 0.05%)."""


def clamp(value: int, low: int, high: int) -> int:
    """Return value limited to [low, high]."""
    return low if value < low else high if value > high else value


def divide_rounded(numerator: int, denominator: int) -> int:
    """Divide integers rounding half to even (denominator > 0)."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


def funding_rate(premium: int, interest: int, cap: int) -> int:
    """Return the funding rate for a premium index, interest rate and cap (RATE_SCALE)."""
    adjusted = premium + clamp(interest - premium, -INTEREST_BAND, INTEREST_BAND)
    return clamp(adjusted, -cap, cap)


def premium_sample(index: int, best_bid: int, best_ask: int) -> int:
    """Return (mid - index) / index in RATE_SCALE, from prices in ticks."""
    return divide_rounded((best_bid + best_ask - 2 * index) * RATE_SCALE, 2 * index)


class FundingTimer:
    """Average each symbol's premium over the interval and settle funding when it ends."""

    def __init__(
        self, config: FundingConfig, exchange: Exchange, sequencer: Sequencer, clock: Clock
    ) -> None:
        self.enabled = config.enabled
        self.interval_ms = config.interval_s * 1000
        self.interest_rate = rate(config.interest_rate, "interest_rate")
        self.cap = rate(config.cap, "cap")
        self.exchange = exchange
        self.sequencer = sequencer
        self.clock = clock
        self._sums: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        self._next_ms = self._boundary_after(clock.now_ms())

    @property
    def next_funding_ms(self) -> int | None:
        """Return the Unix ms of the next settlement, or None when funding is off."""
        return self._next_ms if self.enabled else None

    def _boundary_after(self, now_ms: int) -> int:
        # Funding times are whole multiples of the interval since the epoch, like Binance's
        # 00:00, 08:00 and 16:00 UTC.
        return (now_ms // self.interval_ms + 1) * self.interval_ms

    # ------------------------------------------------------------------ premium and rate

    def sample(self, symbol: str, index: int, best_bid: int | None, best_ask: int | None) -> None:
        """Record one premium sample; a one-sided or empty book gives none."""
        if best_bid is None or best_ask is None or index <= 0:
            return
        value = premium_sample(index, best_bid, best_ask)
        self._sums[symbol] = self._sums.get(symbol, 0) + value
        self._counts[symbol] = self._counts.get(symbol, 0) + 1

    def premium_index(self, symbol: str) -> int:
        """Return the average premium of the interval so far (0 without samples)."""
        count = self._counts.get(symbol, 0)
        if not count:
            return 0
        return divide_rounded(self._sums[symbol], count)

    def current_rate(self, symbol: str) -> int:
        """Return the rate the next settlement would use now (0 when funding is off)."""
        if not self.enabled:
            return 0
        return funding_rate(self.premium_index(symbol), self.interest_rate, self.cap)

    # ------------------------------------------------------------------ settlement

    def due(self) -> bool:
        """Return whether the funding time has come."""
        return self.enabled and self.clock.now_ms() >= self._next_ms

    async def settle(self) -> Result:
        """Submit SettleFunding at the current rates and start the next interval."""
        rates = tuple(
            FundingRate(symbol, self.current_rate(symbol))
            for symbol in sorted(self.exchange.markets)
        )
        self._sums.clear()
        self._counts.clear()
        self._next_ms = self._boundary_after(max(self.clock.now_ms(), self._next_ms))
        result = await self.sequencer.submit(lambda seq, ts: SettleFunding(seq, ts, rates))
        log.info(
            "funding_settled",
            seq=result.command.seq,
            rates={item.symbol: item.rate for item in rates},
            next_funding_ms=self._next_ms,
        )
        return result

    # ------------------------------------------------------------------ snapshots

    def state(self) -> dict[str, Any]:
        """Return the premium samples and the next funding time as JSON-ready data."""
        return {"sums": dict(self._sums), "counts": dict(self._counts), "next_ms": self._next_ms}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Return to a state taken with `state`."""
        self._sums = {symbol: int(value) for symbol, value in state["sums"].items()}
        self._counts = {symbol: int(value) for symbol, value in state["counts"].items()}
        self._next_ms = int(state["next_ms"])

    def settled_at(self, ts: int) -> None:
        """Note a settlement replayed from the journal: the next one is after ts."""
        if self._next_ms <= ts:
            self._sums.clear()
            self._counts.clear()
            self._next_ms = self._boundary_after(ts)

    async def run(self) -> None:
        """Settle funding at every funding time until cancelled."""
        if not self.enabled:
            return
        log.info("funding_started", interval_s=self.interval_ms // 1000, next_ms=self._next_ms)
        while True:
            delay_ms = self._next_ms - self.clock.now_ms()
            if delay_ms > 0:
                await asyncio.sleep(delay_ms / 1000)
                continue
            await self.settle()
