"""A small scenario builder over the pure core, so tests read like stories."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from exchange.core.codes import RejectCode
from exchange.core.commands import (
    AdjustIsolatedMargin,
    AmendOrder,
    CancelAllOrders,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    FundingRate,
    MarkPrice,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
    SettleFunding,
    UpdateMark,
    Withdraw,
)
from exchange.core.enums import MarginMode, OrderType, Side, TimeInForce
from exchange.core.events import (
    AccountCreated,
    CommandRejected,
    Event,
    OrderAccepted,
    OrderRejected,
)
from exchange.core.exchange import Exchange
from exchange.core.instruments import Instrument
from exchange.core.ledger import Account, Position
from exchange.core.numbers import atoms, rate

E = TypeVar("E")

BTC = Instrument.create(
    symbol="BTCUSDT",
    base_asset="BTC",
    tick_size="0.1",
    lot_size="0.001",
    min_qty="0.001",
    max_qty="1000",
    max_market_qty="120",
    min_notional="5",
    price_band="0.05",
    brackets=[(0, 50_000, 125, "0.004"), (50_000, 600_000, 100, "0.005")],
)


def ticks(price: str) -> int:
    return BTC.price_ticks(price)


def lots(qty: str) -> int:
    return BTC.qty_lots(qty)


class Scenario:
    """Drive an Exchange with readable steps, recording every command and event."""

    def __init__(self, *instruments: Instrument) -> None:
        self.instruments = instruments or (BTC,)
        self.exchange = Exchange(self.instruments)
        self.commands: list[Command] = []
        self.events: list[Event] = []
        self.seq = 0
        self.ts = 1_700_000_000_000

    def apply(self, command: Command) -> list[Event]:
        events = self.exchange.apply(command)
        self.commands.append(command)
        self.events.extend(events)
        self.exchange.check_invariants()
        return events

    def next(self) -> tuple[int, int]:
        self.seq += 1
        self.ts += 1
        return self.seq, self.ts

    def account(self, name: str = "trader", deposit: str | None = "1000000") -> int:
        """Open an account, by default with a million USDT so margin does not bind."""
        (event,) = self.apply(CreateAccount(*self.next(), name))
        assert isinstance(event, AccountCreated)
        if deposit is not None:
            self.apply(Deposit(*self.next(), event.account_id, atoms(deposit)))
        return event.account_id

    def mark(self, price: str, symbol: str = "BTCUSDT") -> list[Event]:
        value = ticks(price)
        return self.apply(UpdateMark(*self.next(), (MarkPrice(symbol, value, value),)))

    def place(
        self,
        account_id: int,
        side: Side,
        qty: str,
        price: str | None = None,
        *,
        order_type: OrderType | None = None,
        trigger: str | None = None,
        symbol: str = "BTCUSDT",
        **options: Any,
    ) -> list[Event]:
        if order_type is None:
            order_type = OrderType.LIMIT if price is not None else OrderType.MARKET
        return self.apply(
            PlaceOrder(
                *self.next(),
                account_id,
                symbol,
                side,
                order_type,
                lots(qty) if qty else 0,
                ticks(price) if price is not None else None,
                ticks(trigger) if trigger is not None else None,
                **options,
            )
        )

    def limit(
        self,
        account_id: int,
        side: Side,
        qty: str,
        price: str,
        time_in_force: TimeInForce = TimeInForce.GTC,
        **options: Any,
    ) -> int:
        """Place a limit order that must be accepted; return its order id."""
        events = self.place(account_id, side, qty, price, time_in_force=time_in_force, **options)
        return first(events, OrderAccepted).order_id

    def cancel(self, account_id: int, order_id: int) -> list[Event]:
        return self.apply(CancelOrder(*self.next(), account_id, order_id=order_id))

    def cancel_all(self, account_id: int, symbol: str | None = None) -> list[Event]:
        return self.apply(CancelAllOrders(*self.next(), account_id, symbol))

    def amend(
        self, account_id: int, order_id: int, qty: str | None = None, price: str | None = None
    ) -> list[Event]:
        return self.apply(
            AmendOrder(
                *self.next(),
                account_id,
                order_id=order_id,
                qty=lots(qty) if qty is not None else None,
                price=ticks(price) if price is not None else None,
            )
        )

    def position(self, account_id: int, symbol: str = "BTCUSDT") -> int:
        return self.exchange.ledger.accounts[account_id].position_qty(symbol)

    def book(self, symbol: str = "BTCUSDT") -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        book = self.exchange.markets[symbol].book
        return book.bids.depth(), book.asks.depth()

    # Money and settings, appended for the ledger tests.

    def deposit(self, account_id: int, amount: str) -> list[Event]:
        return self.apply(Deposit(*self.next(), account_id, atoms(amount)))

    def withdraw(self, account_id: int, amount: str) -> list[Event]:
        return self.apply(Withdraw(*self.next(), account_id, atoms(amount)))

    def set_leverage(self, account_id: int, leverage: int, symbol: str = "BTCUSDT") -> list[Event]:
        return self.apply(SetLeverage(*self.next(), account_id, symbol, leverage))

    def set_margin_mode(
        self, account_id: int, margin_mode: MarginMode, symbol: str = "BTCUSDT"
    ) -> list[Event]:
        return self.apply(SetMarginMode(*self.next(), account_id, symbol, margin_mode))

    def adjust_margin(self, account_id: int, amount: str, symbol: str = "BTCUSDT") -> list[Event]:
        """Move USDT into an isolated position (positive) or back to the wallet (negative)."""
        return self.apply(AdjustIsolatedMargin(*self.next(), account_id, symbol, atoms(amount)))

    def funding(self, funding_rate: str, symbol: str = "BTCUSDT") -> list[Event]:
        return self.apply(SettleFunding(*self.next(), (FundingRate(symbol, rate(funding_rate)),)))

    def ledger_account(self, account_id: int) -> Account:
        return self.exchange.ledger.accounts[account_id]

    def position_record(self, account_id: int, symbol: str = "BTCUSDT") -> Position:
        return self.exchange.ledger.accounts[account_id].positions[symbol]


def first(events: list[Event], kind: type[E]) -> E:
    """Return the first event of a kind, failing the test if there is none."""
    for event in events:
        if isinstance(event, kind):
            return event
    raise AssertionError(f"no {kind.__name__} in {events}")


def of_kind(events: list[Event], kind: type[E]) -> list[E]:
    return [event for event in events if isinstance(event, kind)]


def rejection(events: Sequence[object]) -> RejectCode:
    """Return the code of the rejection among events, failing the test if there is none."""
    for event in events:
        if isinstance(event, OrderRejected | CommandRejected):
            return event.code
    raise AssertionError(f"not rejected: {events}")
