#!/usr/bin/env python3
"""Measure mark ticks per second with many open positions, indexed against a naive scan.

Each size builds that many single-symbol accounts holding a BTCUSDT position (half isolated,
half cross, leverage 2x to 20x, entries within 2% of the mark) against one house account.
The positions are written straight into the ledger, because a million trades through the
book would take minutes and the setup is not what is measured; the conservation check runs
on the result. Then quiet mark ticks (a few ticks either way, liquidating few or none) go
through Exchange.apply, first with the risk index, then with the index switched off so the
exchange scans every position, on the same state.

The last line is one JSON object: {"sizes": {"100000": {...}, "1000000": {...}}}.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exchange.core.commands import CreateAccount, Deposit, MarkPrice, UpdateMark
from exchange.core.enums import MarginMode
from exchange.core.events import Liquidated
from exchange.core.exchange import Exchange
from exchange.core.margin import initial_margin
from exchange.core.numbers import ATOMS_PER_UNIT
from exchange.instrument_config import load_instruments

SYMBOL = "BTCUSDT"
MARK = 600_000  # 60,000.0 in ticks of 0.1
USDT = ATOMS_PER_UNIT


class Bench:
    def __init__(self, positions: int, seed: int) -> None:
        instruments = load_instruments(
            Path(__file__).resolve().parents[1] / "configs" / "instruments.toml"
        )
        self.exchange = Exchange([instruments[SYMBOL]])
        self.instrument = instruments[SYMBOL]
        self.rng = random.Random(seed)
        self.seq = 0
        self.positions = positions
        self.liquidated = 0

    def stamp(self) -> tuple[int, int]:
        self.seq += 1
        return self.seq, 1_700_000_000_000 + self.seq

    def populate(self) -> None:
        exchange, ledger, rng = self.exchange, self.exchange.ledger, self.rng
        instrument = self.instrument
        exchange.apply(CreateAccount(*self.stamp(), "house"))
        house_id = exchange.next_account_id - 1
        exchange.apply(Deposit(*self.stamp(), house_id, 10**12 * USDT))
        self.tick(MARK)
        house = ledger.position(ledger.accounts[house_id], SYMBOL)
        open_here = ledger.open_positions[SYMBOL]
        dirty = exchange.risk.symbols[SYMBOL].dirty if exchange.risk is not None else set()
        first_id = exchange.next_account_id
        for account_id in range(first_id, first_id + self.positions):
            account = ledger.open_account(account_id, "")
            position = ledger.position(account, SYMBOL)
            position.leverage = rng.randint(2, 20)
            qty = rng.randint(1, 100) * rng.choice((1, -1))
            entry = MARK + rng.randint(-1_200, 1_200) * 10  # within 2% of the mark
            cost = instrument.notional(entry, qty)
            margin = initial_margin(abs(cost), position.leverage)
            # Enough to stand the open loss of the entry, plus a cushion of up to 100%.
            wallet = (
                margin
                + abs(instrument.notional(entry - MARK, qty))
                + margin * rng.randint(0, 100) // 100
            )
            account.wallet = wallet
            ledger.deposits += wallet
            position.qty, position.cost = qty, cost
            if account_id % 2:
                position.margin_mode = MarginMode.ISOLATED
                position.isolated_margin = wallet - wallet // 10
                account.wallet = wallet // 10
            house.qty -= qty
            house.cost -= cost
            open_here[account_id] = position
            dirty.add(account_id)
        open_here[house_id] = house
        exchange.next_account_id = first_id + self.positions
        gap = ledger.conservation_gap()
        assert gap == 0, f"the populated state does not conserve money: {gap}"

    def tick(self, price: int) -> None:
        for event in self.exchange.apply(
            UpdateMark(*self.stamp(), (MarkPrice(SYMBOL, price, price),))
        ):
            if isinstance(event, Liquidated):
                self.liquidated += 1

    def quiet_ticks(self, count: int) -> float:
        """Apply count marks a few ticks around the centre; return ticks per second."""
        prices = [MARK + self.rng.randint(-5, 5) for _ in range(count)]
        started = time.perf_counter()
        for price in prices:
            self.tick(price)
        return count / (time.perf_counter() - started)


def measure(positions: int, ticks: int, naive_ticks: int, seed: int) -> dict[str, float]:
    bench = Bench(positions, seed)
    started = time.perf_counter()
    bench.populate()
    bench.tick(MARK)  # indexes every position once: setup, not measured
    setup = time.perf_counter() - started
    gc.collect()
    gc.freeze()
    indexed = bench.quiet_ticks(ticks)
    risk = bench.exchange.risk
    bench.exchange.risk = None  # the same exchange, scanning every position
    naive = bench.quiet_ticks(naive_ticks)
    bench.exchange.risk = risk
    gc.unfreeze()
    if positions <= 100_000:
        bench.exchange.check_invariants()  # O(positions): proves the state is whole
    open_positions = len(bench.exchange.ledger.open_positions[SYMBOL]) - 1  # less the house
    print(
        f"{positions:>9,} positions: indexed {indexed:>10,.1f} ticks/s ({ticks} ticks), "
        f"naive {naive:>8,.2f} ticks/s ({naive_ticks} ticks), speedup {indexed / naive:,.0f}x; "
        f"liquidated {bench.liquidated}, open after {open_positions:,}, setup {setup:.1f} s",
        flush=True,
    )
    return {
        "positions": positions,
        "ticks_per_s": round(indexed, 1),
        "naive_ticks_per_s": round(naive, 3),
        "speedup_vs_naive": round(indexed / naive, 1),
        "liquidated": bench.liquidated,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer ticks; within 90 s")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    ticks, naive_ticks = (2_000, 2) if args.quick else (20_000, 5)
    sizes = {}
    for positions in (100_000, 1_000_000):
        sizes[str(positions)] = measure(positions, ticks, naive_ticks, args.seed)
    print(json.dumps({"sizes": sizes}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
