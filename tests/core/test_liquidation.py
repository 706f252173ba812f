"""Liquidation scenarios: margin calls, the waterfall, the insurance fund and ADL.

Every amount is exact integer atoms (1 USDT = 100_000_000 atoms) and every price integer
ticks, worked out in the test from the numbers of the story. BTCUSDT is the builders'
instrument: tick 0.1, lot 0.001, taker fee 0.05%, maker fee 0.02%, brackets 0-50k at 125x
(MMR 0.4%) and 50k-600k at 100x (MMR 0.5%, cum 50). Every position below is worth more than
50,000 USDT at every mark it sees, so its maintenance margin is mark x qty x 0.5% - 50.

The standard trade: long 1 BTC at 60,000 at 10x. Isolated, 6,000 of margin stand behind it:
bankruptcy 60,000 - 6,000 = 54,000 and liquidation price (6,000 + 50 - 60,000) / (0.005 - 1)
= 54,221.105..., rounded towards the mark to 54,221.1.
"""

from __future__ import annotations

from typing import TypeVar

import pytest

from exchange.core.commands import MarkPrice, PlaceOrder, UpdateMark
from exchange.core.enums import CancelReason, LedgerEntryKind, MarginMode, OrderType, Side
from exchange.core.events import (
    AutoDeleveraged,
    Event,
    LedgerEntry,
    Liquidated,
    MarginCall,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
)
from exchange.core.exchange import Exchange
from exchange.core.instruments import Instrument
from exchange.core.ledger import INSURANCE_FUND_ID
from exchange.core.numbers import ATOMS_PER_UNIT, atoms
from tests.core.builders import BTC, Scenario, first, lots, of_kind, ticks

E = TypeVar("E")

USDT = ATOMS_PER_UNIT
BUY, SELL = Side.BUY, Side.SELL
CROSS, ISOLATED = MarginMode.CROSS, MarginMode.ISOLATED

ENTRY = "60000"
LEVERAGE = 10
DEPOSIT = "10000"
LIQUIDATION = ticks("54221.1")
BANKRUPTCY = ticks("54000")

ETH = Instrument.create(
    symbol="ETHUSDT",
    base_asset="ETH",
    tick_size="0.01",
    lot_size="0.001",
    min_qty="0.001",
    max_qty="10000",
    brackets=[(0, 10_000, 100, "0.005"), (10_000, 10**8, 50, "0.01")],
)
ETH_ENTRY = "3000"


# ---------------------------------------------------------------- helpers


@pytest.fixture
def market() -> Scenario:
    scenario = Scenario()
    scenario.mark(ENTRY)
    return scenario


@pytest.fixture
def two_markets() -> Scenario:
    scenario = Scenario(BTC, ETH)
    marks(scenario, btc=ENTRY, eth=ETH_ENTRY)
    return scenario


def marks(scenario: Scenario, *, btc: str | None = None, eth: str | None = None) -> list[Event]:
    """Move BTC and ETH marks in one command; each symbol converts with its own tick."""
    prices = []
    if btc is not None:
        prices.append(MarkPrice(BTC.symbol, BTC.price_ticks(btc), BTC.price_ticks(btc)))
    if eth is not None:
        prices.append(MarkPrice(ETH.symbol, ETH.price_ticks(eth), ETH.price_ticks(eth)))
    return scenario.apply(UpdateMark(*scenario.next(), tuple(prices)))


def eth_limit(scenario: Scenario, account_id: int, side: Side, qty: str, price: str) -> list[Event]:
    return scenario.apply(
        PlaceOrder(
            *scenario.next(),
            account_id,
            ETH.symbol,
            side,
            OrderType.LIMIT,
            ETH.qty_lots(qty),
            ETH.price_ticks(price),
        )
    )


