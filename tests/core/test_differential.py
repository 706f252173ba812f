"""Differential test: the matching core against a naive reference book, command by command.

A seeded generator sends the same stream to `Exchange` and to `ReferenceBook`. After every
command the two must report the same records (acceptances, rejections with their codes,
every fill with its trade id, price, qty, leaves, liquidity side and fee, and how each order
ended). Every few dozen commands the whole book is compared level by level with the order
ids in priority order, together with the open orders, positions, counters, the mark and the
last trade price, and the depth rebuilt from the core's BookUpdated deltas. The core's own
invariants are checked every few hundred commands.

The stream is mostly passive limit orders near the touch, cancels and amends, with
marketable limits and market orders that cross one to three levels, IOC, FOK and post-only
orders, four accounts so that self-trades happen under every prevention mode, and mark
updates that move the price band (now and then far enough that part of the book lies
outside it). The first few hundred commands run before any mark, when the band follows the
last trade price. A small share of commands is malformed on purpose.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter, deque
from fractions import Fraction
from typing import Any

import pytest

from exchange.core.codes import RejectCode
from exchange.core.commands import (
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    MarkPrice,
    PlaceOrder,
    UpdateMark,
)
from exchange.core.enums import (
    CancelReason,
    ExpireReason,
    LiquiditySide,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from exchange.core.events import (
    AccountCreated,
    BalanceChanged,
    BookUpdated,
    CommandRejected,
    Event,
    LedgerEntry,
    MarkUpdated,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    PositionChanged,
)
from exchange.core.exchange import Exchange
from exchange.core.instruments import Instrument
from tests.core.reference_book import Level, Record, ReferenceBook, Rules

SYMBOL = "BTCUSDT"

# A tight band (1%) around a price of 3,000 ticks is about 30 ticks wide on each side, close
# to the depth of the book, so that mark moves leave part of the book outside the band. At
# that price the minimum notional (1.5 USDT = 1.5e8 atoms at 1e4 atoms per tick-lot) falls at
# qty 5, inside the range the stream uses, and four accounts with a few hundred open orders
# between them reach the per-account open-order cap now and then.
INSTRUMENT = Instrument.create(
    symbol=SYMBOL,
    base_asset="BTC",
    tick_size="0.1",
    lot_size="0.001",
    min_qty="0.002",
    max_qty="0.5",
    max_market_qty="0.2",
    min_notional="1.5",
    price_band="0.01",
    maker_fee="0.0002",
    taker_fee="0.0005",
    brackets=[(0, 1_000_000, 100, "0.005")],
    max_open_orders=80,
)
RULES = Rules(
    symbol=SYMBOL,
    min_qty=2,
    max_qty=500,
    max_market_qty=200,
    min_notional=150_000_000,
    atoms_per_tick_lot=10_000,
    price_band=Fraction(1, 100),
    maker_fee=Fraction(2, 10_000),
    taker_fee=Fraction(5, 10_000),
    max_open_orders=80,
)

CENTER = 3_000
ACCOUNTS = 4
FUNDING = 10**18  # atoms: ten billion USDT
WARMUP = 300
BOOK_EVERY = 50
INVARIANTS_EVERY = 400
TARGET_LOW, TARGET_HIGH = 220, 360

BUY, SELL = Side.BUY, Side.SELL
SIDES = (BUY, SELL)
PREVENTIONS = (
    SelfTradePrevention.NONE,
    SelfTradePrevention.EXPIRE_MAKER,
    SelfTradePrevention.EXPIRE_TAKER,
    SelfTradePrevention.EXPIRE_BOTH,
)


# ---------------------------------------------------------------------------------------------
# The core's events as reference records
# ---------------------------------------------------------------------------------------------


def record(event: Event) -> Record:
    """Return the event in the reference's record shape (see reference_book)."""
    if isinstance(event, AccountCreated):
        return ("account", event.account_id)
    if isinstance(event, OrderAccepted):
        return (
            "accepted",
            event.order_id,
            event.account_id,
            event.side,
            event.order_type,
            event.qty,
            event.price,
        )
    if isinstance(event, OrderRejected):
        return ("rejected", event.account_id, event.code)
    if isinstance(event, OrderFilled):
        return (
            "filled",
            event.order_id,
            event.account_id,
            event.side,
            event.trade_id,
            event.last_px,
            event.last_qty,
            event.leaves_qty,
            event.liquidity_side,
            event.fee,
        )
    if isinstance(event, OrderCanceled):
        return ("canceled", event.order_id, event.account_id, event.reason)
    if isinstance(event, OrderExpired):
        return ("expired", event.order_id, event.account_id, event.reason)
    if isinstance(event, OrderAmended):
        return (
            "amended",
            event.order_id,
            event.account_id,
            event.price,
            event.qty,
            event.leaves_qty,
            event.priority_kept,
        )
    if isinstance(event, CommandRejected):
        return ("command_rejected", event.account_id, event.code)
    if isinstance(event, MarkUpdated):
        return ("mark", event.symbol, event.index_price, event.mark_price)
    # Anything else (a trigger, say) has no counterpart in the reference and must not happen.
    return ("unexpected", event)


