"""Liquidity agents: a market maker and a noise taker, trading like any other account.

They read the exchange's public state (index, book, their own position) and act only by
submitting ordinary commands through the sequencer, so their orders are checked, journalled
and published like everyone else's. The house account may simply hold a very large balance.
"""

from __future__ import annotations

import asyncio
import random
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import structlog

from exchange.core.commands import (
    CancelAllOrders,
    Command,
    CreateAccount,
    Deposit,
    PlaceOrder,
    SetLeverage,
)
from exchange.core.enums import OrderType, Side
from exchange.core.events import (
    AccountCreated,
    Event,
    MarkUpdated,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
)
from exchange.core.exchange import Exchange
from exchange.core.instruments import Instrument
from exchange.core.numbers import atoms, ceil_div
from exchange.runtime.config import MarketMakerConfig, NoiseTakerConfig
from exchange.runtime.sequencer import MakeCommand, Result, Sequencer

log = structlog.get_logger("paperex.agents")

_BPS = Decimal(10_000)


async def open_account(sequencer: Sequencer, name: str, deposit: int = 0) -> int:
    """Create an account through the sequencer, deposit atoms into it, and return its id."""
    result = await sequencer.submit(lambda seq, ts: CreateAccount(seq, ts, name))
    account_id = next(
        event.account_id for event in result.events if isinstance(event, AccountCreated)
    )
    if deposit > 0:
        await sequencer.submit(lambda seq, ts: Deposit(seq, ts, account_id, deposit))
    return account_id


def lots_for_notional(instrument: Instrument, price: int, notional: int) -> int:
    """Return the lots worth about notional atoms at price, at least the instrument's minimum.

    Rounded up, so that a level always reaches the instrument's minimum notional.
    """
    per_lot = instrument.notional(price, 1)
    lots = ceil_div(max(notional, instrument.min_notional), per_lot)
    return min(max(lots, instrument.min_qty), instrument.max_qty)


def _limit_order(account_id: int, symbol: str, side: Side, price: int, qty: int) -> MakeCommand:
    def make(seq: int, ts: int) -> Command:
        return PlaceOrder(seq, ts, account_id, symbol, side, OrderType.LIMIT, qty, price)

    return make


def _set_leverage(account_id: int, symbol: str, leverage: int) -> MakeCommand:
    def make(seq: int, ts: int) -> Command:
        return SetLeverage(seq, ts, account_id, symbol, leverage)

    return make


# ---------------------------------------------------------------------- market maker


class MarketMaker:
    """Quote a ladder of bids and asks around each symbol's index on the house account.

    It requotes a symbol (cancel all, then the full ladder, queued back to back) when the
    index moves, and when someone else's action took one of its orders away: a level
    traded through, or an order canceled or expired by the exchange.
    """

    def __init__(
        self,
        config: MarketMakerConfig,
        sequencer: Sequencer,
        exchange: Exchange,
        account_id: int,
    ) -> None:
        self.config = config
        self.sequencer = sequencer
        self.exchange = exchange
        self.account_id = account_id
        self.symbols = sorted(exchange.markets)
        self.size = atoms(config.size, "size")
        self.refreshes = 0
        self._quoted_index: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._wakeup = asyncio.Event()
        self._log = log.bind(agent="market_maker", account=account_id)
        self._unsubscribe = sequencer.subscribe(self._on_applied)

    def close(self) -> None:
        """Stop listening to the sequencer."""
        self._unsubscribe()

    # ------------------------------------------------------------------ the ladder

    def ladder(self, symbol: str, index: int) -> list[tuple[Side, int, int]]:
        """Return (side, price ticks, qty lots) for every level around index, best first.

        Levels outside the exchange's price band are left out: they would be refused.
        """
        market = self.exchange.markets[symbol]
        instrument = market.instrument
        band = market.price_band()
        low, high = band if band is not None else (1, None)
        config = self.config
        half_spread = config.spread_bps / 2
        orders: list[tuple[Side, int, int]] = []
        previous_bid, previous_ask = index, index
        for level in range(config.levels):
            offset = (half_spread + level * config.step_bps) / _BPS
            bid = int((index * (1 - offset)).to_integral_value(rounding=ROUND_FLOOR))
            ask = int((index * (1 + offset)).to_integral_value(rounding=ROUND_CEILING))
            # Each level at least one tick beyond the previous, whatever the rounding did.
            bid = min(bid, previous_bid - 1)
            ask = max(ask, previous_ask + 1)
            previous_bid, previous_ask = bid, ask
            if bid >= max(low, 1):
                orders.append((Side.BUY, bid, lots_for_notional(instrument, bid, self.size)))
            if high is None or ask <= high:
                orders.append((Side.SELL, ask, lots_for_notional(instrument, ask, self.size)))
        return orders

    def _commands(self, symbol: str, index: int) -> list[MakeCommand]:
        account_id = self.account_id

        def cancel_all(seq: int, ts: int) -> Command:
            return CancelAllOrders(seq, ts, account_id, symbol)

        makes: list[MakeCommand] = [cancel_all]
        for side, price, qty in self.ladder(symbol, index):
            makes.append(_limit_order(account_id, symbol, side, price, qty))
        return makes

    async def refresh(self, symbol: str) -> list[Result]:
        """Replace the symbol's quotes with a fresh ladder around the current index."""
        index = self.exchange.markets[symbol].index_price
        if index is None:
            return []
        self._quoted_index[symbol] = index
        self.refreshes += 1
        # Queued back to back, so no other command lands between the cancel and the ladder.
        futures = self.sequencer.enqueue_many(self._commands(symbol, index))
        results = await asyncio.gather(*futures)
        self._log.debug("requoted", symbol=symbol, index=index, seq=results[0].command.seq)
        return list(results)

    async def prepare(self) -> None:
        """Set the house account's leverage in every symbol."""
        account_id, leverage = self.account_id, self.config.leverage
        for symbol in self.symbols:
            await self.sequencer.submit(_set_leverage(account_id, symbol, leverage))

    # ------------------------------------------------------------------ reacting

    def _on_applied(self, command: Command, events: list[Event]) -> None:
        if getattr(command, "account_id", None) == self.account_id:
            # Its own commands: reacting to them would requote forever.
            return
        account_id = self.account_id
        for event in events:
            if isinstance(event, MarkUpdated):
                if self._quoted_index.get(event.symbol) != event.index_price:
                    self._dirty.add(event.symbol)
            elif isinstance(event, OrderFilled):
                if event.account_id == account_id and event.leaves_qty == 0:
                    self._dirty.add(event.symbol)
            elif isinstance(event, OrderCanceled | OrderExpired) and event.account_id == account_id:
                self._dirty.add(event.symbol)
        if self._dirty:
            self._wakeup.set()

    async def run(self) -> None:
        """Quote every symbol that has an index, then requote whenever one needs it."""
        self._log.info("market_maker_started", levels=self.config.levels)
        await self.prepare()
        self._dirty.update(s for s in self.symbols if self.exchange.markets[s].index_price)
        while True:
            if not self._dirty:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            symbols = sorted(self._dirty)
            self._dirty.clear()
            for symbol in symbols:
                await self.refresh(symbol)