def open_position(
    scenario: Scenario,
    maker: int,
    trader: int,
    side: Side,
    qty: str,
    price: str,
    *,
    margin_mode: MarginMode = ISOLATED,
    leverage: int = LEVERAGE,
) -> None:
    """Set the trader's mode and leverage, rest the maker's order and take it."""
    scenario.set_margin_mode(trader, margin_mode)
    scenario.set_leverage(trader, leverage)
    before = scenario.position(trader)
    scenario.limit(maker, side.opposite, qty, price)
    scenario.place(trader, side, qty, price)
    assert scenario.position(trader) - before == side.value * lots(qty)


def only(events: list[Event], kind: type[E]) -> E:
    """Return the one event of a kind, failing the test if there are none or several."""
    (event,) = of_kind(events, kind)
    return event


def wallet(scenario: Scenario, account_id: int) -> int:
    return scenario.ledger_account(account_id).wallet


def fund_wallet(scenario: Scenario) -> int:
    return scenario.exchange.ledger.insurance.wallet


def fund_margin_balance(scenario: Scenario) -> int:
    ledger = scenario.exchange.ledger
    return ledger.cross_state(ledger.insurance).margin_balance


# ---------------------------------------------------------------- isolated loses only its margin

DIP = "55000"
BID = "54500"
CRASH = "54200"


def test_an_isolated_long_loses_its_margin_and_nothing_else(market: Scenario) -> None:
    maker, bidder = market.account("maker"), market.account("bidder")
    trader = market.account("trader", deposit=DEPOSIT)
    open_position(market, maker, trader, BUY, "1", ENTRY)
    # 10,000 - 6,000 isolated margin - 30 taker fee (60,000 x 0.05%).
    assert wallet(market, trader) == 3970 * USDT
    # At 55,000 the position is 1,000 in margin balance against 225 maintenance: healthy.
    assert of_kind(market.mark(DIP), Liquidated) == []
    market.limit(bidder, BUY, "1", BID)

    events = market.mark(CRASH)

    liquidated = only(events, Liquidated)
    assert liquidated == Liquidated(
        seq=liquidated.seq,
        account_id=trader,
        symbol="BTCUSDT",
        margin_mode=ISOLATED,
        order_id=liquidated.order_id,
        side=SELL,
        qty=lots("1"),
        mark_price=ticks(CRASH),
        # 6,000 + (54,200 - 60,000) = 200.
        margin_balance=200 * USDT,
        # 54,200 x 0.5% - 50 = 221: the ratio is past 100%.
        maintenance_margin=221 * USDT,
        tier=2,
        liquidation_price=LIQUIDATION,
        bankruptcy_price=BANKRUPTCY,
        # The bid at 54,500 is above bankruptcy and takes it all.
        book_qty=lots("1"),
        insurance_qty=0,
        adl=(),
        # Sold at 54,500: 6,000 - 5,500 = 500 of margin left above bankruptcy.
        clearance_fee=500 * USDT,
        insurance_fund_before=0,
        insurance_fund_after=500 * USDT,
    )
    (sold,) = (f for f in of_kind(events, OrderFilled) if f.account_id == trader)
    # A liquidation pays no taker fee; its fee is the clearance.
    assert (sold.last_px, sold.fee, sold.realized_pnl) == (ticks(BID), 0, -5500 * USDT)
    position = market.position_record(trader)
    assert (position.qty, position.isolated_margin) == (0, 0)
    # The wallet is untouched by the liquidation: 10,000 less the 6,000 of margin it gave the
    # position and the 30 opening fee, exactly as before the crash.
    assert wallet(market, trader) == 3970 * USDT
    assert fund_wallet(market) == 500 * USDT


# ---------------------------------------------------------------- cross: the wallet carries it

FALL = "52000"
LOW_BID = "50100"
COLLAPSE = "50150"