def kind_of(entry: Record) -> str:
    """Return a label for counting how often the stream reached each outcome."""
    kind = entry[0]
    detail = entry[2] if kind in ("rejected", "command_rejected") else entry[-1]
    if isinstance(detail, RejectCode):
        return f"{kind} {detail.name}"
    if kind in ("canceled", "expired"):
        assert isinstance(detail, CancelReason | ExpireReason)
        return f"{kind} {detail.value}"
    return str(kind)


# ---------------------------------------------------------------------------------------------
# The command stream
# ---------------------------------------------------------------------------------------------


class CommandStream:
    """Generate commands that keep a few hundred orders near the touch of the reference book."""

    def __init__(self, rng: random.Random, reference: ReferenceBook, warmup: int) -> None:
        self.rng = rng
        self.reference = reference
        self.warmup = warmup
        self.count = 0
        self.seq = 0
        self.ts = 1_700_000_000_000
        self.ended: deque[int] = deque(maxlen=50)

    def next_command(self) -> Command:
        self.count += 1
        self.seq += 1
        # Equal timestamps are legal; only going back is not.
        self.ts += self.rng.choice((0, 1, 1, 3))
        if self.count <= 2 * ACCOUNTS:
            # Every account opens with a deposit large enough that margin never binds: the
            # reference models matching, not money (the core checks conservation itself).
            number = (self.count + 1) // 2
            if self.count % 2:
                return CreateAccount(self.seq, self.ts, f"trader-{number}")
            return Deposit(self.seq, self.ts, number, FUNDING)
        if self.count == self.warmup:
            return self._mark(CENTER)
        open_count = len(self.reference.open_orders)
        # Crossing orders eat more than a passive order adds, so the mix shifts with depth.
        if open_count < TARGET_LOW:
            weights = (75, 2, 8, 4, 1, 2, 2)
        elif open_count > TARGET_HIGH:
            weights = (30, 30, 10, 12, 5, 2, 3)
        else:
            weights = (45, 12, 12, 12, 5, 2, 3)
        if self.count < self.warmup:
            weights = (*weights[:5], 0, weights[6])
        (action,) = self.rng.choices(
            ("passive", "cancel", "amend", "cross", "market", "mark", "odd"), weights
        )
        if action == "cancel":
            return self._cancel()
        if action == "amend":
            return self._amend()
        if action == "cross":
            return self._cross()
        if action == "market":
            return self._market()
        if action == "mark":
            return self._mark(self._anchor())
        if action == "odd":
            return self._odd()
        return self._passive()

    def note_ended(self, records: list[Record]) -> None:
        """Remember ids of orders that just ended, to name them in later cancels and amends."""
        for entry in records:
            order_id = entry[1]
            ended = entry[0] in ("canceled", "expired") or (entry[0] == "filled" and entry[7] == 0)
            if ended and isinstance(order_id, int):
                self.ended.append(order_id)

    # Prices.

    def _anchor(self) -> int:
        reference = self.reference
        bid, ask = reference.best_price(BUY), reference.best_price(SELL)
        if bid is not None and ask is not None:
            return (bid + ask) // 2
        if bid is not None:
            return bid + 1
        if ask is not None:
            return ask - 1
        return reference.reference_price() or CENTER

    def _inside_band(self, price: int) -> int:
        """Move a price into the band, except now and then to probe the band's edges."""
        band = self.reference.band()
        if band is None:
            return max(price, 1)
        low, high = band
        if self.rng.random() < 0.03:
            edge = self.rng.choice((low, high))
            return max(edge + self.rng.choice((-2, -1, 0, 0, 1, 2)), 1)
        return min(max(price, low), high)

    def _passive_price(self, side: Side) -> int:
        rng = self.rng
        own = self.reference.best_price(side)
        opposite = self.reference.best_price(side.opposite)
        if own is None:
            base = opposite if opposite is not None else self._anchor()
            price = base - side.value * rng.randint(1, 10)
        elif opposite is not None and abs(opposite - own) > 1 and rng.random() < 0.2:
            price = rng.randint(min(own, opposite) + 1, max(own, opposite) - 1)
        else:
            price = own - side.value * min(int(rng.expovariate(0.3)), 40)
        return self._inside_band(price)

    def _front_levels(self, side: Side, count: int) -> list[tuple[int, int]]:
        """Return (price, size) of the first levels of a side of the reference book."""
        levels: list[tuple[int, int]] = []
        for order in self.reference.queue(side):
            assert order.price is not None
            if levels and levels[-1][0] == order.price:
                levels[-1] = (order.price, levels[-1][1] + order.leaves)
            elif len(levels) == count:
                break
            else:
                levels.append((order.price, order.leaves))
        return levels

    # Order attributes.

    def _qty(self) -> int:
        roll = self.rng.random()
        if roll < 0.75:
            return self.rng.randint(5, 30)
        if roll < 0.95:
            return self.rng.randint(30, 120)
        # Near the minimum qty and the minimum notional.
        return self.rng.choice((2, 3, 4, 5, 6))

    def _reaching_qty(self, levels: list[tuple[int, int]], depth: int) -> int:
        """Return a qty that reaches into level `depth`, now and then more than all of it."""
        reach = sum(size for _, size in levels[: depth + 1])
        return self.rng.randint(max(1, reach - levels[depth][1] + 1), reach + 20)

    def _account(self) -> int:
        return self.rng.randint(1, ACCOUNTS)

    def _prevention(self) -> SelfTradePrevention | None:
        if self.rng.random() < 0.8:
            return None
        return self.rng.choice(PREVENTIONS)

    def _time_in_force(self, weights: tuple[int, int, int, int]) -> TimeInForce:
        (time_in_force,) = self.rng.choices(
            (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY), weights
        )
        return time_in_force

    def _place(
        self,
        side: Side,
        order_type: OrderType,
        qty: int,
        price: int | None,
        time_in_force: TimeInForce,
        **changes: Any,
    ) -> PlaceOrder:
        command = PlaceOrder(
            self.seq,
            self.ts,
            self._account(),
            SYMBOL,
            side,
            order_type,
            qty,
            price,
            time_in_force=time_in_force,
            self_trade_prevention=self._prevention(),
        )
        return dataclasses.replace(command, **changes) if changes else command

    # Commands.

    def _passive(self) -> PlaceOrder:
        side = self.rng.choice(SIDES)
        time_in_force = self._time_in_force((80, 5, 5, 10))
        return self._place(
            side, OrderType.LIMIT, self._qty(), self._passive_price(side), time_in_force
        )

    def _cross(self) -> PlaceOrder:
        rng = self.rng
        side = rng.choice(SIDES)
        levels = self._front_levels(side.opposite, 3)
        if not levels:
            return self._passive()
        depth = rng.randrange(len(levels))
        price = levels[depth][0]
        if rng.random() < 0.2:
            price += side.value * rng.randint(1, 3)
        qty = min(self._reaching_qty(levels, depth), RULES.max_qty)
        time_in_force = self._time_in_force((40, 25, 25, 10))
        return self._place(side, OrderType.LIMIT, qty, self._inside_band(price), time_in_force)

    def _market(self) -> PlaceOrder:
        rng = self.rng
        side = rng.choice(SIDES)
        levels = self._front_levels(side.opposite, 3)
        qty = self._qty() if not levels else self._reaching_qty(levels, rng.randrange(len(levels)))
        if rng.random() < 0.1:
            # A sweep: deep enough to reach the band's edge when the mark has moved away.
            qty = rng.randint(150, RULES.max_market_qty)
        elif rng.random() < 0.97:
            qty = min(qty, RULES.max_market_qty)
        time_in_force = self._time_in_force((60, 20, 20, 0))
        return self._place(side, OrderType.MARKET, qty, None, time_in_force)

    def _cancel(self) -> CancelOrder:
        rng = self.rng
        open_orders = self.reference.open_orders
        roll = rng.random()
        if open_orders and roll < 0.9:
            order = rng.choice(list(open_orders.values()))
            account_id = order.account_id
            if roll < 0.03:
                # Someone else's order must look unknown.
                account_id = account_id % ACCOUNTS + 1
            return CancelOrder(self.seq, self.ts, account_id, order_id=order.order_id)
        order_id = rng.choice(self.ended) if self.ended else rng.randint(1, 1_000)
        return CancelOrder(self.seq, self.ts, self._account(), order_id=order_id)

    def _amend(self) -> Command:
        rng = self.rng
        open_orders = self.reference.open_orders
        if not open_orders:
            return self._passive()
        order = rng.choice(list(open_orders.values()))
        assert order.price is not None
        account_id = order.account_id if rng.random() < 0.97 else order.account_id % ACCOUNTS + 1
        qty: int | None = None
        price: int | None = None
        roll = rng.random()
        if roll < 0.3:
            if order.qty - order.filled < 2:
                qty = order.qty + rng.randint(1, 10)
            else:
                qty = rng.randint(order.filled + 1, order.qty - 1)
            # Naming the unchanged price must mean the same as leaving it out.
            price = order.price if rng.random() < 0.3 else None
        elif roll < 0.45:
            qty = order.qty + rng.randint(1, 20)
        elif roll < 0.7:
            price = self._passive_price(order.side)
        elif roll < 0.85:
            best = self.reference.best_price(order.side.opposite)
            target = best if best is not None else self._anchor()
            price = self._inside_band(target + order.side.value * rng.randint(0, 2))
        elif roll < 0.93:
            price = self._passive_price(order.side)
            qty = order.filled + rng.randint(1, 40)
        else:
            band = self.reference.band()
            price, qty = rng.choice(
                (
                    (order.price, order.qty),
                    (None, order.filled),
                    (None, 0),
                    (0, None),
                    (-5, None),
                    (None, 1),
                    (None, RULES.max_qty + 1),
                    (None if band is None else band[1] + 1, None),
                    (None if band is None else band[0] - 1, None),
                )
            )
        return AmendOrder(
            self.seq, self.ts, account_id, order_id=order.order_id, qty=qty, price=price
        )

    def _mark(self, anchor: int) -> UpdateMark:
        rng = self.rng
        # Follow the book, with a pull back to the centre so the stream stays in range.
        mark = anchor + rng.randint(-15, 15) + (CENTER - anchor) // 10
        roll = rng.random()
        if roll < 0.15:
            mark += rng.choice((-1, 1)) * rng.randint(80, 200)
        elif roll < 0.16:
            mark = 0
        index = mark + rng.randint(-3, 3)
        symbol = SYMBOL if rng.random() > 0.01 else "ETHUSDT"
        return UpdateMark(self.seq, self.ts, (MarkPrice(symbol, index, mark),))

    def _odd(self) -> Command:
        """Return a command that some rule must refuse, or a rare one such as cancel-all."""
        rng = self.rng
        seq, ts = self.seq, self.ts
        side = rng.choice(SIDES)
        price = self._passive_price(side)
        limit, market = OrderType.LIMIT, OrderType.MARKET
        gtc = TimeInForce.GTC
        choice = rng.randrange(14)
        if choice == 0:
            return CancelAllOrders(seq, ts, self._account(), rng.choice((SYMBOL, None)))
        if choice == 1:
            return CancelAllOrders(seq, ts, rng.choice((self._account(), 99)), "ETHUSDT")
        if choice == 2:
            return CancelOrder(seq, ts, rng.choice((0, 99)), order_id=1)
        if choice == 3:
            return CancelOrder(seq, ts, self._account())
        if choice == 4:
            order_id = rng.choice(self.ended) if self.ended else 1
            return AmendOrder(seq, ts, self._account(), order_id=order_id, qty=10)
        if choice == 5:
            return self._place(side, limit, 10, price, gtc, account_id=rng.choice((0, 99)))
        if choice == 6:
            return self._place(side, limit, 10, price, gtc, symbol="ETHUSDT")
        if choice == 7:
            qty = rng.choice((0, -3, 1, RULES.max_qty + 1))
            return self._place(side, limit, qty, price, gtc)
        if choice == 8:
            return self._place(side, market, RULES.max_market_qty + 1, None, gtc)
        if choice == 9:
            return self._place(side, market, 10, price, gtc)
        if choice == 10:
            return self._place(side, limit, 10, None, gtc)
        if choice == 11:
            return self._place(side, limit, 10, rng.choice((0, -1)), gtc)
        if choice == 12:
            return self._place(side, market, 10, None, TimeInForce.POST_ONLY)
        return self._place(side, limit, 10, price, gtc, trigger_price=price)


