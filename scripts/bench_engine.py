#!/usr/bin/env python3
"""Benchmark the matching core: a seeded, realistic command stream through Exchange.apply.

The stream is about 60% limit adds near the touch, 25% cancels of open orders and 15%
marketable orders (market or limit IOC) sized to cross 1 to 3 levels, on a book of a few
thousand resting orders, with a mark update every 1,000 commands so the price band follows
the book. It is generated first, interleaved with a generator exchange so that every cancel
names an order that is still open; then a fresh exchange replays it with only `apply`
between the clock reads. The replay must end in the generator's state hash.

The last line printed is one JSON object: commands_per_s (apply time only), p50_us, p99_us,
p999_us and extra figures, with "core" saying what ran: "interpreted" or "mypyc". A benchmark,
not a timed test.

--compiled measures the core as `paperex serve` runs it after `paperex compile` (and
`scripts/run`): compiled by mypyc (see exchange/accelerator.py). It makes the build first if
there is none of the sources as they are now; a build of other sources is never used.

    .venv/bin/python scripts/bench_engine.py [--quick] [--seed N] [--profile] [--compiled]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.util
import io
import json
import os
import pstats
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The core comes from the repository, or from the compiled build when --compiled started this
# run: it must be put in front of the sources before the first core module is imported.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from exchange import accelerator

COMPILED_BUILD_ENV = "PAPEREX_BENCH_COMPILED_BUILD"
"""Set by --compiled for the run it starts: the build to import the core from."""
_compiled_build = os.environ.get(COMPILED_BUILD_ENV) or None
if _compiled_build:
    accelerator.activate(Path(_compiled_build))

from exchange.core.commands import (
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    MarkPrice,
    PlaceOrder,
    UpdateMark,
)
from exchange.core.enums import OrderType, Side, TimeInForce
from exchange.core.events import (
    AccountCreated,
    CommandRejected,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
)
from exchange.core.exchange import Exchange
from exchange.core.instruments import Instrument

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "exchange" / "core"

SYMBOL = "BTCUSDT"
START_MARK = 500_000
"""Ticks of 0.1: a mark of 50,000.0 USDT."""
START_TS = 1_700_000_000_000
MAKERS = 50
TAKERS = 10
MARK_EVERY = 1_000
COMMANDS_PER_MS = 4
"""The stream's clock advances 1 ms every this many commands."""

ADD_SHARE = 0.60
CANCEL_SHARE = 0.25
ADD_MEAN_OFFSET = 80
"""Mean distance in ticks of a new limit order behind the opposite touch."""
ADD_MEAN_LOTS = 20
CONTROL_GAIN = 1.0
"""How hard the add/cancel split leans against book-size drift (see StreamGenerator)."""
CONTROL_LIMIT = 0.4

LEAN_BOOK_COMMANDS_PER_S = 770_000
"""A lean bare book's rate on this 2-core machine, quoted in the benchmark's brief."""
GOAL_COMMANDS_PER_S = 250_000
PROFILE_TOP = 25
SLOW_NS = 1_000_000
"""Latencies this long are mostly the process waiting for a core, not the engine."""


def build_instrument() -> Instrument:
    return Instrument.create(
        symbol=SYMBOL,
        base_asset="BTC",
        tick_size="0.1",
        lot_size="0.001",
        min_qty="0.001",
        max_qty="1000",
        brackets=[(0, 50_000, 125, "0.004"), (50_000, 10**9, 50, "0.01")],
    )


# ---------------------------------------------------------------------- stream generation


@dataclass
class Stream:
    """Setup commands (untimed) and the timed stream, with what generating them saw."""

    setup: list[Command]
    commands: list[Command]
    kinds: list[str]
    state_hash: str
    book_start: int
    book_end: int
    mix: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


