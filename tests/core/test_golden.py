"""Binance's published liquidation examples, reproduced through the exchange itself.

The positions are opened by real trades, the margin is moved by real commands, and the
numbers are read from the exchange's own risk report, then the liquidation is shown to
fire on the right side of the published price.
"""

from __future__ import annotations

import pytest

from exchange.core.commands import (
    AdjustIsolatedMargin,
    CreateAccount,
    Deposit,
    MarkPrice,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
    UpdateMark,
)
from exchange.core.enums import MarginMode, OrderType, Side
from exchange.core.events import Event, Liquidated
from exchange.core.exchange import Exchange
from exchange.core.instruments import Instrument
from exchange.core.margin import format_price
from exchange.core.numbers import atoms
from exchange.core.risk import account_risk
from tests.core.test_margin import BTC_2021_BRACKETS, ETH_2021_BRACKETS

WALLET = "1535443.01"


def free_instrument(symbol: str, brackets: tuple[tuple[str, str, int, str], ...]) -> Instrument:
    """Binance's examples leave fees out, so these instruments charge none."""
    return Instrument.create(
        symbol=symbol,
        base_asset=symbol.removesuffix("USDT"),
        tick_size="0.01",
        lot_size="0.001",
        min_qty="0.001",
        max_qty="100000",
        maker_fee="0",
        taker_fee="0",
        price_band="0.2",
        brackets=brackets,
    )


ETH = free_instrument("ETHUSDT", ETH_2021_BRACKETS)
BTC = free_instrument("BTCUSDT", BTC_2021_BRACKETS)
EXAMPLE = {
    "ETHUSDT": (ETH, "3683.979", "1456.84", "1335.18", 4),
    "BTCUSDT": (BTC, "109.488", "32481.98", "31967.27", 20),
}


class Desk:
    """An exchange with a trader holding the published wallet and a well-funded seller."""

    def __init__(self) -> None:
        self.exchange = Exchange([ETH, BTC])
        self.seq = 0
        self.trader = self.open("trader", WALLET)
        self.seller = self.open("seller", "1000000000")

    def run(self, command_type: type, *fields: object, **named: object) -> list[Event]:
        self.seq += 1
        events = self.exchange.apply(command_type(self.seq, self.seq, *fields, **named))
        self.exchange.check_invariants()
        return events

    def open(self, name: str, deposit: str) -> int:
        self.run(CreateAccount, name)
        account_id = self.exchange.next_account_id - 1
        self.run(Deposit, account_id, atoms(deposit))
        return account_id

    def mark(self, symbol: str, price: str) -> list[Event]:
        ticks = EXAMPLE[symbol][0].price_ticks(price)
        return self.run(UpdateMark, (MarkPrice(symbol, ticks, ticks),))

    def buy(self, symbol: str, mode: MarginMode) -> None:
        instrument, qty, entry, _, leverage = EXAMPLE[symbol]
        self.mark(symbol, entry)
        self.run(SetMarginMode, self.trader, symbol, mode)
        self.run(SetLeverage, self.trader, symbol, leverage)
        self.run(SetLeverage, self.seller, symbol, leverage)
        price, lots = instrument.price_ticks(entry), instrument.qty_lots(qty)
        self.run(PlaceOrder, self.seller, symbol, Side.SELL, OrderType.LIMIT, lots, price)
        self.run(PlaceOrder, self.trader, symbol, Side.BUY, OrderType.LIMIT, lots, price)
        assert self.exchange.ledger.accounts[self.trader].positions[symbol].qty == lots

    def liquidation_price(self, symbol: str) -> str:
        report = account_risk(self.exchange.ledger, self.exchange.ledger.accounts[self.trader])
        (position,) = [p for p in report.positions if p.symbol == symbol]
        assert position.liquidation_price is not None
        return format_price(position.liquidation_price)


def isolated_with_the_whole_wallet(symbol: str) -> Desk:
    desk = Desk()
    desk.buy(symbol, MarginMode.ISOLATED)
    # The published isolated example stands the whole wallet behind the position.
    left = desk.exchange.ledger.accounts[desk.trader].wallet
    desk.run(AdjustIsolatedMargin, desk.trader, symbol, left)
    position = desk.exchange.ledger.accounts[desk.trader].positions[symbol]
    assert position.isolated_margin == atoms(WALLET)
    return desk


@pytest.mark.parametrize(
    ("symbol", "published", "last_safe", "first_liquidated"),
    [
        # The exact prices are 1114.7849... and 18778.7259...: a mark one cent above the
        # tick at or below them is still safe.
        ("ETHUSDT", "1114.78", "1114.79", "1114.78"),
        ("BTCUSDT", "18778.73", "18778.73", "18778.72"),
    ],
)
def test_isolated_examples_liquidate_at_the_published_price(
    symbol: str, published: str, last_safe: str, first_liquidated: str
) -> None:
    desk = isolated_with_the_whole_wallet(symbol)
    assert desk.liquidation_price(symbol) == published
    assert not any(isinstance(e, Liquidated) for e in desk.mark(symbol, last_safe))
    assert any(isinstance(e, Liquidated) for e in desk.mark(symbol, first_liquidated))


def test_cross_example_gives_both_published_liquidation_prices() -> None:
    desk = Desk()
    desk.buy("ETHUSDT", MarginMode.CROSS)
    desk.buy("BTCUSDT", MarginMode.CROSS)
    assert desk.exchange.ledger.accounts[desk.trader].wallet == atoms(WALLET)
    desk.mark("ETHUSDT", "1335.18")
    desk.mark("BTCUSDT", "31967.27")

    assert desk.liquidation_price("ETHUSDT") == "1153.26"
    assert desk.liquidation_price("BTCUSDT") == "26316.89"