# ---------------------------------------------------------------------------------------------
# Running both and comparing
# ---------------------------------------------------------------------------------------------


class DepthMirror:
    """The book as a client rebuilds it from BookUpdated deltas alone."""

    def __init__(self) -> None:
        self.update_id = 0
        self.sides: dict[Side, dict[int, int]] = {BUY: {}, SELL: {}}

    def apply(self, update: BookUpdated) -> None:
        assert update.update_id == self.update_id + 1, "book update ids must not skip"
        self.update_id = update.update_id
        for side, changes in ((BUY, update.bids), (SELL, update.asks)):
            levels = self.sides[side]
            for price, size in changes:
                if size:
                    levels[price] = size
                else:
                    levels.pop(price, None)


def core_levels(exchange: Exchange, side: Side) -> list[Level]:
    book_side = exchange.markets[SYMBOL].book.side(side)
    return [
        (level.price, level.size, tuple(level.orders)) for level in book_side.levels_from_best()
    ]


def compare_state(
    exchange: Exchange,
    reference: ReferenceBook,
    mirror: DepthMirror,
    positions: dict[int, int],
    where: str,
) -> None:
    """Fail unless the core's whole state agrees with the reference's."""
    for side in SIDES:
        expected = reference.levels(side)
        assert core_levels(exchange, side) == expected, f"{where}: {side.name} book differs"
        sizes = {price: size for price, size, _ in expected}
        assert mirror.sides[side] == sizes, f"{where}: {side.name} depth from deltas differs"
    core_orders = {
        order.order_id: (order.account_id, order.side, order.price, order.qty, order.filled_qty)
        for order in exchange.orders.values()
    }
    reference_orders = {
        order.order_id: (order.account_id, order.side, order.price, order.qty, order.filled)
        for order in reference.open_orders.values()
    }
    assert core_orders == reference_orders, f"{where}: open orders differ"
    ledger_positions = {
        account_id: account.position_qty(SYMBOL)
        for account_id, account in exchange.ledger.accounts.items()
        if account is not exchange.ledger.insurance
    }
    expected_positions = dict.fromkeys(reference.accounts, 0)
    expected_positions.update(reference.positions)
    assert ledger_positions == expected_positions, f"{where}: positions differ"
    assert {**expected_positions, **positions} == expected_positions, f"{where}: events differ"
    market = exchange.markets[SYMBOL]
    assert (market.mark_price, market.last_price) == (
        reference.mark_price,
        reference.last_price,
    ), f"{where}: mark or last price differs"
    assert (exchange.next_order_id, exchange.next_trade_id) == (
        reference.next_order_id,
        reference.next_trade_id,
    ), f"{where}: id counters differ"