def test_the_same_trade_in_cross_survives_the_crash_on_its_wallet(market: Scenario) -> None:
    maker = market.account("maker")
    trader = market.account("trader", deposit=DEPOSIT)
    open_position(market, maker, trader, BUY, "1", ENTRY, margin_mode=CROSS)

    events = market.mark(CRASH)

    assert of_kind(events, Liquidated) == []
    assert market.position(trader) == lots("1")
    state = market.exchange.ledger.cross_state(market.ledger_account(trader))
    # The whole wallet stands behind it: 9,970 - 5,800 = 4,170 against 221 maintenance.
    assert (state.margin_balance, state.maintenance_margin) == (4170 * USDT, 221 * USDT)
    assert wallet(market, trader) == 9970 * USDT


def test_a_bigger_move_takes_the_whole_cross_balance(market: Scenario) -> None:
    maker, bidder = market.account("maker"), market.account("bidder")
    trader = market.account("trader", deposit=DEPOSIT)
    open_position(market, maker, trader, BUY, "1", ENTRY, margin_mode=CROSS)
    market.mark(CRASH)
    assert of_kind(market.mark(FALL), Liquidated) == []
    market.limit(bidder, BUY, "1", LOW_BID)

    events = market.mark(COLLAPSE)

    liquidated = only(events, Liquidated)
    assert liquidated.margin_mode is CROSS
    # 9,970 + (50,150 - 60,000) = 120 against 50,150 x 0.5% - 50 = 200.75.
    assert liquidated.margin_balance == 120 * USDT
    assert liquidated.maintenance_margin == atoms("200.75")
    # (9,970 + 50 - 60,000) / (0.005 - 1) = 50,231.155...; bankruptcy 60,000 - 9,970.
    assert liquidated.liquidation_price == ticks("50231.1")
    assert liquidated.bankruptcy_price == ticks("50030")
    assert (liquidated.book_qty, liquidated.insurance_qty, liquidated.adl) == (lots("1"), 0, ())
    # Sold at 50,100: 9,970 - 9,900 = 70 left, and all of it goes to the fund.
    clearance = first(events, LedgerEntry)
    assert (clearance.account_id, clearance.kind, clearance.amount) == (
        trader,
        LedgerEntryKind.INSURANCE_CLEARANCE,
        -70 * USDT,
    )
    # The clearance is taken once the last cross position is closed; its record says so.
    assert (liquidated.clearance_fee, liquidated.insurance_fund_after) == (70 * USDT, 70 * USDT)
    assert wallet(market, trader) == 0
    assert fund_wallet(market) == 70 * USDT
    assert market.ledger_account(trader).margin_call is False


# ---------------------------------------------------------------- a winner keeps a loser alive

ETH_FALL = "2500"


def test_a_winning_cross_position_keeps_a_losing_one_alive(two_markets: Scenario) -> None:
    scenario = two_markets
    maker = scenario.account("maker")
    hedged = scenario.account("hedged", deposit=DEPOSIT)
    alone = scenario.account("alone", deposit=DEPOSIT)
    open_position(scenario, maker, hedged, BUY, "1", ENTRY, margin_mode=CROSS)
    open_position(scenario, maker, alone, BUY, "1", ENTRY, margin_mode=CROSS)
    eth_limit(scenario, maker, BUY, "10", ETH_ENTRY)
    eth_limit(scenario, hedged, SELL, "10", ETH_ENTRY)
    # 10,000 - 30 - 15 (30,000 x 0.05%) for hedged; 10,000 - 30 for alone.
    assert wallet(scenario, hedged) == 9955 * USDT
    assert wallet(scenario, alone) == 9970 * USDT

    events = marks(scenario, btc=COLLAPSE, eth=ETH_FALL)

    liquidated = only(events, Liquidated)
    assert (liquidated.account_id, liquidated.symbol) == (alone, "BTCUSDT")
    # Alone: 9,970 - 9,850 = 120 against 200.75, as in the cross test above.
    assert liquidated.margin_balance == 120 * USDT
    # No bids: the fund takes it at bankruptcy 50,030, below the mark, so it can.
    assert (liquidated.insurance_qty, liquidated.bankruptcy_price) == (lots("1"), ticks("50030"))
    assert scenario.position(alone) == 0
    assert wallet(scenario, alone) == 0
    # Hedged: the same BTC loss of 9,850, but the ETH short earned 10 x 500 = 5,000.
    assert scenario.position(hedged) == lots("1")
    assert scenario.position(hedged, "ETHUSDT") == -ETH.qty_lots("10")
    state = scenario.exchange.ledger.cross_state(scenario.ledger_account(hedged))
    assert state.margin_balance == 5105 * USDT  # 9,955 - 9,850 + 5,000
    # 200.75 for BTC, and 25,000 x 1% - 50 = 200 for ETH (its second tier, cum 50).
    assert state.maintenance_margin == atoms("400.75")


