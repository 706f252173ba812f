"""Margin maths against Binance's published examples, plus properties of the liquidation price."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.core.enums import MarginMode
from exchange.core.instruments import Instrument, LeverageBracket, build_brackets
from exchange.core.margin import (
    CRITICAL_RISK_RATIO,
    HIGH_RISK_RATIO,
    MODERATE_RISK_RATIO,
    MaintenanceTier,
    RiskLevel,
    atoms_rounded_down,
    atoms_rounded_up,
    bankruptcy_price,
    ceil_ticks,
    display_places,
    distance_to_liquidation,
    entry_price,
    exact_maintenance_margin,
    fixed_tier,
    floor_ticks,
    format_decimal,
    format_price,
    initial_margin,
    is_liquidatable,
    liquidation_price,
    liquidation_tier,
    maintenance_margin,
    margin_ratio,
    max_leverage,
    max_loss,
    position_maintenance_margin,
    position_notional,
    price_from_ticks,
    qty_from_lots,
    risk_level,
    tier_for_notional,
    tiers_from_brackets,
    unrealized_pnl,
    usdt_from_atoms,
)
from exchange.core.numbers import ATOMS_PER_UNIT, atoms

# Binance's brackets of 2021, the ones its published liquidation examples were computed with.
BTC_2021_BRACKETS = (
    ("0", "50000", 125, "0.004"),
    ("50000", "250000", 100, "0.005"),
    ("250000", "1000000", 50, "0.01"),
    ("1000000", "5000000", 20, "0.025"),
    ("5000000", "20000000", 10, "0.05"),
    ("20000000", "50000000", 5, "0.1"),
    ("50000000", "100000000", 4, "0.125"),
    ("100000000", "200000000", 3, "0.15"),
    ("200000000", "300000000", 2, "0.25"),
    ("300000000", "500000000", 1, "0.5"),
)
ETH_2021_BRACKETS = (
    ("0", "10000", 100, "0.005"),
    ("10000", "100000", 75, "0.0065"),
    ("100000", "500000", 50, "0.01"),
    ("500000", "1000000", 25, "0.02"),
    ("1000000", "2000000", 10, "0.05"),
    ("2000000", "5000000", 5, "0.1"),
    ("5000000", "10000000", 4, "0.125"),
    ("10000000", "20000000", 3, "0.15"),
    ("20000000", "50000000", 2, "0.25"),
    ("50000000", "100000000", 1, "0.5"),
)


def make_instrument(
    symbol: str, brackets: tuple[tuple[str, str, int, str], ...], tick: str = "0.01"
) -> Instrument:
    return Instrument.create(
        symbol=symbol,
        base_asset=symbol.removesuffix("USDT"),
        tick_size=tick,
        lot_size="0.001",
        min_qty="0.001",
        max_qty="100000",
        brackets=brackets,
    )


BTC = make_instrument("BTCUSDT", BTC_2021_BRACKETS)
ETH = make_instrument("ETHUSDT", ETH_2021_BRACKETS)

# The published example account.
WALLET = Fraction("1535443.01")
ETH_QTY = Fraction("3683.979")
ETH_ENTRY = Fraction("1456.84")
ETH_MARK = Fraction("1335.18")
ETH_TIER = fixed_tier(Fraction("0.10"), Fraction(135_365))
BTC_QTY = Fraction("109.488")
BTC_ENTRY = Fraction("32481.98")
BTC_MARK = Fraction("31967.27")
BTC_TIER = fixed_tier(Fraction("0.025"), Fraction(16_300))


def price_text(price: Fraction | None) -> str | None:
    return None if price is None else format_price(price)


# ---------------------------------------------------------------------------------------------
# Published examples
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "entry", "tier", "expected"),
    [
        (ETH_QTY, ETH_ENTRY, ETH_TIER, "1114.78"),
        (BTC_QTY, BTC_ENTRY, BTC_TIER, "18778.73"),
    ],
)
def test_isolated_liquidation_price_matches_binance_example(
    qty: Fraction, entry: Fraction, tier: MaintenanceTier, expected: str
) -> None:
    # Binance's isolated example puts the whole wallet in as isolated margin.
    price = liquidation_price(qty=qty, entry_price=entry, wallet_balance=WALLET, tiers=[tier])
    assert price is not None
    assert abs(price - Fraction(expected)) <= Fraction(1, 100)
    assert format_price(price) == expected


def cross_liquidation_prices(
    eth_tiers: tuple[MaintenanceTier, ...], btc_tiers: tuple[MaintenanceTier, ...]
) -> tuple[Fraction | None, Fraction | None]:
    eth_maintenance = exact_maintenance_margin(ETH_QTY * ETH_MARK, eth_tiers)
    btc_maintenance = exact_maintenance_margin(BTC_QTY * BTC_MARK, btc_tiers)
    eth_pnl = ETH_QTY * (ETH_MARK - ETH_ENTRY)
    btc_pnl = BTC_QTY * (BTC_MARK - BTC_ENTRY)
    eth = liquidation_price(
        qty=ETH_QTY,
        entry_price=ETH_ENTRY,
        wallet_balance=WALLET,
        tiers=eth_tiers,
        other_maintenance_margin=btc_maintenance,
        other_unrealized_pnl=btc_pnl,
    )
    btc = liquidation_price(
        qty=BTC_QTY,
        entry_price=BTC_ENTRY,
        wallet_balance=WALLET,
        tiers=btc_tiers,
        other_maintenance_margin=eth_maintenance,
        other_unrealized_pnl=eth_pnl,
    )
    return eth, btc


def test_cross_liquidation_prices_match_binance_example() -> None:
    eth, btc = cross_liquidation_prices((ETH_TIER,), (BTC_TIER,))
    assert (price_text(eth), price_text(btc)) == ("1153.26", "26316.89")


def test_brackets_reproduce_the_examples_through_the_tier_search() -> None:
    eth_tiers = tiers_from_brackets(ETH.brackets)
    btc_tiers = tiers_from_brackets(BTC.brackets)
    eth = liquidation_price(
        qty=ETH_QTY, entry_price=ETH_ENTRY, wallet_balance=WALLET, tiers=eth_tiers
    )
    btc = liquidation_price(
        qty=BTC_QTY, entry_price=BTC_ENTRY, wallet_balance=WALLET, tiers=btc_tiers
    )
    assert (price_text(eth), price_text(btc)) == ("1114.78", "18778.73")
    assert cross_liquidation_prices(eth_tiers, btc_tiers) == cross_liquidation_prices(
        (ETH_TIER,), (BTC_TIER,)
    )


def test_simple_isolated_position_at_20x() -> None:
    tier = fixed_tier(Fraction("0.004"), Fraction(0))
    margin = usdt_from_atoms(initial_margin(atoms("60000"), 20))
    assert margin == 3000
    long = liquidation_price(
        qty=Fraction(1), entry_price=Fraction(60_000), wallet_balance=margin, tiers=[tier]
    )
    short = liquidation_price(
        qty=Fraction(-1), entry_price=Fraction(60_000), wallet_balance=margin, tiers=[tier]
    )
    assert (price_text(long), price_text(short)) == ("57228.92", "62749.00")


# ---------------------------------------------------------------------------------------------
# Tiers
# ---------------------------------------------------------------------------------------------


def test_maintenance_amounts_are_derived_from_the_brackets() -> None:
    btc_amounts = [usdt_from_atoms(b.maintenance_amount) for b in BTC.brackets]
    eth_amounts = [usdt_from_atoms(b.maintenance_amount) for b in ETH.brackets]
    assert btc_amounts[:5] == [0, 50, 1_300, 16_300, 141_300]
    assert eth_amounts[:7] == [0, 15, 365, 5_365, 35_365, 135_365, 260_365]


@pytest.mark.parametrize("instrument", [BTC, ETH])
def test_maintenance_margin_is_continuous_across_tier_boundaries(instrument: Instrument) -> None:
    for below, above in zip(instrument.brackets, instrument.brackets[1:], strict=False):
        boundary = above.notional_floor
        assert maintenance_margin(boundary, below) == maintenance_margin(boundary, above)


def test_tier_search_moves_from_the_entry_tier_to_the_tier_at_the_liquidation_price() -> None:
    tiers = tiers_from_brackets(ETH.brackets)
    entry_tier = tier_for_notional(tiers, ETH_QTY * ETH_ENTRY)
    assert entry_tier.bracket is not None
    assert entry_tier.bracket.tier == 7
    # The entry tier alone gives a price whose notional is in another tier.
    first_guess = liquidation_price(
        qty=ETH_QTY, entry_price=ETH_ENTRY, wallet_balance=WALLET, tiers=[entry_tier]
    )
    assert first_guess is not None
    assert tier_for_notional(tiers, ETH_QTY * first_guess) is not entry_tier
    price = liquidation_price(
        qty=ETH_QTY, entry_price=ETH_ENTRY, wallet_balance=WALLET, tiers=tiers
    )
    tier = liquidation_tier(tiers, ETH_QTY, price)
    assert tier is not None
    assert tier.bracket is not None
    assert tier.bracket.tier == 6
    # Consistent: the tier at the answer, used alone, gives the answer back.
    again = liquidation_price(
        qty=ETH_QTY, entry_price=ETH_ENTRY, wallet_balance=WALLET, tiers=[tier]
    )
    assert again == price


def test_liquidation_price_on_a_tier_boundary_is_consistent_with_both_neighbours() -> None:
    tiers = tiers_from_brackets(BTC.brackets)
    # 1 BTC long whose liquidation notional is exactly the 50,000 boundary of tiers 1 and 2.
    target = Fraction(50_000)
    margin = target * Fraction("0.004") + (Fraction(60_000) - target)
    price = liquidation_price(
        qty=Fraction(1), entry_price=Fraction(60_000), wallet_balance=margin, tiers=tiers
    )
    assert price == target
    for tier in tiers[:2]:
        alone = liquidation_price(
            qty=Fraction(1), entry_price=Fraction(60_000), wallet_balance=margin, tiers=[tier]
        )
        assert alone == target


def binance_tier_loop(
    qty: Fraction, entry: Fraction, wallet: Fraction, tiers: tuple[MaintenanceTier, ...]
) -> Fraction | None:
    """The published procedure, written out: start in the entry tier, move to the tier at LP.

    None when it does not settle on a positive price.
    """
    tier = tier_for_notional(tiers, abs(qty) * entry)
    for _ in range(len(tiers) + 1):
        rate, amount = tier.maintenance_margin_rate, tier.maintenance_amount
        price = (wallet + amount - qty * entry) / (abs(qty) * rate - qty)
        if price <= 0:
            return None
        following = tier_for_notional(tiers, abs(qty) * price)
        if following is tier:
            return price
        tier = following
    return None


@settings(max_examples=300, deadline=None)
@given(
    lots=st.integers(min_value=1, max_value=20_000_000),
    entry_ticks=st.integers(min_value=1, max_value=1_000_000),
    short=st.booleans(),
    margin_share=st.fractions(min_value=Fraction(1, 100), max_value=1, max_denominator=10_000),
)
def test_tier_search_agrees_with_binance_loop_when_the_loop_settles(
    lots: int, entry_ticks: int, short: bool, margin_share: Fraction
) -> None:
    tiers = tiers_from_brackets(ETH.brackets)
    qty = qty_from_lots(ETH, -lots if short else lots)
    entry = price_from_ticks(ETH, entry_ticks)
    wallet = abs(qty) * entry * margin_share
    expected = binance_tier_loop(qty, entry, wallet, tiers)
    if expected is not None:
        price = liquidation_price(qty=qty, entry_price=entry, wallet_balance=wallet, tiers=tiers)
        assert price == expected


# ---------------------------------------------------------------------------------------------
# Bankruptcy price
# ---------------------------------------------------------------------------------------------


def test_bankruptcy_price_is_where_the_margin_is_gone() -> None:
    long = bankruptcy_price(
        qty=Fraction(1), entry_price=Fraction(60_000), wallet_balance=Fraction(3_000)
    )
    short = bankruptcy_price(
        qty=Fraction(-1), entry_price=Fraction(60_000), wallet_balance=Fraction(3_000)
    )
    assert (long, short) == (Fraction(57_000), Fraction(63_000))


def test_bankruptcy_price_counts_other_cross_pnl_but_not_their_maintenance() -> None:
    price = bankruptcy_price(
        qty=Fraction(2),
        entry_price=Fraction(100),
        wallet_balance=Fraction(50),
        other_unrealized_pnl=Fraction(-10),
    )
    assert price == 80


def test_fully_margined_long_has_no_liquidation_or_bankruptcy_price() -> None:
    tiers = tiers_from_brackets(BTC.brackets)
    arguments = {
        "qty": Fraction(1),
        "entry_price": Fraction(60_000),
        "wallet_balance": Fraction(60_000),
    }
    assert liquidation_price(tiers=tiers, **arguments) is None
    assert bankruptcy_price(**arguments) is None


def test_liquidation_comes_before_bankruptcy() -> None:
    tiers = tiers_from_brackets(BTC.brackets)
    for qty in (Fraction(1), Fraction(-1)):
        liquidation = liquidation_price(
            qty=qty, entry_price=Fraction(60_000), wallet_balance=Fraction(3_000), tiers=tiers
        )
        bankruptcy = bankruptcy_price(
            qty=qty, entry_price=Fraction(60_000), wallet_balance=Fraction(3_000)
        )
        assert liquidation is not None
        assert bankruptcy is not None
        assert (liquidation - bankruptcy) * qty > 0


def test_a_fixed_tier_whose_cum_exceeds_its_line_falls_back_to_bankruptcy() -> None:
    # Maintenance margin never goes below zero, so liquidation is never past bankruptcy.
    tier = fixed_tier(Fraction("0.01"), Fraction(10_000))
    price = liquidation_price(
        qty=Fraction(1), entry_price=Fraction(60_000), wallet_balance=Fraction(3_000), tiers=[tier]
    )
    assert price == 57_000


def test_an_empty_position_has_no_prices() -> None:
    with pytest.raises(ValueError, match="empty position"):
        liquidation_price(
            qty=Fraction(0), entry_price=Fraction(1), wallet_balance=Fraction(1), tiers=[]
        )
    with pytest.raises(ValueError, match="empty position"):
        bankruptcy_price(qty=Fraction(0), entry_price=Fraction(1), wallet_balance=Fraction(1))


def test_fixed_tier_rejects_a_rate_of_one_or_more() -> None:
    with pytest.raises(ValueError, match="rate"):
        fixed_tier(Fraction(1), Fraction(0))


# ---------------------------------------------------------------------------------------------
# Integer margin
# ---------------------------------------------------------------------------------------------


def test_initial_margin_rounds_up_against_the_user() -> None:
    assert initial_margin(10, 3) == 4
    assert initial_margin(9, 3) == 3
    assert initial_margin(-10, 3) == 4
    with pytest.raises(ValueError, match="leverage"):
        initial_margin(10, 0)


def test_maintenance_margin_rounds_up_and_never_goes_below_zero() -> None:
    first, second = BTC.brackets[0], BTC.brackets[1]
    assert maintenance_margin(1, first) == 1
    assert maintenance_margin(250, first) == 1
    assert maintenance_margin(251, first) == 2
    assert maintenance_margin(atoms("60000"), second) == atoms("250")
    assert maintenance_margin(atoms("1"), second) == 0


def test_position_figures_in_integers() -> None:
    lots, mark = 1_000, 6_000_000  # 1 BTC at 60,000.00
    cost = BTC.notional(6_200_000, lots)  # opened at 62,000.00
    assert position_notional(BTC, -lots, mark) == atoms("60000")
    assert position_maintenance_margin(BTC, lots, mark) == atoms("250")
    assert unrealized_pnl(BTC, lots, cost, mark) == atoms("-2000")
    assert unrealized_pnl(BTC, -lots, -cost, mark) == atoms("2000")
    assert max_leverage(BTC, atoms("60000")) == 100
    assert entry_price(qty_from_lots(BTC, lots), usdt_from_atoms(cost)) == 62_000


def test_is_liquidatable_at_a_ratio_of_one() -> None:
    assert is_liquidatable(100, 100)
    assert is_liquidatable(100, -5)
    assert not is_liquidatable(100, 101)
    assert not is_liquidatable(0, 0)


# ---------------------------------------------------------------------------------------------
# Units and display
# ---------------------------------------------------------------------------------------------


def test_unit_changes_are_exact() -> None:
    assert price_from_ticks(ETH, 145_684) == Fraction("1456.84")
    assert qty_from_lots(ETH, -3_683_979) == Fraction("-3683.979")
    assert usdt_from_atoms(1) == Fraction(1, ATOMS_PER_UNIT)
    assert atoms_rounded_up(Fraction(1, 3 * ATOMS_PER_UNIT)) == 1
    assert atoms_rounded_down(Fraction(-1, 3 * ATOMS_PER_UNIT)) == -1
    assert floor_ticks(ETH, Fraction("1114.7849")) == 111_478
    assert ceil_ticks(ETH, Fraction("1114.7849")) == 111_479
    assert ceil_ticks(ETH, Fraction("1114.78")) == 111_478


def test_prices_display_with_at_least_two_decimals_rounded_half_away_from_zero() -> None:
    assert format_price(Fraction("57228.915")) == "57228.92"
    assert format_price(Fraction("1114.7849")) == "1114.78"
    assert format_price(Fraction(7)) == "7.00"
    assert format_price(Fraction("0.123456"), 4) == "0.1235"
    assert format_price(Fraction("1.5"), 0) == "1.50"
    assert format_decimal(Fraction("-0.005"), 2) == "-0.01"
    assert format_decimal(Fraction("-0.004"), 2) == "0.00"
    assert display_places(make_instrument("BTCUSDT", BTC_2021_BRACKETS, tick="0.1")) == 2
    assert display_places(make_instrument("DOGEUSDT", BTC_2021_BRACKETS, tick="0.00001")) == 5


# ---------------------------------------------------------------------------------------------
# Risk figures
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "level"),
    [
        (Fraction(0), RiskLevel.SAFE),
        (MODERATE_RISK_RATIO - Fraction(1, 10**9), RiskLevel.SAFE),
        (MODERATE_RISK_RATIO, RiskLevel.MODERATE),
        (HIGH_RISK_RATIO, RiskLevel.HIGH),
        (CRITICAL_RISK_RATIO - Fraction(1, 10**9), RiskLevel.HIGH),
        (CRITICAL_RISK_RATIO, RiskLevel.CRITICAL),
        (Fraction(3), RiskLevel.CRITICAL),
        (None, RiskLevel.CRITICAL),
    ],
)
def test_risk_levels_follow_the_margin_ratio(ratio: Fraction | None, level: RiskLevel) -> None:
    assert risk_level(ratio) is level


def test_margin_ratio_and_distance_to_liquidation() -> None:
    assert margin_ratio(240, 3000) == Fraction(2, 25)
    assert margin_ratio(240, 0) is None
    assert distance_to_liquidation(Fraction(1), Fraction(60_000), Fraction(57_000)) == 5
    assert distance_to_liquidation(Fraction(-1), Fraction(60_000), Fraction(63_000)) == 5
    assert distance_to_liquidation(Fraction(1), Fraction(60_000), Fraction(60_600)) == -1
    assert distance_to_liquidation(Fraction(1), Fraction(60_000), None) is None


def test_max_loss_is_the_isolated_margin_or_the_cross_margin_balance() -> None:
    isolated = max_loss(
        MarginMode.ISOLATED, isolated_margin=Fraction(3_000), cross_margin_balance=Fraction(9)
    )
    cross = max_loss(
        MarginMode.CROSS, isolated_margin=Fraction(0), cross_margin_balance=Fraction(9)
    )
    gone = max_loss(
        MarginMode.CROSS, isolated_margin=Fraction(0), cross_margin_balance=Fraction(-9)
    )
    assert (isolated, cross, gone) == (Fraction(3_000), Fraction(9), Fraction(0))


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@st.composite
def isolated_positions(draw: st.DrawFn) -> tuple[int, int, int]:
    """Draw (signed lots, signed cost in atoms, isolated margin in atoms) on ETH brackets."""
    lots = draw(st.integers(min_value=1, max_value=20_000_000))
    entry_ticks = draw(st.integers(min_value=1, max_value=1_000_000))
    notional = ETH.notional(entry_ticks, lots)
    # An average entry is rarely on a tick: add up to one tick's worth of cost.
    cost = notional + draw(st.integers(min_value=0, max_value=lots * ETH.atoms_per_tick_lot - 1))
    leverage = draw(st.integers(min_value=1, max_value=max_leverage(ETH, cost)))
    extra = draw(st.integers(min_value=0, max_value=cost))
    margin = initial_margin(cost, leverage) + extra
    short = draw(st.booleans())
    return (-lots, -cost, margin) if short else (lots, cost, margin)


def isolated_margin_balance(lots: int, cost: int, margin: int, mark_ticks: int) -> int:
    return margin + unrealized_pnl(ETH, lots, cost, mark_ticks)


def is_isolated_liquidatable(lots: int, cost: int, margin: int, mark_ticks: int) -> bool:
    maintenance = position_maintenance_margin(ETH, lots, mark_ticks)
    return is_liquidatable(maintenance, isolated_margin_balance(lots, cost, margin, mark_ticks))


@settings(max_examples=400, deadline=None)
@given(isolated_positions())
def test_isolated_liquidation_price_is_where_maintenance_meets_margin_balance(
    position: tuple[int, int, int],
) -> None:
    lots, cost, margin = position
    tiers = tiers_from_brackets(ETH.brackets)
    qty = qty_from_lots(ETH, lots)
    wallet = usdt_from_atoms(margin)
    price = liquidation_price(
        qty=qty,
        entry_price=entry_price(qty, usdt_from_atoms(cost)),
        wallet_balance=wallet,
        tiers=tiers,
    )
    if price is None:
        # Only a long can be out of reach, and then even the lowest tick is healthy.
        assert lots > 0
        assert not is_isolated_liquidatable(lots, cost, margin, 1)
        return
    # Exactly at the price, maintenance margin equals margin balance.
    balance = wallet + qty * price - usdt_from_atoms(cost)
    assert exact_maintenance_margin(abs(qty) * price, tiers) == balance
    # In the ledger's integers: liquidatable on the first tick past it, healthy a tick inside.
    if lots > 0:
        past, inside = floor_ticks(ETH, price), ceil_ticks(ETH, price) + 1
    else:
        past, inside = ceil_ticks(ETH, price), floor_ticks(ETH, price) - 1
    if past > 0:
        assert is_isolated_liquidatable(lots, cost, margin, past)
    if inside > 0:
        assert not is_isolated_liquidatable(lots, cost, margin, inside)


@settings(max_examples=200, deadline=None)
@given(
    btc_lots=st.integers(min_value=-200_000, max_value=200_000).filter(bool),
    eth_lots=st.integers(min_value=-2_000_000, max_value=2_000_000).filter(bool),
    btc_entry=st.integers(min_value=1_000_000, max_value=10_000_000),
    eth_entry=st.integers(min_value=50_000, max_value=500_000),
    btc_move=st.fractions(min_value=Fraction(-1, 5), max_value=Fraction(1, 5)),
    wallet_atoms=st.integers(min_value=0, max_value=10**16),
)
def test_cross_liquidation_price_is_where_the_account_meets_maintenance(
    btc_lots: int,
    eth_lots: int,
    btc_entry: int,
    eth_entry: int,
    btc_move: Fraction,
    wallet_atoms: int,
) -> None:
    btc_tiers, eth_tiers = tiers_from_brackets(BTC.brackets), tiers_from_brackets(ETH.brackets)
    btc_qty, eth_qty = qty_from_lots(BTC, btc_lots), qty_from_lots(ETH, eth_lots)
    btc_entry_price = price_from_ticks(BTC, btc_entry)
    btc_mark = btc_entry_price * (1 + btc_move)
    eth_entry_price = price_from_ticks(ETH, eth_entry)
    wallet = usdt_from_atoms(wallet_atoms)
    btc_maintenance = exact_maintenance_margin(abs(btc_qty) * btc_mark, btc_tiers)
    btc_pnl = btc_qty * (btc_mark - btc_entry_price)
    price = liquidation_price(
        qty=eth_qty,
        entry_price=eth_entry_price,
        wallet_balance=wallet,
        tiers=eth_tiers,
        other_maintenance_margin=btc_maintenance,
        other_unrealized_pnl=btc_pnl,
    )
    if price is None:
        return
    balance = wallet + btc_pnl + eth_qty * (price - eth_entry_price)
    maintenance = btc_maintenance + exact_maintenance_margin(abs(eth_qty) * price, eth_tiers)
    assert balance == maintenance


def test_brackets_built_here_match_the_core_builder() -> None:
    bracket = build_brackets([("0", "100", 10, "0.01")])[0]
    assert isinstance(bracket, LeverageBracket)
    tier = tiers_from_brackets((bracket,))[0]
    assert tier.notional_cap is None
    assert tier.covers(Fraction(10**12))
    assert tier.maintenance_margin_rate == Fraction(1, 100)