def run_differential(seed: int, count: int, warmup: int = WARMUP) -> Counter[str]:
    """Send `count` seeded commands to the core and the reference; return outcome counts."""
    rng = random.Random(seed)
    exchange = Exchange([INSTRUMENT])
    reference = ReferenceBook(RULES)
    stream = CommandStream(rng, reference, warmup)
    mirror = DepthMirror()
    positions: dict[int, int] = {}
    recent: deque[Command] = deque(maxlen=12)
    seen: Counter[str] = Counter()
    for index in range(1, count + 1):
        command = stream.next_command()
        recent.append(command)
        actual: list[Record] = []
        for event in exchange.apply(command):
            if isinstance(event, BookUpdated):
                mirror.apply(event)
            elif isinstance(event, PositionChanged):
                positions[event.account_id] = event.qty
            elif not isinstance(event, BalanceChanged | LedgerEntry):
                # Money is the core's own business, checked by its conservation invariant.
                actual.append(record(event))
        expected = reference.apply(command)
        if actual != expected:
            history = "\n  ".join(repr(previous) for previous in recent)
            pytest.fail(
                f"seed {seed}, command {index}: the core and the reference disagree\n"
                f"recent commands:\n  {history}\ncore:\n  {actual}\nreference:\n  {expected}"
            )
        stream.note_ended(expected)
        for entry in expected:
            seen[kind_of(entry)] += 1
        if index % BOOK_EVERY == 0:
            compare_state(exchange, reference, mirror, positions, f"seed {seed}, command {index}")
        if index % INVARIANTS_EVERY == 0:
            exchange.check_invariants()
    compare_state(exchange, reference, mirror, positions, f"seed {seed}, end")
    exchange.check_invariants()
    seen.update(reference.seen)
    return seen


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_reference_rules_describe_the_instrument() -> None:
    instrument = INSTRUMENT
    assert (
        instrument.min_qty,
        instrument.max_qty,
        instrument.max_market_qty,
        instrument.min_notional,
        instrument.atoms_per_tick_lot,
        instrument.max_open_orders,
    ) == (
        RULES.min_qty,
        RULES.max_qty,
        RULES.max_market_qty,
        RULES.min_notional,
        RULES.atoms_per_tick_lot,
        RULES.max_open_orders,
    )
    scale = 100_000_000
    assert Fraction(instrument.price_band_rate, scale) == RULES.price_band
    assert Fraction(instrument.maker_fee_rate, scale) == RULES.maker_fee
    assert Fraction(instrument.taker_fee_rate, scale) == RULES.taker_fee