# ---------------------------------------------------------------- the fund pays the gap

GAP = "53000"
SEED = "10000"


def test_the_insurance_fund_takes_over_at_bankruptcy_and_pays_the_gap(market: Scenario) -> None:
    maker = market.account("maker")
    trader = market.account("trader", deposit=DEPOSIT)
    market.deposit(INSURANCE_FUND_ID, SEED)
    open_position(market, maker, trader, BUY, "1", ENTRY)
    assert fund_margin_balance(market) == 10_000 * USDT

    # The mark gaps from 60,000 to 53,000, past bankruptcy, and nobody bids.
    events = market.mark(GAP)

    liquidated = only(events, Liquidated)
    # 6,000 + (53,000 - 60,000) = -1,000: the margin is gone before the engine acts.
    assert liquidated.margin_balance == -1000 * USDT
    assert liquidated.maintenance_margin == 215 * USDT  # 53,000 x 0.5% - 50
    assert (liquidated.liquidation_price, liquidated.bankruptcy_price) == (LIQUIDATION, BANKRUPTCY)
    assert (liquidated.book_qty, liquidated.insurance_qty, liquidated.adl) == (0, lots("1"), ())
    # Closed exactly at bankruptcy: nothing left above it.
    assert liquidated.clearance_fee == 0
    assert liquidated.insurance_fund_before == liquidated.insurance_fund_after == 10_000 * USDT
    fund = market.position_record(INSURANCE_FUND_ID)
    assert (fund.qty, fund.cost) == (lots("1"), 54_000 * USDT)
    # It bought at 54,000 what is worth 53,000: (54,000 - 53,000) x 1 = 1,000 of its balance.
    assert fund_margin_balance(market) == 9000 * USDT
    # The trader lost the 6,000 of margin and not a cent more: 10,000 - 6,000 - 30 fee.
    assert wallet(market, trader) == 3970 * USDT


# ---------------------------------------------------------------- an empty fund: ADL


