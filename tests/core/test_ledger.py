"""Ledger scenarios: wallets, holds, settlement, isolated margin, leverage, funding, conservation.

Every amount is exact integer atoms (1 USDT = 100_000_000 atoms), worked out in the test from
the numbers of the story. The test instrument is BTCUSDT from the builders: tick 0.1, lot 0.001,
maker fee 0.02%, taker fee 0.05%, brackets 0-50k at 125x and 50k-600k at 100x.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from exchange.core.codes import RejectCode
from exchange.core.enums import LedgerEntryKind, LiquiditySide, MarginMode, Side, TimeInForce
from exchange.core.events import (
    BalanceChanged,
    Event,
    LedgerEntry,
    OrderAccepted,
    OrderExpired,
    OrderFilled,
    PositionChanged,
)
from exchange.core.integrity import InvariantError
from exchange.core.ledger import SystemAccount
from exchange.core.numbers import ATOMS_PER_UNIT, atoms, format_atoms
from tests.core.builders import Scenario, first, lots, of_kind, rejection

USDT = ATOMS_PER_UNIT
ENTRY = "60000"
EXIT = "61000"
BUY, SELL = Side.BUY, Side.SELL
CROSS, ISOLATED = MarginMode.CROSS, MarginMode.ISOLATED


@pytest.fixture
def market() -> Scenario:
    scenario = Scenario()
    scenario.mark(ENTRY)
    return scenario


def trade(
    market: Scenario, maker: int, taker: int, taker_side: Side, qty: str, price: str
) -> list[Event]:
    """Rest the maker's order, then let the taker cross it; return the taker's events."""
    market.limit(maker, taker_side.opposite, qty, price)
    return market.place(taker, taker_side, qty, price)


def fill_of(events: Sequence[Event], account_id: int) -> OrderFilled:
    for event in events:
        if isinstance(event, OrderFilled) and event.account_id == account_id:
            return event
    raise AssertionError(f"no fill of account {account_id} in {events}")


def balance_of(events: Sequence[Event], account_id: int) -> BalanceChanged:
    for event in events:
        if isinstance(event, BalanceChanged) and event.account_id == account_id:
            return event
    raise AssertionError(f"no balance change of account {account_id} in {events}")


def position_of(events: Sequence[Event], account_id: int) -> PositionChanged:
    for event in events:
        if isinstance(event, PositionChanged) and event.account_id == account_id:
            return event
    raise AssertionError(f"no position change of account {account_id} in {events}")


def wallet(market: Scenario, account_id: int) -> int:
    return market.ledger_account(account_id).wallet


def order_margin(market: Scenario, account_id: int) -> int:
    return market.ledger_account(account_id).order_margin


def available(market: Scenario, account_id: int) -> int:
    ledger = market.exchange.ledger
    return ledger.available_balance(ledger.accounts[account_id])


def fee_pool(market: Scenario) -> int:
    return market.exchange.ledger.system[SystemAccount.FEE_POOL]


def funding_pool(market: Scenario) -> int:
    return market.exchange.ledger.system[SystemAccount.FUNDING_POOL]


# ---------------------------------------------------------------- deposit and withdraw


def test_a_deposit_credits_the_wallet_and_is_recorded() -> None:
    scenario = Scenario()
    trader = scenario.account("trader", deposit=None)

    events = scenario.deposit(trader, "250.5")

    amount = 250 * USDT + 50_000_000  # 250.5 USDT
    assert first(events, LedgerEntry) == LedgerEntry(
        events[0].seq, trader, None, LedgerEntryKind.DEPOSIT, amount
    )
    assert first(events, BalanceChanged).wallet_balance == amount
    assert wallet(scenario, trader) == amount
    assert scenario.exchange.ledger.deposits == amount


def test_a_withdrawal_leaves_the_wallet_but_never_more_than_it_holds() -> None:
    scenario = Scenario()
    trader = scenario.account("trader", deposit="1000")

    events = scenario.withdraw(trader, "400")

    assert first(events, LedgerEntry).kind is LedgerEntryKind.WITHDRAWAL
    assert first(events, LedgerEntry).amount == -400 * USDT
    assert wallet(scenario, trader) == 600 * USDT
    assert rejection(scenario.withdraw(trader, "600.00000001")) is RejectCode.INSUFFICIENT_BALANCE
    assert wallet(scenario, trader) == 600 * USDT

    scenario.withdraw(trader, "600")

    assert wallet(scenario, trader) == 0
    assert scenario.exchange.ledger.withdrawals == 1000 * USDT


@pytest.mark.parametrize(
    ("mark", "withdrawable"),
    [
        # Wallet 10,000 - 30 taker fee = 9,970. Available = wallet + PnL - mark / 20.
        # Flat mark: 9,970 - 60,000 / 20 = 6,970.
        (ENTRY, "6970"),
        # Profit: 9,970 + 1,000 - 61,000 / 20 = 7,920 available, but the 1,000 of profit
        # is not realised yet and may not leave: 6,920.
        (EXIT, "6920"),
        # Loss: 9,970 - 1,000 - 59,000 / 20 = 6,020.
        ("59000", "6020"),
    ],
)
def test_only_available_balance_without_unrealised_profit_can_be_withdrawn(
    market: Scenario, mark: str, withdrawable: str
) -> None:
    maker, trader = market.account("maker"), market.account("trader", deposit="10000")
    trade(market, maker, trader, BUY, "1", ENTRY)
    market.mark(mark)

    too_much = market.withdraw(trader, format_atoms(atoms(withdrawable) + 1))

    assert rejection(too_much) is RejectCode.INSUFFICIENT_BALANCE
    market.withdraw(trader, withdrawable)
    assert wallet(market, trader) == 9970 * USDT - atoms(withdrawable)


@pytest.mark.parametrize("command", ["deposit", "withdraw"])
@pytest.mark.parametrize("amount", ["0", "-1"])
def test_non_positive_amounts_are_rejected(command: str, amount: str) -> None:
    scenario = Scenario()
    trader = scenario.account("trader", deposit="1000")

    events = getattr(scenario, command)(trader, amount)

    assert rejection(events) is RejectCode.INVALID_AMOUNT
    assert of_kind(events, LedgerEntry) == []
    assert wallet(scenario, trader) == 1000 * USDT


@pytest.mark.parametrize("command", ["deposit", "withdraw"])
def test_money_for_an_unknown_account_is_rejected(command: str) -> None:
    scenario = Scenario()

    events = getattr(scenario, command)(99, "10")

    assert rejection(events) is RejectCode.UNKNOWN_ACCOUNT
    assert scenario.exchange.ledger.deposits == scenario.exchange.ledger.withdrawals == 0


# ---------------------------------------------------------------- the pre-trade hold


def test_a_resting_order_holds_initial_margin_at_its_price_plus_the_taker_fee(
    market: Scenario,
) -> None:
    trader = market.account("trader", deposit="10000")

    order_id = market.limit(trader, BUY, "1", "59000")

    # 59,000 / 20x = 2,950 initial margin; no open loss below the mark; 59,000 x 0.05% = 29.5.
    hold = 2950 * USDT + 29 * USDT + 50_000_000
    assert market.exchange.orders[order_id].hold == hold
    assert order_margin(market, trader) == hold
    assert available(market, trader) == 10000 * USDT - hold


@pytest.mark.parametrize(
    ("side", "price", "hold"),
    [
        # A sell below the 60,000 mark opens 500 USDT in the red:
        # 59,500 / 20 = 2,975 + 500 open loss + 59,500 x 0.05% = 29.75.
        (SELL, "59500", "3504.75"),
        # A buy above the mark: 60,500 / 20 = 3,025 + 500 + 30.25.
        (BUY, "60500", "3555.25"),
        # Priced better than the mark: no open loss. 60,500 / 20 = 3,025 + 30.25.
        (SELL, "60500", "3055.25"),
    ],
)
def test_an_order_priced_worse_than_mark_also_holds_its_open_loss(
    market: Scenario, side: Side, price: str, hold: str
) -> None:
    trader = market.account("trader")

    market.limit(trader, side, "1", price)

    assert order_margin(market, trader) == atoms(hold)


def test_an_order_the_account_cannot_margin_is_rejected(market: Scenario) -> None:
    trader = market.account("trader", deposit="3000")

    # 1 BTC at 60,000: 3,000 margin + 30 fee = 3,030 > 3,000.
    too_big = market.place(trader, BUY, "1", ENTRY)

    assert rejection(too_big) is RejectCode.INSUFFICIENT_MARGIN
    assert order_margin(market, trader) == 0
    # 0.99 BTC: 59,400 / 20 = 2,970 + 29.7 fee = 2,999.7, which fits.
    market.limit(trader, BUY, "0.99", ENTRY)
    assert order_margin(market, trader) == atoms("2999.7")
    # Only 0.3 USDT is left; 0.001 BTC needs 3 + 0.03.
    assert rejection(market.place(trader, BUY, "0.001", ENTRY)) is RejectCode.INSUFFICIENT_MARGIN


def test_reduce_only_and_closing_orders_hold_nothing_only_the_opening_part_holds(
    market: Scenario,
) -> None:
    maker, trader = market.account("maker"), market.account("trader")
    trade(market, maker, trader, BUY, "1", ENTRY)

    market.limit(trader, SELL, "0.5", EXIT)
    market.limit(trader, SELL, "0.5", EXIT, reduce_only=True)
    assert order_margin(market, trader) == 0

    # The two sells already claim the whole long, so one more sell can only open a short:
    # 0.5 x 61,000 = 30,500: / 20 = 1,525 + 30,500 x 0.05% = 15.25.
    market.limit(trader, SELL, "0.5", EXIT)
    assert order_margin(market, trader) == atoms("1540.25")

    # Alone, a sell of 1.5 against the long of 1 opens only 0.5: the same hold.
    market.cancel_all(trader)
    opener = market.limit(trader, SELL, "1.5", EXIT)
    assert market.exchange.orders[opener].hold == atoms("1540.25")
    assert order_margin(market, trader) == atoms("1540.25")


def test_holds_are_released_on_cancel_and_none_is_left_after_cancel_all(
    market: Scenario,
) -> None:
    trader = market.account("trader")
    single = market.limit(trader, BUY, "1", "59000")

    market.cancel(trader, single)

    assert order_margin(market, trader) == 0
    for price in ("59000", "59500", "59900"):
        market.limit(trader, BUY, "1", price)
    market.limit(trader, SELL, "2", "60500")
    assert order_margin(market, trader) > 0

    market.cancel_all(trader)

    assert order_margin(market, trader) == 0
    assert market.exchange.open_orders(trader) == []
    assert available(market, trader) == 1_000_000 * USDT


def test_an_order_that_expires_gives_its_hold_back(market: Scenario) -> None:
    trader = market.account("trader")

    events = market.place(trader, BUY, "1", "59000", time_in_force=TimeInForce.IOC)

    assert first(events, OrderExpired).order_id == first(events, OrderAccepted).order_id
    assert order_margin(market, trader) == 0


def test_a_partial_fill_releases_its_share_of_the_hold_and_a_full_fill_the_rest(
    market: Scenario,
) -> None:
    trader, seller = market.account("trader"), market.account("seller")
    order_id = market.limit(trader, BUY, "1", ENTRY)
    # 60,000 / 20 = 3,000 + 60,000 x 0.05% = 30.
    assert order_margin(market, trader) == 3030 * USDT

    partly = market.place(seller, SELL, "0.25", ENTRY)

    # Three quarters of the order are left, so three quarters of the hold: 2,272.5.
    kept = 3030 * USDT * 3 // 4
    assert kept == atoms("2272.5")
    assert market.exchange.orders[order_id].hold == kept
    assert order_margin(market, trader) == kept
    assert partly

    market.place(seller, SELL, "0.75", ENTRY)

    assert order_margin(market, trader) == 0


def test_a_hold_changes_the_available_balance_but_not_the_wallet(market: Scenario) -> None:
    trader = market.account("trader")
    before = market.exchange.ledger.available_balance(market.ledger_account(trader))

    placed = market.place(trader, BUY, "1", "59000")

    # As on Binance, a hold is no wallet movement: no BalanceChanged, 2,979.5 less available.
    assert of_kind(placed, BalanceChanged) == []
    after = market.exchange.ledger.available_balance(market.ledger_account(trader))
    assert before - after == atoms("2979.5")
    order_id = first(placed, OrderAccepted).order_id
    market.cancel(trader, order_id)
    assert market.exchange.ledger.available_balance(market.ledger_account(trader)) == before


def test_a_market_order_before_any_price_is_known_still_needs_margin() -> None:
    scenario = Scenario()
    maker, poor = scenario.account("maker"), scenario.account("poor", deposit="100")
    scenario.limit(maker, SELL, "1", ENTRY)

    # 1 BTC at 60,000 needs 3,000 of margin; the account has 100.
    scenario.place(poor, BUY, "1")

    assert scenario.position(poor) == 0
    assert available(scenario, poor) >= 0


def test_an_order_that_closes_then_opens_keeps_the_whole_hold_for_the_opening_part(
    market: Scenario,
) -> None:
    maker, bidder, trader = market.account("m"), market.account("b"), market.account("t")
    trade(market, maker, trader, BUY, "1", ENTRY)
    market.limit(bidder, BUY, "1", ENTRY)

    # Sell 3 against a long of 1: 2 open a short. 120,000 / 20 = 6,000 + 120,000 x 0.05% = 60.
    market.place(trader, SELL, "3", ENTRY)

    # The bid took the closing 1; the 2 left all open a short and need all of the 6,060.
    assert market.position(trader) == 0
    assert order_margin(market, trader) == 6060 * USDT


def test_closing_orders_together_cannot_open_a_position_the_account_cannot_margin(
    market: Scenario,
) -> None:
    maker, buyer, trader = market.account("m"), market.account("b"), market.account("t", "1000")
    trade(market, maker, trader, BUY, "0.1", ENTRY)

    # Five sells of 0.1 against a long of 0.1: each alone only closes, so each holds nothing.
    for _ in range(5):
        market.place(trader, SELL, "0.1", ENTRY)
    market.place(buyer, BUY, "0.5", ENTRY)

    # Were all five accepted, the account would be short 0.4: 24,000 / 20 = 1,200 of margin
    # against a wallet of about 990.
    assert available(market, trader) >= 0


# ---------------------------------------------------------------- settlement


def test_closing_a_long_higher_realises_the_profit_and_fees_go_to_the_fee_pool(
    market: Scenario,
) -> None:
    maker, trader, buyer = market.account("m"), market.account("t"), market.account("b")
    opened = trade(market, maker, trader, BUY, "1", ENTRY)
    market.limit(trader, SELL, "1", EXIT)

    closed = market.place(buyer, BUY, "1", EXIT)

    open_fill, close_fill = fill_of(opened, trader), fill_of(closed, trader)
    assert (open_fill.liquidity_side, close_fill.liquidity_side) == (
        LiquiditySide.TAKER,
        LiquiditySide.MAKER,
    )
    # Opened as taker: 60,000 x 0.05% = 30. Closed as maker: 61,000 x 0.02% = 12.2.
    assert open_fill.fee == 30 * USDT
    assert open_fill.realized_pnl == 0
    assert close_fill.fee == atoms("12.2")
    # (61,000 - 60,000) x 1 BTC.
    assert close_fill.realized_pnl == 1000 * USDT
    assert wallet(market, trader) == (1_000_000 - 30 + 1000) * USDT - atoms("12.2")
    position = market.position_record(trader)
    assert (position.qty, position.cost) == (0, 0)
    # Both sides of both trades: 12 + 30 at 60,000; 12.2 + 30.5 at 61,000.
    assert fee_pool(market) == atoms("84.7")


def test_a_partial_close_of_a_short_releases_a_proportional_share_of_cost(
    market: Scenario,
) -> None:
    bidder, trader, seller = market.account("b"), market.account("t"), market.account("s")
    trade(market, bidder, trader, SELL, "2", ENTRY)

    events = trade(market, seller, trader, BUY, "0.5", "59000")

    fill = fill_of(events, trader)
    # A quarter of the 120,000 cost is released: 30,000 - 0.5 x 59,000 = +500.
    assert fill.realized_pnl == 500 * USDT
    # 29,500 x 0.05% = 14.75.
    assert fill.fee == atoms("14.75")
    position = position_of(events, trader)
    assert (position.qty, position.cost) == (-lots("1.5"), -90_000 * USDT)


def test_a_partial_close_rounds_the_released_cost_against_the_account(market: Scenario) -> None:
    maker, trader, bidder = market.account("m"), market.account("t"), market.account("b")
    trade(market, maker, trader, BUY, "0.001", ENTRY)
    trade(market, maker, trader, BUY, "0.002", "60000.1")
    # 60 + 120.0002 = 180.0002 USDT for 0.003 BTC.
    assert market.position_record(trader).cost == 18_000_020_000

    events = trade(market, bidder, trader, SELL, "0.001", ENTRY)

    # A third of 18,000,020,000 atoms is 6,000,006,666.67; a long rounds it up to ...667,
    # so the realised loss is 6,000,000,000 - 6,000,006,667 = -6,667 atoms, not -6,666.
    assert fill_of(events, trader).realized_pnl == -6_667
    assert market.position_record(trader).cost == 18_000_020_000 - 6_000_006_667


def test_a_flip_realises_pnl_on_the_closed_part_and_opens_the_rest_at_the_fill_price(
    market: Scenario,
) -> None:
    maker, bidder, trader = market.account("m"), market.account("b"), market.account("t")
    trade(market, maker, trader, BUY, "1", ENTRY)

    events = trade(market, bidder, trader, SELL, "3", EXIT)

    fill = fill_of(events, trader)
    # Long 1 closed at +1,000; the fee is on all 3: 183,000 x 0.05% = 91.5.
    assert fill.realized_pnl == 1000 * USDT
    assert fill.fee == atoms("91.5")
    position = position_of(events, trader)
    # Short 2 at 61,000.
    assert (position.qty, position.cost) == (-lots("2"), -122_000 * USDT)
    assert wallet(market, trader) == (1_000_000 - 30 + 1000) * USDT - atoms("91.5")


# ---------------------------------------------------------------- isolated margin


def test_an_isolated_position_takes_its_margin_from_the_wallet_and_gives_it_back_with_pnl(
    market: Scenario,
) -> None:
    maker, bidder, trader = market.account("m"), market.account("b"), market.account("t")
    market.set_margin_mode(trader, ISOLATED)
    market.set_leverage(trader, 10)

    opened = trade(market, maker, trader, BUY, "1", ENTRY)

    # 60,000 / 10x = 6,000 moves into the position; the 30 fee comes from the wallet.
    position = position_of(opened, trader)
    assert (position.margin_mode, position.leverage) == (ISOLATED, 10)
    assert position.isolated_margin == 6000 * USDT
    assert balance_of(opened, trader).wallet_balance == (1_000_000 - 6000 - 30) * USDT

    closed = trade(market, bidder, trader, SELL, "1", EXIT)

    # 6,000 margin + 1,000 profit come back; the 30.5 fee leaves.
    assert position_of(closed, trader).isolated_margin == 0
    assert wallet(market, trader) == (1_000_000 - 30 + 1000) * USDT - atoms("30.5")


def test_a_partial_isolated_close_at_a_loss_returns_its_share_of_what_margin_is_left(
    market: Scenario,
) -> None:
    maker, bidder, trader = market.account("m"), market.account("b"), market.account("t")
    market.set_margin_mode(trader, ISOLATED)
    trade(market, maker, trader, BUY, "1", ENTRY)
    assert market.position_record(trader).isolated_margin == 3000 * USDT

    trade(market, bidder, trader, SELL, "0.5", "59000")

    # Margin 3,000 - 500 loss = 2,500; half the position closed, so 1,250 goes back.
    assert market.position_record(trader).isolated_margin == 1250 * USDT
    # 29,500 x 0.05% = 14.75 fee on the close.
    assert wallet(market, trader) == (1_000_000 - 3000 - 30 + 1250) * USDT - atoms("14.75")


def test_isolated_margin_can_be_added_and_removed_down_to_initial_margin(
    market: Scenario,
) -> None:
    maker, trader = market.account("m"), market.account("t", deposit="10000")
    market.set_margin_mode(trader, ISOLATED)
    trade(market, maker, trader, BUY, "1", ENTRY)
    # 10,000 - 60,000 / 20 - 30 fee.
    assert wallet(market, trader) == 6970 * USDT

    too_much = market.adjust_margin(trader, "6970.00000001")
    added = market.adjust_margin(trader, "500")

    assert rejection(too_much) is RejectCode.INSUFFICIENT_BALANCE
    entry = first(added, LedgerEntry)
    assert (entry.kind, entry.symbol, entry.amount) == (
        LedgerEntryKind.MARGIN_TRANSFER,
        "BTCUSDT",
        -500 * USDT,
    )
    assert position_of(added, trader).isolated_margin == 3500 * USDT
    assert wallet(market, trader) == 6470 * USDT

    # The position must keep 60,000 / 20 = 3,000.
    below_initial = market.adjust_margin(trader, "-500.00000001")
    removed = market.adjust_margin(trader, "-500")

    assert rejection(below_initial) is RejectCode.INSUFFICIENT_MARGIN
    assert first(removed, LedgerEntry).amount == 500 * USDT
    assert market.position_record(trader).isolated_margin == 3000 * USDT
    assert wallet(market, trader) == 6970 * USDT


def test_margin_cannot_be_adjusted_on_a_cross_or_flat_position(market: Scenario) -> None:
    maker, crossed, flat = market.account("m"), market.account("c"), market.account("f")
    trade(market, maker, crossed, BUY, "1", ENTRY)
    market.set_margin_mode(flat, ISOLATED)

    assert rejection(market.adjust_margin(crossed, "100")) is RejectCode.ISOLATED_MARGIN_BLOCKED
    assert rejection(market.adjust_margin(flat, "100")) is RejectCode.ISOLATED_MARGIN_BLOCKED
    assert wallet(market, flat) == 1_000_000 * USDT


def test_a_zero_margin_adjustment_is_rejected(market: Scenario) -> None:
    maker, trader = market.account("m"), market.account("t")
    market.set_margin_mode(trader, ISOLATED)
    trade(market, maker, trader, BUY, "1", ENTRY)

    assert rejection(market.adjust_margin(trader, "0")) is RejectCode.INVALID_AMOUNT


# ---------------------------------------------------------------- leverage and margin mode


def test_a_symbol_starts_at_20x_cross(market: Scenario) -> None:
    maker, trader = market.account("m"), market.account("t")

    events = trade(market, maker, trader, BUY, "1", ENTRY)

    position = position_of(events, trader)
    assert (position.leverage, position.margin_mode) == (20, CROSS)


@pytest.mark.parametrize("leverage", [0, -1, 126])
def test_leverage_outside_one_to_the_first_bracket_maximum_is_invalid(
    market: Scenario, leverage: int
) -> None:
    trader = market.account("t")

    assert rejection(market.set_leverage(trader, leverage)) is RejectCode.INVALID_LEVERAGE
    assert market.position_record(trader).leverage == 20


def test_the_first_bracket_maximum_is_allowed_while_the_position_is_small(
    market: Scenario,
) -> None:
    trader = market.account("t")

    events = market.set_leverage(trader, 125)

    assert position_of(events, trader).leverage == 125
    # 1 BTC at 60,000 would be in the 50k-600k bracket, which allows 100x.
    assert rejection(market.place(trader, BUY, "1", ENTRY)) is RejectCode.POSITION_OVER_BRACKET
    # 0.8 BTC is 48,000: 48,000 / 125 = 384 + 24 fee.
    market.limit(trader, BUY, "0.8", ENTRY)
    assert order_margin(market, trader) == 408 * USDT


def test_leverage_above_what_the_position_bracket_allows_is_refused(market: Scenario) -> None:
    maker, trader = market.account("m"), market.account("t")
    trade(market, maker, trader, BUY, "1", ENTRY)

    # 60,000 of notional is in the 50k-600k bracket: at most 100x.
    assert rejection(market.set_leverage(trader, 101)) is RejectCode.POSITION_OVER_BRACKET
    market.set_leverage(trader, 100)
    assert market.position_record(trader).leverage == 100


def test_leverage_cannot_change_while_the_symbol_has_open_orders(market: Scenario) -> None:
    trader = market.account("t")
    order_id = market.limit(trader, BUY, "1", "59000")

    assert rejection(market.set_leverage(trader, 10)) is RejectCode.LEVERAGE_CHANGE_BLOCKED

    market.cancel(trader, order_id)
    market.set_leverage(trader, 10)
    assert market.position_record(trader).leverage == 10


def test_lowering_leverage_needs_the_extra_margin_to_be_available(market: Scenario) -> None:
    maker, trader = market.account("m"), market.account("t", deposit="4000")
    trade(market, maker, trader, BUY, "1", ENTRY)
    # Wallet 4,000 - 30 fee = 3,970; 3,000 in use at 20x leaves 970.

    # 10x needs 6,000: 3,000 more than now.
    assert rejection(market.set_leverage(trader, 10)) is RejectCode.INSUFFICIENT_MARGIN
    # 16x needs 3,750: 750 more, which fits.
    market.set_leverage(trader, 16)
    assert market.position_record(trader).leverage == 16
    assert available(market, trader) == 220 * USDT


def test_margin_mode_cannot_change_with_a_position_or_open_orders(market: Scenario) -> None:
    maker, trader, idle = market.account("m"), market.account("t"), market.account("i")
    order_id = market.limit(idle, BUY, "1", "59000")

    with_order = market.set_margin_mode(idle, ISOLATED)
    assert rejection(with_order) is RejectCode.MARGIN_MODE_CHANGE_BLOCKED
    market.cancel(idle, order_id)
    switched = market.set_margin_mode(idle, ISOLATED)
    assert position_of(switched, idle).margin_mode is ISOLATED
    assert market.set_margin_mode(idle, ISOLATED) == []

    trade(market, maker, trader, BUY, "1", ENTRY)
    blocked = market.set_margin_mode(trader, ISOLATED)
    assert rejection(blocked) is RejectCode.MARGIN_MODE_CHANGE_BLOCKED
    assert market.position_record(trader).margin_mode is CROSS


# ---------------------------------------------------------------- funding


@pytest.mark.parametrize(
    ("rate", "long_gets"),
    [
        # 1 BTC at the 61,000 mark x 0.01% = 6.1: longs pay at a positive rate ...
        ("0.0001", "-6.1"),
        # ... and receive at a negative one.
        ("-0.0001", "6.1"),
    ],
)
def test_funding_is_notional_at_mark_times_rate_between_longs_and_shorts(
    market: Scenario, rate: str, long_gets: str
) -> None:
    short, long = market.account("short"), market.account("long")
    trade(market, short, long, BUY, "1", ENTRY)
    market.mark(EXIT)
    long_before, short_before = wallet(market, long), wallet(market, short)

    events = market.funding(rate)

    amount = atoms(long_gets)
    entries = {entry.account_id: entry for entry in of_kind(events, LedgerEntry)}
    assert {account: entry.amount for account, entry in entries.items()} == {
        long: amount,
        short: -amount,
    }
    assert all(entry.kind is LedgerEntryKind.FUNDING for entry in entries.values())
    assert wallet(market, long) == long_before + amount
    assert wallet(market, short) == short_before - amount
    assert funding_pool(market) == 0


def test_funding_rounds_payers_up_and_receivers_down_and_the_pool_keeps_the_residue(
    market: Scenario,
) -> None:
    long, short_a, short_b = market.account("l"), market.account("a"), market.account("b")
    market.limit(short_a, SELL, "0.001", ENTRY)
    market.limit(short_b, SELL, "0.001", ENTRY)
    market.place(long, BUY, "0.002", ENTRY)
    market.mark("60000.1")
    before = {account: wallet(market, account) for account in (long, short_a, short_b)}

    market.funding("0.00010001")

    # Long: 120.0002 USDT = 12,000,020,000 atoms x 10,001 / 1e8 = 1,200,122.0002 -> 1,200,123.
    pays = -(-12_000_020_000 * 10_001 // 10**8)
    assert pays == 1_200_123
    # Each short: 6,000,010,000 x 10,001 / 1e8 = 600,061.0001 -> 600,061.
    gets = 6_000_010_000 * 10_001 // 10**8
    assert gets == 600_061
    assert wallet(market, long) == before[long] - pays
    assert wallet(market, short_a) == before[short_a] + gets
    assert wallet(market, short_b) == before[short_b] + gets
    assert funding_pool(market) == pays - 2 * gets == 1


def test_an_isolated_position_pays_funding_from_its_isolated_margin(market: Scenario) -> None:
    short, long = market.account("short"), market.account("long")
    market.set_margin_mode(long, ISOLATED)
    trade(market, short, long, BUY, "1", ENTRY)
    wallet_before = wallet(market, long)

    events = market.funding("0.0001")

    # 60,000 x 0.01% = 6 out of the 3,000 isolated margin; the wallet is untouched.
    assert market.position_record(long).isolated_margin == 2994 * USDT
    assert wallet(market, long) == wallet_before
    entry = next(e for e in of_kind(events, LedgerEntry) if e.account_id == long)
    assert (entry.symbol, entry.amount) == ("BTCUSDT", -6 * USDT)
    assert position_of(events, long).isolated_margin == 2994 * USDT


def test_funding_without_a_mark_or_at_a_zero_rate_does_nothing() -> None:
    scenario = Scenario()
    short, long = scenario.account("short"), scenario.account("long")
    trade(scenario, short, long, BUY, "1", ENTRY)
    wallets = (wallet(scenario, short), wallet(scenario, long))

    assert scenario.funding("0.0001") == []
    scenario.mark(ENTRY)
    assert scenario.funding("0") == []
    assert (wallet(scenario, short), wallet(scenario, long)) == wallets
    assert funding_pool(scenario) == 0


def test_funding_for_an_unknown_symbol_is_rejected(market: Scenario) -> None:
    assert rejection(market.funding("0.0001", symbol="ETHUSDT")) is RejectCode.UNKNOWN_SYMBOL


# ---------------------------------------------------------------- conservation


def test_money_is_conserved_through_a_busy_day(market: Scenario) -> None:
    ledger = market.exchange.ledger
    maker, cross, isolated = market.account("m"), market.account("c"), market.account("i")
    market.set_margin_mode(isolated, ISOLATED)
    market.set_leverage(isolated, 7)

    trade(market, maker, cross, BUY, "0.003", "60000.1")
    trade(market, maker, isolated, SELL, "1.7", "59999.9")
    market.mark("60123.4")
    market.funding("0.00012345")
    trade(market, maker, cross, SELL, "0.005", "60100.3")
    market.adjust_margin(isolated, "1234.56789")
    resting = market.limit(cross, BUY, "0.9", "59500")
    market.place(maker, SELL, "0.4", "59500")
    market.cancel(cross, resting)
    market.mark("59876.5")
    market.funding("-0.00031")
    trade(market, maker, isolated, BUY, "1.1", "59800.7")
    market.adjust_margin(isolated, "-100.00000003")
    market.withdraw(cross, "123.45678901")
    market.deposit(isolated, "0.00000001")
    trade(market, maker, isolated, BUY, "0.6", "59700")

    assert ledger.conservation_gap() == 0
    assert market.position(isolated) == 0
    assert market.position_record(isolated).isolated_margin == 0
    assert fee_pool(market) > 0
    assert funding_pool(market) >= 0
    assert sum(account.position_qty("BTCUSDT") for account in ledger.accounts.values()) == 0


def test_the_invariant_check_catches_money_from_nowhere(market: Scenario) -> None:
    trader = market.account("t")
    market.ledger_account(trader).wallet += 1

    assert market.exchange.ledger.conservation_gap() == 1
    with pytest.raises(InvariantError, match="not conserved"):
        market.exchange.check_invariants()


def test_the_invariant_check_catches_a_negative_wallet_even_when_the_sum_is_right(
    market: Scenario,
) -> None:
    trader = market.account("t")
    account = market.ledger_account(trader)
    moved = account.wallet + 1
    account.wallet -= moved
    market.exchange.ledger.system[SystemAccount.FEE_POOL] += moved

    assert market.exchange.ledger.conservation_gap() == 0
    with pytest.raises(InvariantError, match="negative"):
        market.exchange.check_invariants()