# Every outcome the stream is meant to reach, so a quiet generator cannot pass unnoticed.
REQUIRED_OUTCOMES = (
    "filled",
    "amended",
    "mark",
    "canceled user",
    "canceled cancel_all",
    "expired time_in_force",
    "expired price_band",
    "expired self_trade_prevention",
    "rejected POST_ONLY_WOULD_TAKE",
    "rejected PRICE_OUTSIDE_BAND",
    "rejected NOTIONAL_BELOW_MINIMUM",
    "rejected QTY_BELOW_MINIMUM",
    "rejected QTY_ABOVE_MAXIMUM",
    "rejected TOO_MANY_OPEN_ORDERS",
    "command_rejected UNKNOWN_ORDER",
    "command_rejected AMEND_NO_CHANGE",
    "command_rejected INVALID_QUANTITY",
    "command_rejected PRICE_OUTSIDE_BAND",
    "command_rejected POST_ONLY_WOULD_TAKE",
    "fok killed",
    "fok passes own order",
    "fok stopped by own order",
    "market stopped by band",
    "self trade none",
    "self trade expire_maker",
    "self trade expire_taker",
    "self trade expire_both",
    "amend priority_kept=True",
    "amend priority_kept=False",
)


def test_core_matches_reference_on_100k_commands() -> None:
    seen = run_differential(seed=20_240_601, count=100_000)
    missing = [outcome for outcome in REQUIRED_OUTCOMES if not seen[outcome]]
    assert not missing, f"the stream never reached {missing}: {seen}"
    assert seen["filled"] >= 20_000


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6, 7, 8])
def test_core_matches_reference_on_short_streams(seed: int) -> None:
    # Short warm-ups and streams put more weight on a young, thin book and on the band
    # that follows the last trade before any mark is known.
    run_differential(seed=seed, count=3_000, warmup=50 + 40 * seed)