def test_an_empty_fund_deleverages_the_most_profitable_most_leveraged_shorts_first(
    market: Scenario,
) -> None:
    whale = market.account("whale")
    # The top short: entered higher and on a thin wallet, so most profit x most leverage.
    top = market.account("top", deposit="3000")
    middle = market.account("middle", deposit="20000")
    bottom = market.account("bottom")
    trader = market.account("trader", deposit=DEPOSIT)
    market.limit(top, SELL, "0.4", "61000")
    market.place(whale, BUY, "0.4", "61000")
    market.limit(middle, SELL, "1", ENTRY)
    market.place(whale, BUY, "1", ENTRY)
    open_position(market, bottom, trader, BUY, "1", ENTRY)
    assert fund_wallet(market) == 0

    events = market.mark(GAP)

    # At 53,000, profit % x effective leverage (notional / margin balance):
    #   top    8,000 / 61,000 x 21,200 / (3,000 - 4.88 + 3,200)       = 0.449
    #   middle 7,000 / 60,000 x 53,000 / (20,000 - 12 + 7,000)       = 0.229
    #   bottom 7,000 / 60,000 x 53,000 / (1,000,000 - 12 + 7,000)    = 0.006
    # Taking the long at 54,000 while the mark is 53,000 would cost the empty fund 1,000.
    liquidated = only(events, Liquidated)
    assert (liquidated.book_qty, liquidated.insurance_qty) == (0, 0)
    assert liquidated.adl == ((top, lots("0.4")), (middle, lots("0.6")))
    assert of_kind(events, AutoDeleveraged) == [
        AutoDeleveraged(liquidated.seq, top, "BTCUSDT", lots("0.4"), BANKRUPTCY, trader),
        AutoDeleveraged(liquidated.seq, middle, "BTCUSDT", lots("0.6"), BANKRUPTCY, trader),
    ]
    assert (market.position(top), market.position(middle)) == (0, -lots("0.4"))
    assert market.position(bottom) == -lots("1")
    # Top closed 0.4 at 54,000, not at the 53,000 mark: (61,000 - 54,000) x 0.4 = 2,800.
    assert wallet(market, top) == 3000 * USDT - atoms("4.88") + 2800 * USDT
    # Middle closed 0.6 at 54,000: 6,000 x 0.6 = 3,600 realised, no fee.
    assert wallet(market, middle) == 20_000 * USDT - 12 * USDT + 3600 * USDT
    assert (liquidated.insurance_fund_before, liquidated.insurance_fund_after) == (0, 0)
    assert market.exchange.ledger.open_positions["BTCUSDT"].get(INSURANCE_FUND_ID) is None


# ---------------------------------------------------------------- funding tips it over

NEAR = "54300"
NEAR_BID = "54250"


def test_funding_pushes_an_isolated_long_past_its_liquidation_price(market: Scenario) -> None:
    maker, bidder = market.account("maker"), market.account("bidder")
    trader = market.account("trader", deposit=DEPOSIT)
    open_position(market, maker, trader, BUY, "1", ENTRY)
    # 6,000 - 5,700 = 300 against 54,300 x 0.5% - 50 = 221.5: just above the line.
    assert of_kind(market.mark(NEAR), Liquidated) == []
    market.limit(bidder, BUY, "1", NEAR_BID)

    events = market.funding("0.003")

    # The long pays 54,300 x 0.3% = 162.9 out of its isolated margin, then falls over.
    paid = first(events, LedgerEntry)
    assert (paid.account_id, paid.kind, paid.amount) == (
        trader,
        LedgerEntryKind.FUNDING,
        -atoms("162.9"),
    )
    liquidated = only(events, Liquidated)
    assert events.index(paid) < events.index(liquidated)
    assert liquidated.mark_price == ticks(NEAR)
    assert liquidated.margin_balance == atoms("137.1")  # 5,837.1 - 5,700
    assert liquidated.maintenance_margin == atoms("221.5")
    # With 5,837.1 of margin: (5,837.1 + 50 - 60,000) / (0.005 - 1) = 54,384.824...
    assert liquidated.liquidation_price == ticks("54384.8")
    assert liquidated.bankruptcy_price == ticks("54162.9")  # 60,000 - 5,837.1
    assert liquidated.book_qty == lots("1")
    # Sold at 54,250: 5,837.1 - 5,750 = 87.1 left for the fund.
    assert liquidated.clearance_fee == atoms("87.1")
    assert market.position(trader) == 0
    assert wallet(market, trader) == 3970 * USDT


# ---------------------------------------------------------------- margin calls

WARNING = "54250"
STILL_WARNING = "54260"
RECOVERED = "54400"