# ---------------------------------------------------------------------- noise taker


class NoiseTaker:
    """Send market orders of random side and size at random times (a seeded generator).

    Sizes are drawn in whole lots between min_size and max_size of notional at the index;
    the side leans against the taker's own position so that it does not drift off forever.
    """

    def __init__(
        self,
        config: NoiseTakerConfig,
        sequencer: Sequencer,
        exchange: Exchange,
        account_id: int,
        *,
        seed: int,
    ) -> None:
        self.config = config
        self.sequencer = sequencer
        self.exchange = exchange
        self.account_id = account_id
        self.symbols = sorted(exchange.markets)
        self.rng = random.Random(seed)
        self.min_size = atoms(config.min_size, "min_size")
        self.max_size = atoms(config.max_size, "max_size")
        self.rate_per_s = float(config.rate_per_s)
        self._log = log.bind(agent="noise_taker", account=account_id)

    def next_order(self) -> tuple[str, Side, int] | None:
        """Draw the next order: symbol, side and qty in lots (None: no index yet)."""
        rng = self.rng
        symbol = rng.choice(self.symbols)
        market = self.exchange.markets[symbol]
        index = market.index_price
        # Draw everything before deciding, so the sequence of draws does not depend on state.
        lean_draw = rng.random()
        size_draw = rng.random()
        if index is None:
            return None
        instrument = market.instrument
        low = lots_for_notional(instrument, index, self.min_size)
        high = max(lots_for_notional(instrument, index, self.max_size), low)
        qty = low + int(size_draw * (high - low + 1))
        qty = min(qty, high, instrument.max_market_qty)
        account = self.exchange.ledger.accounts.get(self.account_id)
        position = 0 if account is None else account.position_qty(symbol)
        # Lean against the position: at 10 maximum orders long it only sells.
        limit = 10 * high
        lean = max(-1.0, min(1.0, position / limit))
        side = Side.BUY if lean_draw < 0.5 - 0.5 * lean else Side.SELL
        return symbol, side, qty

    async def trade_once(self) -> Result | None:
        """Send one market order, if there is an index to size it by."""
        drawn = self.next_order()
        if drawn is None:
            return None
        symbol, side, qty = drawn
        account_id = self.account_id
        return await self.sequencer.submit(
            lambda seq, ts: PlaceOrder(seq, ts, account_id, symbol, side, OrderType.MARKET, qty)
        )

    async def prepare(self) -> None:
        """Set the taker's leverage in every symbol."""
        account_id, leverage = self.account_id, self.config.leverage
        for symbol in self.symbols:
            await self.sequencer.submit(_set_leverage(account_id, symbol, leverage))

    async def run(self) -> None:
        """Trade at random (exponential) intervals until cancelled."""
        self._log.info("noise_taker_started", rate_per_s=self.rate_per_s)
        await self.prepare()
        while True:
            await asyncio.sleep(self.rng.expovariate(self.rate_per_s))
            await self.trade_once()