# ---------------------------------------------------------------------------------------------
# Hand-written scenarios: the subtle rules, stated once with their expected records
# ---------------------------------------------------------------------------------------------


class Script:
    """Build numbered commands for a scenario on the test instrument."""

    def __init__(self) -> None:
        self.seq = 0

    def next(self) -> tuple[int, int]:
        self.seq += 1
        return self.seq, 1_700_000_000_000 + self.seq

    def accounts(self, count: int) -> list[Command]:
        commands: list[Command] = []
        for number in range(1, count + 1):
            commands.append(CreateAccount(*self.next(), f"trader-{number}"))
            commands.append(Deposit(*self.next(), number, FUNDING))
        return commands

    def mark(self, price: int) -> UpdateMark:
        return UpdateMark(*self.next(), (MarkPrice(SYMBOL, price, price),))

    def limit(
        self,
        account_id: int,
        side: Side,
        qty: int,
        price: int,
        time_in_force: TimeInForce = TimeInForce.GTC,
        prevention: SelfTradePrevention | None = None,
    ) -> PlaceOrder:
        return PlaceOrder(
            *self.next(),
            account_id,
            SYMBOL,
            side,
            OrderType.LIMIT,
            qty,
            price,
            time_in_force=time_in_force,
            self_trade_prevention=prevention,
        )

    def market(self, account_id: int, side: Side, qty: int) -> PlaceOrder:
        return PlaceOrder(*self.next(), account_id, SYMBOL, side, OrderType.MARKET, qty)

    def amend(
        self, account_id: int, order_id: int, qty: int | None = None, price: int | None = None
    ) -> AmendOrder:
        return AmendOrder(*self.next(), account_id, order_id=order_id, qty=qty, price=price)