def test_a_margin_call_is_raised_once_per_crossing_of_80_percent(market: Scenario) -> None:
    maker = market.account("maker")
    trader = market.account("trader", deposit=DEPOSIT)
    open_position(market, maker, trader, BUY, "1", ENTRY)

    first_call = market.mark(WARNING)
    # 54,260: 260 against 221.3 is 85%, still above 80%: no new call.
    while_high = market.mark(STILL_WARNING)
    # 54,400: 400 against 222 is 55.5%, below 80%: the call is over.
    recovered = market.mark(RECOVERED)
    second_call = market.mark(WARNING)

    # 6,000 - 5,750 = 250 of margin balance against 54,250 x 0.5% - 50 = 221.25: 88.5%.
    call = MarginCall(first_call[0].seq, trader, "BTCUSDT", 88_500_000, 250 * USDT, atoms("221.25"))
    assert of_kind(first_call, MarginCall) == [call]
    assert of_kind(while_high, MarginCall) == []
    assert of_kind(recovered, MarginCall) == []
    assert of_kind(second_call, MarginCall) == [
        MarginCall(second_call[0].seq, trader, "BTCUSDT", 88_500_000, 250 * USDT, atoms("221.25"))
    ]
    assert of_kind(first_call + while_high + recovered + second_call, Liquidated) == []


def test_a_new_position_after_a_liquidation_gets_its_own_margin_call(market: Scenario) -> None:
    maker = market.account("maker")
    trader = market.account("trader", deposit="20000")
    open_position(market, maker, trader, BUY, "1", ENTRY)
    assert of_kind(market.mark(WARNING), MarginCall) != []
    only(market.mark(CRASH), Liquidated)
    # A fresh position in the same symbol, from the wallet's remaining 13,970.
    market.mark(ENTRY)
    market.limit(maker, SELL, "1", ENTRY)
    market.place(trader, BUY, "1", ENTRY)
    assert market.position_record(trader).isolated_margin == 6000 * USDT

    events = market.mark(WARNING)

    # The same 88.5% as the first position's call; the flag of the liquidated one suppresses it.
    assert len(of_kind(events, MarginCall)) == 1


# ---------------------------------------------------------------- orders in scope are cancelled

LOW_BUY = "57500"
HIGH_SELL = "62000"
ETH_BUY = "2900"


def test_an_isolated_liquidation_cancels_only_that_symbols_orders(two_markets: Scenario) -> None:
    scenario = two_markets
    maker = scenario.account("maker")
    trader = scenario.account("trader", deposit="20000")
    open_position(scenario, maker, trader, BUY, "1", ENTRY)
    buy = scenario.limit(trader, BUY, "0.5", LOW_BUY)
    sell = scenario.limit(trader, SELL, "0.5", HIGH_SELL)
    eth_order = first(eth_limit(scenario, trader, BUY, "1", ETH_BUY), OrderAccepted).order_id
    account = scenario.ledger_account(trader)
    # Buy 0.5 at 57,500: 28,750 / 10 + 0.05% fee = 2,889.375. The sell only reduces: 0.
    # ETH 2,900 / 20 + 1.45 fee = 146.45.
    assert account.order_margin == atoms("2889.375") + atoms("146.45")

    events = scenario.mark(CRASH)

    canceled = of_kind(events, OrderCanceled)
    assert [(c.order_id, c.symbol, c.reason) for c in canceled] == [
        (buy, "BTCUSDT", CancelReason.LIQUIDATION),
        (sell, "BTCUSDT", CancelReason.LIQUIDATION),
    ]
    assert events.index(canceled[-1]) < events.index(only(events, Liquidated))
    # The trader's own bid was gone before the liquidation order reached the book.
    assert only(events, Liquidated).book_qty == 0
    assert [order.order_id for order in scenario.exchange.open_orders(trader)] == [eth_order]
    assert account.order_margin == atoms("146.45")


