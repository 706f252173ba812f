"""Loading instruments from TOML: the shipped file, and errors that name the field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from exchange.cli import DEFAULT_INSTRUMENTS
from exchange.core.numbers import atoms, rate
from exchange.instrument_config import InstrumentConfigError, load_instruments, loads_instruments

VALID = """
[instruments.BTCUSDT]
base_asset = "BTC"
tick_size = "0.1"
lot_size = "0.001"
min_qty = "0.001"
max_qty = "1000"
brackets = [
    { floor = "0", cap = "50000", max_leverage = 125, maintenance_margin_rate = "0.004" },
    { floor = "50000", cap = "600000", max_leverage = 100, maintenance_margin_rate = "0.005" },
]
"""


def test_shipped_instruments_load_with_binance_like_brackets() -> None:
    instruments = load_instruments(DEFAULT_INSTRUMENTS)
    assert set(instruments) == {"BTCUSDT", "ETHUSDT"}
    btc, eth = instruments["BTCUSDT"], instruments["ETHUSDT"]
    assert (btc.tick_size, btc.lot_size) == (Decimal("0.1"), Decimal("0.001"))
    assert (eth.tick_size, eth.lot_size) == (Decimal("0.01"), Decimal("0.001"))
    assert (btc.min_notional, eth.min_notional) == (atoms("100"), atoms("20"))
    first = btc.brackets[0]
    assert (first.notional_cap, first.max_leverage) == (atoms("50000"), 125)
    assert first.maintenance_margin_rate == rate("0.004")
    assert eth.brackets[0].maintenance_margin_rate == rate("0.005")
    assert len(btc.brackets) == 11
    # Binance's ETH tier of its published example: MMR 10%, cum 135,365.
    assert [(b.maintenance_margin_rate, b.maintenance_amount) for b in eth.brackets][5] == (
        rate("0.1"),
        atoms("135365"),
    )
    for instrument in instruments.values():
        leverages = [b.max_leverage for b in instrument.brackets]
        assert leverages == sorted(leverages, reverse=True)
        # Opening at full leverage must not start at or past maintenance.
        for bracket in instrument.brackets:
            assert bracket.maintenance_margin_rate * bracket.max_leverage < rate("1")


def test_floats_in_toml_are_read_exactly() -> None:
    text = VALID.replace('tick_size = "0.1"', "tick_size = 0.1")
    assert loads_instruments(text)["BTCUSDT"].tick_size == Decimal("0.1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("max_leverage = 125", 'max_leverage = "x"'),
            "instruments.BTCUSDT.brackets.0.max_leverage",
        ),
        (
            ('base_asset = "BTC"', 'base_asset = "BTC"\ncolour = "red"'),
            "instruments.BTCUSDT.colour",
        ),
        (('tick_size = "0.1"', 'tick_size = "fast"'), "instruments.BTCUSDT.tick_size"),
        (('max_qty = "1000"', ""), "instruments.BTCUSDT.max_qty"),
        (('cap = "600000"', 'cap = "40000"'), "instruments.BTCUSDT: bracket 2"),
        (('lot_size = "0.001"', 'lot_size = "0.000000001"'), "instruments.BTCUSDT: "),
        (("[instruments.BTCUSDT]", "[instruments.btc]"), "instruments.btc"),
        (("brackets = [", "brackets = [[["), "malformed TOML"),
    ],
)
def test_bad_config_names_the_field(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in VALID
    with pytest.raises(InstrumentConfigError) as caught:
        loads_instruments(VALID.replace(old, new))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(InstrumentConfigError, match=r"missing\.toml: cannot read"):
        load_instruments(path)