def replay(commands: list[Command]) -> tuple[list[list[Record]], ReferenceBook]:
    """Apply commands to both, failing on any difference; return the records per command."""
    exchange = Exchange([INSTRUMENT])
    reference = ReferenceBook(RULES)
    mirror = DepthMirror()
    positions: dict[int, int] = {}
    results: list[list[Record]] = []
    for command in commands:
        actual: list[Record] = []
        for event in exchange.apply(command):
            if isinstance(event, BookUpdated):
                mirror.apply(event)
            elif isinstance(event, PositionChanged):
                positions[event.account_id] = event.qty
            elif not isinstance(event, BalanceChanged | LedgerEntry):
                # Money is the core's own business, checked by its conservation invariant.
                actual.append(record(event))
        expected = reference.apply(command)
        assert actual == expected, f"after {command}"
        results.append(expected)
    compare_state(exchange, reference, mirror, positions, "end")
    exchange.check_invariants()
    return results, reference


TIME_IN_FORCE_EXPIRY = ExpireReason.TIME_IN_FORCE
STP_EXPIRY = ExpireReason.SELF_TRADE_PREVENTION


def own_order_in_the_way() -> tuple[Script, list[Command]]:
    """Asks of 10 lots at 3001 (account 2), 3002 (account 1) and 3003 (account 2)."""
    script = Script()
    commands = [
        *script.accounts(2),
        script.mark(3_000),
        script.limit(2, SELL, 10, 3_001),
        script.limit(1, SELL, 10, 3_002),
        script.limit(2, SELL, 10, 3_003),
    ]
    return script, commands


@pytest.mark.parametrize(
    "prevention", [SelfTradePrevention.EXPIRE_TAKER, SelfTradePrevention.EXPIRE_BOTH]
)
def test_fok_that_would_meet_its_own_order_is_killed_and_the_maker_stays(
    prevention: SelfTradePrevention,
) -> None:
    script, commands = own_order_in_the_way()
    commands.append(script.limit(1, BUY, 15, 3_003, TimeInForce.FOK, prevention))
    results, reference = replay(commands)
    assert results[-1][1:] == [("expired", 4, 1, TIME_IN_FORCE_EXPIRY)]
    assert [ids for _, _, ids in reference.levels(SELL)] == [(1,), (2,), (3,)]