@pytest.mark.parametrize(
    ("eth_mode", "eth_canceled"),
    [(CROSS, True), (ISOLATED, False)],
)
def test_a_cross_liquidation_cancels_every_cross_order_of_the_account(
    two_markets: Scenario, eth_mode: MarginMode, eth_canceled: bool
) -> None:
    scenario = two_markets
    maker = scenario.account("maker")
    trader = scenario.account("trader", deposit=DEPOSIT)
    open_position(scenario, maker, trader, BUY, "1", ENTRY, margin_mode=CROSS)
    scenario.set_margin_mode(trader, eth_mode, "ETHUSDT")
    buy = scenario.limit(trader, BUY, "0.1", LOW_BUY)
    eth_order = first(eth_limit(scenario, trader, BUY, "1", ETH_BUY), OrderAccepted).order_id
    account = scenario.ledger_account(trader)
    # BTC 5,750 / 10 + 2.875 fee = 577.875; ETH 2,900 / 20 + 1.45 fee = 146.45.
    assert account.order_margin == atoms("577.875") + atoms("146.45")

    events = marks(scenario, btc=COLLAPSE)

    liquidated = only(events, Liquidated)
    canceled = [(c.order_id, c.reason) for c in of_kind(events, OrderCanceled)]
    expected = [(buy, CancelReason.LIQUIDATION)]
    if eth_canceled:
        expected.append((eth_order, CancelReason.LIQUIDATION))
    assert canceled == expected
    assert liquidated.book_qty == 0
    left = [order.order_id for order in scenario.exchange.open_orders(trader)]
    assert left == ([] if eth_canceled else [eth_order])
    assert account.order_margin == (0 if eth_canceled else atoms("146.45"))


def test_an_order_that_survives_a_cross_liquidation_keeps_a_backed_hold(
    two_markets: Scenario,
) -> None:
    scenario = two_markets
    maker, seller = scenario.account("maker"), scenario.account("seller")
    trader = scenario.account("trader", deposit=DEPOSIT)
    open_position(scenario, maker, trader, BUY, "1", ENTRY, margin_mode=CROSS)
    scenario.set_margin_mode(trader, ISOLATED, "ETHUSDT")
    eth_limit(scenario, trader, BUY, "1", ETH_BUY)
    hold = atoms("146.45")
    marks(scenario, btc=COLLAPSE)
    account = scenario.ledger_account(trader)
    assert account.order_margin == hold

    marks(scenario, eth=ETH_BUY)
    eth_limit(scenario, seller, SELL, "1", ETH_BUY)

    # The ETH buy filled: its 145 of isolated margin and its fee must come from the trader's
    # own money, never from the insurance fund.
    assert scenario.position(trader, "ETHUSDT") == ETH.qty_lots("1")
    assert fund_wallet(scenario) >= 0
    assert account.wallet >= 0


def test_a_cross_liquidation_also_closes_a_position_in_a_symbol_with_no_mark_yet() -> None:
    # ETH has traded but never been marked: the ledger values it at cost, and the liquidation
    # must still close it without a mark to quote.
    scenario = Scenario(BTC, ETH)
    marks(scenario, btc=ENTRY)
    maker = scenario.account("maker")
    trader = scenario.account("trader", deposit="10000")
    open_position(scenario, maker, trader, Side.BUY, "1", ENTRY, margin_mode=CROSS)
    eth_limit(scenario, maker, Side.SELL, "1", ETH_ENTRY)
    eth_limit(scenario, trader, Side.BUY, "1", ETH_ENTRY)
    assert scenario.exchange.markets["ETHUSDT"].mark_price is None

    events = marks(scenario, btc="50000")

    liquidated = {event.symbol for event in events if isinstance(event, Liquidated)}
    assert liquidated == {"BTCUSDT", "ETHUSDT"}
    assert scenario.position(trader) == 0
    assert scenario.position(trader, "ETHUSDT") == 0


def test_a_margin_call_threshold_below_a_maintenance_rate_is_a_configuration_error() -> None:
    # At 0.3% a margin call would come after the liquidation of a 0.4% bracket.
    with pytest.raises(ValueError, match="margin_call_ratio"):
        Exchange([BTC], margin_call_ratio=300_000)
    Exchange([BTC], margin_call_ratio=50_000_000)