class StreamGenerator:
    """Write commands against a live exchange, tracking open orders from its events."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.exchange = Exchange([build_instrument()])
        self.book = self.exchange.markets[SYMBOL].book
        self.max_open_orders = self.exchange.markets[SYMBOL].instrument.max_open_orders
        self.seq = 0
        self.makers: list[int] = []
        self.takers: list[int] = []
        # Open orders: ids in a list for uniform picks, with positions for O(1) removal.
        self.open_ids: list[int] = []
        self.open_index: dict[int, int] = {}
        self.owner: dict[int, int] = {}
        self.open_per_account: Counter[int] = Counter()
        self.mid = START_MARK
        self.target_book = 0
        self.counting = False
        self.kinds: list[str] = []
        self.mix: Counter[str] = Counter()
        self.events: Counter[str] = Counter()

    # Stamping and applying.

    def _stamp(self) -> tuple[int, int]:
        self.seq += 1
        return self.seq, START_TS + self.seq // COMMANDS_PER_MS

    def _apply(self, command: Command) -> list[Event]:
        events = self.exchange.apply(command)
        self._observe(events)
        return events

    def _observe(self, events: list[Event]) -> None:
        for event in events:
            if self.counting:
                self.events[type(event).__name__] += 1
            if isinstance(event, OrderAccepted):
                self._track(event.order_id, event.account_id)
            elif isinstance(event, OrderFilled):
                if event.leaves_qty == 0:
                    self._forget(event.order_id)
            elif isinstance(event, OrderCanceled | OrderExpired):
                self._forget(event.order_id)
            elif isinstance(event, OrderRejected | CommandRejected):
                raise RuntimeError(f"the stream produced a rejection: {event}")

    def _track(self, order_id: int, account_id: int) -> None:
        self.open_index[order_id] = len(self.open_ids)
        self.open_ids.append(order_id)
        self.owner[order_id] = account_id
        self.open_per_account[account_id] += 1

    def _forget(self, order_id: int) -> None:
        index = self.open_index.pop(order_id)
        last = self.open_ids.pop()
        if last != order_id:
            self.open_ids[index] = last
            self.open_index[last] = index
        self.open_per_account[self.owner.pop(order_id)] -= 1

    # Setup.

    def setup(self, book_orders: int) -> list[Command]:
        """Create accounts, set the mark, and rest book_orders orders around it."""
        commands: list[Command] = []
        for index in range(MAKERS + TAKERS):
            seq, ts = self._stamp()
            name = f"maker-{index}" if index < MAKERS else f"taker-{index - MAKERS}"
            command = CreateAccount(seq, ts, name)
            commands.append(command)
            for event in self._apply(command):
                if isinstance(event, AccountCreated):
                    (self.makers if index < MAKERS else self.takers).append(event.account_id)
                    # Enough money that margin never binds: this measures matching.
                    seq, ts = self._stamp()
                    deposit = Deposit(seq, ts, event.account_id, 10**18)
                    commands.append(deposit)
                    self._apply(deposit)
        commands.append(self._mark(START_MARK))
        while len(self.open_ids) < book_orders:
            commands.append(self._add(preload=True))
        self.target_book = len(self.open_ids)
        return commands

    # The timed stream.

    def next_command(self) -> Command:
        """Return the next command of the stream, already applied to the generator."""
        kind, command = self._next()
        self.mix[kind] += 1
        self.kinds.append(kind)
        return command

    def _next(self) -> tuple[str, Command]:
        if self.seq % MARK_EVERY == 0:
            return "mark", self._mark(self._mid())
        draw = self.rng.random()
        if draw >= ADD_SHARE + CANCEL_SHARE:
            command = self._take()
            if command is not None:
                return "take", command
        else:
            # The takers' appetite alone does not pin the book's size, so the add/cancel split
            # leans gently against drift from the starting size.
            drift = CONTROL_GAIN * (len(self.open_ids) - self.target_book) / self.target_book
            lean = max(-CONTROL_LIMIT, min(CONTROL_LIMIT, drift))
            cancel_share = CANCEL_SHARE * (1 + lean)
            if draw < cancel_share and self.open_ids:
                return "cancel", self._cancel()
        return "add", self._add(preload=False)

    def _mid(self) -> int:
        best_bid = self.book.bids.best_price()
        best_ask = self.book.asks.best_price()
        if best_bid is not None and best_ask is not None:
            self.mid = (best_bid + best_ask) // 2
        return self.mid

    def _mark(self, price: int) -> UpdateMark:
        seq, ts = self._stamp()
        command = UpdateMark(seq, ts, (MarkPrice(SYMBOL, price, price),))
        self._apply(command)
        return command

    def _add(self, *, preload: bool) -> PlaceOrder:
        rng = self.rng
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        offset = int(rng.expovariate(1 / ADD_MEAN_OFFSET))
        if preload:
            price = START_MARK - 1 - offset if side is Side.BUY else START_MARK + 1 + offset
        else:
            mid = self._mid()
            if side is Side.BUY:
                best_ask = self.book.asks.best_price()
                price = (mid + 1 if best_ask is None else best_ask) - 1 - offset
            else:
                best_bid = self.book.bids.best_price()
                price = (mid - 1 if best_bid is None else best_bid) + 1 + offset
        account_id = rng.choice(self.makers)
        while self.open_per_account[account_id] >= self.max_open_orders:
            account_id = rng.choice(self.makers)
        qty = 1 + int(rng.expovariate(1 / ADD_MEAN_LOTS))
        seq, ts = self._stamp()
        command = PlaceOrder(seq, ts, account_id, SYMBOL, side, OrderType.LIMIT, qty, price)
        self._apply(command)
        return command

    def _cancel(self) -> CancelOrder:
        order_id = self.open_ids[int(self.rng.random() * len(self.open_ids))]
        seq, ts = self._stamp()
        command = CancelOrder(seq, ts, self.owner[order_id], order_id)
        self._apply(command)
        return command

    def _take(self) -> PlaceOrder | None:
        """Return a market or limit IOC order that reaches 1 to 3 levels, if there are any."""
        rng = self.rng
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        levels = (self.book.asks if side is Side.BUY else self.book.bids).depth(3)
        if not levels:
            return None
        levels = levels[: rng.randint(1, 3)]
        qty = sum(size for _, size in levels[:-1]) + rng.randint(1, levels[-1][1])
        account_id = rng.choice(self.takers)
        seq, ts = self._stamp()
        if rng.random() < 0.5:
            command = PlaceOrder(seq, ts, account_id, SYMBOL, side, OrderType.MARKET, qty)
        else:
            command = PlaceOrder(
                seq,
                ts,
                account_id,
                SYMBOL,
                side,
                OrderType.LIMIT,
                qty,
                levels[-1][0],
                time_in_force=TimeInForce.IOC,
            )
        self._apply(command)
        return command


def generate(seed: int, count: int, book_orders: int) -> Stream:
    """Generate the setup and a stream of count commands from seed."""
    started = time.perf_counter()
    generator = StreamGenerator(random.Random(seed))
    setup = generator.setup(book_orders)
    book_start = len(generator.open_ids)
    generator.counting = True
    commands = [generator.next_command() for _ in range(count)]
    return Stream(
        setup=setup,
        commands=commands,
        kinds=generator.kinds,
        state_hash=generator.exchange.state_hash(),
        book_start=book_start,
        book_end=len(generator.open_ids),
        mix=generator.mix,
        events=generator.events,
        seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------- timing


@dataclass
class Timing:
    latencies_ns: list[int]
    apply_ns: int
    loop_ns: int
    loop_cpu_ns: int


def fresh_exchange(setup: Sequence[Command]) -> Exchange:
    exchange = Exchange([build_instrument()])
    for command in setup:
        exchange.apply(command)
    return exchange


def tune_collector_as_served() -> tuple[int, int, int]:
    """Set the garbage collector as `paperex serve` does; return the thresholds to restore.

    The settings are loaded by path: a compiled build's `exchange` package holds the core only.
    """
    spec = importlib.util.spec_from_file_location(
        "paperex_collector", ROOT / "exchange" / "runtime" / "collector.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    thresholds = gc.get_threshold()
    module.tune_for_serving()
    return thresholds


def replay(exchange: Exchange, commands: Sequence[Command]) -> Timing:
    """Apply every command, reading the clock just around each apply."""
    latencies = [0] * len(commands)
    apply = exchange.apply
    clock = time.perf_counter_ns
    index = 0
    # The collector as `paperex serve` sets it: everything alive now (the stream, the book)
    # frozen, so no full collection walks a million commands, and young collections every
    # YOUNG_THRESHOLD allocations. GC stays on.
    thresholds = tune_collector_as_served()
    try:
        # CPU time beside wall time: on a shared machine the wall clock also counts the
        # slices this process spent waiting for a core.
        cpu_started = time.process_time_ns()
        loop_started = clock()
        for command in commands:
            started = clock()
            apply(command)
            latencies[index] = clock() - started
            index += 1
        loop_ns = clock() - loop_started
        loop_cpu_ns = time.process_time_ns() - cpu_started
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    return Timing(latencies, sum(latencies), loop_ns, loop_cpu_ns)


def timer_overhead_ns(samples: int = 100_000) -> int:
    """Return the median cost of one back-to-back pair of clock reads."""
    clock = time.perf_counter_ns
    gaps = []
    for _ in range(samples):
        started = clock()
        gaps.append(clock() - started)
    gaps.sort()
    return gaps[len(gaps) // 2]


def percentile_us(ordered_ns: Sequence[int], fraction: float) -> float:
    index = min(len(ordered_ns) - 1, int(fraction * len(ordered_ns)))
    return round(ordered_ns[index] / 1_000, 2)


def by_kind(stream: Stream, latencies_ns: Sequence[int]) -> dict[str, dict[str, float]]:
    """Return count, mean, p50 and p99 latency (us) for each kind of command."""
    grouped: dict[str, list[int]] = {}
    for kind, latency in zip(stream.kinds, latencies_ns, strict=True):
        grouped.setdefault(kind, []).append(latency)
    result: dict[str, dict[str, float]] = {}
    for kind in ("add", "cancel", "take", "mark"):
        values = sorted(grouped.get(kind, ()))
        if values:
            result[kind] = {
                "count": len(values),
                "mean_us": round(sum(values) / len(values) / 1_000, 2),
                "p50_us": percentile_us(values, 0.50),
                "p99_us": percentile_us(values, 0.99),
            }
    return result


def profile(stream: Stream) -> str:
    """Replay the stream under cProfile; return the top functions by own time."""
    exchange = fresh_exchange(stream.setup)
    apply = exchange.apply
    profiler = cProfile.Profile()
    profiler.enable()
    for command in stream.commands:
        apply(command)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(PROFILE_TOP)
    return out.getvalue()


# ---------------------------------------------------------------------- compiled core


def core_mode() -> str:
    """Return "mypyc" or "interpreted", after checking the core came from where it should."""
    import exchange.core.exchange as core_module

    origin = Path(core_module.__file__ or "")
    if _compiled_build:
        # Only a build of exactly the sources as they are now may stand in for them.
        if Path(_compiled_build).name != accelerator.fingerprint():
            raise SystemExit(f"{_compiled_build} was compiled from other sources; rebuild it")
        if origin.suffix != ".so" or Path(_compiled_build) not in origin.parents:
            raise SystemExit(f"asked for the compiled core, imported {origin}")
        return "mypyc"
    if origin.suffix != ".py" or origin.parent != CORE:
        raise SystemExit(f"expected the core's source, imported {origin}")
    return "interpreted"


# ---------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=1, help="stream seed (default 1)")
    parser.add_argument("--commands", type=int, help="timed commands (default 1,000,000)")
    parser.add_argument("--book", type=int, default=3_000, help="resting orders at the start")
    parser.add_argument("--quick", action="store_true", help="200,000 commands, under 20 s")
    parser.add_argument("--profile", action="store_true", help="also replay under cProfile")
    parser.add_argument(
        "--compiled", action="store_true", help="measure the core compiled by mypyc (needs gcc)"
    )
    args = parser.parse_args(argv)
    if args.compiled and not _compiled_build:
        # The core is already imported here, so the measurement runs in a fresh process.
        try:
            build = accelerator.build()
        except accelerator.AcceleratorError as error:
            raise SystemExit(f"--compiled: {error}") from None
        rest = [arg for arg in (sys.argv[1:] if argv is None else argv) if arg != "--compiled"]
        environment = {**os.environ, COMPILED_BUILD_ENV: str(build)}
        return subprocess.run(
            [sys.executable, __file__, *rest], env=environment, check=False
        ).returncode
    mode = core_mode()
    count = args.commands or (200_000 if args.quick else 1_000_000)

    # Other work on this small machine skews the figures; say how busy it was.
    load = os.getloadavg()[0]
    print(f"seed {args.seed}, {count:,} commands, {args.book:,} resting orders to start")
    if mode == "mypyc":
        print(f"core: compiled by mypyc, build {Path(str(_compiled_build)).name} of these sources")
    else:
        print(f"core: interpreted by CPython {sys.version.split()[0]}")
    print(f"load average before: {load:.2f} on {os.cpu_count()} cpus")
    stream = generate(args.seed, count, args.book)
    mix = ", ".join(
        f"{name} {stream.mix[name] / count:.1%}" for name in ("add", "cancel", "take", "mark")
    )
    print(f"generated in {stream.seconds:.1f} s: {mix}")

    exchange = fresh_exchange(stream.setup)
    timing = replay(exchange, stream.commands)
    if exchange.state_hash() != stream.state_hash:
        raise SystemExit("the replay ended in a different state than the generator")
    exchange.check_invariants()

    ordered = sorted(timing.latencies_ns)
    apply_seconds = timing.apply_ns / 1e9
    commands_per_s = count / apply_seconds
    loop_commands_per_s = count / (timing.loop_ns / 1e9)
    cpu_commands_per_s = count / (timing.loop_cpu_ns / 1e9)
    slow = sum(1 for latency in ordered if latency >= SLOW_NS)
    overhead = timer_overhead_ns()
    kinds = by_kind(stream, timing.latencies_ns)
    fills = stream.events["OrderFilled"]
    trades = fills // 2
    figures = {
        "commands_per_s": round(commands_per_s),
        "p50_us": percentile_us(ordered, 0.50),
        "p99_us": percentile_us(ordered, 0.99),
        "p999_us": percentile_us(ordered, 0.999),
        "max_us": round(ordered[-1] / 1_000, 1),
        "mean_us": round(timing.apply_ns / count / 1_000, 3),
        "loop_commands_per_s": round(loop_commands_per_s),
        "cpu_commands_per_s": round(cpu_commands_per_s),
        "over_1ms": slow,
        "generate_commands_per_s": round(count / stream.seconds),
        "commands": count,
        "trades": trades,
        "fills": fills,
        "events": sum(stream.events.values()),
        "book_start": stream.book_start,
        "book_end": stream.book_end,
        "timer_overhead_ns": overhead,
        "take_mean_us": kinds["take"]["mean_us"] if "take" in kinds else None,
        "add_mean_us": kinds["add"]["mean_us"] if "add" in kinds else None,
        "cancel_mean_us": kinds["cancel"]["mean_us"] if "cancel" in kinds else None,
        "load_average": round(load, 2),
        "ratio_to_lean_book": round(commands_per_s / LEAN_BOOK_COMMANDS_PER_S, 3),
        "seed": args.seed,
        "core": mode,
    }

    if args.profile:
        print(f"\ncProfile of the replay, top {PROFILE_TOP} by own time:")
        print(profile(stream))

    print(f"resting orders: {stream.book_start:,} at start, {stream.book_end:,} at end")
    counts = ", ".join(f"{name} {number:,}" for name, number in stream.events.most_common())
    print(f"events: {counts}")
    print(
        f"trades: {trades:,} ({fills:,} fills), events: {figures['events']:,} "
        f"({figures['events'] / count:.2f} per command)"
    )
    print(
        f"apply only: {commands_per_s:,.0f} commands/s "
        f"({figures['mean_us']} us mean); with the loop and clock reads: "
        f"{loop_commands_per_s:,.0f} commands/s ({cpu_commands_per_s:,.0f} by CPU time); "
        f"generation: {figures['generate_commands_per_s']:,} commands/s"
    )
    print(
        f"latency p50 {figures['p50_us']} us, p99 {figures['p99_us']} us, "
        f"p99.9 {figures['p999_us']} us, max {figures['max_us']} us "
        f"(each includes ~{overhead} ns of clock read); {slow:,} over 1 ms"
    )
    verdict = "met" if commands_per_s >= GOAL_COMMANDS_PER_S else "NOT met"
    print(
        f"vs lean bare book ({LEAN_BOOK_COMMANDS_PER_S:,}/s): "
        f"{figures['ratio_to_lean_book']}x, {LEAN_BOOK_COMMANDS_PER_S / commands_per_s:.2f}x "
        f"slower; goal {GOAL_COMMANDS_PER_S:,}/s {verdict}"
    )
    for kind, row in kinds.items():
        print(
            f"  {kind:<6} {row['count']:>9,.0f} commands, mean {row['mean_us']:>7} us, "
            f"p50 {row['p50_us']:>7} us, p99 {row['p99_us']:>8} us"
        )
    print("gc: on, with the stream and setup frozen before timing; replay state hash matches")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