def test_fok_that_expires_its_own_makers_counts_only_the_others() -> None:
    script, commands = own_order_in_the_way()
    prevention = SelfTradePrevention.EXPIRE_MAKER
    commands.append(script.limit(1, BUY, 25, 3_003, TimeInForce.FOK, prevention))
    commands.append(script.limit(1, BUY, 20, 3_003, TimeInForce.FOK, prevention))
    results, reference = replay(commands)
    assert results[-2][1:] == [("expired", 4, 1, TIME_IN_FORCE_EXPIRY)]
    assert [entry[:2] for entry in results[-1][1:]] == [
        ("filled", 1),
        ("filled", 5),
        ("expired", 2),
        ("filled", 3),
        ("filled", 5),
    ]
    assert reference.levels(SELL) == []


def test_self_trade_with_prevention_none_fills_against_the_same_account() -> None:
    script, commands = own_order_in_the_way()
    commands.append(script.limit(1, BUY, 20, 3_002, TimeInForce.IOC, SelfTradePrevention.NONE))
    results, _ = replay(commands)
    fills = [entry for entry in results[-1] if entry[0] == "filled"]
    assert [(entry[1], entry[2], entry[5]) for entry in fills] == [
        (1, 2, 3_001),
        (4, 1, 3_001),
        (2, 1, 3_002),
        (4, 1, 3_002),
    ]
    assert fills[0][9] == 60_020  # 3001 ticks x 10 lots x 1e4 atoms x 0.0002


def test_market_order_stops_at_the_band_edge() -> None:
    script = Script()
    commands = [
        *script.accounts(2),
        script.mark(3_000),
        script.limit(2, SELL, 10, 3_010),
        script.limit(2, SELL, 10, 3_025),
        # The band's top becomes floor(2990 x 1.01) = 3019, below the second ask.
        script.mark(2_990),
        script.market(1, BUY, 15),
    ]
    results, reference = replay(commands)
    assert [entry[:2] for entry in results[-1][1:]] == [
        ("filled", 1),
        ("filled", 3),
        ("expired", 3),
    ]
    assert results[-1][-1][3] is ExpireReason.PRICE_BAND
    assert reference.levels(SELL) == [(3_025, 10, (2,))]


def test_amend_keeps_priority_only_for_a_smaller_qty_at_the_same_price() -> None:
    script = Script()
    commands = [
        *script.accounts(3),
        script.mark(3_000),
        script.limit(1, BUY, 10, 2_990),
        script.limit(2, BUY, 10, 2_990),
        script.amend(1, 1, qty=8),
        script.amend(2, 2, qty=12),
        script.amend(1, 1, price=2_991),
        script.amend(1, 1, price=2_990),
    ]
    results, reference = replay(commands)
    amended = [entry for result in results[-4:] for entry in result if entry[0] == "amended"]
    assert [entry[6] for entry in amended] == [True, False, False, False]
    assert reference.levels(BUY) == [(2_990, 20, (2, 1))]


def test_amend_across_the_spread_trades_as_a_taker() -> None:
    script = Script()
    commands = [
        *script.accounts(2),
        script.mark(3_000),
        script.limit(1, SELL, 10, 3_005),
        script.limit(2, BUY, 15, 2_995),
        script.amend(2, 2, price=3_005),
    ]
    results, reference = replay(commands)
    assert [entry[0] for entry in results[-1]] == ["amended", "filled", "filled"]
    assert results[-1][2][8] is LiquiditySide.TAKER
    assert reference.levels(BUY) == [(3_005, 5, (2,))]


def test_before_any_price_a_market_order_walks_the_whole_book() -> None:
    script = Script()
    commands = [
        *script.accounts(2),
        script.limit(2, SELL, 10, 3_000),
        script.limit(2, SELL, 10, 4_000),
        script.market(1, BUY, 20),
        # With no mark, the band follows the last trade: 4000 +- 1% is 3960 to 4040.
        script.limit(2, SELL, 10, 3_959),
        script.limit(2, SELL, 10, 3_960),
    ]
    results, reference = replay(commands)
    market, too_low, in_band = results[-3:]
    assert [entry[5] for entry in market if entry[0] == "filled"] == [3_000] * 2 + [4_000] * 2
    assert too_low == [("rejected", 2, RejectCode.PRICE_OUTSIDE_BAND)]
    assert in_band[0][0] == "accepted"
    assert reference.band() == (3_960, 4_040)
